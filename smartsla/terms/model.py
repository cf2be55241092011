"""The terms as typed objects: parties, payment, periods, services and their probes, compensation, oracles,
maintenance; values in the contracts' units (ppm, µs, bps, base units), and the document hash."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable

from eth_utils import keccak, to_checksum_address

from smartsla import constants, units
from smartsla.constants import (
    ADDRESS_RE,
    BASIS_COMBINED,
    BASIS_PER_SERVICE,
    COMBINE_WEIGHTED,
    COMBINE_WORST,
    COMBINED_ID,
    ETH_DECIMALS,
    MAX_AMOUNT,
    TEST_USD_DECIMALS,
    ZERO_ADDRESS,
)
from smartsla.encoding import service_bytes32
from smartsla.onchain.types import NO_COMBINED, OnChainService, OnChainTerms, OnChainTier
from smartsla.penalty import CreditRules, ServiceRule, TierRule
from smartsla.terms.errors import TermsError
from smartsla.terms.yaml import canonical_yaml
from smartsla.units import UnitError

AVAILABILITY = "availability"
LATENCY = "latency"
SUCCESS_RATE = "success-rate"
APDEX = "apdex"
OBJECTIVES = (AVAILABILITY, LATENCY, SUCCESS_RATE, APDEX)

# success-rate methods (OpenSLO's budgeting methods), docs/oracle.md
OCCURRENCES = "occurrences"
RATIO_TIMESLICES = "ratio-timeslices"
TIMESLICES = "timeslices"
EMPTY_GOOD = "good"
EMPTY_EXCLUDED = "excluded"
# where a service's measurements come from
FROM_SAMPLES = "samples"
FROM_EVENTS = "events"


@dataclass(frozen=True)
class Tier:
    threshold: int   # ppm (availability) or µs (latency)
    credit_bps: int


@dataclass(frozen=True)
class Probe:
    """How the oracle checks a service itself (``services[i].probe``).

    Durations are microseconds so that sub-second timeouts stay exact.
    """

    type: str                       # "http" | "tcp"
    timeout_us: int
    interval_us: int
    url: str | None = None          # http
    method: str = "GET"             # http
    expect_status: tuple[int, ...] = (200,)  # http
    keyword: str | None = None      # http: the body must contain it
    max_latency_us: int | None = None  # a slower answer counts as a failure
    host: str | None = None         # tcp
    port: int | None = None         # tcp

    @property
    def timeout(self) -> float:
        """Seconds, for socket and HTTP client APIs."""
        return self.timeout_us / 1_000_000

    @property
    def interval(self) -> float:
        return self.interval_us / 1_000_000

    @property
    def max_latency(self) -> float | None:
        return None if self.max_latency_us is None else self.max_latency_us / 1_000_000


GAPS_EXCLUDE = "exclude"
GAPS_DOWN = "down"
GAPS_UP = "up"


@dataclass(frozen=True)
class Measurement:
    """How samples become a period's availability (``measurement``); see docs/oracle.md."""

    slice: int = 60                 # seconds; divides the period length
    down_after: int = 1             # consecutive failed samples that make an outage
    gaps: str = GAPS_EXCLUDE        # "exclude" | "down" | "up"


@dataclass(frozen=True)
class EventSource:
    """Where the oracle reads a service's event counts besides imports (``services[i].events``): two PromQL
    expressions evaluated with ``query_range`` at the slice step, each giving the count in the slice that ends at
    the evaluation time (e.g. ``sum(increase(http_requests_total[5m]))`` for 5-minute slices)."""

    good: str                       # success-rate: good events; apdex: satisfied
    total: str
    tolerating: str | None = None   # apdex only
    url: str | None = None          # None: the oracle config's prometheus url


@dataclass(frozen=True)
class Service:
    id: str
    objective: str  # one of OBJECTIVES
    target: int     # ppm (availability, success-rate, apdex) or µs (latency)
    weight: int
    # Tiers that apply to this service on its own: its own schedule or a copy
    # of the agreement's with basis per-service; empty with basis combined.
    tiers: tuple[Tier, ...]
    own_schedule: bool = False
    probe: Probe | None = None      # None: measured from imported samples only
    percentile: Fraction | None = None   # latency: the nearest-rank percentile P, 0 < P <= 100
    threshold_us: int | None = None      # apdex: T
    method: str | None = None            # success-rate: OCCURRENCES | RATIO_TIMESLICES | TIMESLICES
    slice: int | None = None             # event slices in seconds (None: measurement.slice)
    empty_slice: str = EMPTY_GOOD        # ratio-timeslices/timeslices: a slice whose total is 0
    slice_target: int | None = None      # timeslices: ppm a slice's good/total must reach
    source: str = FROM_SAMPLES           # FROM_SAMPLES (probes, sample imports) or FROM_EVENTS (counts)
    samples_from: str | None = None      # another service whose samples this one is measured from
    events: EventSource | None = None

    @property
    def lower_is_better(self) -> bool:
        return self.objective == LATENCY

    @property
    def sample_service(self) -> str:
        """The service whose samples (probes and sample imports) this one is measured from: itself unless
        ``samples_from`` names another, so one probe can serve two objectives."""
        return self.samples_from or self.id

    @property
    def from_events(self) -> bool:
        return self.source == FROM_EVENTS

    @property
    def objective_words(self) -> str:
        """``availability``, ``p99 latency``, ``apdex (T = 500ms)``, ``success-rate (ratio-timeslices)``."""
        if self.objective == LATENCY:
            return f"p{self.percentile} latency"
        if self.objective == APDEX:
            return f"apdex (T = {units.format_us(self.threshold_us)})"
        if self.objective == SUCCESS_RATE:
            sliced = f", {units.format_seconds(self.slice)} slices" if self.slice else ""
            return f"success-rate ({self.method}{sliced})"
        return self.objective

    @property
    def id_bytes32(self) -> bytes:
        return service_bytes32(self.id)

    def parse_value(self, text: object) -> int:
        return parse_value(self.objective, text)

    def format_value(self, value: int) -> str:
        return format_value(self.objective, value)

    def to_chain(self) -> OnChainService:
        return OnChainService(self.id_bytes32, self.target, self.weight, self.lower_is_better,
                              tuple(OnChainTier(t.threshold, t.credit_bps) for t in self.tiers))


@dataclass(frozen=True)
class Payment:
    token: str          # "ETH", "test-usd" or a checksum ERC-20 address
    fee: str            # decimal text in token units, as written
    bond: str = "0"

    @property
    def known_decimals(self) -> int | None:
        """Decimals the tools know without asking a chain."""
        return {"ETH": ETH_DECIMALS, "test-usd": TEST_USD_DECIMALS}.get(self.token)

    def fee_units(self, decimals: int) -> int:
        return units.parse_token_amount(self.fee, decimals)

    def bond_units(self, decimals: int) -> int:
        return units.parse_token_amount(self.bond, decimals)


@dataclass(frozen=True)
class Periods:
    start: int | None   # unix seconds; None = "now" on dev chains
    length: int         # seconds
    count: int


@dataclass(frozen=True)
class Compensation:
    basis: str                    # "per-service" | "combined"
    combined: str                 # "min" | "weighted" (meaningful with combined)
    objective: str | None         # objective of the agreement schedule, None if unused
    target: int | None            # combined target (default: first tier threshold)
    schedule: tuple[Tier, ...]    # the agreement schedule, () if every service has its own
    cap_bps: int = 10_000


@dataclass(frozen=True)
class Oracles:
    members: tuple[str, ...]
    quorum: int
    deadline: int     # seconds
    fallback: str     # "full-credit" | "no-credit"
    min_coverage: int  # ppm: a report must have measured this much of each service's eligible slices

    @property
    def fallback_full_credit(self) -> bool:
        return self.fallback == "full-credit"


@dataclass(frozen=True)
class Maintenance:
    allowance: int = 0   # seconds per period
    notice: int = 0      # seconds


@dataclass(frozen=True)
class Terms:
    agreement: str
    provider: str
    customer: str
    payment: Payment
    periods: Periods
    services: tuple[Service, ...]
    compensation: Compensation
    oracles: Oracles
    maintenance: Maintenance
    # The document as parsed, with its ``extends`` chain resolved: the basis of the document hash.
    document: dict = field(repr=False, compare=False, hash=False)
    source: str = field(default="<terms>", compare=False)
    measurement: Measurement = field(default_factory=Measurement)
    # The files the document was resolved from, the base of the extends chain
    # first and ``source`` last; just ``(source,)`` without extends.
    sources: tuple[str, ...] = field(default=(), compare=False)

    @property
    def service_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.services)

    def service(self, service_id: str) -> Service:
        for s in self.services:
            if s.id == service_id:
                return s
        raise KeyError(f"no service {service_id!r}; services are {', '.join(self.service_ids)}")

    def parse_value(self, service_id: str, text: object) -> int:
        """A measured value for a service: ``"99.95%"`` -> ppm, ``"300ms"`` -> µs."""
        return self.service(service_id).parse_value(text)

    def format_value(self, service_id: str, value: int) -> str:
        return self.service(service_id).format_value(value)

    def canonical_json(self) -> bytes:
        return canonical_json(self.document)

    def canonical_yaml(self) -> str:
        """The resolved document as one standalone YAML file (see :func:`canonical_yaml`)."""
        return canonical_yaml(self.document)

    def document_hash(self) -> bytes:
        """keccak256 of the canonical JSON of the resolved document.

        Comments, key order and quoting style do not change it; values and
        keys do, including optional keys written out with their default.
        With ``extends`` it is the hash of the resolved document (``extends``
        gone), so files split differently that resolve to the same terms have
        the same hash, and changing a parent changes it.
        """
        return keccak(self.canonical_json())

    def combined_objective(self) -> str | None:
        """The objective of the combined number shown to people (payouts, simulate, the audit): the services'
        common objective; None when they differ, as no combined number then means anything, and for a lone
        service with basis per-service."""
        objectives = {s.objective for s in self.services}
        if len(objectives) != 1 or (len(self.services) == 1 and self.compensation.basis != "combined"):
            return None    # one service's value is its own combined number: nothing more to show
        return objectives.pop()

    def credit_rules(self) -> CreditRules:
        """The penalty-maths view (see :mod:`smartsla.penalty`)."""
        comp = self.compensation
        combined = None
        if comp.basis == "combined":
            combined = ServiceRule(
                id="combined",
                target=comp.target,
                weight=0,
                lower_is_better=comp.objective == LATENCY,
                tiers=tuple(TierRule(t.threshold, t.credit_bps) for t in comp.schedule),
            )
        return CreditRules(
            services=tuple(
                ServiceRule(s.id, s.target, s.weight, s.lower_is_better,
                            tuple(TierRule(t.threshold, t.credit_bps) for t in s.tiers))
                for s in self.services
            ),
            basis=BASIS_COMBINED if comp.basis == "combined" else BASIS_PER_SERVICE,
            combine=COMBINE_WEIGHTED if comp.combined == "weighted" else COMBINE_WORST,
            combined=combined,
            cap_bps=comp.cap_bps,
            fallback_full_credit=self.oracles.fallback_full_credit,
        )

    def _error(self, path: str, message: str) -> TermsError:
        return TermsError(path, message, source=self.source)

    def to_chain(
        self,
        resolve_address: Callable[[str, str], str],
        token_address: str | None = None,
        token_decimals: int | None = None,
        now: int | None = None,
        *,
        start: int | None = None,
    ) -> OnChainTerms:
        """The ``Terms`` struct as the contracts take it (an :class:`OnChainTerms`, the ABI tuple by name).

        ``resolve_address(name_or_address, key_path)`` maps a dev-account name
        or an address to a checksum address. ``token_address`` is the deployed
        token (needed for test-usd; may be omitted for ETH and for an ERC-20
        address written in the file). ``now`` replaces an omitted start;
        ``start`` replaces any start (e.g. a simulation moving a past start).
        """
        provider, customer, oracles = self._accounts(resolve_address)
        token_address, decimals = self._token(token_address, token_decimals)
        fee = _amount(self.payment.fee, decimals, "payment.fee", self.source, positive=True)
        bond = _amount(self.payment.bond, decimals, "payment.bond", self.source, positive=False)
        if fee + bond > MAX_AMOUNT:
            raise self._error("payment.bond", "fee + bond is too large: together at most 2**96-1 base units, "
                              "because a period's compensation (fee plus bond) must fit the contract's record")
        start = self._start(now, start)
        comp = self.compensation
        combined = NO_COMBINED
        if comp.basis == "combined":
            combined = OnChainService(COMBINED_ID, comp.target, 0, comp.objective == LATENCY,
                                      tuple(OnChainTier(t.threshold, t.credit_bps) for t in comp.schedule))
        return OnChainTerms(
            provider=provider,
            customer=customer,
            token=token_address,
            fee=fee,
            bond=bond,
            start=start,
            period_length=self.periods.length,
            period_count=self.periods.count,
            services=tuple(s.to_chain() for s in self.services),
            basis=BASIS_COMBINED if comp.basis == "combined" else BASIS_PER_SERVICE,
            combine=COMBINE_WEIGHTED if comp.basis == "combined" and comp.combined == "weighted" else COMBINE_WORST,
            combined=combined,
            cap_bps=comp.cap_bps,
            oracles=tuple(oracles),
            quorum=self.oracles.quorum,
            min_coverage=self.oracles.min_coverage,
            report_deadline=self.oracles.deadline,
            fallback_full_credit=self.oracles.fallback_full_credit,
            maintenance_allowance=self.maintenance.allowance,
            maintenance_notice=self.maintenance.notice,
            document_hash=self.document_hash(),
        )

    def _accounts(self, resolve_address: Callable[[str, str], str]) -> tuple[str, str, list[str]]:
        """Provider, customer and oracles as checksum addresses: distinct, each resolved from its name."""
        def resolve(value: str, path: str) -> str:
            address = resolve_address(value, path)
            if not isinstance(address, str) or not ADDRESS_RE.match(address):
                raise self._error(path, f"{value!r} resolved to {address!r}, which is not an address")
            return to_checksum_address(address)

        provider = resolve(self.provider, "provider")
        customer = resolve(self.customer, "customer")
        if provider == customer:
            raise self._error("customer", f"is the same account as the provider ({provider})")
        oracles: list[str] = []
        for i, member in enumerate(self.oracles.members):
            address = resolve(member, f"oracles.members[{i}]")
            if address in oracles:
                raise self._error(
                    f"oracles.members[{i}]",
                    f"{member!r} is the same account as oracles.members[{oracles.index(address)}]; "
                    "oracles must be distinct accounts",
                )
            oracles.append(address)
        return provider, customer, oracles

    def _token(self, token_address: str | None, token_decimals: int | None) -> tuple[str, int]:
        """The token's address (the zero address for ETH) and the decimals its amounts are written in."""
        token = self.payment.token
        if token == "ETH":
            if token_address not in (None, ZERO_ADDRESS):
                raise self._error("payment.token", f"is ETH but a token address {token_address} was given")
            token_address, decimals = ZERO_ADDRESS, ETH_DECIMALS if token_decimals is None else token_decimals
        else:
            if token_address is None:
                if token == "test-usd":
                    raise self._error("payment.token", "test-usd needs the address of the deployed test token")
                token_address = token
            elif token != "test-usd" and to_checksum_address(token_address) != token:
                raise self._error("payment.token", f"is {token} but the token address {token_address} was given")
            if token_decimals is None:
                decimals = self.payment.known_decimals
                if decimals is None:
                    raise self._error("payment.token", "the token's decimals are needed to convert amounts")
            else:
                decimals = token_decimals
            token_address = to_checksum_address(token_address)
        return token_address, decimals

    def _start(self, now: int | None, start: int | None) -> int:
        if start is None:
            start = self.periods.start
        if start is None:
            if now is None:
                raise self._error("periods.start", "is omitted, which is only allowed when the tools supply the current time (dev chains)")
            start = int(now)
        if start + self.periods.length * self.periods.count > constants.UINT64_MAX:
            raise self._error("periods", "the last period ends after the largest uint64 time")
        return start


def _amount(text: str, decimals: int, path: str, source: str, *, positive: bool) -> int:
    try:
        value = units.parse_token_amount(text, decimals)
    except UnitError as exc:
        raise TermsError(path, str(exc), source=source) from None
    if positive and value == 0:
        raise TermsError(path, "must be more than 0", source=source)
    if value > MAX_AMOUNT:
        raise TermsError(path, f"{text} is too large: at most 2**96-1 base units ({units.format_token_amount(MAX_AMOUNT, decimals)})", source=source)
    return value


def canonical_json(document: Any) -> bytes:
    """The bytes whose keccak256 is the document hash."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse_value(objective: str, text: object) -> int:
    """``("availability", "99.95%")`` -> 999500 ppm; ``("latency", "300ms")`` -> 300000 µs;
    ``("apdex", "0.94")`` -> 940000 ppm."""
    if objective in (AVAILABILITY, SUCCESS_RATE):
        return units.parse_percent_ppm(text)
    if objective == LATENCY:
        return units.parse_duration_us(text)
    if objective == APDEX:
        return units.parse_score_ppm(text)
    raise ValueError(f"unknown objective {objective!r}")


def format_value(objective: str, value: int) -> str:
    """The on-chain value in the objective's own unit: ``"99.95%"``, ``"212ms"``, ``"0.94"``."""
    if objective in (AVAILABILITY, SUCCESS_RATE):
        return units.format_ppm(value)
    if objective == LATENCY:
        return units.format_us(value)
    if objective == APDEX:
        return units.format_score(value)
    raise ValueError(f"unknown objective {objective!r}")


VALUE_EXAMPLES = {AVAILABILITY: '"99.9%"', SUCCESS_RATE: '"99.9%"', LATENCY: '"300ms"', APDEX: '"0.94"'}
