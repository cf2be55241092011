"""PenaltyMath (through contracts/test/PenaltyHarness.sol) against the Python reference, smartsla/penalty.py.

The two are meant to be one specification written twice; any disagreement on any valid schedule is a bug
in one of them. The harness is pure, so every case is an eth_call on one chain per module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartsla import penalty
from smartsla.chain.chain import Chain
from smartsla.onchain.client import Contracts
from smartsla.onchain.types import PeriodState
from tests.helpers.strategies import PPM, U32, U96, caps, interesting, scales, schedules, value_vectors
from tests.helpers.world import World, make_terms, make_world

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class _ShortRepr:
    # Hypothesis prints a failing example's arguments field by field; the chain's error table runs to pages.
    def _repr_pretty_(self, p, cycle):
        p.text(f"{type(self).__name__}({self.chain.kind})")


@dataclass
class Env(_ShortRepr):
    chain: Chain
    world: World
    harness: Any

    def terms(self, sched: dict) -> tuple:
        return make_terms(self.world, **sched)


def _env(name: str, artifacts) -> Any:
    chain = Chain.connect(name)
    contracts = Contracts(chain, artifacts)
    world = make_world(chain, contracts, with_token=True)
    harness, _ = contracts.deploy("PenaltyHarness", world.deployer)
    return chain, Env(chain, world, harness)


@pytest.fixture(scope="module")
def env(artifacts):
    chain, e = _env("embedded", artifacts)
    yield e
    chain.close()


@pytest.fixture(scope="module")
def anvil_env(artifacts):
    chain, e = _env("anvil", artifacts)
    yield e
    chain.close()


def _assert_valid(env: Env, terms: tuple) -> None:
    # A generator drifting into invalid terms would test cases no agreement can reach.
    env.world.factory.contract.functions.validateTerms(env.world.contracts.encode_terms(terms)).call()


# ----------------------------------------------------------------- credit of a period


@FAST
@given(data=st.data(), basis=st.sampled_from([0, 1]))
def test_period_credit_matches_reference(env, data, basis):
    sched = data.draw(schedules(basis=basis))
    terms = env.terms(sched)
    _assert_valid(env, terms)
    vectors = data.draw(value_vectors(sched))
    expected = [penalty.period_credit_bps(terms, v) for v in vectors]
    assert env.harness.functions.periodCredits(terms, vectors).call() == expected
    # The single-case entry point is what a reviewer would read; keep it in step with the batch.
    assert env.harness.functions.periodCredit(terms, vectors[0]).call() == expected[0]


@FAST
@given(data=st.data(), lower=st.booleans(), cap=caps)
def test_service_credit_at_every_edge(env, data, lower, cap):
    scale = data.draw(scales(lower, cap))
    _, target, _, _, tiers = scale
    values = interesting(scale) + data.draw(st.lists(st.integers(0, U32 if lower else PPM), max_size=5))
    expected = [penalty.service_credit(v, target, lower, tiers) for v in values]
    assert env.harness.functions.serviceCredits(scale, values).call() == expected
    assert env.harness.functions.serviceCredit(scale, values[0]).call() == expected[0]


@FAST
@given(data=st.data())
def test_fallback_credit_matches_reference(env, data):
    sched = data.draw(schedules())
    terms = env.terms(sched)
    assert env.harness.functions.fallbackCredit(terms).call() == penalty.fallback_credit_bps(terms)


def test_credit_examples_pin_both_sides(env):
    # Spot values worked out by hand, so a shared misreading of the terms cannot pass unnoticed.
    aws = [[999_900, 1_000], [990_000, 3_000], [950_000, 10_000]]
    lat = [[250_000, 1_000], [500_000, 2_500], [1_000_000, 5_000]]
    from smartsla.encoding import service_bytes32

    per_service = {
        "services": [(service_bytes32("a"), 999_900, 3, False, aws), (service_bytes32("l"), 250_000, 1, True, lat)],
        "capBps": 10_000,
    }
    terms = env.terms(per_service)
    cases = {(999_899, 250_000): 750, (949_999, 1_000_001): (3 * 10_000 + 5_000) // 4, (PPM, 0): 0}
    for values, credit in cases.items():
        assert penalty.period_credit_bps(terms, list(values)) == credit
        assert env.harness.functions.periodCredit(terms, list(values)).call() == credit
    combined = {
        "services": [(service_bytes32("a"), 0, 1, False, []), (service_bytes32("b"), 0, 3, False, [])],
        "basis": 1,
        "combine": 1,
        "combined": (service_bytes32("c"), 999_900, 0, False, aws),
        "capBps": 10_000,
    }
    terms = env.terms(combined)
    # weighted (999_000 + 3 * 999_999) // 4 = 999_749 -> 10% tier; worst would be 999_000 -> 10% as well
    assert env.harness.functions.periodCredit(terms, [999_000, 999_999]).call() == 1_000
    assert penalty.period_credit_bps(terms, [999_000, 999_999]) == 1_000
    assert env.harness.functions.periodCredit(terms, [949_999, PPM]).call() == 3_000  # (949_999+3e6)//4=987_499
    worst = env.terms({**combined, "combine": 0})
    assert env.harness.functions.periodCredit(worst, [949_999, PPM]).call() == 10_000
    assert penalty.period_credit_bps(worst, [949_999, PPM]) == 10_000


# ----------------------------------------------------------------- median and split


@FAST
@given(
    sets=st.lists(
        st.lists(st.one_of(st.integers(0, 3), st.integers(0, U32)), min_size=1, max_size=9), min_size=1, max_size=30
    ),
    lower=st.booleans(),
)
def test_median_matches_reference(env, sets, lower):
    expected = [penalty.median(s, lower) for s in sets]
    assert env.harness.functions.medians(sets, lower).call() == expected
    assert env.harness.functions.median(sets[0], lower).call() == expected[0]


def test_median_examples(env):
    for values, lower, expected in [
        ([7], False, 7), ([3, 1, 2], True, 2), ([1, 2], False, 1), ([1, 2], True, 2),
        ([4, 4, 1, 9], False, 4), ([9, 1, 5, 3], True, 5), ([5, 5], True, 5),
    ]:
        assert env.harness.functions.median(values, lower).call() == expected
        assert penalty.median(values, lower) == expected


money = st.one_of(st.sampled_from([0, 1, 9_999, 10_000, 10_001, U96 - 1]), st.integers(0, U96 - 1))
credits = st.one_of(st.sampled_from([0, 1, 9_999, 10_000, 10_001, 20_000, U32]), st.integers(0, U32))


@FAST
@given(cases=st.lists(st.tuples(money.filter(bool), credits, money), min_size=1, max_size=40))
def test_split_matches_reference(env, cases):
    fees, credit_bps, bonds = (list(c) for c in zip(*cases))
    got = env.harness.functions.splits(fees, credit_bps, bonds).call()
    for (fee, credit, bond), row in zip(cases, got):
        expected = penalty.payout(fee, credit, bond)
        assert tuple(row) == expected, (fee, credit, bond)
        from_fee, from_bond, to_provider = expected
        # Conservation: the fee is split exactly and the bond tops up only above 100%.
        assert from_fee + to_provider == fee
        assert from_bond <= bond
        assert from_bond == 0 or from_fee == fee
    fee, credit, bond = cases[0]
    assert tuple(env.harness.functions.split(fee, credit, bond).call()) == penalty.payout(fee, credit, bond)


# ----------------------------------------------------------------- end to end on real agreements

PERIODS = 3
LENGTH = 1_000


@st.composite
def e2e_cases(draw):
    sched = draw(schedules())
    # fallbackFullCredit is irrelevant here: every period gets a quorum.
    n = len(sched["services"])
    reports = []
    for _ in range(PERIODS):
        k = draw(st.integers(2, 3))  # quorum is 2 of 3
        vectors = draw(value_vectors(sched, min_size=k, max_size=k))
        reports.append(vectors)
    assert all(len(v) == n for r in reports for v in r)
    return {
        "sched": sched,
        "fee": draw(st.one_of(st.integers(1, 10**9), st.sampled_from([1, 9_999, 10_001]))),
        "bond": draw(st.one_of(st.just(0), st.integers(1, 3 * 10**9))),
        "token": draw(st.booleans()),
        "reports": reports,
    }


def run_end_to_end(env: Env, case: dict) -> None:
    w = env.world
    chain = env.chain
    fee, bond = case["fee"], case["bond"]
    token = w.token_address if case["token"] else "0x" + "00" * 20
    agreement = w.create(
        **case["sched"], fee=fee, bond=bond, token=token, start=chain.now() + 300, periodLength=LENGTH,
        periodCount=PERIODS, reportDeadline=LENGTH, maintenanceAllowance=0,
    )
    if bond:
        agreement.post_bond(w.provider, bond)  # before funding: the terms' bond must be in place first
    agreement.fund(w.customer, PERIODS)
    bond_left = bond
    terms = agreement.terms
    for p, vectors in enumerate(case["reports"]):
        w.over(agreement, p)
        receipt = agreement.settle(w.stranger, p, w.reports(agreement, p, vectors))
        event = agreement.settlement(receipt)
        values = penalty.aggregate_reports(terms, vectors)
        want = penalty.settle_period(terms, fee, bond_left, values)
        assert list(event["values"]) == values
        assert event["creditBps"] == want.credit_bps
        assert event["compensation"] == want.to_customer_from_fee + want.to_customer_from_bond
        assert event["compensationFromBond"] == want.to_customer_from_bond
        assert event["providerPayout"] == want.to_provider
        record = agreement.period(p)
        assert record.state == PeriodState.SETTLED
        assert record.compensation == event["compensation"]
        assert record.provider_payout == event["providerPayout"]
        bond_left -= want.to_customer_from_bond
        assert agreement.bond_balance() == bond_left
    assert agreement.balance() == bond_left


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=e2e_cases())
def test_settled_amounts_match_reference_embedded(env, case):
    run_end_to_end(env, case)


@pytest.mark.anvil
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=e2e_cases())
def test_settled_amounts_match_reference_anvil(anvil_env, case):
    run_end_to_end(anvil_env, case)


# ----------------------------------------------------------------- what the median guarantees


@FAST
@given(data=st.data(), lower_is_better=st.booleans())
def test_the_median_stays_within_the_honest_reports_range(env, data, lower_is_better):
    """What docs/contracts.md promises, and no more: with fewer liars than half the reports, whatever the liars
    say, the value used lies between the lowest and highest honest values. (One liar among four can move an even
    count's median by one rank, 980000 -> 995000 in the review's case, but not out of that range.)"""
    k = data.draw(st.integers(1, 9))
    liars = data.draw(st.integers(0, (k - 1) // 2))
    honest = data.draw(st.lists(st.integers(0, 1_000_000), min_size=k - liars, max_size=k - liars))
    lies = data.draw(st.lists(st.integers(0, 2**32 - 1), min_size=liars, max_size=liars))
    reports = data.draw(st.permutations(honest + lies))
    got = env.harness.functions.median(reports, lower_is_better).call()
    assert min(honest) <= got <= max(honest), (honest, lies, got)


def test_one_liar_among_four_moves_the_median_one_rank_within_the_honest_range(env):
    honest = [980_000, 990_000, 995_000]
    assert env.harness.functions.median(honest + [970_000], False).call() == 980_000
    assert env.harness.functions.median(honest + [1_000_000], False).call() == 990_000  # up one rank, still honest
