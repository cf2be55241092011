"""The agreement's on-chain values as typed Python objects, decoded once at the ABI boundary.

:class:`OnChainTerms` is ``SlaTerms.Terms`` field for field, in the struct's order, with Python names
(``periodCount`` is ``period_count``). It is a ``NamedTuple``: the object *is* the ABI tuple, so web3 encodes it as
it is, while every reader outside this room uses names, never positions. :meth:`OnChainTerms.from_abi` is the one
decoder: addresses checksummed, bytes as ``bytes``, nested tuples typed.

A leaf of the on-chain room: it imports only :mod:`smartsla.constants` and :mod:`smartsla.encoding`, so the terms
model, the penalty model and the client may all use it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

from eth_utils import to_checksum_address

from smartsla.constants import BASIS_COMBINED
from smartsla.encoding import service_bytes32, service_name

# The struct's ABI type strings, for encoding without a build (the contracts' ABI gives the same, see Contracts).
TIER_ABI_TYPE = "(uint32,uint32)"
SERVICE_ABI_TYPE = f"(bytes32,uint32,uint32,bool,{TIER_ABI_TYPE}[])"
TERMS_ABI_TYPE = (
    "(address,address,address,uint256,uint256,uint64,uint64,uint32,"
    f"{SERVICE_ABI_TYPE}[],uint8,uint8,{SERVICE_ABI_TYPE},uint32,address[],uint8,"
    "uint32,uint64,bool,uint64,uint64,bytes32)"
)


class OnChainTier(NamedTuple):
    threshold: int  # ppm (availability) or µs (latency)
    credit_bps: int

    @classmethod
    def from_abi(cls, value: Sequence[Any]) -> "OnChainTier":
        threshold, credit_bps = value
        return cls(int(threshold), int(credit_bps))


class OnChainService(NamedTuple):
    id: bytes  # bytes32: the service id, UTF-8, right-padded
    target: int
    weight: int
    lower_is_better: bool
    tiers: tuple[OnChainTier, ...]

    @classmethod
    def from_abi(cls, value: Sequence[Any]) -> "OnChainService":
        sid, target, weight, lower, tiers = value
        raw = service_bytes32(sid) if isinstance(sid, str) else bytes(sid)
        return cls(raw, int(target), int(weight), bool(lower), tuple(OnChainTier.from_abi(t) for t in tiers))

    @property
    def name(self) -> str:
        """The readable service id (``api``)."""
        return service_name(self.id)


NO_COMBINED = OnChainService(b"\0" * 32, 0, 0, False, ())  # the combined slot of a per-service basis


class OnChainTerms(NamedTuple):
    provider: str
    customer: str
    token: str  # the zero address is ETH
    fee: int
    bond: int
    start: int
    period_length: int
    period_count: int
    services: tuple[OnChainService, ...]
    basis: int
    combine: int
    combined: OnChainService
    cap_bps: int
    oracles: tuple[str, ...]
    quorum: int
    min_coverage: int  # ppm of a service's eligible slices a report must have measured
    report_deadline: int
    fallback_full_credit: bool
    maintenance_allowance: int
    maintenance_notice: int
    document_hash: bytes

    @classmethod
    def from_abi(cls, value: Sequence[Any]) -> "OnChainTerms":
        """From the decoder's nested tuples (or another OnChainTerms, or a list in struct order)."""
        if len(value) != len(cls._fields):
            raise ValueError(f"the Terms struct has {len(cls._fields)} fields, not {len(value)}")
        v = dict(zip(cls._fields, value))
        return cls(
            provider=to_checksum_address(v["provider"]),
            customer=to_checksum_address(v["customer"]),
            token=to_checksum_address(v["token"]),
            fee=int(v["fee"]), bond=int(v["bond"]), start=int(v["start"]),
            period_length=int(v["period_length"]), period_count=int(v["period_count"]),
            services=tuple(OnChainService.from_abi(s) for s in v["services"]),
            basis=int(v["basis"]), combine=int(v["combine"]), combined=OnChainService.from_abi(v["combined"]),
            cap_bps=int(v["cap_bps"]),
            oracles=tuple(to_checksum_address(o) for o in v["oracles"]),
            quorum=int(v["quorum"]), min_coverage=int(v["min_coverage"]), report_deadline=int(v["report_deadline"]),
            fallback_full_credit=bool(v["fallback_full_credit"]),
            maintenance_allowance=int(v["maintenance_allowance"]), maintenance_notice=int(v["maintenance_notice"]),
            document_hash=bytes(v["document_hash"]),
        )

    @property
    def is_combined(self) -> bool:
        return self.basis == BASIS_COMBINED

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services)

    def period_start(self, index: int) -> int:
        return self.start + index * self.period_length

    def period_end(self, index: int) -> int:
        return self.period_start(index + 1)

    def differences(self, other: "OnChainTerms") -> list[tuple[str, Any, Any]]:
        """``(solidity field name, self's value, other's value)`` for each field that differs."""
        return [(solidity_name(name), a, b) for name, a, b in zip(self._fields, self, other) if a != b]


def solidity_name(field: str) -> str:
    """``period_count`` -> ``periodCount``: the struct member's name, for messages that point at the contract."""
    head, *rest = field.split("_")
    return head + "".join(part.capitalize() for part in rest)


def python_name(member: str) -> str:
    """``periodCount`` -> ``period_count``."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", member).lower()


class PeriodState(enum.IntEnum):
    UNFUNDED = 0
    FUNDED = 1
    SETTLED = 2
    SETTLED_BY_FALLBACK = 3
    SETTLED_UNFUNDED = 4
    REFUNDED = 5

    @property
    def is_open(self) -> bool:
        """Not settled yet: a report or the fallback may still settle it."""
        return self in (PeriodState.UNFUNDED, PeriodState.FUNDED)


@dataclass(frozen=True)
class PeriodRecord:
    state: PeriodState
    credit_bps: int
    maintenance_seconds: int
    compensation: int
    provider_payout: int


@dataclass(frozen=True)
class SignedReport:
    values: tuple[int, ...]
    coverage: tuple[int, ...]   # ppm of each service's eligible slices measured
    evidence_root: bytes
    signature: bytes
    signer: str

    def as_arg(self) -> tuple:
        return (list(self.values), list(self.coverage), self.evidence_root, self.signature)

    @property
    def least_coverage(self) -> int:
        """The report's weakest service: what the contract holds against the terms' minimum."""
        return min(self.coverage, default=0)
