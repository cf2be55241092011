"""Period maths: samples and maintenance windows -> each period's availability.

This is the one implementation of the rules in docs/oracle.md ("Period
maths"); the oracle and the auditor both call :func:`compute_periods`, so two
honest parties holding the same samples always report the same ppm.

The work is done on columns (numpy arrays) because an agreement of 100
services probed every 30 s yields millions of samples per period.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from smartsla.constants import PPM
from smartsla.measure.events import EventColumns, event_values
from smartsla.measure.order import is_ordered
from smartsla.measure.objectives import apdex_scores, latency_covered_slices, latency_percentiles, latency_samples
from smartsla.measure.samples import DOWN, STATUS_CODE, UNKNOWN, UP, Sample
from smartsla.terms.model import APDEX, AVAILABILITY, GAPS_DOWN, GAPS_EXCLUDE, GAPS_UP, LATENCY, TIMESLICES, Terms

__all__ = [
    "DOWN",
    "UNKNOWN",
    "UP",
    "PeriodResult",
    "SampleColumns",
    "SliceCounts",
    "columns_from_samples",
    "compute_periods",
    "is_ordered",
    "maintenance_slices",
]



@dataclass(frozen=True)
class SampleColumns:
    """Samples as three equally long arrays.

    ``service`` indexes ``terms.services``; ``time`` is unix seconds (float64);
    ``status`` holds ``UP``/``DOWN``/``UNKNOWN``; ``latency_us`` (optional: only the latency objectives read it)
    is integer µs, -1 for none. Order does not matter, but columns already ordered by (service, time, status) are
    not sorted again (the order is checked).
    """

    service: np.ndarray
    time: np.ndarray
    status: np.ndarray
    latency_us: np.ndarray | None = None

    def __post_init__(self):
        if not (len(self.service) == len(self.time) == len(self.status)):
            raise ValueError("service, time and status must have the same length")
        if self.latency_us is not None and len(self.latency_us) != len(self.time):
            raise ValueError("latency_us must have the same length as time")


@dataclass(frozen=True)
class SliceCounts:
    """One service's (or the joint) slices in one period.

    ``up + down`` are the eligible slices; ``excluded`` = ``maintenance`` +
    gaps when the gaps policy is ``exclude``. ``gaps`` counts slices without
    an up or down sample whatever the policy (with ``down``/``up`` they are
    also in ``down``/``up``). ``measured`` is False when no slice was
    eligible, and then ``ppm`` is 1_000_000.
    """

    up: int
    down: int
    excluded: int
    maintenance: int
    gaps: int
    ppm: int

    @property
    def eligible(self) -> int:
        return self.up + self.down

    @property
    def measured(self) -> bool:
        return self.eligible > 0

    @property
    def coverage_ppm(self) -> int:
        """How much of the period the value is measured from: ppm of the slices outside maintenance that hold an up
        or down sample, rounded down (never claiming more than was seen); 100% when maintenance fills the period."""
        open_slices = self.up + self.down + self.excluded - self.maintenance
        return PPM if open_slices == 0 else (PPM * (open_slices - self.gaps)) // open_slices


@dataclass(frozen=True)
class PeriodResult:
    """One period: per service its slice counts (``services``; for a service measured from another's samples,
    that one's slices) and the value the oracle signs (``values``: ppm or µs by objective) with its coverage
    (``coverage``, ppm); ``joint`` is the slices of the availability services together."""

    index: int
    start: int            # unix seconds, inclusive
    end: int              # unix seconds, exclusive
    services: Mapping[str, SliceCounts]
    joint: SliceCounts
    values: Mapping[str, int]
    coverage: Mapping[str, int]

def _ppm(up: int, eligible: int) -> int:
    # Rounding down never reports more availability than was measured.
    return PPM if eligible == 0 else (PPM * up) // eligible


def columns_from_samples(samples: Iterable[Sample], service_ids: Sequence[str]) -> SampleColumns:
    """Convert :class:`Sample` objects; an unknown service id is a ``ValueError``."""
    index = {sid: i for i, sid in enumerate(service_ids)}
    svc: list[int] = []
    times: list[float] = []
    codes: list[int] = []
    latencies: list[int] = []
    add_svc, add_time, add_code, add_latency = svc.append, times.append, codes.append, latencies.append
    for s in samples:
        i = index.get(s.service)
        if i is None:
            raise ValueError(f"sample at {s.time} is for service {s.service!r}, which is not in the terms "
                             f"(services: {', '.join(service_ids)})")
        add_svc(i)
        add_time(s.time)
        add_code(STATUS_CODE[s.status])
        add_latency(-1 if s.latency_ms is None else round(s.latency_ms * 1000))
    return SampleColumns(
        np.asarray(svc, dtype=np.int64), np.asarray(times, dtype=np.float64), np.asarray(codes, dtype=np.int8),
        np.asarray(latencies, dtype=np.int64),
    )


def maintenance_slices(
    windows: Iterable[tuple[float, float]], start: int, slice_seconds: int, total_slices: int
) -> list[tuple[int, int]]:
    """Merged, sorted half-open ranges of global slice indexes that overlap any window.

    Slice ``k`` covers ``[start + k*slice, start + (k+1)*slice)``; window
    ``[a, b)`` overlaps it when ``a < slice end`` and ``b > slice start``.
    """
    ranges = []
    for a, b in windows:
        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError(f"maintenance window ({a}, {b}) is not finite")
        if b < a:
            raise ValueError(f"maintenance window ({a}, {b}) ends before it starts")
        if b == a:
            continue  # half-open and empty: overlaps nothing
        first = max(0, math.floor((a - start) // slice_seconds))
        last = min(total_slices, -math.floor((start - b) // slice_seconds))  # ceil((b - start) / slice)
        if first < last:
            ranges.append((first, last))
    ranges.sort()
    merged: list[tuple[int, int]] = []
    for a, b in ranges:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def compute_periods(
    terms: Terms,
    samples: Iterable[Sample] | SampleColumns,
    maintenance: Iterable[tuple[float, float]] = (),
    *,
    start: int | None = None,
    events: EventColumns | None = None,
) -> list[PeriodResult]:
    """Every period's per-service availability and joint value (rules: docs/oracle.md).

    ``start`` replaces a missing ``periods.start`` (it is an error to give
    neither). ``maintenance`` is announced windows as half-open ``(start, end)``
    unix seconds. ``events`` holds the counts of the services measured from
    events (success-rate, apdex with ``source: events``; :mod:`smartsla.measure.events`).

    The phases, each below: place the samples in slices, order them and drop
    exact duplicates, apply ``down_after``, judge each (service, slice), drop
    maintenance slices, count per service and jointly, and assemble the results.
    """
    if start is None:
        start = terms.periods.start
    if start is None:
        raise ValueError("the terms have no periods.start; pass start (unix seconds)")
    start = int(start)
    service_ids = terms.service_ids
    cols = samples if isinstance(samples, SampleColumns) else columns_from_samples(samples, service_ids)
    _refuse_foreign_rows(terms, cols)
    maintenance = list(maintenance)
    length, count = terms.periods.length, terms.periods.count
    m = terms.measurement
    slice_seconds = m.slice
    if length % slice_seconds:
        raise ValueError(f"slice {slice_seconds}s does not divide the period length {length}s")
    grid = _Grid(start, slice_seconds, length // slice_seconds, count, len(service_ids))

    svc, rel, gslice, status, latency = _place(grid, cols)
    mranges = maintenance_slices(maintenance, grid.start, grid.slice_seconds, grid.total)
    by_latency = _latency_values(terms, grid, mranges, svc, rel, gslice, status, latency)
    svc, gslice, status = _ordered_without_duplicates(grid, svc, rel, gslice, status)
    down = _debounced_down(svc, status, m.down_after)
    u_svc, u_slice, slice_down = _slice_verdicts(grid, svc, gslice, down)
    u_svc, u_slice, slice_down, maint_per_period = _without_maintenance(grid, mranges, u_svc, u_slice,
                                                                        slice_down)
    cell = u_svc.astype(np.int64) * count + u_slice // grid.per_period
    down_n = np.bincount(cell[slice_down], minlength=grid.services * count).reshape(grid.services, count)
    up_n = np.bincount(cell[~slice_down], minlength=grid.services * count).reshape(grid.services, count)
    joint_services = [i for i, sv in enumerate(terms.services)
                      if sv.objective == AVAILABILITY and sv.samples_from is None and not sv.from_events]
    in_joint = np.isin(u_svc, joint_services)
    joint = _joint_counts(grid, u_slice[in_joint], slice_down[in_joint], len(joint_services))
    for i, sv in enumerate(terms.services):
        if sv.samples_from:     # its slices are its source's
            up_n[i], down_n[i] = up_n[service_index(terms, sv.samples_from)], down_n[service_index(terms, sv.samples_from)]
    results = _results(grid, length, service_ids, m.gaps, maint_per_period, up_n, down_n, joint)
    by_events = event_values(terms, events if events is not None else EventColumns.empty(service_ids),
                             maintenance, start, maintenance_slices)
    return [_with_values(terms, r, by_latency, by_events) for r in results]


def _refuse_foreign_rows(terms: Terms, cols: SampleColumns) -> None:
    """Rows under the index of a service measured from another's samples (``samples_from``) or from counts: that
    service has no samples of its own, so such rows are an error, never silently used or dropped."""
    svc = np.asarray(cols.service, np.int64)
    if not svc.size or svc.min() < 0:
        return      # empty, or a bad index that _place names
    present = np.bincount(svc, minlength=len(terms.services))
    for i, sv in enumerate(terms.services):
        if i < present.size and present[i]:
            if sv.from_events:
                raise ValueError(f"samples for service {sv.id!r}, whose {sv.objective} is measured from event "
                                 "counts (source: events), not from samples")
            if sv.samples_from:
                raise ValueError(f"samples for service {sv.id!r}, which is measured from the samples of "
                                 f"{sv.samples_from!r} (samples_from) and has none of its own")


def service_index(terms: Terms, service_id: str) -> int:
    return terms.service_ids.index(service_id)


def _latency_values(terms: Terms, grid: _Grid, mranges, svc, rel, gslice, status, latency) -> dict[int, tuple]:
    """Per latency or apdex service index: (values per period, covered slices per period), each measured from the
    samples of its own index or of the service it names in ``samples_from``."""
    wanted = [i for i, sv in enumerate(terms.services) if sv.objective in (LATENCY, APDEX) and not sv.from_events]
    if not wanted:
        return {}
    keep = ~_in_ranges(gslice, mranges)
    svc, rel, gslice, status, latency = svc[keep], rel[keep], gslice[keep], status[keep], latency[keep]
    latkey = np.where(latency < 0, np.int64(2**40), latency)
    if not is_ordered(svc, rel, status, latkey):
        # arrival order (the store and the evidence hand out ordered columns): one sort, then runs per service
        order = np.lexsort((latkey, status, rel, svc))
        svc, rel, gslice, status, latency = svc[order], rel[order], gslice[order], status[order], latency[order]
    # Each latency service reads the rows of its sample service, relabelled as its own. Rows of one service are
    # one ordered run, so the relabelled runs stay ordered; a service read by several gets one pass per reader.
    readers: dict[int, list[int]] = {}
    for i in wanted:
        readers.setdefault(service_index(terms, terms.services[i].sample_service), []).append(i)
    parts = []
    for level in range(max(len(r) for r in readers.values())):
        label_of = np.full(len(terms.services), -1, np.int64)
        for src, users in readers.items():
            if level < len(users):
                label_of[src] = users[level]
        labels = label_of[svc]
        mine = labels >= 0
        parts.append((labels[mine], mine))
    cat = lambda col: np.concatenate([col[mine] for _labels, mine in parts])  # noqa: E731
    placed = latency_samples(np.concatenate([labels for labels, _mine in parts]), cat(rel), cat(gslice),
                             cat(status), cat(latency), grid.per_period, ordered=True)
    count = grid.count
    pct = [i for i in wanted if terms.services[i].objective == LATENCY]
    apx = [i for i in wanted if terms.services[i].objective == APDEX]
    nsvc = len(terms.services)
    values = latency_percentiles(placed, pct, [terms.services[i].percentile for i in pct], count, nsvc)
    values.update(apdex_scores(placed, apx, [terms.services[i].threshold_us for i in apx], count, nsvc))
    covered = latency_covered_slices(placed, nsvc, count, grid.per_period)
    return {i: (values[i], covered[i]) for i in wanted}


def _in_ranges(gslice: np.ndarray, mranges) -> np.ndarray:
    """Whether each global slice index lies in one of the merged half-open ranges."""
    if not mranges or not gslice.size:
        return np.zeros(gslice.size, dtype=bool)
    ma = np.array([r[0] for r in mranges], dtype=np.int64)
    mb = np.array([r[1] for r in mranges], dtype=np.int64)
    pos = np.searchsorted(ma, gslice, side="right") - 1
    return (pos >= 0) & (gslice < mb[np.maximum(pos, 0)])


def _with_values(terms: Terms, r: PeriodResult, by_latency: dict[int, tuple], by_events: dict) -> PeriodResult:
    values, coverage, services = {}, {}, dict(r.services)
    for i, sv in enumerate(terms.services):
        counts = r.services[sv.id]
        if i in by_events:
            e = by_events[i][r.index]
            values[sv.id], coverage[sv.id] = e.value, e.coverage
            # slices: with counts (for timeslices: up the good ones, down the others), excluded the rest
            up, down = (e.good_slices, e.slices - e.good_slices) if sv.method == TIMESLICES else (e.slices, 0)
            services[sv.id] = SliceCounts(up=up, down=down, excluded=e.maintenance + e.open - e.slices,
                                          maintenance=e.maintenance, gaps=e.open - e.slices, ppm=e.value)
        elif i in by_latency:
            per_period, covered = by_latency[i]
            values[sv.id] = int(per_period[r.index])
            open_slices = counts.up + counts.down + counts.excluded - counts.maintenance
            coverage[sv.id] = PPM if open_slices == 0 else (PPM * int(covered[r.index])) // open_slices
        else:
            values[sv.id] = counts.ppm
            coverage[sv.id] = counts.coverage_ppm
    return replace(r, services=services, values=values, coverage=coverage)


@dataclass(frozen=True)
class _Grid:
    """The slices of the whole term: ``total`` of them, ``per_period`` in each of ``count`` periods."""

    start: int
    slice_seconds: int
    per_period: int
    count: int
    services: int

    @property
    def total(self) -> int:
        return self.per_period * self.count


def _place(grid: _Grid, cols: SampleColumns) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(service, seconds since the start, slice index, status, latency µs or -1) of the samples that count: judged,
    and inside a period."""
    nsvc = grid.services
    svc = np.asarray(cols.service, dtype=np.int64)
    time = np.asarray(cols.time, dtype=np.float64)
    status = np.asarray(cols.status, dtype=np.int8)
    latency = (np.full(svc.size, -1, dtype=np.int64) if cols.latency_us is None
               else np.asarray(cols.latency_us, dtype=np.int64))
    if svc.size and (svc.min() < 0 or svc.max() >= nsvc):
        raise ValueError(f"service index out of range 0..{nsvc - 1}")
    if np.isnan(time).any():
        raise ValueError("a sample time is NaN")

    # UNKNOWN samples neither extend nor break a run and never make a slice up
    # or down, so they can be dropped before anything else; so can samples
    # outside every period.
    slice_seconds, total = grid.slice_seconds, grid.total
    rel = time - grid.start
    keep = (status != UNKNOWN) & (rel >= 0) & (rel < total * slice_seconds)
    svc, rel, status, latency = svc[keep], rel[keep], status[keep], latency[keep]
    # Division can round a time just below an edge up onto it; one exact
    # integer check each way puts every sample in the slice that holds it (a
    # sample exactly on an edge lands in the later slice).
    index_type = np.int32 if total < 2**31 else np.int64
    gslice = np.floor(rel / slice_seconds).astype(index_type)
    edge = gslice.astype(np.float64) * slice_seconds
    gslice -= edge > rel
    gslice += edge + slice_seconds <= rel
    return svc, rel, gslice, status, latency


def _ordered_without_duplicates(grid: _Grid, svc, rel, gslice, status):
    """Time order per service; equal times: up before down (codes), and an exact duplicate counts once so a
    re-imported file cannot lengthen a run."""
    # A narrow service key lets numpy use its radix sort (4x faster here) and
    # narrow columns make the gathers below cheaper.
    if grid.services <= np.iinfo(np.int16).max:
        svc = svc.astype(np.int16)
    # Input already in that order (a store read by (service, time), a bundle) is checked, not trusted,
    # in one vectorised pass, and then not sorted again.
    if not is_ordered(svc, rel, status):
        order = np.lexsort((status, rel, svc))
        svc, rel, status, gslice = svc[order], rel[order], status[order], gslice[order]
    if svc.size:
        dup = np.zeros(svc.size, dtype=bool)
        dup[1:] = (svc[1:] == svc[:-1]) & (rel[1:] == rel[:-1]) & (status[1:] == status[:-1])
        if dup.any():
            live = ~dup
            svc, status, gslice = svc[live], status[live], gslice[live]
    return svc, gslice, status


def _debounced_down(svc: np.ndarray, status: np.ndarray, down_after: int) -> np.ndarray:
    """Which samples count as down: a DOWN run (within one service) shorter than ``down_after`` counts as up."""
    down = status == DOWN
    n = svc.size
    if down_after > 1 and n:
        brk = np.ones(n, dtype=bool)
        brk[1:] = (down[1:] != down[:-1]) | (svc[1:] != svc[:-1])
        starts = np.flatnonzero(brk)
        run_len = np.diff(np.append(starts, n))
        run_of = np.cumsum(brk) - 1
        down = down & (run_len[run_of] >= down_after)
    return down


def _slice_verdicts(grid: _Grid, svc, gslice, down) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One entry per (service, slice) that has samples (keys already sorted): down if any sample in it is."""
    n = svc.size
    key = svc.astype(np.int64) * grid.total + gslice
    if n:
        first = np.ones(n, dtype=bool)
        first[1:] = key[1:] != key[:-1]
        starts = np.flatnonzero(first)
        return svc[starts], gslice[starts], np.logical_or.reduceat(down, starts)
    empty = np.zeros(0, dtype=np.int64)
    return empty, empty, np.zeros(0, dtype=bool)


def _without_maintenance(grid: _Grid, mranges, u_svc, u_slice, slice_down):
    """Drop maintenance slices (``mranges``, from :func:`maintenance_slices`), and count them per period."""
    count, spp = grid.count, grid.per_period
    maint_per_period = np.zeros(count, dtype=np.int64)
    if mranges:
        keep = ~_in_ranges(u_slice, mranges)
        u_svc, u_slice, slice_down = u_svc[keep], u_slice[keep], slice_down[keep]
        bounds = np.arange(count + 1, dtype=np.int64) * spp
        for a, b in mranges:
            lo = np.clip(bounds[:-1], a, b)
            hi = np.clip(bounds[1:], a, b)
            maint_per_period += hi - lo
    return u_svc, u_slice, slice_down, maint_per_period


def _joint_counts(grid: _Grid, u_slice, slice_down, nsvc: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per period, over ``nsvc`` services: slices where every one was up, where any was down, and where none had
    a gap."""
    count = grid.count
    if u_slice.size:
        lo_slice = int(u_slice.min())
        span = int(u_slice.max()) - lo_slice + 1
        if span <= 4 * u_slice.size + 1_000_000:
            s_up = np.bincount(u_slice[~slice_down] - lo_slice, minlength=span)
            s_down = np.bincount(u_slice[slice_down] - lo_slice, minlength=span)
            s_idx = np.flatnonzero((s_up + s_down) > 0)
            s_up, s_down = s_up[s_idx], s_down[s_idx]
            s_idx = s_idx + lo_slice
        else:
            s_idx, inv = np.unique(u_slice, return_inverse=True)
            s_up = np.bincount(inv[~slice_down], minlength=s_idx.size)
            s_down = np.bincount(inv[slice_down], minlength=s_idx.size)
    else:
        s_idx = s_up = s_down = np.zeros(0, dtype=np.int64)
    s_period = s_idx // grid.per_period
    all_up = np.bincount(s_period[s_up == nsvc], minlength=count)
    any_down = np.bincount(s_period[s_down > 0], minlength=count)
    none_gap = np.bincount(s_period[(s_up + s_down) == nsvc], minlength=count)
    return all_up, any_down, none_gap


def _results(grid: _Grid, length: int, service_ids, gaps_policy, maint_per_period, up_n, down_n, joint
             ) -> list[PeriodResult]:
    all_up, any_down, none_gap = joint
    results = []
    for p in range(grid.count):
        maint = int(maint_per_period[p])
        open_slices = grid.per_period - maint
        per_service = {}
        for i, sid in enumerate(service_ids):
            up, dn = int(up_n[i, p]), int(down_n[i, p])
            per_service[sid] = _counts(up, dn, open_slices - up - dn, maint, gaps_policy)
        j_up, j_down_any = int(all_up[p]), int(any_down[p])
        j_gap = open_slices - int(none_gap[p])   # slices where some service has a gap
        if gaps_policy == GAPS_EXCLUDE:
            joint_counts = _counts(j_up, int(none_gap[p]) - j_up, j_gap, maint, GAPS_EXCLUDE)
        elif gaps_policy == GAPS_DOWN:
            joint_counts = _counts(j_up, open_slices - j_up, j_gap, maint, None)
        else:
            joint_counts = _counts(open_slices - j_down_any, j_down_any, j_gap, maint, None)
        results.append(PeriodResult(
            index=p, start=grid.start + p * length, end=grid.start + (p + 1) * length,
            services=per_service, joint=joint_counts, values={}, coverage={},
        ))
    return results


def _counts(up: int, down: int, gaps: int, maint: int, policy: str | None) -> SliceCounts:
    """Apply the gaps policy; ``policy=None`` means the gaps are already in up/down."""
    excluded = maint
    if policy == GAPS_EXCLUDE:
        excluded += gaps
    elif policy == GAPS_DOWN:
        down += gaps
    elif policy == GAPS_UP:
        up += gaps
    return SliceCounts(up=up, down=down, excluded=excluded, maintenance=maint, gaps=gaps, ppm=_ppm(up, up + down))
