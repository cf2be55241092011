"""Hypothesis strategies for random but valid credit schedules, shared by the differential and stateful tests.

Every schedule drawn here passes SlaTerms.validate: testing the maths on terms no agreement can hold would
find differences nobody can reach.
"""

from __future__ import annotations

from hypothesis import strategies as st

from smartsla.encoding import service_bytes32

PPM = 1_000_000
U32 = 2**32 - 1
U96 = 2**96

MAX_CAP_BPS = 1_000_000  # SlaTerms: credits are stored as uint24
caps = st.one_of(
    st.sampled_from([1, 2, 500, 9_999, 10_000, 10_001, 15_000, 30_000, MAX_CAP_BPS - 1, MAX_CAP_BPS]),
    st.integers(1, 100_000),
    # Caps far above 100% stress the bond path.
    st.integers(100_000, MAX_CAP_BPS),
)
weights = st.one_of(st.integers(1, 10), st.integers(1, U32))


def domain(lower: bool) -> int:
    return U32 if lower else PPM


@st.composite
def scales(draw, lower: bool, cap: int, name: str = "svc", weight: int | None = None) -> tuple:
    """One service (target, weight, tiers) in the on-chain tuple form."""
    limit = domain(lower)
    # Mostly realistic ranges, so tiers and targets interleave; sometimes anywhere in the domain.
    near = st.integers(900_000, PPM) if not lower else st.integers(0, 2_000_000)
    value = st.one_of(near, st.integers(0, limit))
    target = draw(value)
    k = min(draw(st.integers(0, 5)), cap)
    thresholds = draw(st.lists(value, min_size=k, max_size=k, unique=True))
    # Mildest first: availability tiers go down, latency tiers go up.
    thresholds.sort(reverse=not lower)
    credits = sorted(draw(st.lists(st.integers(1, cap), min_size=k, max_size=k, unique=True)))
    w = draw(weights) if weight is None else weight
    return (service_bytes32(name), target, w, lower, [list(t) for t in zip(thresholds, credits)])


@st.composite
def schedules(draw, basis: int | None = None) -> dict:
    """The credit-relevant Terms fields, as make_terms overrides."""
    cap = draw(caps)
    basis = draw(st.sampled_from([0, 1])) if basis is None else basis
    n = draw(st.integers(1, 5))
    if basis == 0:
        services = [draw(scales(draw(st.booleans()), cap, f"s{i}")) for i in range(n)]
        combined = (b"\0" * 32, 0, 0, False, [])
        combine = 0
    else:
        lower = draw(st.booleans())
        services = [draw(scales(lower, cap, f"s{i}")) for i in range(n)]
        combined = draw(scales(lower, cap, "combined", weight=0))
        combine = draw(st.sampled_from([0, 1]))
    return {
        "services": services,
        "basis": basis,
        "combine": combine,
        "combined": combined,
        "capBps": cap,
        "fallbackFullCredit": draw(st.booleans()),
    }


def interesting(scale: tuple) -> list[int]:
    """The target, every tier threshold and their neighbours, clipped to the service's domain."""
    _, target, _, lower, tiers = scale
    limit = domain(lower)
    points = {0, limit}
    for x in [target] + [t for t, _ in tiers]:
        points.update(v for v in (x - 1, x, x + 1) if 0 <= v <= limit)
    return sorted(points)


@st.composite
def value_vectors(draw, sched: dict, min_size: int = 1, max_size: int = 40) -> list[list[int]]:
    """Value vectors for a schedule: edges of each service's own scale and of the combined scale, mixed
    with random values. For a combined scale every service gets the same edge value, which the worst and
    the weighted combine both reproduce exactly, so the combined thresholds are hit on the nose."""
    services = sched["services"]
    combined_edges = interesting(sched["combined"]) if sched["basis"] == 1 else []
    combined_edges = [v for v in combined_edges if v <= domain(services[0][3])]

    def one_value(scale):
        return st.one_of(st.sampled_from(interesting(scale)), st.integers(0, domain(scale[3])))

    vector = st.tuples(*(one_value(s) for s in services)).map(list)
    if combined_edges:
        vector = st.one_of(vector, st.sampled_from(combined_edges).map(lambda v: [v] * len(services)))
    return draw(st.lists(vector, min_size=min_size, max_size=max_size))
