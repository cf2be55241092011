"""The objectives measured from the latencies of samples: the nearest-rank latency percentile and the Apdex score,
per (service, period). The rules are in docs/oracle.md ("Latency percentile", "Apdex"); the period maths
(:func:`smartsla.measure.periods.compute_periods`) calls these for the services whose objective needs them, so the
oracle and the auditor share them.

Both look at the raw samples, not at slices: every probe's answer counts, and ``down_after`` (which decides when
failed probes make an outage) does not apply. What they leave out: unknown samples, samples in a maintenance
slice, samples outside every period, and up samples without a latency (an import without one); an exact duplicate
(same service, time, status and latency) counts once, so a re-imported file changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from smartsla.constants import PPM, UINT32_MAX
from smartsla.measure.order import is_ordered
from smartsla.measure.samples import DOWN, UP

# A period whose eligible samples all failed has no latency to rank: its answers never came, which is worse than
# any latency measured (at most 2**32 - 2 µs), so it reports the largest uint32 and the most severe tier applies.
NO_ANSWER_US = UINT32_MAX


@dataclass(frozen=True)
class LatencySamples:
    """The samples the latency objectives use, placed in the grid: one entry per distinct (service, time, status,
    latency), outside maintenance, inside a period. ``latency_us`` is -1 for a down sample without one."""

    service: np.ndarray   # int64 index into the terms' services
    period: np.ndarray    # int64
    slice: np.ndarray     # global slice index (int64)
    up: np.ndarray        # bool: an up sample with a latency (False: a down sample)
    latency_us: np.ndarray


def latency_samples(service, time_rel, gslice, status, latency_us, per_period: int, *,
                    ordered: bool = False) -> LatencySamples:
    """From placed columns (known status, inside the term, maintenance already dropped) to :class:`LatencySamples`:
    up samples without a latency are left out, and exact duplicates counted once. Columns already ordered by
    (service, time, status, latency with none last), as the store and the evidence hand them out, are checked in
    one pass and not sorted; ``ordered`` says each service's rows are one ordered run already (the caller checked)."""
    lat = np.asarray(latency_us, np.int64)
    keep = ((status == UP) & (lat >= 0)) | (status == DOWN)
    svc, rel, gs, st, lat = service[keep], time_rel[keep], gslice[keep], status[keep], lat[keep]
    if svc.size > 1:
        latkey = np.where(lat < 0, np.int64(2**40), lat)
        if not ordered and not is_ordered(svc, rel, st, latkey):
            order = np.lexsort((latkey, st, rel, svc))
            svc, rel, gs, st, lat, latkey = svc[order], rel[order], gs[order], st[order], lat[order], latkey[order]
        dup = np.zeros(svc.size, dtype=bool)
        dup[1:] = (svc[1:] == svc[:-1]) & (rel[1:] == rel[:-1]) & (st[1:] == st[:-1]) & (lat[1:] == lat[:-1])
        if dup.any():
            live = ~dup
            svc, gs, st, lat = svc[live], gs[live], st[live], lat[live]
    svc = svc.astype(np.int64)
    gs = gs.astype(np.int64)
    return LatencySamples(svc, gs // per_period, gs, st == UP, lat)


def percentile_rank(p: Fraction, n: np.ndarray) -> np.ndarray:
    """The 1-based nearest rank ``ceil(p/100 * n)`` for each count in ``n`` (exact integers)."""
    num, den = p.numerator, 100 * p.denominator
    n = np.asarray(n, np.int64)
    return (num * n + den - 1) // den


def latency_percentiles(s: LatencySamples, services: list[int], percentiles: list[Fraction], count: int,
                        nsvc: int) -> dict[int, np.ndarray]:
    """For each service index in ``services`` (with its percentile), the value per period in µs: the nearest-rank
    percentile of its up samples' latencies; ``NO_ANSWER_US`` when the period has only down samples; 0 when it has
    no eligible sample at all (maintenance filled it, or nothing was seen; coverage tells those apart)."""
    if not services:
        return {}
    cell = s.service * count + s.period
    downs = np.bincount(cell[~s.up], minlength=nsvc * count).reshape(nsvc, count)
    up_cell = cell[s.up]
    # one sort of a combined (service, period, latency) key for all of them: latencies fit 32 bits
    key = np.sort(up_cell * (1 << 32) + s.latency_us[s.up])
    n = np.bincount(up_cell, minlength=nsvc * count)
    first = np.concatenate(([0], np.cumsum(n)[:-1]))
    out: dict[int, np.ndarray] = {}
    for i, p in zip(services, percentiles):
        values = np.zeros(count, np.int64)
        values[downs[i] > 0] = NO_ANSWER_US
        cells = i * count + np.arange(count)
        has = n[cells] > 0
        if has.any():
            rank = percentile_rank(p, n[cells][has])
            values[has] = key[first[cells][has] + rank - 1] & 0xFFFF_FFFF
        out[i] = values
    return out


def apdex_scores(s: LatencySamples, services: list[int], thresholds_us: list[int], count: int, nsvc: int
                 ) -> dict[int, np.ndarray]:
    """For each service index (with its T), the Apdex score per period in ppm, rounded down:
    (satisfied + tolerating / 2) / total, a down sample frustrated; 1.0 (PPM) with no eligible sample."""
    out: dict[int, np.ndarray] = {}
    if not services:
        return out
    threshold = np.zeros(nsvc, np.int64)
    threshold[services] = thresholds_us
    t = threshold[s.service]
    cell = s.service * count + s.period
    size = nsvc * count
    total = np.bincount(cell, minlength=size).reshape(nsvc, count)
    satisfied = np.bincount(cell[s.up & (s.latency_us <= t)], minlength=size).reshape(nsvc, count)
    tolerating = np.bincount(cell[s.up & (s.latency_us > t) & (s.latency_us <= 4 * t)],
                             minlength=size).reshape(nsvc, count)
    for i in services:
        out[i] = apdex_ppm(satisfied[i], tolerating[i], total[i])
    return out


def apdex_ppm(satisfied, tolerating, total) -> np.ndarray:
    """floor(PPM * (2 * satisfied + tolerating) / (2 * total)), PPM where total is 0 (exact integers)."""
    satisfied, tolerating, total = (np.asarray(a, dtype=object) for a in (satisfied, tolerating, total))
    out = np.full(len(total), PPM, dtype=np.int64)
    for k in np.flatnonzero(total != 0):
        out[k] = (PPM * (2 * int(satisfied[k]) + int(tolerating[k]))) // (2 * int(total[k]))
    return out


def latency_covered_slices(s: LatencySamples, nsvc: int, count: int, per_period: int) -> np.ndarray:
    """Per (service, period), how many slices hold a sample the latency objectives use (an up sample with a
    latency, or a down sample): the coverage of those objectives counts these slices. The samples are ordered by
    (service, time), so each (service, slice) is one run of rows."""
    key = s.service * (count * per_period) + s.slice
    first = np.ones(key.size, dtype=bool)
    first[1:] = key[1:] != key[:-1]
    cell = (s.service * count + s.period)[first]
    return np.bincount(cell, minlength=nsvc * count).reshape(nsvc, count)
