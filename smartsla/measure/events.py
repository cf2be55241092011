"""Event counts and the objectives measured from them: the success rate (occurrences, ratio-timeslices,
timeslices) and the Apdex score from counts. The rules are in docs/oracle.md ("Success rate", "Apdex from
counts"); :func:`smartsla.measure.periods.compute_periods` calls :func:`event_values` for the services whose
``source`` is ``events``, so the oracle and the auditor share it.

A row counts the events of one service in one interval starting at ``time_us``: ``good`` (for Apdex: satisfied),
``tolerating`` (Apdex only, else 0) and ``total``. An interval lies inside one slice of its service, so a row
belongs to the slice that holds its start. Values are exact integer arithmetic on these counts, rounded down to
ppm only at the end: never reporting more than was counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from smartsla.constants import PPM
from smartsla.encoding import format_time_us
from smartsla.terms.model import APDEX, EMPTY_GOOD, OCCURRENCES, RATIO_TIMESLICES, TIMESLICES, Service, Terms

# Counts above this could overflow int64 in PPM * good; a real service counts far fewer events per interval.
MAX_COUNT = 2**53 // PPM


class EventError(ValueError):
    """Counts that break the rules (negative, good above total, two different counts for one interval)."""


@dataclass(frozen=True)
class EventColumns:
    """Event counts as equally long int64 arrays; ``service`` indexes ``service_ids``."""

    service_ids: tuple[str, ...]
    service: np.ndarray
    time_us: np.ndarray
    good: np.ndarray
    tolerating: np.ndarray
    total: np.ndarray

    def __post_init__(self):
        n = len(self.time_us)
        if not (len(self.service) == len(self.good) == len(self.tolerating) == len(self.total) == n):
            raise EventError("service, time_us, good, tolerating and total must have the same length")

    def __len__(self) -> int:
        return len(self.time_us)

    @classmethod
    def empty(cls, service_ids) -> EventColumns:
        z = np.zeros(0, np.int64)
        return cls(tuple(service_ids), z, z, z, z, z)

    @classmethod
    def from_rows(cls, rows, service_ids) -> EventColumns:
        """From ``(service id, time_us, good, tolerating, total)`` tuples."""
        ids = tuple(service_ids)
        index = {sid: i for i, sid in enumerate(ids)}
        cols: list[list[int]] = [[], [], [], [], []]
        for sid, t, g, tol, n in rows:
            if sid not in index:
                raise EventError(f"counts at {t} µs are for service {sid!r}, not one of {', '.join(ids)}")
            for col, v in zip(cols, (index[sid], t, g, tol, n)):
                col.append(int(v))
        return cls(ids, *(np.asarray(c, np.int64) for c in cols))

    def take(self, which) -> EventColumns:
        return EventColumns(self.service_ids, self.service[which], self.time_us[which], self.good[which],
                            self.tolerating[which], self.total[which])

    def between(self, start: int, end: int) -> EventColumns:
        """The rows whose interval starts in ``[start, end)`` (unix seconds)."""
        return self.take((self.time_us >= int(start) * 1_000_000) & (self.time_us < int(end) * 1_000_000))

    def with_service_ids(self, service_ids) -> EventColumns:
        ids = tuple(service_ids)
        if len(ids) != len(self.service_ids):
            raise EventError(f"{len(ids)} service ids for {len(self.service_ids)} services")
        return EventColumns(ids, self.service, self.time_us, self.good, self.tolerating, self.total)

    def check(self) -> None:
        """The rules every row obeys, wherever it came from (an import, Prometheus, a bundle read back)."""
        if not len(self):
            return
        if self.service.min() < 0 or self.service.max() >= len(self.service_ids):
            raise EventError(f"service index out of range 0..{len(self.service_ids) - 1}")
        for name in ("good", "tolerating", "total"):
            col = getattr(self, name)
            if col.min() < 0:
                k = int(np.flatnonzero(col < 0)[0])
                raise EventError(f"{self._where(k)}: {name} {int(col[k])} is negative; counts are 0 or more")
            if col.max() > MAX_COUNT:
                k = int(np.argmax(col))
                raise EventError(f"{self._where(k)}: {name} {int(col[k])} is more than {MAX_COUNT:,} events in "
                                 "one interval")
        over = self.good + self.tolerating > self.total
        if over.any():
            k = int(np.flatnonzero(over)[0])
            what = "good" if not self.tolerating[k] else "satisfied + tolerating"
            raise EventError(f"{self._where(k)}: {what} ({int(self.good[k] + self.tolerating[k])}) is more than "
                             f"total ({int(self.total[k])})")

    def _where(self, k: int) -> str:
        return f"{self.service_ids[int(self.service[k])]} at {format_time_us(int(self.time_us[k]))}"

    def canonical(self) -> EventColumns:
        """Ordered by (service, time), identical rows once; two different counts for one interval are an
        :class:`EventError` (which of them would be the truth?)."""
        self.check()
        if len(self) < 2:
            return self
        order = np.lexsort((self.total, self.tolerating, self.good, self.time_us, self.service))
        c = self.take(order)
        same_key = (c.service[1:] == c.service[:-1]) & (c.time_us[1:] == c.time_us[:-1])
        if not same_key.any():
            return c
        same_row = same_key & (c.good[1:] == c.good[:-1]) & (c.tolerating[1:] == c.tolerating[:-1]) & (
            c.total[1:] == c.total[:-1])
        clash = same_key & ~same_row
        if clash.any():
            k = int(np.flatnonzero(clash)[0]) + 1
            raise EventError(f"{c._where(k)}: two different counts for one interval ({int(c.good[k - 1])}/"
                             f"{int(c.total[k - 1])} and {int(c.good[k])}/{int(c.total[k])})")
        return c.take(np.concatenate(([True], ~same_row)))


@dataclass(frozen=True)
class EventPeriod:
    """One event service in one period: ``value`` (ppm) and ``coverage`` (ppm of the open slices that have
    counts); ``slices`` with counts, ``good_slices`` (timeslices only: the slices meeting slice_target),
    ``maintenance`` slices and ``open`` slices (outside maintenance)."""

    value: int
    coverage: int
    slices: int
    good_slices: int
    maintenance: int
    open: int
    good: int
    tolerating: int
    total: int


def event_values(terms: Terms, events: EventColumns, maintenance, start: int,
                 slices_of) -> dict[int, list[EventPeriod]]:
    """Per event service index, its :class:`EventPeriod` for every period. ``slices_of(windows, slice, total)``
    gives the merged maintenance slice ranges for a slice length (the period maths' own rule)."""
    out: dict[int, list[EventPeriod]] = {}
    wanted = [i for i, s in enumerate(terms.services) if s.from_events]
    if not wanted:
        return out
    events = events.canonical() if len(events) else events
    length, count = terms.periods.length, terms.periods.count
    for i in wanted:
        service = terms.services[i]
        slice_seconds = service.slice or terms.measurement.slice
        out[i] = _service_periods(service, events.take(events.service == i), start, length, count, slice_seconds,
                                  slices_of(maintenance, start, slice_seconds, length // slice_seconds * count))
    return out


def _service_periods(service: Service, ev: EventColumns, start: int, length: int, count: int, slice_seconds: int,
                     mranges) -> list[EventPeriod]:
    spp = length // slice_seconds
    total_slices = spp * count
    slice_us = slice_seconds * 1_000_000
    rel = ev.time_us - start * 1_000_000
    inside = (rel >= 0) & (rel < total_slices * slice_us)
    gslice = rel[inside] // slice_us
    good, tol, total = ev.good[inside], ev.tolerating[inside], ev.total[inside]
    in_maint = np.zeros(total_slices, dtype=bool)
    for a, b in mranges:
        in_maint[a:b] = True
    keep = ~in_maint[gslice]
    gslice, good, tol, total = gslice[keep], good[keep], tol[keep], total[keep]
    # rows come ordered by time, so by slice: sum each slice's rows exactly (int64, no float weights)
    if gslice.size:
        first = np.flatnonzero(np.concatenate(([True], gslice[1:] != gslice[:-1])))
        s_idx = gslice[first]
        s_good = np.add.reduceat(good, first)
        s_tol = np.add.reduceat(tol, first)
        s_total = np.add.reduceat(total, first)
    else:
        s_idx = s_good = s_tol = s_total = np.zeros(0, np.int64)
    s_period = s_idx // spp
    maint_per_period = in_maint.reshape(count, spp).sum(axis=1)
    periods = []
    for p in range(count):
        mine = s_period == p
        g, tl, n = s_good[mine], s_tol[mine], s_total[mine]
        open_slices = spp - int(maint_per_period[p])
        covered = int(mine.sum())
        coverage = PPM if open_slices == 0 else (PPM * covered) // open_slices
        value, good_slices = _value(service, g, tl, n)
        periods.append(EventPeriod(value, coverage, covered, good_slices, int(maint_per_period[p]), open_slices,
                                   int(g.sum()), int(tl.sum()), int(n.sum())))
    return periods


def _value(service: Service, good: np.ndarray, tolerating: np.ndarray, total: np.ndarray) -> tuple[int, int]:
    """(value in ppm, good slices) of one period's slices with counts."""
    if service.objective == APDEX:
        n = int(total.sum())
        return (PPM if n == 0 else (PPM * (2 * int(good.sum()) + int(tolerating.sum()))) // (2 * n)), 0
    method = service.method
    if method == OCCURRENCES:
        n = int(total.sum())
        return (PPM if n == 0 else (PPM * int(good.sum())) // n), 0
    empty = total == 0
    if service.empty_slice == EMPTY_GOOD:
        kept_good, kept_total, n_empty = good[~empty], total[~empty], int(empty.sum())
    else:
        kept_good, kept_total, n_empty = good[~empty], total[~empty], 0
    kept = kept_total.size + n_empty
    if kept == 0:
        return PPM, 0
    if method == TIMESLICES:
        ok = int((kept_good * PPM >= service.slice_target * kept_total).sum()) + n_empty
        return (PPM * ok) // kept, ok
    if method == RATIO_TIMESLICES:
        return _mean_ratio_ppm(kept_good, kept_total, n_empty, kept), 0
    raise ValueError(f"unknown method {method!r}")


def _mean_ratio_ppm(good: np.ndarray, total: np.ndarray, n_empty: int, kept: int) -> int:
    """floor(PPM * (sum of good_i / total_i + n_empty) / kept), exactly.

    PPM * good_i / total_i = q_i + r_i / total_i; the fractions' sum is taken in floating point and, only when
    that lands within a rounding error of a ppm boundary, again exactly with fractions (rare: the exact sum of
    thousands of fractions with unrelated denominators is slow)."""
    scaled = good * PPM
    q, r = scaled // total, scaled % total
    whole = int(q.sum()) + PPM * n_empty
    frac = float(np.sum(r / total))
    estimate = (whole + frac) / kept
    value = math.floor(estimate)
    if abs(estimate - round(estimate)) * kept > 1e-6:
        return value
    exact = Fraction(whole) + sum((Fraction(int(a), int(b)) for a, b in zip(r, total) if a), Fraction(0))
    return math.floor(exact / kept)
