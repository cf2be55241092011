"""The latency percentile and the Apdex score against brute-force references written straight from the rules of
docs/oracle.md, on random timelines: maintenance windows, gaps, duplicates, unknown and failed samples, samples
on slice and period edges, latencies on the percentile's rank boundaries and exactly at T and 4T."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartsla.measure.objectives import NO_ANSWER_US, percentile_rank
from smartsla.measure.periods import compute_periods
from smartsla.measure.samples import Sample, Status
from smartsla.terms.parse import load_terms

U, D, X = Status.UP, Status.DOWN, Status.UNKNOWN
T_US = 500          # the Apdex threshold of these terms, µs


def objective_terms(*, length: int, count: int, slice_: int, percentile: str) -> object:
    return load_terms(f"""\
agreement: a
provider: provider
customer: customer
payment: {{token: ETH, fee: "1"}}
periods: {{start: 100, length: {length}s, count: {count}}}
services:
  - {{id: api, target: "99%", schedule: [{{below: "99%", credit: "10%"}}]}}
  - {{id: p, objective: latency, percentile: {percentile}, target: "300us", samples_from: api,
      schedule: [{{above: "300us", credit: "10%"}}]}}
  - {{id: x, objective: apdex, threshold: "{T_US}us", target: "0.9", samples_from: api,
      schedule: [{{below: "0.9", credit: "10%"}}]}}
  - {{id: own, objective: latency, percentile: 50, target: "300us", schedule: [{{above: "300us", credit: "10%"}}]}}
compensation: {{}}
oracles: {{members: [o1], quorum: 1, deadline: 1d, fallback: no-credit}}
measurement: {{slice: {slice_}s}}
""")


def eligible(terms, samples, windows, sid, p):
    """The distinct (time, status, latency) of ``sid`` in period ``p`` that the latency objectives use."""
    start, length, sl = 100, terms.periods.length, terms.measurement.slice
    lo, hi = start + p * length, start + (p + 1) * length

    def in_maintenance(t):
        k = math.floor((t - start) / sl)
        a, b = start + k * sl, start + (k + 1) * sl
        return any(wa < b and wb > a for wa, wb in windows if wb > wa)

    return {(s.time, s.status, s.latency_ms) for s in samples
            if s.service == sid and lo <= s.time < hi and not in_maintenance(s.time)
            and (s.status == D or (s.status == U and s.latency_ms is not None))}


def reference_percentile(rows, p: Fraction) -> int:
    ups = sorted(round(lat * 1000) for (_, st_, lat) in rows if st_ == U)
    if not ups:
        return NO_ANSWER_US if rows else 0
    rank = math.ceil(p / 100 * len(ups))
    return ups[rank - 1]


def reference_apdex(rows) -> int:
    if not rows:
        return 1_000_000
    sat = sum(1 for (_, st_, lat) in rows if st_ == U and round(lat * 1000) <= T_US)
    tol = sum(1 for (_, st_, lat) in rows if st_ == U and T_US < round(lat * 1000) <= 4 * T_US)
    return math.floor(Fraction(sat + Fraction(tol, 2), len(rows)) * 1_000_000)


@st.composite
def timelines(draw):
    slice_ = draw(st.sampled_from([1, 2, 5]))
    spp = draw(st.integers(1, 4))
    count = draw(st.integers(1, 3))
    percentile = draw(st.sampled_from(["1", "50", "90", "95", "99", "99.9", "100", "33.3333"]))
    terms = objective_terms(length=slice_ * spp, count=count, slice_=slice_, percentile=percentile)
    start, end = 100, 100 + slice_ * spp * count
    # latencies around T and 4T and the percentile boundaries (ties), in ms as the store keeps them
    latency = st.one_of(st.sampled_from([0.0, 0.499, 0.5, 0.501, 1.999, 2.0, 2.001, 0.3, None]),
                        st.integers(0, 3000).map(lambda us: us / 1000))
    status = st.sampled_from([U, U, U, D, X])
    samples = []
    for sid in ("api", "own"):
        for t in range(start - 2, end + 2):
            for offset in draw(st.lists(st.sampled_from([0, 0, 0.5]), max_size=3)):
                s = draw(status)
                samples.append(Sample(t + offset, sid, s, draw(latency) if s != X else None))
    samples += draw(st.lists(st.sampled_from(samples), max_size=4)) if samples else []   # exact duplicates
    windows = draw(st.lists(st.tuples(st.integers(start - 3, end + 3), st.integers(0, 6))
                            .map(lambda w: (w[0], w[0] + w[1])), max_size=2))
    draw(st.randoms()).shuffle(samples)
    return terms, samples, windows, Fraction(percentile)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timelines())
def test_percentile_and_apdex_match_the_brute_force_reference(timeline):
    terms, samples, windows, p = timeline
    results = compute_periods(terms, samples, windows)
    for r in results:
        borrowed = eligible(terms, samples, windows, "api", r.index)
        assert r.values["p"] == reference_percentile(borrowed, p)
        assert r.values["x"] == reference_apdex(borrowed)
        assert r.values["own"] == reference_percentile(eligible(terms, samples, windows, "own", r.index),
                                                       Fraction(50))


@pytest.mark.parametrize("p,n,rank", [(99, 100, 99), (99, 101, 100), (99, 1, 1), (50, 4, 2), (50, 5, 3),
                                      (100, 7, 7), (Fraction(999, 10), 1000, 999), (Fraction(999, 10), 1001, 1000),
                                      (Fraction(1, 10_000), 10**6, 1)])
def test_nearest_rank(p, n, rank):
    assert int(percentile_rank(Fraction(p), np.array([n]))[0]) == rank == math.ceil(Fraction(p) / 100 * n)


def test_a_period_with_only_failed_probes_reports_no_answer_and_an_empty_one_zero():
    terms = objective_terms(length=10, count=2, slice_=1, percentile="99")
    samples = [Sample(100 + k, "api", D) for k in range(10)]          # period 0: every probe failed
    (r0, r1) = compute_periods(terms, samples, [(110, 120)])          # period 1: maintenance throughout
    assert r0.values["p"] == NO_ANSWER_US == 2**32 - 1 and r0.values["x"] == 0
    assert r1.values["p"] == 0 and r1.values["x"] == 1_000_000 and r1.coverage["p"] == 1_000_000


def test_up_samples_without_a_latency_do_not_count_as_measured():
    """An import without latencies must not read as a fast service: those samples leave the latency's coverage
    empty, so the oracle does not sign it (min_coverage), rather than signing 0 µs."""
    terms = objective_terms(length=10, count=1, slice_=1, percentile="99")
    (r,) = compute_periods(terms, [Sample(100 + k, "api", U) for k in range(10)])
    assert r.coverage["api"] == 1_000_000 and r.values["api"] == 1_000_000
    assert r.coverage["p"] == 0 and r.coverage["x"] == 0


def test_samples_for_a_service_measured_from_anothers_are_refused():
    terms = objective_terms(length=10, count=1, slice_=1, percentile="99")
    with pytest.raises(ValueError, match="measured from the samples of 'api'"):
        compute_periods(terms, [Sample(101, "p", U, 1.0)])
