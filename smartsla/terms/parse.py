"""From a document to :class:`~smartsla.terms.model.Terms`: the rules that span several keys (units, tier
order, schedules, probes), each problem a :class:`~smartsla.terms.errors.TermsError` naming the key path."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from eth_utils import is_checksum_address, to_checksum_address

from smartsla import constants, units
from smartsla.constants import ADDRESS_RE, ETH_DECIMALS, MAX_AMOUNT, MAX_CAP_BPS, TEST_USD_DECIMALS, ZERO_ADDRESS
from smartsla.encoding import NoTimeZone, parse_iso_time
from smartsla.terms.errors import TermsError
from smartsla.terms.extends import Origins, ResolvedDocument, resolve_terms_document
from smartsla.terms.model import (
    APDEX,
    AVAILABILITY,
    EMPTY_GOOD,
    FROM_EVENTS,
    FROM_SAMPLES,
    GAPS_EXCLUDE,
    LATENCY,
    OCCURRENCES,
    SUCCESS_RATE,
    TIMESLICES,
    VALUE_EXAMPLES,
    Compensation,
    EventSource,
    Maintenance,
    Measurement,
    Oracles,
    Payment,
    Periods,
    Probe,
    Service,
    Terms,
    Tier,
    parse_value,
)
from smartsla.terms.schema import describe, error_order, schema_error, validator
from smartsla.units import UnitError

# Most of a period measured, yet room for an oracle restart or a short outage of its own: below it a report is not
# signed and does not count on-chain (docs/terms.md, `oracles.min_coverage`).
DEFAULT_MIN_COVERAGE = "90%"
# With no notice a provider could announce a window starting in the next block, in the middle of an outage; a day
# lets the customer (and the oracles) see it coming.
DEFAULT_NOTICE = "24h"

def load_terms(
    path_or_text: str | os.PathLike | dict,
    *,
    source_name: str | None = None,
    base_dir: str | os.PathLike | None = None,
) -> Terms:
    """Load and validate a terms file, resolving its ``extends`` chain.

    A ``Path`` (or a string without a newline) is read as a file; a string
    containing a newline is YAML text; a dict is an already parsed document.
    ``extends`` is relative to the folder of the file that says it; for YAML
    text or a dict, to ``base_dir`` (default: the current directory).
    The resolved document is validated and hashed (see docs/terms.md,
    "Multi-level terms: extends"); ``Terms.sources`` names the files.
    """
    resolved = resolve_terms_document(path_or_text, source_name=source_name, base_dir=base_dir)
    return _parser_for(resolved).parse()


def terms_from_document(
    document: dict, *, source_name: str | None = None, base_dir: str | os.PathLike | None = None
) -> Terms:
    """Validate an already parsed document (e.g. from JSON); an ``extends`` in it is resolved."""
    return load_terms(document, source_name=source_name, base_dir=base_dir)


def _parser_for(resolved: ResolvedDocument) -> _Parser:
    return _Parser(resolved.data, resolved.source, resolved._marks, resolved._origins, resolved.sources)


class _Parser:
    def __init__(self, doc: Any, source: str, marks: dict, origins: Origins | None = None,
                 sources: tuple[str, ...] = ()):
        self.doc = doc
        self.source = source
        self.marks = marks
        self.origins = origins
        self.sources = sources or (source,)

    def error(self, parts: tuple, message: str) -> TermsError:
        parts = tuple(parts)
        if self.origins is None:
            line_col = self.marks.get(parts)
            line, column = line_col if line_col else (None, None)
            return TermsError(parts, message, source=self.source, line=line, column=column)
        file, fpath = self.origins.locate(parts)
        line_col = self.origins.marks.get(file, {}).get(fpath) if file is not None else None
        line, column = line_col if line_col else (None, None)
        return TermsError(parts, message, source=self.source, line=line, column=column,
                          origin=file, origin_path=fpath)

    def unit(self, parts: tuple, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UnitError as exc:
            raise self.error(parts, str(exc)) from None

    # -- entry

    def parse(self) -> Terms:
        doc = self.doc
        if not isinstance(doc, dict):
            raise self.error((), f"the top level must be a mapping of keys (agreement, provider, ...), got {describe(doc)}")
        errors = list(validator().iter_errors(doc))
        if errors:
            first = min(errors, key=lambda e: error_order(e, self.marks))
            parts, message = schema_error(first)
            raise self.error(parts, message)

        provider = self.party(("provider",), doc["provider"])
        customer = self.party(("customer",), doc["customer"])
        if provider.lower() == customer.lower():
            raise self.error(("customer",), f"is the same as the provider ({provider}); they must be different parties")
        payment = self.payment(doc["payment"])
        periods = self.periods(doc["periods"])
        measurement = self.measurement(doc.get("measurement", {}), periods)
        compensation, services = self.compensation_and_services(doc["compensation"], doc["services"], periods)
        oracles = self.oracles(doc["oracles"])
        maintenance = self.maintenance(doc.get("maintenance", {}), periods)
        return Terms(
            agreement=doc["agreement"],
            provider=provider,
            customer=customer,
            payment=payment,
            periods=periods,
            services=services,
            compensation=compensation,
            oracles=oracles,
            maintenance=maintenance,
            document=doc,
            source=self.source,
            measurement=measurement,
            sources=self.sources,
        )

    # -- pieces

    def party(self, parts: tuple, value: str) -> str:
        if value.startswith("0x") and not ADDRESS_RE.match(value):
            raise self.error(parts, f"{describe(value)} is not an address: it needs exactly 40 hex digits after 0x")
        if ADDRESS_RE.match(value):
            body = value[2:]
            if body != body.lower() and body != body.upper() and not is_checksum_address(value):
                raise self.error(
                    parts,
                    f"{value} has an invalid checksum (a typo?); the checksummed form of that address is "
                    f"{to_checksum_address(value)}, or write it all in lower case",
                )
            return to_checksum_address(value)
        return value

    def payment(self, p: dict) -> Payment:
        token = p["token"]
        if token in ("ETH", "test-usd"):
            pass
        elif ADDRESS_RE.match(token) or token.startswith("0x"):
            token = self.party(("payment", "token"), token)
            if token == ZERO_ADDRESS:
                raise self.error(("payment", "token"), "the zero address is not a token; write ETH for ether")
        else:
            raise self.error(
                ("payment", "token"),
                f"{describe(token)} is not a token: use ETH, test-usd (dev chains) or an ERC-20 address",
            )
        known = {"ETH": ETH_DECIMALS, "test-usd": TEST_USD_DECIMALS}.get(token)
        amounts = {}
        for key, default in (("fee", None), ("bond", "0")):
            raw = p.get(key, default)
            parts = ("payment", key)
            self.unit(parts, units.check_token_amount, raw)
            if known is not None:
                _amount_checked = self.unit(parts, units.parse_token_amount, raw, known)
                if _amount_checked > MAX_AMOUNT:
                    raise self.error(parts, f"{raw} is too large: at most 2**96-1 base units")
            amounts[key] = str(raw)
        if units.check_token_amount(amounts["fee"]) == 0:
            raise self.error(("payment", "fee"), "must be more than 0 (the fee per period)")
        return Payment(token=token, fee=amounts["fee"], bond=amounts["bond"])

    def periods(self, p: dict) -> Periods:
        start = p.get("start")
        if isinstance(start, int):
            if start < 0:
                raise self.error(("periods", "start"), "unix seconds must not be negative")
        elif isinstance(start, str):
            start = self.timestamp(("periods", "start"), start)
        length = self.unit(("periods", "length"), units.parse_duration_seconds, p["length"])
        if length == 0:
            raise self.error(("periods", "length"), "must be longer than 0s")
        count = p["count"]
        if start is not None and start + length * count > constants.UINT64_MAX:
            raise self.error(("periods",), "the last period ends after the largest uint64 time")
        return Periods(start=start, length=length, count=count)

    def timestamp(self, parts: tuple, text: str) -> int:
        try:
            seconds = parse_iso_time(text)
        except NoTimeZone:
            raise self.error(parts, f"{describe(text)} has no time zone; add \"Z\" for UTC, e.g. \"2027-01-01T00:00:00Z\"") from None
        except ValueError:
            raise self.error(parts, f"{describe(text)} is not a time; write e.g. \"2027-01-01T00:00:00Z\" or unix seconds") from None
        if seconds < 0 or seconds != int(seconds):
            raise self.error(parts, f"{describe(text)} must be a whole second after 1970-01-01")
        return int(seconds)

    def schedule(self, parts: tuple, tiers: list, objective: str, cap_bps: int, cap_text: str) -> tuple[Tier, ...]:
        lower_is_better = objective == LATENCY
        key, other = ("above", "below") if lower_is_better else ("below", "above")
        out: list[Tier] = []
        raws: list[tuple[str, str]] = []
        for i, tier in enumerate(tiers):
            tp = parts + (i,)
            if other in tier:
                why = (f'{objective} tiers use "{key}:" (a value such as {VALUE_EXAMPLES[objective]}): the credit '
                       f'applies when {objective} is {key} it')
                raise self.error(tp + (other,), f'"{other}:" does not fit {objective}; {why}')
            if key not in tier:
                raise self.error(tp, f'missing "{key}:"; each {objective} tier says {key} which value its credit applies')
            raw = tier[key]
            threshold = self.unit(tp + (key,), parse_value, objective, raw)
            if threshold == 0 and not lower_is_better:
                raise self.error(tp + (key,), f'below {describe(raw)} can never apply; use a threshold above it')
            credit = self.unit(tp + ("credit",), units.parse_percent_bps, tier["credit"])
            if credit == 0:
                raise self.error(tp + ("credit",), "a tier's credit must be more than 0%")
            if credit > cap_bps:
                raise self.error(
                    tp + ("credit",),
                    f'{describe(tier["credit"])} is more than compensation.cap {describe(cap_text)}; '
                    "lower the credit or raise the cap",
                )
            if out:
                prev_raw_threshold, prev_raw_credit = raws[-1]
                prev = out[-1]
                wrong = threshold <= prev.threshold if lower_is_better else threshold >= prev.threshold
                if wrong:
                    relation = key
                    raise self.error(
                        tp + (key,),
                        f"tiers must go from mildest to most severe: {describe(raw)} must be {relation} "
                        f"{describe(prev_raw_threshold)} (the tier before it)",
                    )
                if credit <= prev.credit_bps:
                    raise self.error(
                        tp + ("credit",),
                        f"tiers must go from mildest to most severe: credit {describe(tier['credit'])} must be "
                        f"more than {describe(prev_raw_credit)} (the tier before it)",
                    )
            out.append(Tier(threshold, credit))
            raws.append((raw, tier["credit"]))
        return tuple(out)

    def compensation_and_services(self, comp: dict, raw_services: list, periods: Periods
                                  ) -> tuple[Compensation, tuple[Service, ...]]:
        basis = comp.get("basis", "per-service")
        if basis != "combined" and "target" in comp:
            raise self.error(
                ("compensation", "target"),
                "is only used with basis: combined; remove it, or set compensation.basis: combined",
            )
        combine = comp.get("combined", "min")
        cap_text = comp.get("cap", "100%")
        cap_bps = self.unit(("compensation", "cap"), units.parse_percent_bps, cap_text)
        if cap_bps == 0 or cap_bps > MAX_CAP_BPS:
            raise self.error(("compensation", "cap"), "must be more than 0% and at most 10000%")

        seen: dict[str, int] = {}
        for i, s in enumerate(raw_services):
            if s["id"] in seen:
                raise self.error(("services", i, "id"), f"{describe(s['id'])} is already used by services[{seen[s['id']]}]; ids must be unique")
            seen[s["id"]] = i

        objectives = [s.get("objective", AVAILABILITY) for s in raw_services]
        users = [i for i, s in enumerate(raw_services) if "schedule" not in s]
        if basis == "combined":
            for i, s in enumerate(raw_services):
                if objectives[i] != objectives[0]:
                    raise self.error(
                        ("services", i, "objective"),
                        f"basis combined needs every service to share one objective, but services[0] is "
                        f"{objectives[0]} and this is {objectives[i]}; use basis: per-service",
                    )
                if "schedule" in s:
                    raise self.error(
                        ("services", i, "schedule"),
                        "a service's own schedule is only used with basis: per-service; move it to compensation.schedule",
                    )
            agreement_objective: str | None = objectives[0]
        else:
            if "combined" in comp:
                # per-service: the combined number is only shown (payouts, simulate, the audit), and a minimum or a
                # weighted mean of a percentage and a duration means nothing
                for i, objective in enumerate(objectives):
                    if objective != objectives[0]:
                        raise self.error(
                            ("compensation", "combined"),
                            f"combines services of different objectives (services[0] is {objectives[0]}, "
                            f"services[{i}] is {objective}), which gives no meaningful number; remove "
                            "compensation.combined, or combine services of one objective only",
                        )
            agreement_objective = objectives[users[0]] if users else None
            for i in users:
                if objectives[i] != agreement_objective:
                    raise self.error(
                        ("services", i),
                        f"this {objectives[i]} service has no schedule of its own, but compensation.schedule is for "
                        f"{agreement_objective} (set by services[{users[0]}]); give it its own schedule",
                    )

        schedule: tuple[Tier, ...] = ()
        if agreement_objective is not None:
            if "schedule" not in comp:
                who = "basis combined" if basis == "combined" else f"services[{users[0]}] has no schedule of its own and"
                raise self.error(("compensation", "schedule"), f"missing: {who} needs compensation.schedule")
            schedule = self.schedule(("compensation", "schedule"), comp["schedule"], agreement_objective, cap_bps, cap_text)
        elif "schedule" in comp:
            # Unused but present: still validate it so a typo does not hide.
            kinds = {"above" if "above" in t else "below" for t in comp["schedule"]}
            kind_objective = LATENCY if kinds == {"above"} else objectives[0] if objectives[0] != LATENCY else AVAILABILITY
            schedule = self.schedule(("compensation", "schedule"), comp["schedule"], kind_objective, cap_bps, cap_text)

        target = None
        if basis == "combined":
            if "target" in comp:
                target = self.unit(("compensation", "target"), parse_value, agreement_objective, comp["target"])
            else:
                target = schedule[0].threshold

        services = []
        for i, s in enumerate(raw_services):
            objective = objectives[i]
            sp = ("services", i)
            target_value = self.unit(sp + ("target",), parse_value, objective, s["target"])
            if "schedule" in s:
                tiers = self.schedule(sp + ("schedule",), s["schedule"], objective, cap_bps, cap_text)
            elif basis == "combined":
                tiers = ()
            else:
                tiers = schedule
            services.append(
                Service(
                    id=s["id"],
                    objective=objective,
                    target=target_value,
                    weight=s.get("weight", 1),
                    tiers=tiers,
                    own_schedule="schedule" in s,
                    probe=self.probe(sp + ("probe",), s["probe"]) if "probe" in s else None,
                    **self.objective_keys(sp, s, objective, periods),
                )
            )
        self.check_samples_from(raw_services, services)
        compensation = Compensation(
            basis=basis,
            combined=combine,
            objective=agreement_objective,
            target=target,
            schedule=schedule,
            cap_bps=cap_bps,
        )
        return compensation, tuple(services)

    # The keys each objective may have besides id, objective, target, weight and schedule (docs/terms.md).
    _OBJECTIVE_KEYS = {
        AVAILABILITY: {"probe", "samples_from"},
        LATENCY: {"probe", "samples_from", "percentile"},
        APDEX: {"probe", "samples_from", "threshold", "source", "slice", "events"},
        SUCCESS_RATE: {"method", "slice", "empty_slice", "slice_target", "source", "events"},
    }
    _ALL_OBJECTIVE_KEYS = frozenset().union(*_OBJECTIVE_KEYS.values())

    def objective_keys(self, sp: tuple, s: dict, objective: str, periods: Periods) -> dict:
        """The keys that say how a service's objective is measured, checked against its objective."""
        for key in sorted(self._ALL_OBJECTIVE_KEYS - self._OBJECTIVE_KEYS[objective]):
            if key in s:
                users = [o for o, keys in self._OBJECTIVE_KEYS.items() if key in keys]
                raise self.error(sp + (key,), f"is not used with objective: {objective} (only with "
                                 f"{' or '.join(users)}); remove it, or change the objective")
        out: dict[str, Any] = {}
        if objective == LATENCY:
            if "percentile" not in s:
                raise self.error(sp + ("percentile",), "missing: a latency objective says which percentile of the "
                                 "period's latencies it holds, e.g. percentile: 99 for the p99")
            out["percentile"] = self.unit(sp + ("percentile",), units.parse_percentile, s["percentile"])
        if objective == APDEX:
            if "threshold" not in s:
                raise self.error(sp + ("threshold",), 'missing: an apdex objective needs its threshold T, e.g. '
                                 'threshold: "500ms" (satisfied up to T, tolerating up to 4T)')
            t = self.unit(sp + ("threshold",), units.parse_duration_us, s["threshold"])
            if t == 0:
                raise self.error(sp + ("threshold",), "must be longer than 0s")
            if 4 * t > constants.UINT32_MAX:
                raise self.error(sp + ("threshold",), f"{describe(s['threshold'])} is too long: 4T must fit "
                                 f"{units.format_us(constants.UINT32_MAX)}, the longest latency the oracle records")
            out["threshold_us"] = t
        source = s.get("source", FROM_EVENTS if objective == SUCCESS_RATE else FROM_SAMPLES)
        if objective == SUCCESS_RATE and source != FROM_EVENTS:
            raise self.error(sp + ("source",), "a success-rate is measured from event counts (good and total): "
                             "source must be events, or remove it")
        out["source"] = source
        if source == FROM_EVENTS:
            for key in ("probe", "samples_from"):
                if key in s:
                    raise self.error(sp + (key,), f"is not used with source: events (counts are imported or read "
                                     f"from Prometheus, not probed); remove {key}, or set source: samples")
        else:
            for key in ("slice", "events"):
                if key in s:
                    raise self.error(sp + (key,), f"is only used with source: events (event counts); remove it, "
                                     "or set source: events")
        if objective == SUCCESS_RATE:
            method = s.get("method", OCCURRENCES)
            out["method"] = method
            if method == OCCURRENCES and "empty_slice" in s:
                raise self.error(sp + ("empty_slice",), "is only used with method: ratio-timeslices or "
                                 "timeslices (occurrences has no slices to be empty); remove it")
            out["empty_slice"] = s.get("empty_slice", EMPTY_GOOD)
            if method == TIMESLICES:
                if "slice_target" not in s:
                    raise self.error(sp + ("slice_target",), 'missing: method timeslices counts the slices whose '
                                     'good/total reaches slice_target, e.g. slice_target: "99%"')
                out["slice_target"] = self.unit(sp + ("slice_target",), units.parse_percent_ppm, s["slice_target"])
            elif "slice_target" in s:
                raise self.error(sp + ("slice_target",), "is only used with method: timeslices; remove it, or set "
                                 "method: timeslices")
        if "slice" in s:
            slice_seconds = self.unit(sp + ("slice",), units.parse_duration_seconds, s["slice"])
            if slice_seconds == 0:
                raise self.error(sp + ("slice",), "must be longer than 0s")
            if periods.length % slice_seconds:
                near = ", ".join(units.format_seconds(c) for c in _dividing_slices(periods.length, slice_seconds))
                raise self.error(sp + ("slice",), f"{describe(s['slice'])} does not divide the period length "
                                 f"({units.format_seconds(periods.length)}) exactly; the nearest that do are {near}")
            out["slice"] = slice_seconds
        if "events" in s:
            prom = s["events"]["prometheus"]
            pp = sp + ("events", "prometheus")
            if objective == APDEX and "tolerating" not in prom:
                raise self.error(pp + ("tolerating",), "missing: apdex from Prometheus needs three expressions, "
                                 "good (satisfied), tolerating and total")
            if objective == SUCCESS_RATE and "tolerating" in prom:
                raise self.error(pp + ("tolerating",), "is only used with objective: apdex; remove it")
            if "url" in prom:
                split = urlsplit(prom["url"])
                if split.scheme not in ("http", "https") or not split.hostname:
                    raise self.error(pp + ("url",), f"{describe(prom['url'])} is not an http:// or https:// URL "
                                     "such as \"http://127.0.0.1:9090\"")
            out["events"] = EventSource(good=prom["good"], total=prom["total"], tolerating=prom.get("tolerating"),
                                        url=prom.get("url"))
        if "samples_from" in s:
            if "probe" in s:
                raise self.error(sp + ("samples_from",), "a service measured from another's samples has no probe "
                                 "of its own (that would probe the target twice); remove probe or samples_from")
            out["samples_from"] = s["samples_from"]
        return out

    def check_samples_from(self, raw_services: list, services: list[Service]) -> None:
        by_id = {s.id: s for s in services}
        for i, s in enumerate(services):
            if s.samples_from is None:
                continue
            parts = ("services", i, "samples_from")
            other = by_id.get(s.samples_from)
            if other is None:
                raise self.error(parts, f"{describe(s.samples_from)} is not a service of these terms (services: "
                                 f"{', '.join(by_id)})")
            if other.id == s.id:
                raise self.error(parts, "names this service itself; name the service whose probe it shares")
            if other.samples_from is not None:
                raise self.error(parts, f"{describe(other.id)} is itself measured from {describe(other.samples_from)}"
                                 f"'s samples; name {describe(other.samples_from)}, the service with the probe")
            if other.from_events:
                raise self.error(parts, f"{describe(other.id)} is measured from event counts, not samples; "
                                 "samples_from names a service measured by probes or sample imports")

    def oracles(self, o: dict) -> Oracles:
        members = []
        seen: dict[str, int] = {}
        for i, m in enumerate(o["members"]):
            member = self.party(("oracles", "members", i), m)
            key = member.lower()
            if key in seen:
                raise self.error(("oracles", "members", i), f"{describe(m)} is already oracles.members[{seen[key]}]; members must be distinct")
            seen[key] = i
            members.append(member)
        quorum = o["quorum"]
        if quorum > len(members):
            raise self.error(("oracles", "quorum"), f"{quorum} is more than the {len(members)} members; it must be 1..{len(members)}")
        deadline = self.unit(("oracles", "deadline"), units.parse_duration_seconds, o["deadline"])
        if not constants.MIN_REPORT_DEADLINE <= deadline <= constants.MAX_REPORT_DEADLINE:
            raise self.error(("oracles", "deadline"),
                             f"{describe(o['deadline'])} is outside "
                             f"{units.format_seconds(constants.MIN_REPORT_DEADLINE)}.."
                             f"{units.format_seconds(constants.MAX_REPORT_DEADLINE)}: shorter, and the fallback could "
                             "be taken before the oracles can report; longer, and the money of a period without "
                             "reports stays locked that long")
        min_coverage = self.unit(("oracles", "min_coverage"), units.parse_percent_ppm,
                                 o.get("min_coverage", DEFAULT_MIN_COVERAGE))
        return Oracles(members=tuple(members), quorum=quorum, deadline=deadline, fallback=o["fallback"],
                       min_coverage=min_coverage)

    def maintenance(self, m: dict, periods: Periods) -> Maintenance:
        allowance = self.unit(("maintenance", "allowance"), units.parse_duration_seconds, m.get("allowance", "0s"))
        notice = self.unit(("maintenance", "notice"), units.parse_duration_seconds, m.get("notice", DEFAULT_NOTICE))
        if notice > constants.MAX_MAINTENANCE_NOTICE:
            raise self.error(("maintenance", "notice"), f"{describe(m['notice'])} is longer than "
                             f"{units.format_seconds(constants.MAX_MAINTENANCE_NOTICE)}: no window could be announced")
        if allowance > constants.MAX_MAINTENANCE_ALLOWANCE:
            raise self.error(("maintenance", "allowance"), f"{describe(m['allowance'])} is longer than "
                             f"{units.format_seconds(constants.MAX_MAINTENANCE_ALLOWANCE)}, what a period's record "
                             "holds (32 bits of seconds)")
        if allowance > periods.length:
            raise self.error(
                ("maintenance", "allowance"),
                f"{describe(m['allowance'])} is longer than a period ({units.format_seconds(periods.length)})",
            )
        return Maintenance(allowance=allowance, notice=notice)

    def measurement(self, m: dict, periods: Periods) -> Measurement:
        parts = ("measurement", "slice")
        slice_seconds = self.unit(parts, units.parse_duration_seconds, m.get("slice", "1m"))
        if slice_seconds == 0:
            raise self.error(parts, "must be longer than 0s")
        if periods.length % slice_seconds:
            near = ", ".join(units.format_seconds(c) for c in _dividing_slices(periods.length, slice_seconds))
            raise self.error(
                parts,
                f"{describe(m.get('slice', '1m'))} does not divide the period length "
                f"({units.format_seconds(periods.length)}) exactly; every period must hold a whole number "
                f"of slices: the nearest that do are {near}",
            )
        return Measurement(
            slice=slice_seconds,
            down_after=m.get("down_after", 1),
            gaps=m.get("gaps", GAPS_EXCLUDE),
        )

    # A probe that waits 10s by default could outlast a short interval, so the
    # default timeout never exceeds the longest one the interval allows.
    _DEFAULT_PROBE_INTERVAL = "30s"
    _DEFAULT_PROBE_TIMEOUT_US = 10_000_000

    def probe(self, parts: tuple, p: dict) -> Probe:
        kind = p["type"]
        own = {"http": ("url", "method", "expect_status", "keyword"), "tcp": ("host", "port")}
        for other_kind, keys in own.items():
            if other_kind == kind:
                continue
            for key in keys:
                if key in p:
                    raise self.error(parts + (key,), f"is only used with type: {other_kind}; remove it, or set type: {other_kind}")

        def duration(key: str, default: str | None) -> int | None:
            if key not in p and default is None:
                return None
            us = self.unit(parts + (key,), units.parse_duration_us, p.get(key, default), maximum=constants.UINT64_MAX)
            if us == 0:
                raise self.error(parts + (key,), "must be longer than 0s")
            return us

        interval = duration("interval", self._DEFAULT_PROBE_INTERVAL)
        longest = interval - _probe_headroom_us(interval)
        if "timeout" in p:
            timeout = duration("timeout", None)
        else:
            timeout = min(self._DEFAULT_PROBE_TIMEOUT_US, longest)
        if timeout > longest:
            raise self.error(
                parts + ("timeout",),
                f"{describe(p['timeout'])} leaves too little of the interval "
                f"({describe(p.get('interval', self._DEFAULT_PROBE_INTERVAL))}) for the probe to end before its next "
                f"deadline (a probe still running skips it): at most {units.format_us(longest)}, the interval less "
                "a fifth of it (at least 100ms)",
            )
        max_latency = duration("max_latency", None)
        if max_latency is not None and max_latency > timeout:
            raise self.error(
                parts + ("max_latency",),
                f"{describe(p['max_latency'])} is longer than the timeout, so it could never apply; lower it or raise timeout",
            )
        if kind == "http":
            if "url" not in p:
                raise self.error(parts + ("url",), 'missing: an http probe needs a url such as "https://api.example.com/health"')
            url = p["url"]
            try:
                split = urlsplit(url)
                split.port  # noqa: B018 - raises on a bad port
            except ValueError as exc:
                raise self.error(parts + ("url",), f"{describe(url)} is not a valid URL ({exc})") from None
            if split.scheme not in ("http", "https"):
                raise self.error(parts + ("url",), f"{describe(url)} must start with http:// or https://")
            if not split.hostname:
                raise self.error(parts + ("url",), f"{describe(url)} has no host; write e.g. \"https://api.example.com/health\"")
            return Probe(
                type=kind, timeout_us=timeout, interval_us=interval, url=url,
                method=p.get("method", "GET"),
                expect_status=tuple(p.get("expect_status", (200,))),
                keyword=p.get("keyword"), max_latency_us=max_latency,
            )
        for key, example in (("host", "db.example.com"), ("port", "5432")):
            if key not in p:
                raise self.error(parts + (key,), f"missing: a tcp probe needs a {key} such as {example}")
        return Probe(
            type=kind, timeout_us=timeout, interval_us=interval, host=p["host"], port=p["port"],
            max_latency_us=max_latency,
        )


# slice lengths people choose; 1s divides every period, so the list is never empty
def _probe_headroom_us(interval_us: int) -> int:
    """What a probe's timeout must leave of its interval: a timed-out probe still has to finish, be stored, and the
    loop reach the next deadline. At 0.9 s of 1 s, 4 of 71 deadlines were skipped; a fifth (at least 100 ms) is
    enough on a loaded machine, and a skip that still happens is recorded as an unknown sample."""
    return max(100_000, interval_us // 5)


_ROUND_SLICES = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def _dividing_slices(period: int, wanted: int, count: int = 3) -> list[int]:
    """Round slice lengths that divide ``period``, nearest to ``wanted`` first (by ratio), in ascending order."""
    fits = [c for c in _ROUND_SLICES if c <= period and period % c == 0] or [1]
    nearest = sorted(fits, key=lambda c: max(c, wanted) / min(c, wanted))[:count]
    return sorted(nearest)
