"""The Python reference of the penalty maths (pure integers, no chain)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from smartsla.constants import BASIS_COMBINED, BASIS_PER_SERVICE, COMBINE_WEIGHTED, COMBINE_WORST
from smartsla.penalty import (
    CreditRules,
    ServiceRule,
    Settlement,
    TierRule,
    aggregate_reports,
    combined_value,
    fallback_credit_bps,
    median,
    payout,
    period_credit_bps,
    service_credit,
    settle_period,
)
from smartsla.terms.parse import load_terms

ROOT = Path(__file__).resolve().parents[2]
AWS = [(999_900, 1000), (990_000, 3000), (950_000, 10_000)]
LAT = [(250_000, 1000), (500_000, 2500), (1_000_000, 5000)]
U32 = 2**32 - 1


def avail(id="a", target=999_900, weight=1, tiers=AWS):
    return ServiceRule(id, target, weight, False, tuple(TierRule(*t) for t in tiers))


def latency(id="l", target=250_000, weight=1, tiers=LAT):
    return ServiceRule(id, target, weight, True, tuple(TierRule(*t) for t in tiers))


# ----------------------------------------------------------------- examples

@pytest.mark.parametrize("value,credit", [
    (1_000_000, 0), (999_900, 0), (999_899, 1000), (990_000, 1000), (989_999, 3000),
    (950_000, 3000), (949_999, 10_000), (0, 10_000)])
def test_aws_table(value, credit):
    assert service_credit(value, 999_900, False, AWS) == credit


@pytest.mark.parametrize("value,credit", [
    (0, 0), (250_000, 0), (250_001, 1000), (500_000, 1000), (500_001, 2500),
    (1_000_000, 2500), (1_000_001, 5000), (U32, 5000)])
def test_latency_table(value, credit):
    assert service_credit(value, 250_000, True, LAT) == credit


def test_target_met_beats_tiers():
    # A target laxer than the first tier: meeting it earns nothing even though
    # the value is "below" the first threshold.
    assert service_credit(999_500, 999_000, False, AWS) == 0
    assert service_credit(998_999, 999_000, False, AWS) == 1000


def test_target_stricter_than_first_tier_gives_zero_between():
    assert service_credit(999_950, 999_990, False, AWS) == 0


def test_tier_tuples_and_objects_are_equivalent():
    objs = [TierRule(*t) for t in AWS]
    for v in (999_899, 989_999, 1):
        assert service_credit(v, 999_900, False, objs) == service_credit(v, 999_900, False, AWS)


def test_median_rule():
    assert median([3], False) == 3
    assert median([5, 1, 3], False) == 3
    assert median([5, 1, 3], True) == 3
    assert median([990_000, 999_000], False) == 990_000  # lower availability
    assert median([300, 200], True) == 300               # higher latency
    assert median([1, 2, 3, 4], False) == 2
    assert median([1, 2, 3, 4], True) == 3
    with pytest.raises(ValueError):
        median([], False)


def test_aggregate_reports_per_service_median():
    rules = CreditRules(services=(avail(), latency()))
    reports = [[999_000, 300_000], [990_000, 200_000]]
    assert aggregate_reports(rules, reports) == [990_000, 300_000]
    with pytest.raises(ValueError):
        aggregate_reports(rules, [[1]])


def test_per_service_weighted_floor_and_cap():
    rules = CreditRules(services=(avail("a", weight=2), avail("b", weight=1)))
    # (2*1000 + 1*3000) / 3 = 1666.67 -> 1666
    assert period_credit_bps(rules, [999_000, 989_000]) == 1666
    assert period_credit_bps(rules, {"a": 999_000, "b": 989_000}) == 1666
    capped = CreditRules(services=rules.services, cap_bps=1500)
    assert period_credit_bps(capped, [999_000, 989_000]) == 1500


def test_combined_min_and_weighted():
    services = (avail("a", weight=3, tiers=()), avail("b", weight=1, tiers=()))
    combined = avail("combined", target=999_000, weight=0)
    rules = CreditRules(services, BASIS_COMBINED, COMBINE_WORST, combined)
    assert combined_value(rules, [999_999, 989_000]) == 989_000
    assert period_credit_bps(rules, [999_999, 989_000]) == 3000
    weighted = CreditRules(services, BASIS_COMBINED, COMBINE_WEIGHTED, combined)
    # (3*999_999 + 989_000) / 4 = 997_249.25 -> 997_249
    assert combined_value(weighted, [999_999, 989_000]) == 997_249
    assert period_credit_bps(weighted, [999_999, 989_000]) == 1000


def test_combined_min_latency_is_the_highest():
    services = (latency("x", tiers=()), latency("y", tiers=()))
    rules = CreditRules(services, BASIS_COMBINED, COMBINE_WORST, latency("combined", weight=0))
    assert combined_value(rules, [100_000, 600_000]) == 600_000
    assert period_credit_bps(rules, [100_000, 600_000]) == 2500


def test_value_validation():
    rules = CreditRules(services=(avail(), latency()))
    with pytest.raises(ValueError, match="outside 0..1000000"):
        period_credit_bps(rules, [1_000_001, 0])
    with pytest.raises(ValueError, match="outside"):
        period_credit_bps(rules, [0, -1])
    with pytest.raises(ValueError, match="2 services"):
        period_credit_bps(rules, [0])
    with pytest.raises(ValueError, match="missing"):
        period_credit_bps(rules, {"a": 0})


def test_fallback():
    assert fallback_credit_bps(CreditRules((avail(),), fallback_full_credit=True)) == 10_000
    assert fallback_credit_bps(CreditRules((avail(),), cap_bps=5000)) == 5000
    assert fallback_credit_bps(CreditRules((avail(),), cap_bps=15_000)) == 10_000
    assert fallback_credit_bps(CreditRules((avail(),), fallback_full_credit=False)) == 0


def test_payout_examples():
    assert payout(1000, 0, 0) == (0, 0, 1000)
    assert payout(1000, 1000, 0) == (100, 0, 900)
    assert payout(999, 3333, 0) == (332, 0, 667)  # 332.96 -> 332, remainder to provider
    assert payout(1000, 15_000, 300) == (1000, 300, 0)
    assert payout(1000, 15_000, 10_000) == (1000, 500, 0)
    with pytest.raises(ValueError):
        payout(-1, 0, 0)


def test_settle_period():
    rules = CreditRules((avail(),), fallback_full_credit=True)
    assert settle_period(rules, 1000, 0, [989_999]) == Settlement(3000, 300, 0, 700, False)
    assert settle_period(rules, 1000, 0, None) == Settlement(10_000, 1000, 0, 0, True)
    assert settle_period(rules, 1000, 50, [0], funded=False) == Settlement(10_000, 0, 0, 0, False)


def test_rules_from_terms_and_chain_tuple_agree():
    for name in ("aws-ec2", "multi-service", "latency"):
        terms = load_terms(ROOT / "examples" / f"{name}.yaml")
        chain = terms.to_chain(lambda n, p: "0x" + n.encode().hex().ljust(40, "0")[:40],
                               "0x" + "11" * 20, 6, now=1)
        assert CreditRules.from_chain(chain) == terms.credit_rules()
        for value in (0, 950_000):
            values = [value * 2 if s.lower_is_better else value for s in terms.services]
            assert period_credit_bps(chain, values) == period_credit_bps(terms, values)


def test_multi_service_example_numbers():
    terms = load_terms(ROOT / "examples" / "multi-service.yaml")
    # weighted: (2*999_000 + 980_000 + 999_999) / 4 = 994_499.75 -> 994_499: below 99.9% but not 99.0%
    assert period_credit_bps(terms, [999_000, 980_000, 999_999]) == 1000
    assert period_credit_bps(terms, [0, 0, 0]) == 15_000
    assert payout(1000 * 10**6, 15_000, 500 * 10**6) == (1000 * 10**6, 500 * 10**6, 0)


# --------------------------------------------------------------- properties

@st.composite
def tiers_strategy(draw, lower_is_better: bool, cap: int = 20_000):
    n = draw(st.integers(0, 6))
    limit = U32 if lower_is_better else 1_000_000
    thresholds = sorted(draw(st.lists(st.integers(1, limit), min_size=n, max_size=n, unique=True)),
                        reverse=not lower_is_better)
    credits = sorted(draw(st.lists(st.integers(1, cap), min_size=n, max_size=n, unique=True)))
    return tuple(TierRule(t, c) for t, c in zip(thresholds, credits))


@st.composite
def service_strategy(draw, lower_is_better: bool | None = None, with_tiers: bool = True):
    if lower_is_better is None:
        lower_is_better = draw(st.booleans())
    limit = U32 if lower_is_better else 1_000_000
    tiers = draw(tiers_strategy(lower_is_better)) if with_tiers else ()
    return ServiceRule(draw(st.text("abc", min_size=1, max_size=4)), draw(st.integers(0, limit)),
                       draw(st.integers(1, 1000)), lower_is_better, tiers)


@st.composite
def rules_strategy(draw):
    cap = draw(st.integers(1, 20_000))
    if draw(st.booleans()):
        services = tuple(draw(st.lists(service_strategy(), min_size=1, max_size=5)))
        return CreditRules(services, BASIS_PER_SERVICE, COMBINE_WORST, None, cap, draw(st.booleans()))
    lib = draw(st.booleans())
    services = tuple(draw(st.lists(service_strategy(lib, with_tiers=False), min_size=1, max_size=5)))
    combined = draw(service_strategy(lib))
    return CreditRules(services, BASIS_COMBINED, draw(st.sampled_from([COMBINE_WORST, COMBINE_WEIGHTED])),
                       combined, cap, draw(st.booleans()))


def values_for(draw, rules):
    return [draw(st.integers(0, U32 if s.lower_is_better else 1_000_000)) for s in rules.services]


@given(st.data())
def test_service_credit_monotone(data):
    s = data.draw(service_strategy())
    limit = U32 if s.lower_is_better else 1_000_000
    a, b = sorted(data.draw(st.lists(st.integers(0, limit), min_size=2, max_size=2)))
    ca = service_credit(a, s.target, s.lower_is_better, s.tiers)
    cb = service_credit(b, s.target, s.lower_is_better, s.tiers)
    if s.lower_is_better:
        assert ca <= cb  # more latency never earns less
    else:
        assert ca >= cb  # more availability never earns more
    assert ca in {0} | {t.credit_bps for t in s.tiers}


@given(st.data())
def test_period_credit_monotone_bounded(data):
    rules = data.draw(rules_strategy())
    values = values_for(data.draw, rules)
    i = data.draw(st.integers(0, len(values) - 1))
    s = rules.services[i]
    better = list(values)
    better[i] = data.draw(st.integers(0, values[i])) if s.lower_is_better else \
        data.draw(st.integers(values[i], 1_000_000))
    c = period_credit_bps(rules, values)
    assert 0 <= c <= rules.cap_bps
    assert period_credit_bps(rules, better) <= c


@given(st.data())
def test_combined_value_is_between_extremes(data):
    rules = data.draw(rules_strategy())
    assume(rules.basis == BASIS_COMBINED)
    values = values_for(data.draw, rules)
    v = combined_value(rules, values)
    assert min(values) <= v <= max(values)


@given(st.integers(0, 2**96 - 1), st.integers(0, U32), st.integers(0, 2**96 - 1))
def test_payout_conservation(fee, credit, bond):
    from_fee, from_bond, to_provider = payout(fee, credit, bond)
    assert from_fee + to_provider == fee
    assert min(from_fee, from_bond, to_provider) >= 0
    assert from_bond <= bond
    owed = fee * credit // 10_000
    assert from_fee + from_bond == min(owed, fee + bond)
    if from_bond:
        assert from_fee == fee  # the bond is touched only once the fee is exhausted


@given(st.data())
def test_settle_never_creates_money(data):
    rules = data.draw(rules_strategy())
    values = data.draw(st.none() | st.just(values_for(data.draw, rules)))
    fee = data.draw(st.integers(1, 2**96 - 1))
    bond = data.draw(st.integers(0, 2**96 - 1))
    funded = data.draw(st.booleans())
    s = settle_period(rules, fee, bond, values, funded=funded)
    paid = s.to_customer_from_fee + s.to_provider
    assert paid == (fee if funded else 0)
    assert 0 <= s.to_customer_from_bond <= bond
    assert s.credit_bps <= rules.cap_bps
    assert s.used_fallback == (values is None)


@given(st.lists(st.integers(0, U32), min_size=1, max_size=9), st.booleans(), st.randoms())
def test_median_properties(values, lower_is_better, rnd):
    m = median(values, lower_is_better)
    shuffled = list(values)
    rnd.shuffle(shuffled)
    assert m in values
    assert median(shuffled, lower_is_better) == m
    ordered = sorted(values)
    n = len(values)
    if n % 2:
        assert m == ordered[n // 2]
    else:
        low, high = ordered[n // 2 - 1], ordered[n // 2]
        assert m == (high if lower_is_better else low)
    # at least half the reports are at least as bad for the provider as the median
    worse = [v for v in values if (v >= m if lower_is_better else v <= m)]
    assert 2 * len(worse) >= n


def test_service_id_that_is_not_utf8_still_computes():
    """The contract accepts any bytes32 id; the model must not stop on one our tools never write."""
    from smartsla import penalty

    terms_rules = penalty.ServiceRule.from_chain((b"\xff" * 32, 999_900, 1, False, [(999_900, 1_000)]))
    assert terms_rules.id == "\\xff" * 32
    assert penalty.service_credit(999_000, 999_900, False, [(999_900, 1_000)]) == 1_000
