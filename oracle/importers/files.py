"""Samples from files: another monitor's export (CSV or JSON lines) or a list of incidents.

Every reader returns the whole file as a list, so a bad line stops the import before anything is
stored, and every error names ``file:line``.

Incidents (``service,start,end``: the service was down during ``[start, end)``) become samples on the
grid the period maths works on. That maths (smartsla/periods.py) splits time into slices of
``measurement.slice`` seconds and judges each slice by the samples inside it: any DOWN makes it down,
a slice with no sample is a gap (the terms' gaps policy). A DOWN at the incident's start and an UP
at its end would therefore leave every slice in between as a gap, not down. So each incident yields
one DOWN sample in every slice it overlaps (at the later of the slice start and the incident start);
overlapping incidents of a service are merged first. With ``start``/``end`` the list is taken as
complete and every other slice of that range gets an UP sample at its start; without them only the
outages are asserted and the gaps policy decides the rest.
"""

from __future__ import annotations

import csv
import functools
import json
import math
from collections.abc import Collection, Iterable
from pathlib import Path

from smartsla.constants import SERVICE_ID
from smartsla.encoding import parse_time
from smartsla.measure.samples import Sample, Status

COLUMNS = ("service", "time", "status", "latency_ms", "reason")
REQUIRED = ("service", "time", "status")


class ImportFormatError(ValueError):
    """A line of an input file could not be read; the message starts with ``file:line:``."""


def _err(path, line: int | None, message: str) -> ImportFormatError:
    return ImportFormatError(f"{path}:{line}: {message}" if line else f"{path}: {message}")


def _utf8_only(reader):
    """A file that is not UTF-8 gets the same located, actionable error as any other bad input."""

    @functools.wraps(reader)
    def wrapper(path, *args, **kwargs):
        try:
            return reader(path, *args, **kwargs)
        except UnicodeDecodeError:
            raise _err(Path(path), None, "is not UTF-8 text; save it as UTF-8") from None
    return wrapper


def _sample(fields: dict, services: Collection[str] | None) -> Sample:
    service = str(fields.get("service") or "").strip()
    if not SERVICE_ID.match(service):
        raise ValueError(f"service {service!r} is not a service id (lower-case letters, digits, '_' and '-', "
                         "at most 32)")
    if services is not None and service not in services:
        raise ValueError(f"unknown service {service!r}; the services are {', '.join(sorted(services))}")
    status_text = str(fields.get("status") or "").strip().lower()
    try:
        status = Status(status_text)
    except ValueError:
        raise ValueError(f"status {fields.get('status')!r}; expected up, down or unknown") from None
    latency = fields.get("latency_ms")
    if latency is None or (isinstance(latency, str) and not latency.strip()):
        latency_ms = None
    else:
        if isinstance(latency, bool):
            raise ValueError(f"latency_ms {latency!r} is not a number")
        try:
            latency_ms = float(latency)
        except (TypeError, ValueError):
            raise ValueError(f"latency_ms {latency!r} is not a number") from None
        if not math.isfinite(latency_ms) or latency_ms < 0:
            raise ValueError(f"latency_ms {latency!r} must be a non-negative number")
    reason = fields.get("reason")
    return Sample(time=_seconds(fields.get("time")), service=service, status=status,
                  latency_ms=latency_ms, reason="" if reason is None else str(reason))


# Unix seconds past this are the year 5138: no monitor's sample; a time in milliseconds (or microseconds) is.
LATEST_PLAUSIBLE = 1e11


def _seconds(value: object) -> float:
    seconds = parse_time(value, exact_us=True)
    if seconds > LATEST_PLAUSIBLE:
        raise ValueError(f"time {value!r} looks like milliseconds (as seconds it is after the year 5000); give unix "
                         "seconds (divide by 1000) or ISO-8601")
    return seconds


@_utf8_only
def read_samples_csv(path: str | Path, services: Collection[str] | None = None) -> list[Sample]:
    """Columns ``service,time,status[,latency_ms][,reason]``; a header row (any column order) is optional."""
    path = Path(path)
    out = []
    with _open(path) as f:
        rows = csv.reader(f)
        columns: tuple[str, ...] = COLUMNS
        for line, row in enumerate(rows, 1):
            if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
                continue
            if line == 1 and row[0].strip().lower() == "service":
                columns = tuple(c.strip().lower() for c in row)
                unknown = [c for c in columns if c not in COLUMNS]
                missing = [c for c in REQUIRED if c not in columns]
                if unknown or missing:
                    raise _err(path, line, f"header: unknown columns {unknown} / missing {missing}; "
                                           f"expected {','.join(COLUMNS)}")
                continue
            if len(row) > len(columns) or len(row) < len(REQUIRED):
                raise _err(path, line, f"{len(row)} fields; expected {','.join(columns)}")
            try:
                out.append(_sample(dict(zip(columns, row)), services))
            except ValueError as exc:
                raise _err(path, line, str(exc)) from None
    return out


@_utf8_only
def read_samples_jsonl(path: str | Path, services: Collection[str] | None = None) -> list[Sample]:
    """One JSON object per line with keys ``service, time, status`` and optionally ``latency_ms, reason``."""
    path = Path(path)
    out = []
    with _open(path) as f:
        for line, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                # numbers kept as their text: a time's digits beyond the microsecond must be seen, not rounded away
                obj = json.loads(text, parse_float=str)
            except json.JSONDecodeError as exc:
                raise _err(path, line, f"not JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise _err(path, line, "expected a JSON object")
            unknown = sorted(set(obj) - set(COLUMNS))
            if unknown:
                raise _err(path, line, f"unknown keys {unknown}; expected {', '.join(COLUMNS)}")
            try:
                out.append(_sample(obj, services))
            except ValueError as exc:
                raise _err(path, line, str(exc)) from None
    return out


@_utf8_only
def read_incidents_csv(path: str | Path, services: Collection[str] | None = None, *, slice_seconds: int = 60,
                       start: float | None = None, end: float | None = None) -> list[Sample]:
    """``service,start,end`` rows (header optional) -> samples on the slice grid (see the module doc).

    The grid is aligned to multiples of ``slice_seconds`` from the epoch, like periods that start on a
    slice boundary. ``start``/``end`` (both or neither) make the file the complete record of that range.
    """
    path = Path(path)
    if slice_seconds <= 0:
        raise ValueError("slice_seconds must be positive")
    if (start is None) != (end is None):
        raise ValueError("give both start and end, or neither")
    intervals: dict[str, list[tuple[float, float, int]]] = {s: [] for s in (services or ())}
    with _open(path) as f:
        for line, row in enumerate(csv.reader(f), 1):
            if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
                continue
            if line == 1 and [c.strip().lower() for c in row] == ["service", "start", "end"]:
                continue
            if len(row) != 3:
                raise _err(path, line, f"{len(row)} fields; expected service,start,end")
            try:
                service = row[0].strip()
                if not SERVICE_ID.match(service):
                    raise ValueError(f"service {service!r} is not a service id")
                if services is not None and service not in services:
                    raise ValueError(f"unknown service {service!r}; the services are {', '.join(sorted(services))}")
                t0, t1 = _seconds(row[1]), _seconds(row[2])
            except ValueError as exc:
                raise _err(path, line, str(exc)) from None
            if t1 <= t0:
                raise _err(path, line, f"end {row[2].strip()} is not after start {row[1].strip()}")
            intervals.setdefault(service, []).append((t0, t1, line))
    out = []
    for service, spans in sorted(intervals.items()):
        down_slices: dict[int, tuple[float, int]] = {}
        for t0, t1, first_line in _merge(spans):
            k = math.floor(t0 / slice_seconds)
            while k * slice_seconds < t1:
                down_slices.setdefault(k, (max(t0, k * slice_seconds), first_line))
                k += 1
        for k, (t, first_line) in sorted(down_slices.items()):
            out.append(Sample(t, service, Status.DOWN, None, f"incident {path.name}:{first_line}"))
        if start is not None:
            k = math.ceil(start / slice_seconds)
            while k * slice_seconds < end:
                if k not in down_slices:
                    out.append(Sample(k * slice_seconds, service, Status.UP, None, f"no incident in {path.name}"))
                k += 1
    out.sort()
    return out


def _merge(spans: Iterable[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    merged: list[list] = []
    for start, end, line in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, line])
    return [tuple(m) for m in merged]  # type: ignore[misc]


def read_any(path: str | Path, kind: str | None = None, services: Collection[str] | None = None,
             **incident_options) -> list[Sample]:
    """Pick the reader from ``kind`` (samples-csv, samples-jsonl, incidents) or the file name."""
    path = Path(path)
    if kind is None:
        kind = "samples-jsonl" if path.suffix in (".jsonl", ".ndjson") else "samples-csv"
    readers = {"samples-csv": read_samples_csv, "samples-jsonl": read_samples_jsonl,
               "incidents": read_incidents_csv}
    if kind not in readers:
        raise ValueError(f"unknown input kind {kind!r}; expected {', '.join(readers)}")
    if kind == "incidents":
        return read_incidents_csv(path, services, **incident_options)
    return readers[kind](path, services)


def _open(path: Path):
    try:
        return open(path, newline="", encoding="utf-8")
    except FileNotFoundError:
        raise _err(path, None, "no such file") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise _err(path, None, f"cannot be read ({exc.strerror})") from None
