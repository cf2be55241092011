"""Python reference of the on-chain penalty maths.

This module is the specification the Solidity contract is tested against, so
it uses only integer arithmetic with floor division, exactly as the EVM does.
Values are uint32: availability in parts per million (0..1_000_000), latency
in microseconds. Credits are basis points of the period fee.

The functions accept either the chain tuple produced by
``Terms.to_chain(...)`` or the light :class:`CreditRules` dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, NamedTuple, Sequence, Union

from smartsla.constants import BASIS_COMBINED, BASIS_PER_SERVICE, BPS, COMBINE_WEIGHTED, COMBINE_WORST, PPM, UINT32_MAX
from smartsla.onchain.types import OnChainService, OnChainTerms

__all__ = [
    "BPS",
    "BASIS_PER_SERVICE",
    "BASIS_COMBINED",
    "COMBINE_WORST",
    "COMBINE_WEIGHTED",
    "TierRule",
    "ServiceRule",
    "CreditRules",
    "Settlement",
    "service_credit",
    "median",
    "aggregate_reports",
    "combined_value",
    "period_credit_bps",
    "fallback_credit_bps",
    "payout",
    "settle_period",
]


@dataclass(frozen=True)
class TierRule:
    threshold: int
    credit_bps: int


@dataclass(frozen=True)
class ServiceRule:
    id: str
    target: int
    weight: int
    lower_is_better: bool
    tiers: tuple[TierRule, ...] = ()

    @classmethod
    def from_chain(cls, service: Sequence) -> "ServiceRule":
        # The contract takes any bytes32; ids that are not UTF-8 (never written by our tools) still get a stable,
        # readable name (OnChainService.name) instead of stopping an audit of someone else's agreement.
        s = OnChainService.from_abi(service)
        return cls(id=s.name, target=s.target, weight=s.weight, lower_is_better=s.lower_is_better,
                   tiers=tuple(TierRule(t.threshold, t.credit_bps) for t in s.tiers))


@dataclass(frozen=True)
class CreditRules:
    """Everything the credit computation needs, detached from addresses and money."""

    services: tuple[ServiceRule, ...]
    basis: int = BASIS_PER_SERVICE
    combine: int = COMBINE_WORST
    combined: ServiceRule | None = None
    cap_bps: int = BPS
    fallback_full_credit: bool = True

    @classmethod
    def from_chain(cls, terms: Sequence) -> "CreditRules":
        """From on-chain terms: an :class:`OnChainTerms`, or the ABI tuple in struct order."""
        t = terms if isinstance(terms, OnChainTerms) else OnChainTerms.from_abi(terms)
        return cls(
            services=tuple(ServiceRule.from_chain(s) for s in t.services),
            basis=t.basis,
            combine=t.combine,
            combined=ServiceRule.from_chain(t.combined) if t.is_combined else None,
            cap_bps=t.cap_bps,
            fallback_full_credit=t.fallback_full_credit,
        )


RulesLike = Union[CreditRules, Sequence]


def _rules(rules: RulesLike) -> CreditRules:
    if isinstance(rules, CreditRules):
        return rules
    credit_rules = getattr(rules, "credit_rules", None)
    if callable(credit_rules):  # a smartsla.terms.Terms
        return credit_rules()
    return CreditRules.from_chain(rules)


def _tier_pair(tier) -> tuple[int, int]:
    if isinstance(tier, TierRule):
        return tier.threshold, tier.credit_bps
    threshold, credit = tier
    return int(threshold), int(credit)


def service_credit(value: int, target: int, lower_is_better: bool, tiers: Iterable) -> int:
    """Credit in bps for one measured value.

    A value meeting the target earns nothing. Otherwise the last (most severe)
    matching tier wins: tiers are ordered mildest first, so scanning them all
    and keeping the last match is the same loop the contract runs.
    """
    if lower_is_better:
        if value <= target:
            return 0
    elif value >= target:
        return 0
    credit = 0
    for tier in tiers:
        threshold, tier_credit = _tier_pair(tier)
        matches = value > threshold if lower_is_better else value < threshold
        if matches:
            credit = tier_credit
    return credit


def median(values: Sequence[int], lower_is_better: bool) -> int:
    """Median of oracle reports; on a tie between the two middle values the
    one less favourable to the provider wins (lower availability, higher
    latency), so a split oracle set never hides an outage."""
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    if n % 2:
        return ordered[mid]
    low, high = ordered[mid - 1], ordered[mid]
    return high if lower_is_better else low


def aggregate_reports(rules: RulesLike, reports: Sequence[Sequence[int]]) -> list[int]:
    """Per-service median of several oracles' value vectors (service order)."""
    r = _rules(rules)
    if not reports:
        raise ValueError("no reports to aggregate")
    for report in reports:
        if len(report) != len(r.services):
            raise ValueError(f"a report has {len(report)} values, expected {len(r.services)}")
    return [
        median([report[i] for report in reports], s.lower_is_better)
        for i, s in enumerate(r.services)
    ]


def _values(r: CreditRules, values) -> list[int]:
    if isinstance(values, Mapping):
        missing = [s.id for s in r.services if s.id not in values]
        extra = [k for k in values if k not in {s.id for s in r.services}]
        if missing or extra:
            raise ValueError(f"values must name every service exactly: missing {missing}, unknown {extra}")
        values = [values[s.id] for s in r.services]
    values = [int(v) for v in values]
    if len(values) != len(r.services):
        raise ValueError(f"got {len(values)} values for {len(r.services)} services")
    for s, v in zip(r.services, values):
        limit = UINT32_MAX if s.lower_is_better else PPM
        if not 0 <= v <= limit:
            raise ValueError(f"value {v} for service {s.id!r} is outside 0..{limit}")
    return values


def combined_value(rules: RulesLike, values) -> int:
    """The single number a combined-basis agreement is judged on."""
    r = _rules(rules)
    vals = _values(r, values)
    lower_is_better = r.combined.lower_is_better if r.combined else r.services[0].lower_is_better
    if r.combine == COMBINE_WORST:
        # "min" means the worst value for the customer, whichever direction is better.
        return max(vals) if lower_is_better else min(vals)
    if r.combine == COMBINE_WEIGHTED:
        total = sum(s.weight for s in r.services)
        return sum(s.weight * v for s, v in zip(r.services, vals)) // total
    raise ValueError(f"unknown combine mode {r.combine}")


def period_credit_bps(rules: RulesLike, values) -> int:
    """Credit for one period from the agreed per-service values.

    ``values`` is a sequence in service order or a mapping of service id to
    value.
    """
    r = _rules(rules)
    vals = _values(r, values)
    if r.basis == BASIS_PER_SERVICE:
        total_weight = sum(s.weight for s in r.services)
        weighted = sum(
            s.weight * service_credit(v, s.target, s.lower_is_better, s.tiers)
            for s, v in zip(r.services, vals)
        )
        credit = weighted // total_weight
    elif r.basis == BASIS_COMBINED:
        c = r.combined
        credit = service_credit(combined_value(r, vals), c.target, c.lower_is_better, c.tiers)
    else:
        raise ValueError(f"unknown basis {r.basis}")
    return min(credit, r.cap_bps)


def fallback_credit_bps(rules: RulesLike) -> int:
    """Credit when the oracles missed the report deadline."""
    r = _rules(rules)
    return min(BPS, r.cap_bps) if r.fallback_full_credit else 0


def payout(fee: int, credit_bps: int, bond_left: int) -> tuple[int, int, int]:
    """Split of one period's fee: (to customer from fee, to customer from bond, to provider).

    Floor division means the remainder wei of a partial credit stays with the
    provider; no wei is created or lost.
    """
    if fee < 0 or credit_bps < 0 or bond_left < 0:
        raise ValueError("fee, credit and bond must not be negative")
    compensation = fee * credit_bps // BPS
    from_fee = min(compensation, fee)
    from_bond = min(compensation - from_fee, bond_left)
    return from_fee, from_bond, fee - from_fee


class Settlement(NamedTuple):
    credit_bps: int
    to_customer_from_fee: int
    to_customer_from_bond: int
    to_provider: int
    used_fallback: bool


def settle_period(
    rules: RulesLike,
    fee: int,
    bond_left: int,
    values=None,
    *,
    funded: bool = True,
) -> Settlement:
    """One period end to end: ``values=None`` means no quorum by the deadline.

    An unfunded period moves no money whatever the reports say, because there
    is no fee to split and the bond only tops up a funded period's credit.
    """
    r = _rules(rules)
    used_fallback = values is None
    credit = fallback_credit_bps(r) if used_fallback else period_credit_bps(r, values)
    if not funded:
        return Settlement(credit, 0, 0, 0, used_fallback)
    return Settlement(credit, *payout(fee, credit, bond_left), used_fallback)
