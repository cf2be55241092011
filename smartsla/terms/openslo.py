"""OpenSLO v1 ``SLO`` documents -> the services and measurement of a terms file (``smartsla terms from-openslo``).

What maps: a ``ratioMetric`` (good/total, or bad/total) becomes a ``success-rate`` measured from counts, with the
budgeting method (Occurrences, Timeslices with ``timeSliceTarget``, RatioTimeslices) and ``timeSliceWindow`` as
its method and slice; a Prometheus ``metricSource`` becomes the service's ``events.prometheus`` expressions. A
``thresholdMetric`` with ``op: lt``/``lte``, ``value`` V and ``target`` T (T of the events below V) with
Occurrences becomes a latency percentile: ``percentile: 100*T``, ``target: V`` (in ``threshold_unit``). The
first ``timeWindow`` gives the period length (and ``calendar.startTime`` its start). Parties, money, the penalty
schedule and the oracles are not in an SLO: they are written as placeholders for a development chain, and
:attr:`Conversion.fill_in` names them. Anything else is refused with an :class:`OpenSLOError` naming the field.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any
import yaml

from smartsla import units
from smartsla.encoding import parse_time_in_zone

FILL_IN = ("provider", "customer", "payment", "compensation.schedule", "oracles")
_DURATION = re.compile(r"^(\d+)([smhdwMQY])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
# calendar units: terms periods have a fixed length, so a month is 30 days (said in the notes)
_CALENDAR_DAYS = {"M": 30, "Q": 90, "Y": 365}
_METHODS = {"Occurrences": "occurrences", "Timeslices": "timeslices", "RatioTimeslices": "ratio-timeslices"}


class OpenSLOError(ValueError):
    """An OpenSLO document this converter cannot map; ``field`` is the OpenSLO path (``spec.budgetingMethod``)."""

    def __init__(self, source: str, document: int, path: str, message: str):
        self.path = path
        super().__init__(f"{source}: document {document + 1}: {path}: {message}")


@dataclass
class Conversion:
    document: dict                  # the terms document (validated by load_terms before it is returned)
    notes: list[str] = field(default_factory=list)
    fill_in: tuple[str, ...] = FILL_IN


def _slug(text: str, limit: int = 32) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", str(text).lower()).strip("-_")
    return slug[:limit].rstrip("-_") or "service"


def _fraction(value: Any) -> Fraction | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return Fraction(repr(value) if isinstance(value, float) else str(value))
    except (ValueError, ZeroDivisionError):
        return None


def _percent(f: Fraction) -> str:
    """0.9995 -> "99.95%" exactly (an error beyond 1 ppm)."""
    ppm = f * 1_000_000
    if ppm.denominator != 1:
        raise ValueError("finer than 0.0001% (1 ppm)")
    return units.format_ppm(int(ppm))


class _Converter:
    def __init__(self, source: str, threshold_unit: str):
        self.source = source
        self.threshold_unit = threshold_unit
        self.notes: list[str] = []

    def fail(self, index: int, path: str, message: str) -> OpenSLOError:
        return OpenSLOError(self.source, index, path, message)

    def duration(self, index: int, path: str, text: Any) -> int:
        m = _DURATION.match(str(text)) if isinstance(text, str) else None
        if not m:
            raise self.fail(index, path, f"{text!r} is not an OpenSLO duration such as 1m, 1h, 28d, 1w or 1M")
        n, unit = int(m.group(1)), m.group(2)
        if n == 0:
            raise self.fail(index, path, "must be longer than 0")
        if unit in _CALENDAR_DAYS:
            days = n * _CALENDAR_DAYS[unit]
            self.notes.append(f"{path} {text}: calendar {'months' if unit == 'M' else 'quarters' if unit == 'Q' else 'years'} "
                              f"have no fixed length; the periods are {days}d")
            return days * 86_400
        return n * _UNIT_SECONDS[unit]

    def convert(self, documents: list[Any]) -> Conversion:
        slis = {}
        for i, d in enumerate(documents):
            if isinstance(d, dict) and d.get("kind") == "SLI":
                slis[str((d.get("metadata") or {}).get("name"))] = d.get("spec") or {}
        slos = [(i, d) for i, d in enumerate(documents) if isinstance(d, dict) and d.get("kind") == "SLO"]
        if not slos:
            kinds = sorted({str(d.get("kind")) for d in documents if isinstance(d, dict)})
            raise OpenSLOError(self.source, 0, "kind", f"no SLO document (kinds found: {', '.join(kinds) or 'none'}); "
                               "from-openslo converts kind: SLO")
        services: list[dict] = []
        periods: dict | None = None
        for index, doc in slos:
            if doc.get("apiVersion") != "openslo/v1":
                raise self.fail(index, "apiVersion", f"{doc.get('apiVersion')!r}; this converter reads openslo/v1")
            spec = doc.get("spec")
            if not isinstance(spec, dict):
                raise self.fail(index, "spec", "missing or not a mapping")
            name = (doc.get("metadata") or {}).get("name") or f"slo-{index + 1}"
            window = self.window(index, spec)
            if periods is None:
                periods = window
            elif periods != window:
                raise self.fail(index, "spec.timeWindow", f"{window} differs from the first SLO's {periods}; one "
                                "agreement has one period length: convert these SLOs separately")
            indicator = self.indicator(index, spec, slis)
            method = spec.get("budgetingMethod")
            if method not in _METHODS:
                raise self.fail(index, "spec.budgetingMethod", f"{method!r}; expected Occurrences, Timeslices or "
                                "RatioTimeslices")
            objectives = spec.get("objectives")
            if not isinstance(objectives, list) or not objectives:
                raise self.fail(index, "spec.objectives", "missing or empty: an SLO needs at least one objective")
            for k, objective in enumerate(objectives):
                path = f"spec.objectives[{k}]"
                if not isinstance(objective, dict):
                    raise self.fail(index, path, "is not a mapping")
                sid = _slug(name) if len(objectives) == 1 else _slug(f"{_slug(name, 28)}-{k + 1}")
                services.append(self.service(index, path, sid, indicator, _METHODS[method], objective,
                                             periods["length"]))
        ids = [s["id"] for s in services]
        if len(set(ids)) != len(ids):
            raise OpenSLOError(self.source, 0, "metadata.name", f"two SLOs give the same service id ({', '.join(ids)}); "
                               "rename one")
        doc = {
            "agreement": _slug(slos[0][1].get("metadata", {}).get("name", "openslo"), 64),
            "provider": "provider",
            "customer": "customer",
            "payment": {"token": "test-usd", "fee": "1000"},
            "periods": periods,
            "services": services,
            "compensation": {"schedule": []},
            "oracles": {"members": ["oracle-1", "oracle-2", "oracle-3"], "quorum": 2, "deadline": "2d",
                        "fallback": "full-credit"},
        }
        objectives = {s.get("objective", "availability") for s in services}
        if len(objectives) == 1:
            first = services[0]
            doc["compensation"]["schedule"] = [self.placeholder_tier(first)]
        else:
            for s in services:
                s["schedule"] = [self.placeholder_tier(s)]
            del doc["compensation"]["schedule"]
        return Conversion(doc, self.notes)

    @staticmethod
    def placeholder_tier(service: dict) -> dict:
        key = "above" if service.get("objective") == "latency" else "below"
        return {key: service["target"], "credit": "10%"}

    def window(self, index: int, spec: dict) -> dict:
        windows = spec.get("timeWindow")
        if not isinstance(windows, list) or not windows or not isinstance(windows[0], dict):
            raise self.fail(index, "spec.timeWindow", "missing: the period length comes from the first time window")
        if len(windows) > 1:
            self.notes.append("spec.timeWindow: only the first window is used")
        w = windows[0]
        length = self.duration(index, "spec.timeWindow[0].duration", w.get("duration"))
        periods: dict[str, Any] = {"length": units.format_seconds(length), "count": 12}
        if w.get("isRolling"):
            self.notes.append("spec.timeWindow[0].isRolling: a rolling window becomes consecutive periods (each "
                              "settled once, after it ends)")
        calendar = w.get("calendar")
        if isinstance(calendar, dict) and calendar.get("startTime") is not None:
            periods["start"] = self.start(index, calendar)
        return periods

    def start(self, index: int, calendar: dict) -> str:
        path = "spec.timeWindow[0].calendar"
        text = str(calendar.get("startTime"))
        zone = calendar.get("timeZone", "UTC")
        try:
            seconds = parse_time_in_zone(text, zone)
        except ValueError as exc:
            bad_zone = "time zone" in str(exc)
            raise self.fail(index, f"{path}.timeZone" if bad_zone else f"{path}.startTime",
                            str(exc) if bad_zone else f"{text!r} is not a time such as 2022-01-01 12:00:00") from None
        return _dt.datetime.fromtimestamp(seconds, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def indicator(self, index: int, spec: dict, slis: dict) -> dict:
        if "indicator" in spec:
            ind = spec["indicator"]
            if not isinstance(ind, dict) or not isinstance(ind.get("spec"), dict):
                raise self.fail(index, "spec.indicator.spec", "missing or not a mapping")
            return ind["spec"]
        ref = spec.get("indicatorRef")
        if ref is None:
            raise self.fail(index, "spec.indicator", "missing (and no indicatorRef)")
        if str(ref) not in slis:
            raise self.fail(index, "spec.indicatorRef", f"{ref!r} names no kind: SLI document in this file")
        return slis[str(ref)]

    def target(self, index: int, path: str, objective: dict) -> Fraction:
        if "target" in objective:
            t = _fraction(objective["target"])
            where = f"{path}.target"
        elif "targetPercent" in objective:
            t = _fraction(objective["targetPercent"])
            t = None if t is None else t / 100
            where = f"{path}.targetPercent"
        else:
            raise self.fail(index, f"{path}.target", "missing: the objective's target (e.g. 0.999)")
        if t is None or not 0 < t <= 1:
            raise self.fail(index, where, "must be a number above 0 and at most 1 (target) or 100 (targetPercent)")
        return t

    def service(self, index: int, path: str, sid: str, indicator: dict, method: str, objective: dict,
                period_text: str) -> dict:
        target = self.target(index, path, objective)
        period = units.parse_duration_seconds(period_text)
        if "ratioMetric" in indicator:
            ratio = indicator["ratioMetric"] or {}
            try:
                target_text = _percent(target)
            except ValueError as exc:
                raise self.fail(index, f"{path}.target", str(exc)) from None
            service: dict[str, Any] = {"id": sid, "objective": "success-rate", "method": method, "target": target_text}
            if method != "occurrences":
                if "timeSliceWindow" not in objective:
                    raise self.fail(index, f"{path}.timeSliceWindow", f"missing: {method} needs the slice length")
                slice_seconds = self.duration(index, f"{path}.timeSliceWindow", objective["timeSliceWindow"])
                if period % slice_seconds:
                    raise self.fail(index, f"{path}.timeSliceWindow", f"does not divide the period "
                                    f"({period_text}); every period must hold a whole number of slices")
                service["slice"] = units.format_seconds(slice_seconds)
            if method == "timeslices":
                st = _fraction(objective.get("timeSliceTarget"))
                if st is None or not 0 < st <= 1:
                    raise self.fail(index, f"{path}.timeSliceTarget", "missing or not a number above 0 and at most 1")
                service["slice_target"] = _percent(st)
            elif "timeSliceTarget" in objective:
                raise self.fail(index, f"{path}.timeSliceTarget", "is only used with budgetingMethod Timeslices")
            source = self.prometheus(index, ratio)
            if source is not None:
                service["events"] = {"prometheus": source}
            else:
                self.notes.append(f"{sid}: the metric source is not Prometheus: import its counts with "
                                  "`sla-oracle import --events`")
            return service
        if "thresholdMetric" in indicator:
            op = objective.get("op")
            if op not in ("lt", "lte"):
                raise self.fail(index, f"{path}.op", f"{op!r} with a thresholdMetric: only lt/lte (a latency below a "
                                "value) maps to a latency percentile")
            if method != "occurrences":
                raise self.fail(index, "spec.budgetingMethod", f"{method} with a thresholdMetric: a latency "
                                "percentile is measured over the period's answers (Occurrences)")
            value = _fraction(objective.get("value"))
            if value is None or value < 0:
                raise self.fail(index, f"{path}.value", "missing or not a number of 0 or more")
            percentile = target * 100
            if (percentile * 10_000).denominator != 1:
                raise self.fail(index, f"{path}.target", "gives a percentile finer than 4 decimals")
            text = f"{value.numerator / value.denominator:g}{self.threshold_unit}"
            try:
                units.parse_duration_us(text)
            except units.UnitError as exc:
                raise self.fail(index, f"{path}.value", str(exc)) from None
            self.notes.append(f"{sid}: value {objective.get('value')} read as {text} (--threshold-unit); the "
                              "latency is measured by the oracles' probes: add a probe")
            p = int(percentile) if percentile.denominator == 1 else float(percentile)
            return {"id": sid, "objective": "latency", "percentile": p, "target": text}
        raise self.fail(index, "spec.indicator.spec", "has neither ratioMetric nor thresholdMetric")

    def prometheus(self, index: int, ratio: dict) -> dict | None:
        def query(part: str) -> str | None:
            src = ((ratio.get(part) or {}).get("metricSource") or {})
            if str(src.get("type", "")).lower() != "prometheus":
                return None
            q = (src.get("spec") or {}).get("query")
            return str(q) if q else None

        total = query("total")
        if "good" in ratio:
            good = query("good")
        elif "bad" in ratio:
            bad = query("bad")
            good = None if bad is None or total is None else f"({total}) - ({bad})"
        else:
            raise self.fail(index, "spec.indicator.spec.ratioMetric", "needs good or bad, and total")
        if good is None or total is None:
            return None
        return {"good": good, "total": total}


def from_openslo(text: str, source: str = "<openslo>", *, threshold_unit: str = "ms") -> Conversion:
    """Convert an OpenSLO file's text; the result's document passes :func:`smartsla.terms.parse.load_terms`."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise OpenSLOError(source, 0, "(file)", f"not YAML: {exc}") from None
    return _Converter(source, threshold_unit).convert(documents)
