"""Success rates (occurrences, ratio-timeslices, timeslices) and Apdex from counts against a brute-force reference
written straight from docs/oracle.md, on random counts, maintenance windows, empty slices, missing slices, intervals
on slice and period edges and ratios exactly at the slice target."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartsla.measure.events import EventColumns, EventError, _mean_ratio_ppm
from smartsla.measure.periods import compute_periods
from smartsla.terms.parse import load_terms

START = 1000
SERVICES = ("occ", "ratio", "ratio-ex", "slices", "slices-ex", "apx")


def event_terms(*, length: int, count: int, slice_: int, event_slice: int) -> object:
    rate = 'objective: success-rate, target: "99%", schedule: [{below: "99%", credit: "10%"}]'
    return load_terms(f"""\
agreement: a
provider: provider
customer: customer
payment: {{token: ETH, fee: "1"}}
periods: {{start: {START}, length: {length}s, count: {count}}}
services:
  - {{id: occ, {rate}}}
  - {{id: ratio, method: ratio-timeslices, slice: {event_slice}s, {rate}}}
  - {{id: ratio-ex, method: ratio-timeslices, empty_slice: excluded, {rate}}}
  - {{id: slices, method: timeslices, slice_target: "75%", slice: {event_slice}s, {rate}}}
  - {{id: slices-ex, method: timeslices, slice_target: "50%", empty_slice: excluded, {rate}}}
  - {{id: apx, objective: apdex, threshold: 1s, source: events, target: "0.9",
      schedule: [{{below: "0.9", credit: "10%"}}]}}
compensation: {{}}
oracles: {{members: [o1], quorum: 1, deadline: 1d, fallback: no-credit}}
measurement: {{slice: {slice_}s}}
""")


def reference(terms, rows, windows, sid, p):
    """(value, coverage) of ``sid`` in period ``p``, slice by slice with fractions."""
    service = terms.service(sid)
    sl = service.slice or terms.measurement.slice
    length = terms.periods.length
    lo = START + p * length
    distinct = {r for r in rows if r[0] == sid}
    value_slices, open_slices, covered = [], 0, 0
    good = tol = total = 0
    for k in range(length // sl):
        a, b = lo + k * sl, lo + (k + 1) * sl
        if any(wa < b and wb > a for wa, wb in windows if wb > wa):
            continue
        open_slices += 1
        mine = [r for r in distinct if a * 10**6 <= r[1] < b * 10**6]
        if not mine:
            continue
        covered += 1
        g, tl, n = (sum(r[i] for r in mine) for i in (2, 3, 4))
        good, tol, total = good + g, tol + tl, total + n
        value_slices.append((g, n))
    coverage = 10**6 if open_slices == 0 else 10**6 * covered // open_slices

    def ppm(x: Fraction) -> int:
        return math.floor(x * 10**6)

    if service.objective == "apdex":
        return (10**6 if total == 0 else ppm(Fraction(2 * good + tol, 2 * total))), coverage
    if service.method == "occurrences":
        return (10**6 if total == 0 else ppm(Fraction(good, total))), coverage
    scores = []
    for g, n in value_slices:
        if n == 0:
            if service.empty_slice == "good":
                scores.append(Fraction(1))
            continue
        if service.method == "ratio-timeslices":
            scores.append(Fraction(g, n))
        else:
            scores.append(Fraction(1) if Fraction(g, n) >= Fraction(service.slice_target, 10**6) else Fraction(0))
    return (10**6 if not scores else ppm(sum(scores) / len(scores))), coverage


@st.composite
def count_timelines(draw):
    slice_ = draw(st.sampled_from([2, 4]))
    event_slice = draw(st.sampled_from([1, 2, 4]))
    spp = draw(st.integers(1, 3))
    length = slice_ * spp * 2
    count = draw(st.integers(1, 2))
    terms = event_terms(length=length, count=count, slice_=slice_, event_slice=event_slice)
    end = START + length * count
    rows = set()
    for sid in SERVICES:
        for t in range(START - 2, end + 2):
            if draw(st.integers(0, 3)) == 0:
                continue     # a missing interval: a gap in the counts
            for offset_us in draw(st.sets(st.sampled_from([0, 250_000, 999_999]), min_size=1, max_size=2)):
                total = draw(st.one_of(st.just(0), st.integers(0, 8), st.integers(0, 10**9)))
                good = draw(st.integers(0, total))
                tol = draw(st.integers(0, total - good)) if sid == "apx" else 0
                rows.add((sid, t * 10**6 + offset_us, good, tol, total))
    windows = draw(st.lists(st.tuples(st.integers(START - 3, end + 3), st.integers(0, 6))
                            .map(lambda w: (w[0], w[0] + w[1])), max_size=2))
    listed = list(rows) + draw(st.lists(st.sampled_from(sorted(rows)), max_size=3)) if rows else []
    draw(st.randoms()).shuffle(listed)
    return terms, listed, windows


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(count_timelines())
def test_event_objectives_match_the_brute_force_reference(timeline):
    terms, rows, windows = timeline
    events = EventColumns.from_rows(rows, terms.service_ids)
    for r in compute_periods(terms, [], windows, events=events):
        for sid in SERVICES:
            assert (r.values[sid], r.coverage[sid]) == reference(terms, rows, windows, sid, r.index), sid


def test_the_mean_of_ratios_is_exact_on_a_ppm_boundary():
    # 1/3 + 2/3 = 1 exactly: the mean of two slices is 50%, which floating point may put a hair below
    good, total = np.array([1, 2] * 1000, np.int64), np.array([3, 3] * 1000, np.int64)
    assert _mean_ratio_ppm(good, total, 0, 2000) == 500_000
    good, total = np.array([1, 1, 1], np.int64), np.array([3, 3, 3], np.int64)
    assert _mean_ratio_ppm(good, total, 0, 3) == 333_333


def test_aws_error_rate_uptime():
    """S3's definition: 100% minus the average of the 5-minute error rates; an interval without requests has a 0%
    error rate. Three intervals: 0% errors, 10% errors, no requests -> (100 + 90 + 100) / 3 = 96.6666%."""
    terms = load_terms("examples/aws-s3.yaml")
    start = terms.periods.start
    events = EventColumns.from_rows([("s3", start * 10**6, 1000, 0, 1000), ("s3", (start + 300) * 10**6, 900, 0, 1000),
                                     ("s3", (start + 600) * 10**6, 0, 0, 0)], terms.service_ids)
    (r, *_) = compute_periods(terms, [], [], events=events)
    assert r.values["s3"] == 966_666


@pytest.mark.parametrize("row,message", [
    (("occ", 10**9, -1, 0, 5), "good -1 is negative"),
    (("occ", 10**9, 6, 0, 5), "good (6) is more than total (5)"),
    (("apx", 10**9, 3, 3, 5), "satisfied + tolerating (6) is more than total (5)"),
    (("occ", 10**9, 0, 0, 2**60), "more than"),
])
def test_impossible_counts_are_refused(row, message):
    terms = event_terms(length=8, count=1, slice_=2, event_slice=2)
    with pytest.raises(EventError, match=re.escape(message)):
        compute_periods(terms, [], [], events=EventColumns.from_rows([row], terms.service_ids))


def test_two_different_counts_for_one_interval_are_refused_and_a_repeat_counts_once():
    terms = event_terms(length=8, count=1, slice_=2, event_slice=2)
    row = ("occ", (START + 1) * 10**6, 3, 0, 4)
    (r,) = compute_periods(terms, [], [], events=EventColumns.from_rows([row, row], terms.service_ids))
    assert r.values["occ"] == 750_000
    with pytest.raises(EventError, match="two different counts for one interval"):
        compute_periods(terms, [], [], events=EventColumns.from_rows([row, ("occ", row[1], 4, 0, 4)],
                                                                     terms.service_ids))
