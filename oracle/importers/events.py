"""Event counts from files: the provider's request telemetry exported as CSV or JSON lines.

Rows are ``service,time,good,total`` (success-rate) or ``service,time,satisfied,tolerating,total`` (apdex), with
an optional ``seconds`` column, the length of the interval the counts cover. ``time`` is the interval's start
(unix seconds or ISO-8601 with a zone). Every rule is checked against the terms before anything is stored, each
error naming ``file:line``: the service measures events, counts are whole numbers, good (satisfied + tolerating)
is at most total, an interval lies inside one slice of its service, and no two intervals of a service overlap or
give two different counts for one start. The whole file is read first, so a bad line stores nothing.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from oracle.importers.files import ImportFormatError, _err, _open, _seconds, _utf8_only
from smartsla.encoding import format_time_us, seconds_to_us
from smartsla.measure.events import MAX_COUNT, EventColumns
from smartsla.terms.model import APDEX, Terms

RATE_COLUMNS = ("service", "time", "good", "total")
APDEX_COLUMNS = ("service", "time", "satisfied", "tolerating", "total")
OPTIONAL = ("seconds",)


@dataclass(frozen=True)
class EventLine:
    """One row of an events file, checked."""

    service: str
    time_us: int
    seconds: int
    good: int
    tolerating: int
    total: int
    line: int


def _count(fields: dict, key: str) -> int:
    raw = fields.get(key)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise ValueError(f"{key} is missing")
    if isinstance(raw, bool) or isinstance(raw, float):
        raise ValueError(f"{key} {raw!r} is not a whole number of events")
    text = str(raw).strip()
    if not text.lstrip("-").isdigit():
        raise ValueError(f"{key} {raw!r} is not a whole number of events")
    value = int(text)
    if value < 0:
        raise ValueError(f"{key} {value} is negative; counts are 0 or more")
    if value > MAX_COUNT:
        raise ValueError(f"{key} {value} is more than {MAX_COUNT:,} events in one interval; count shorter intervals")
    return value


def _event(fields: dict, terms: Terms, line: int) -> EventLine:
    service_id = str(fields.get("service") or "").strip()
    try:
        service = terms.service(service_id)
    except KeyError:
        raise ValueError(f"unknown service {service_id!r}; the services measured from counts are "
                         f"{', '.join(s.id for s in terms.services if s.from_events) or 'none'}") from None
    if not service.from_events:
        raise ValueError(f"service {service_id!r} is measured from samples ({service.objective}), not event "
                         "counts; import its samples without --events")
    time_us = seconds_to_us(_seconds(fields.get("time")))
    apdex = service.objective == APDEX
    if apdex:
        if "good" in fields and fields.get("good") not in (None, ""):
            raise ValueError(f"{service_id} is an apdex service: its columns are satisfied,tolerating,total, "
                             "not good")
        good, tolerating = _count(fields, "satisfied"), _count(fields, "tolerating")
    else:
        if fields.get("satisfied") not in (None, "") or fields.get("tolerating") not in (None, ""):
            raise ValueError(f"{service_id} is a success-rate service: its columns are good,total")
        good, tolerating = _count(fields, "good"), 0
    total = _count(fields, "total")
    if good + tolerating > total:
        what = f"satisfied + tolerating ({good + tolerating})" if apdex else f"good ({good})"
        raise ValueError(f"{what} is more than total ({total})")
    seconds = 0
    if fields.get("seconds") not in (None, ""):
        seconds = _count(fields, "seconds")
        if seconds == 0:
            raise ValueError("seconds 0: an interval has a length; leave the column empty when it is not known")
    _inside_one_slice(terms, service, time_us, seconds)
    return EventLine(service_id, time_us, seconds, good, tolerating, total, line)


def _inside_one_slice(terms: Terms, service, time_us: int, seconds: int) -> None:
    if not seconds or terms.periods.start is None:
        return
    slice_us = (service.slice or terms.measurement.slice) * 1_000_000
    rel = time_us - terms.periods.start * 1_000_000
    if rel // slice_us != (rel + seconds * 1_000_000 - 1) // slice_us:
        raise ValueError(f"the interval of {seconds} s from its start crosses a slice edge (slices of "
                         f"{slice_us // 1_000_000} s from the periods' start); an interval must lie inside one "
                         "slice, so split it at the edge")


@_utf8_only
def read_events_csv(path: str | Path, terms: Terms) -> list[EventLine]:
    """A header row is required (it says which columns are which, and whether the file is for apdex)."""
    path = Path(path)
    out: list[EventLine] = []
    with _open(path) as f:
        rows = csv.reader(f)
        header = None
        for line, row in enumerate(rows, 1):
            if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = [c.strip().lower() for c in row]
                _check_header(path, line, header)
                continue
            if len(row) != len(header):
                raise _err(path, line, f"{len(row)} fields; the header has {len(header)} ({','.join(header)})")
            try:
                out.append(_event(dict(zip(header, (c.strip() for c in row))), terms, line))
            except ValueError as exc:
                raise _err(path, line, str(exc)) from None
    if header is None:
        raise _err(path, None, f"is empty; expected a header {','.join(RATE_COLUMNS)} or {','.join(APDEX_COLUMNS)}")
    return _checked(path, out)


def _check_header(path: Path, line: int, header: list[str]) -> None:
    known = set(RATE_COLUMNS) | set(APDEX_COLUMNS) | set(OPTIONAL)
    unknown = [c for c in header if c not in known]
    fits = [cols for cols in (RATE_COLUMNS, APDEX_COLUMNS) if set(cols) <= set(header)]
    if unknown or not fits:
        raise _err(path, line, f"header {','.join(header)}: expected {','.join(RATE_COLUMNS)} (success-rate) or "
                               f"{','.join(APDEX_COLUMNS)} (apdex), optionally with seconds"
                               + (f"; unknown columns {', '.join(unknown)}" if unknown else ""))


@_utf8_only
def read_events_jsonl(path: str | Path, terms: Terms) -> list[EventLine]:
    path = Path(path)
    out: list[EventLine] = []
    with _open(path) as f:
        for line, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                fields = json.loads(text)
            except json.JSONDecodeError as exc:
                raise _err(path, line, f"not JSON ({exc.msg})") from None
            if not isinstance(fields, dict):
                raise _err(path, line, "expected a JSON object such as "
                                       '{"service": "api", "time": 1798761600, "good": 990, "total": 1000}')
            unknown = sorted(set(fields) - set(RATE_COLUMNS) - set(APDEX_COLUMNS) - set(OPTIONAL))
            if unknown:
                raise _err(path, line, f"unknown keys {', '.join(unknown)}")
            try:
                out.append(_event(fields, terms, line))
            except ValueError as exc:
                raise _err(path, line, str(exc)) from None
    return _checked(path, out)


def _checked(path: Path, rows: list[EventLine]) -> list[EventLine]:
    """Within the file: one count per interval start (a repeated identical row is kept once), no overlaps."""
    by_key: dict[tuple[str, int], EventLine] = {}
    for r in rows:
        seen = by_key.get((r.service, r.time_us))
        if seen is not None and (seen.good, seen.tolerating, seen.total) != (r.good, r.tolerating, r.total):
            raise _err(path, r.line, f"a second, different count for {r.service} at {format_time_us(r.time_us)} (line "
                                     f"{seen.line} counts {seen.good}/{seen.total}, this one {r.good}/{r.total})")
        by_key.setdefault((r.service, r.time_us), r)
    unique = sorted(by_key.values(), key=lambda r: (r.service, r.time_us))
    reach: EventLine | None = None
    for r in unique:
        if reach is not None and reach.service == r.service and r.time_us < reach.time_us + reach.seconds * 10**6:
            raise _err(path, r.line, f"the interval of {r.service} at {format_time_us(r.time_us)} starts inside the one of "
                                     f"line {reach.line} ({reach.seconds} s from {format_time_us(reach.time_us)}); intervals "
                                     "must not overlap, or their events would count twice")
        if reach is None or reach.service != r.service or (
                r.seconds and r.time_us + r.seconds * 10**6 > reach.time_us + reach.seconds * 10**6):
            reach = r
    return unique


def read_events(path: str | Path, terms: Terms, kind: str | None = None) -> list[EventLine]:
    """``kind`` ``csv`` or ``jsonl``; by default from the name (.jsonl/.ndjson are JSON lines)."""
    path = Path(path)
    if kind is None:
        kind = "jsonl" if path.suffix in (".jsonl", ".ndjson") else "csv"
    if kind not in ("csv", "jsonl"):
        raise ImportFormatError(f"unknown events format {kind!r}; expected csv or jsonl")
    return read_events_jsonl(path, terms) if kind == "jsonl" else read_events_csv(path, terms)


def event_columns(rows: list[EventLine], terms: Terms) -> EventColumns:
    return EventColumns.from_rows([(r.service, r.time_us, r.good, r.tolerating, r.total) for r in rows],
                                  terms.service_ids)
