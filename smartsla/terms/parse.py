"""Loading, validation and on-chain encoding of a YAML terms file.

Structure and types are checked against ``terms.schema.json`` (JSON Schema
draft 2020-12); units, tier order and rules spanning several keys are checked
here. Every problem is a :class:`TermsError` naming the key path, so a user
can find and fix it without reading this code.
"""

from __future__ import annotations

import copy
import datetime as _dt
import difflib
import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

import jsonschema
import yaml
from eth_utils import is_checksum_address, keccak, to_checksum_address

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
    MAX_CAP_BPS,
    TEST_USD_DECIMALS,
    ZERO_ADDRESS,
)
from smartsla.encoding import service_bytes32
from smartsla.onchain.types import NO_COMBINED, OnChainService, OnChainTerms, OnChainTier
from smartsla.penalty import CreditRules, ServiceRule, TierRule
from smartsla.units import UnitError

__all__ = [
    "TermsError",
    "Tier",
    "Service",
    "Payment",
    "Periods",
    "Compensation",
    "Oracles",
    "Maintenance",
    "Probe",
    "Measurement",
    "Terms",
    "load_terms",
    "terms_from_document",
    "parse_value",
    "format_value",
    "canonical_json",
    "canonical_yaml",
    "ResolvedDocument",
    "resolve_terms_document",
    "format_path",
    "schema",
    "TIER_ABI_TYPE",
    "SERVICE_ABI_TYPE",
    "TERMS_ABI_TYPE",
]


TIER_ABI_TYPE = "(uint32,uint32)"
SERVICE_ABI_TYPE = f"(bytes32,uint32,uint32,bool,{TIER_ABI_TYPE}[])"
TERMS_ABI_TYPE = (
    "(address,address,address,uint256,uint256,uint64,uint64,uint32,"
    f"{SERVICE_ABI_TYPE}[],uint8,uint8,{SERVICE_ABI_TYPE},uint32,address[],uint8,"
    "uint64,bool,uint64,uint64,bytes32)"
)

AVAILABILITY = "availability"
LATENCY = "latency"

PathParts = tuple  # of str keys and int indexes


def format_path(parts: Sequence) -> str:
    """``("services", 0, "target")`` -> ``"services[0].target"``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class TermsError(ValueError):
    """A problem in a terms file, located by its key path.

    ``str(err)`` reads ``terms.yaml: compensation.schedule[1].below: <what and how to fix>``.
    ``line``/``column`` (1-based) are set when the position in the YAML is known.

    With ``extends``, ``source`` is the file that was loaded and ``path`` the key path in the
    resolved document; ``origin`` is the file the value was written in and ``origin_path`` its key
    path there (a service's index may differ). ``line``/``column`` are positions in ``origin``.
    ``str(err)`` then ends with ``(written in corporate.yaml, line 12, as services[0].target)``
    when the origin is another file or another key path. Both are ``None`` when the place is not
    one file's (a mapping merged from several files) or not known.
    """

    def __init__(
        self,
        path: str | Sequence = "",
        message: str = "",
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
        origin: str | None = None,
        origin_path: str | Sequence | None = None,
    ):
        self.path = path if isinstance(path, str) else format_path(path)
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        self.origin = origin
        self.origin_path = origin_path if origin_path is None or isinstance(origin_path, str) else format_path(origin_path)
        super().__init__(str(self))

    def __str__(self) -> str:
        text = ": ".join(p for p in (self.source, self.path, self.message) if p)
        if self.origin is not None and (self.origin != self.source or self.origin_path != self.path):
            where = f"written in {self.origin}"
            if self.line is not None:
                where += f", line {self.line}"
            if self.origin_path and self.origin_path != self.path:
                where += f", as {self.origin_path}"
            text += f" ({where})"
        return text


# --------------------------------------------------------------------------- YAML

class _Loader(yaml.SafeLoader):
    """YAML 1.2-like scalars so user text stays text.

    PyYAML follows YAML 1.1, where an unquoted ``0xAbC...`` address becomes an
    int, ``2027-01-01T00:00:00Z`` a datetime, ``on``/``no`` booleans and
    ``010`` an octal 8. Each of those would silently change the terms (and the
    document hash), so only plain decimal ints, decimal floats and
    true/false are recognised.
    """


_DROPPED_TAGS = {
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:timestamp",
}
_Loader.yaml_implicit_resolvers = {
    ch: [r for r in resolvers if r[0] not in _DROPPED_TAGS]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?[0-9]+[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    return int(loader.construct_scalar(node), 10)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict:
    loader.flatten_mapping(node)
    result: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"keys must be text, got {key!r}", key_node.start_mark
            )
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def _node_marks(node, parts: tuple = (), out: dict | None = None) -> dict:
    """Map each key path to the (line, column) where it is written."""
    if out is None:
        out = {(): (node.start_mark.line + 1, node.start_mark.column + 1)}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                child = parts + (key_node.value,)
                out.setdefault(child, (key_node.start_mark.line + 1, key_node.start_mark.column + 1))
                _node_marks(value_node, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = parts + (i,)
            out.setdefault(child, (item.start_mark.line + 1, item.start_mark.column + 1))
            _node_marks(item, child, out)
    return out


def _parse_yaml(text: str, source: str) -> tuple[Any, dict]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise TermsError("", "the file is empty; see docs/terms.md for the keys", source=source)
        doc = loader.construct_document(node)
        return doc, _node_marks(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        if mark is not None:
            line, column = mark.line + 1, mark.column + 1
            raise TermsError(
                "", f"line {line}, column {column}: {what}", source=source, line=line, column=column
            ) from None
        raise TermsError("", what, source=source) from None
    except yaml.YAMLError as exc:
        raise TermsError("", f"invalid YAML: {exc}", source=source) from None
    finally:
        loader.dispose()


# ------------------------------------------------------------------------- schema

@lru_cache(maxsize=1)
def schema() -> dict:
    """The JSON Schema of terms files (draft 2020-12)."""
    text = resources.files(__package__).joinpath("terms.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    # JSON Schema counts 12.0 as an integer; a float here would later reach
    # the ABI encoder or the maths, so integers must really be ints.
    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    strict = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=checker)
    return strict(schema())


_TYPE_NAMES = {
    "string": "text",
    "integer": "a whole number",
    "object": "a mapping of keys",
    "array": "a list",
    "number": "a number",
    "boolean": "true or false",
}


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _schema_error(err: jsonschema.ValidationError) -> tuple[tuple, str]:
    """Turn a jsonschema error into (key path, readable message)."""
    parts = tuple(err.absolute_path)
    sch = err.schema if isinstance(err.schema, dict) else {}
    expected = sch.get("x-expected")
    kind = err.validator
    if kind == "additionalProperties":
        allowed = list(sch.get("properties", {}))
        extra = [k for k in err.instance if k not in allowed]
        key = extra[0]
        hint = difflib.get_close_matches(key, allowed, n=1)
        did_you_mean = f'did you mean "{hint[0]}"? ' if hint else ""
        return parts + (key,), f"unknown key; {did_you_mean}allowed keys here: {', '.join(allowed)}"
    if kind == "required":
        missing = [k for k in err.validator_value if k not in err.instance]
        key = missing[0]
        sub = sch.get("properties", {}).get(key, {})
        sub_expected = _resolve(sub).get("x-expected")
        hint = f" ({sub_expected})" if sub_expected else ""
        return parts + (key,), f"missing required key{hint}"
    if kind == "type":
        types = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        if expected:
            want = expected
        else:
            want = " or ".join(_TYPE_NAMES.get(t, t) for t in types)
        extra = ""
        if isinstance(err.instance, float):
            extra = " (quote it so it stays exact)"
        elif isinstance(err.instance, (int, float)) and not isinstance(err.instance, bool) and "string" in types:
            extra = " (quote it)"
        return parts, f"expected {want}, got {_describe(err.instance)}{extra}"
    if kind == "enum":
        allowed = " | ".join(str(v) for v in err.validator_value)
        return parts, f"{_describe(err.instance)} is not allowed; use one of: {allowed}"
    if kind == "pattern":
        return parts, f"{_describe(err.instance)} is not valid: expected {expected or 'text matching ' + err.validator_value}"
    if kind == "minimum":
        return parts, f"must be at least {err.validator_value}, got {_describe(err.instance)}"
    if kind == "maximum":
        return parts, f"must be at most {err.validator_value}, got {_describe(err.instance)}"
    if kind == "minItems":
        return parts, f"needs at least {err.validator_value} entr{'y' if err.validator_value == 1 else 'ies'}"
    if kind == "maxItems":
        return parts, f"has {len(err.instance)} entries; at most {err.validator_value} are allowed"
    if kind == "minLength":
        return parts, f"must not be empty{': expected ' + expected if expected else ''}"
    return parts, err.message


def _resolve(sub: dict) -> dict:
    ref = sub.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return schema()["$defs"][ref[len("#/$defs/"):]]
    return sub


def _error_order(err: jsonschema.ValidationError, marks: dict) -> tuple:
    # Report the problem that comes first in the file, so fixing errors top to
    # bottom converges; unknown positions sort last.
    parts = tuple(err.absolute_path)
    while parts and parts not in marks:
        parts = parts[:-1]
    line, column = marks.get(parts, (10**9, 0))
    return (line, column, -len(err.absolute_path), str(err.validator))


# -------------------------------------------------------------------------- model

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
class Service:
    id: str
    objective: str  # "availability" | "latency"
    target: int     # ppm or µs
    weight: int
    # Tiers that apply to this service on its own: its own schedule or a copy
    # of the agreement's with basis per-service; empty with basis combined.
    tiers: tuple[Tier, ...]
    own_schedule: bool = False
    probe: Probe | None = None      # None: measured from imported samples only

    @property
    def lower_is_better(self) -> bool:
        return self.objective == LATENCY

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
        fee = _amount(self.payment.fee, decimals, "payment.fee", self.source, positive=True)
        bond = _amount(self.payment.bond, decimals, "payment.bond", self.source, positive=False)
        if fee + bond > MAX_AMOUNT:
            raise self._error("payment.bond", "fee + bond is too large: together at most 2**96-1 base units, "
                              "because a period's compensation (fee plus bond) must fit the contract's record")

        if start is None:
            start = self.periods.start
        if start is None:
            if now is None:
                raise self._error("periods.start", "is omitted, which is only allowed when the tools supply the current time (dev chains)")
            start = int(now)
        if start + self.periods.length * self.periods.count > constants.UINT64_MAX:
            raise self._error("periods", "the last period ends after the largest uint64 time")

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
            report_deadline=self.oracles.deadline,
            fallback_full_credit=self.oracles.fallback_full_credit,
            maintenance_allowance=self.maintenance.allowance,
            maintenance_notice=self.maintenance.notice,
            document_hash=self.document_hash(),
        )


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
    """``("availability", "99.95%")`` -> 999500 ppm; ``("latency", "300ms")`` -> 300000 µs."""
    if objective == AVAILABILITY:
        return units.parse_percent_ppm(text)
    if objective == LATENCY:
        return units.parse_duration_us(text)
    raise ValueError(f"unknown objective {objective!r}")


def format_value(objective: str, value: int) -> str:
    if objective == AVAILABILITY:
        return units.format_ppm(value)
    if objective == LATENCY:
        return units.format_us(value)
    raise ValueError(f"unknown objective {objective!r}")


# ------------------------------------------------------------------------ loading

def load_terms(
    path_or_text: str | os.PathLike | dict,
    *,
    source_name: str | None = None,
    base_dir: str | os.PathLike | None = None,
) -> Terms:
    """Load and validate a terms file, resolving its ``extends`` chain.

    A ``Path`` (or a string without a newline) is read as a file; a string
    containing a newline is YAML text; a dict is an already parsed document.
    ``extends`` is relative to the folder of the file that says it; for YAML
    text or a dict, to ``base_dir`` (default: the current directory).
    The resolved document is validated and hashed (see docs/terms.md,
    "Multi-level terms: extends"); ``Terms.sources`` names the files.
    """
    resolved = resolve_terms_document(path_or_text, source_name=source_name, base_dir=base_dir)
    return _parser_for(resolved).parse()


def terms_from_document(
    document: dict, *, source_name: str | None = None, base_dir: str | os.PathLike | None = None
) -> Terms:
    """Validate an already parsed document (e.g. from JSON); an ``extends`` in it is resolved."""
    return load_terms(document, source_name=source_name, base_dir=base_dir)


@dataclass(frozen=True)
class ResolvedDocument:
    """A terms document with its ``extends`` chain applied, not yet validated.

    ``data`` is the plain document (dicts, lists, text, numbers; ``extends``,
    ``remove:`` entries and ``null`` removals consumed), the one the document
    hash covers. ``sources`` are the files it came from: the base of the chain
    first, the file that was loaded last (just that file without extends).
    ``load_terms`` validates it; ``canonical_yaml()`` renders it as one
    standalone file with the same document hash.
    """

    data: Any
    sources: tuple[str, ...]
    _origins: _Origins | None = field(default=None, repr=False, compare=False)
    _marks: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def source(self) -> str:
        """The file (or name) that was loaded: the last of ``sources``."""
        return self.sources[-1]

    def canonical_json(self) -> bytes:
        return canonical_json(self.data)

    def canonical_yaml(self) -> str:
        return canonical_yaml(self.data)


def resolve_terms_document(
    path_or_text: str | os.PathLike | dict,
    *,
    source_name: str | None = None,
    base_dir: str | os.PathLike | None = None,
) -> ResolvedDocument:
    """Read a terms file (or text, or a dict, as :func:`load_terms`) and apply its ``extends`` chain.

    Raises :class:`TermsError` for unreadable or malformed files, a missing
    parent (key path ``extends``), a loop in the chain (the files named) and
    merge problems (a service without an id, a duplicate id, a ``remove:`` of
    a service no parent has, a ``null`` removing a key no parent sets). The
    result is not validated: call :func:`load_terms` for that.
    """
    doc, marks, label, folder, path = _read_document(path_or_text, source_name, base_dir)
    return _Resolver().resolve(doc, marks, label, folder, path)


def _read_document(path_or_text, source_name, base_dir) -> tuple[Any, dict, str, str, str | None]:
    """(document, key-path marks, source label, folder its ``extends`` is relative to, file path or None)."""
    folder = os.fspath(base_dir) if base_dir is not None else ""
    if isinstance(path_or_text, dict):
        return copy.deepcopy(path_or_text), {}, source_name or "<terms>", folder, None
    if isinstance(path_or_text, os.PathLike) or (
        isinstance(path_or_text, str) and "\n" not in path_or_text and not path_or_text.lstrip().startswith("{")
    ):
        path = os.fspath(path_or_text)
        source = source_name or path
        text = _read_file(path, source)
        doc, marks = _parse_yaml(text, source)
        return doc, marks, source, os.path.dirname(path) if base_dir is None else folder, path
    if isinstance(path_or_text, str):
        source = source_name or "<terms>"
        doc, marks = _parse_yaml(path_or_text, source)
        return doc, marks, source, folder, None
    raise TypeError(f"load_terms takes a path, YAML text or a dict, not {type(path_or_text).__name__}")


def _read_file(path: str, source: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise TermsError("", f"cannot read the terms file: {exc.strerror or exc}", source=source) from None
    except UnicodeDecodeError:
        raise TermsError("", "the terms file is not UTF-8 text", source=source) from None


# ------------------------------------------------------------------------ extends

EXTENDS = "extends"
REMOVE = "remove"
_MERGED = None  # a place written by several files has no single origin


class _Node:
    """Where each part of a document was written: ``origin`` is (file, key path in that file)."""

    __slots__ = ("items", "origin")

    def __init__(self, origin: tuple[str, tuple] | None, items: dict | list | None = None):
        self.origin = origin
        self.items = items

    @classmethod
    def of(cls, value: Any, file: str, path: tuple = ()) -> _Node:
        if isinstance(value, dict):
            return cls((file, path), {k: cls.of(v, file, path + (k,)) for k, v in value.items()})
        if isinstance(value, list):
            return cls((file, path), [cls.of(v, file, path + (i,)) for i, v in enumerate(value)])
        return cls((file, path))


@dataclass
class _Origins:
    """Resolved key path -> where it was written; the marks of every file in the chain."""

    where: dict            # resolved path -> (file, path in file) | None (merged)
    marks: dict            # file -> {path in file: (line, column)}

    def locate(self, parts: tuple) -> tuple[str | None, tuple | None]:
        for k in range(len(parts), -1, -1):
            if parts[:k] in self.where:
                origin = self.where[parts[:k]]
                if origin is _MERGED:
                    return None, None
                file, fpath = origin
                return file, tuple(fpath) + tuple(parts[k:])
        return None, None

    def order_marks(self, sources: tuple[str, ...]) -> dict:
        """Resolved path -> (file rank, line, column): reports the first problem of the base file first."""
        rank = {s: i for i, s in enumerate(sources)}
        out = {}
        for parts, origin in self.where.items():
            if origin is _MERGED:
                continue
            file, fpath = origin
            line_col = self.marks.get(file, {}).get(tuple(fpath))
            if line_col:
                out[parts] = (rank.get(file, len(sources)),) + tuple(line_col)
        return out


@dataclass
class _Layer:
    label: str
    doc: dict
    marks: dict
    folder: str


class _Resolver:
    def resolve(self, doc: Any, marks: dict, label: str, folder: str, path: str | None) -> ResolvedDocument:
        if not isinstance(doc, dict) or EXTENDS not in doc:
            return ResolvedDocument(doc, (label,), None, marks)
        self.marks_by_file: dict[str, dict] = {label: marks}
        layers = self.chain(_Layer(label, doc, marks, folder), path)   # the loaded file first
        base = layers[-1]
        self.check_services(base)
        for service_path, entry in self.entries(base):
            if isinstance(entry, dict) and REMOVE in entry:
                raise self.file_error(
                    base.label, service_path + (REMOVE,),
                    "only removes a service inherited through extends, and this file extends nothing; "
                    "delete the service instead",
                )
        value: Any = base.doc
        node = _Node.of(value, base.label)
        for layer in reversed(layers[:-1]):
            self.check_services(layer)
            self.parent_labels = ", ".join(x.label for x in layers[layers.index(layer) + 1:])
            self.layer = layer
            value, node = self.merge(value, node, layer.doc, _Node.of(layer.doc, layer.label), ())
        where: dict = {}
        self.flatten(value, node, (), where)
        origins = _Origins(where, self.marks_by_file)
        sources = tuple(x.label for x in reversed(layers))
        return ResolvedDocument(copy.deepcopy(value), sources, origins, origins.order_marks(sources))

    # -- the chain

    def chain(self, top: _Layer, path: str | None) -> list[_Layer]:
        layers = [top]
        seen: dict[str, int] = {}
        if path is not None:
            seen[os.path.realpath(path)] = 0
        layer = top
        while EXTENDS in layer.doc:
            ref = layer.doc.pop(EXTENDS)
            if not isinstance(ref, str) or not ref.strip():
                raise self.file_error(
                    layer.label, (EXTENDS,),
                    f"expected the path of the terms file this one extends, such as \"corporate.yaml\" "
                    f"(relative to this file's folder), got {_describe(ref)}",
                )
            label = os.path.normpath(os.path.join(layer.folder, ref))
            real = os.path.realpath(label)
            if real in seen:
                loop = [x.label for x in layers[seen[real]:]] + [label]
                raise self.file_error(
                    layer.label, (EXTENDS,),
                    f"the extends chain loops: {' -> '.join(loop)}; a terms file cannot extend itself "
                    "or a file that extends it, so remove one of these extends",
                )
            try:
                with open(label, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError as exc:
                via = f" (reached through {' -> '.join(x.label for x in layers)})" if len(layers) > 1 else ""
                raise self.file_error(
                    layer.label, (EXTENDS,),
                    f"cannot read {_describe(ref)} ({label}): {exc.strerror or exc}{via}; the path is relative "
                    f"to the folder of the file that says extends",
                ) from None
            except UnicodeDecodeError:
                raise self.file_error(layer.label, (EXTENDS,), f"{label} is not UTF-8 text") from None
            doc, marks = _parse_yaml(text, label)
            if not isinstance(doc, dict):
                raise TermsError("", f"the top level must be a mapping of keys, got {_describe(doc)}", source=label)
            self.marks_by_file[label] = marks
            seen[real] = len(layers)
            layer = _Layer(label, doc, marks, os.path.dirname(label))
            layers.append(layer)
        return layers

    # -- errors

    def file_error(self, file: str, parts: tuple, message: str) -> TermsError:
        marks = self.marks_by_file.get(file, {})
        at = tuple(parts)
        while at and at not in marks:  # a missing key: the line of the mapping that lacks it
            at = at[:-1]
        line_col = marks.get(at)
        line, column = line_col if line_col else (None, None)
        return TermsError(parts, message, source=file, line=line, column=column)

    def node_error(self, node: _Node, extra: tuple, message: str) -> TermsError:
        file, parts = node.origin
        return self.file_error(file, tuple(parts) + extra, message)

    # -- services

    @staticmethod
    def entries(layer: _Layer):
        services = layer.doc.get("services")
        if isinstance(services, list):
            for i, entry in enumerate(services):
                yield ("services", i), entry

    def check_services(self, layer: _Layer) -> None:
        """Services merge by id, so every file of a chain needs ids, unique in the file."""
        seen: dict[str, int] = {}
        for parts, entry in self.entries(layer):
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                what = "id" if isinstance(entry, dict) else ""
                raise self.file_error(
                    layer.label, parts + ((what,) if what else ()),
                    "every service needs an id such as \"api\" when terms use extends: services merge by id",
                )
            sid = entry["id"]
            if sid in seen:
                raise self.file_error(
                    layer.label, parts + ("id",),
                    f"{_describe(sid)} is already used by services[{seen[sid]}] of this file; ids must be unique "
                    "(a file that extends another changes an inherited service by writing its id once)",
                )
            seen[sid] = parts[1]

    def merge_services(self, parent: list, pnode: _Node, child: list, cnode: _Node) -> tuple[list, _Node]:
        inherited = {entry["id"]: i for i, entry in enumerate(parent)}
        removed: set[str] = set()
        merged: dict[str, tuple] = {}
        added: list[tuple] = []
        for j, entry in enumerate(child):
            sid, node = entry["id"], cnode.items[j]
            if REMOVE in entry:
                if entry[REMOVE] is not True:
                    raise self.node_error(
                        node, (REMOVE,),
                        f"{_describe(entry[REMOVE])} is not allowed; write remove: true to drop the inherited "
                        "service, or delete this key",
                    )
                extra = [k for k in entry if k not in ("id", REMOVE)]
                if extra:
                    raise self.node_error(
                        node, (extra[0],),
                        "a service with remove: true takes only its id; delete this key, or the remove: true",
                    )
                if sid not in inherited:
                    have = ", ".join(inherited) or "none"
                    raise self.node_error(
                        node, ("id",),
                        f"remove: true, but no parent file has a service {_describe(sid)} "
                        f"(inherited services: {have}); fix the id or delete this entry",
                    )
                removed.add(sid)
            elif sid in inherited:
                i = inherited[sid]
                merged[sid] = self.merge(parent[i], pnode.items[i], entry, node, ("services", i))
            else:
                added.append((entry, node))
        values, nodes = [], []
        for i, entry in enumerate(parent):
            if entry["id"] in removed:
                continue
            value, node = merged.get(entry["id"], (entry, pnode.items[i]))
            values.append(value)
            nodes.append(node)
        for value, node in added:
            values.append(value)
            nodes.append(node)
        return values, _Node(_MERGED, nodes)

    # -- the merge

    def merge(self, parent: Any, pnode: _Node, child: Any, cnode: _Node, path: tuple) -> tuple[Any, _Node]:
        """``child`` over ``parent``: mappings key by key (``null`` removes a key), the top-level
        ``services`` by id, everything else replaced by the child's value."""
        if isinstance(parent, dict) and isinstance(child, dict):
            values: dict = {}
            nodes: dict = {}
            for key, value in parent.items():
                if key not in child:
                    values[key], nodes[key] = value, pnode.items[key]
                elif child[key] is not None:
                    values[key], nodes[key] = self.merge(value, pnode.items[key], child[key], cnode.items[key],
                                                         path + (key,))
            for key, value in child.items():
                if key in parent:
                    continue
                if value is None:
                    raise self.node_error(
                        cnode.items[key], (),
                        f"null removes an inherited key, but no parent file ({self.parent_labels}) sets "
                        f"{format_path(path + (key,))}; delete this line",
                    )
                values[key], nodes[key] = value, cnode.items[key]
            return values, _Node(_MERGED, nodes)
        if path == ("services",) and isinstance(parent, list) and isinstance(child, list):
            return self.merge_services(parent, pnode, child, cnode)
        return child, cnode

    def flatten(self, value: Any, node: _Node, parts: tuple, where: dict) -> None:
        where[parts] = node.origin
        if isinstance(value, dict) and isinstance(node.items, dict):
            for key, item in value.items():
                self.flatten(item, node.items[key], parts + (key,), where)
        elif isinstance(value, list) and isinstance(node.items, list):
            for i, item in enumerate(value):
                self.flatten(item, node.items[i], parts + (i,), where)


def _parser_for(resolved: ResolvedDocument) -> _Parser:
    return _Parser(resolved.data, resolved.source, resolved._marks, resolved._origins, resolved.sources)


# ------------------------------------------------------------------ canonical YAML

class _FlowMap(dict):
    pass


class _FlowList(list):
    pass


class _CanonicalDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # no anchors: every value written out
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)  # list items indented under their key

    def analyze_scalar(self, scalar: str):
        # PyYAML writes these line breaks raw outside double quotes, and reading
        # them back folds them; double quotes escape them.
        analysis = super().analyze_scalar(scalar)
        if any(ch in scalar for ch in "\x85\u2028\u2029"):
            analysis.allow_flow_plain = analysis.allow_block_plain = False
            analysis.allow_single_quoted = analysis.allow_block = False
        return analysis


# Text that YAML 1.1 readers or this module's loader would read as something
# else than text (a number, a boolean, a time, null) is quoted.
_CanonicalDumper.yaml_implicit_resolvers = {
    ch: list(yaml.SafeDumper.yaml_implicit_resolvers.get(ch, [])) + list(_Loader.yaml_implicit_resolvers.get(ch, []))
    for ch in set(yaml.SafeDumper.yaml_implicit_resolvers) | set(_Loader.yaml_implicit_resolvers)
}
_CanonicalDumper.add_representer(
    _FlowMap, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True))
_CanonicalDumper.add_representer(
    _FlowList, lambda d, data: d.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True))
_CanonicalDumper.add_representer(
    dict, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=False))
_CanonicalDumper.add_representer(
    list, lambda d, data: d.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=False))


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def _canonical_shape(value: Any, sch: dict | None, in_list: bool = False) -> Any:
    sch = _resolve(sch) if isinstance(sch, dict) else {}
    if isinstance(value, dict):
        known = list(sch.get("properties", {}))
        keys = [k for k in known if k in value] + sorted(k for k in value if k not in known)
        out = {k: _canonical_shape(value[k], sch.get("properties", {}).get(k)) for k in keys}
        if in_list and out and all(_is_scalar(v) for v in out.values()):
            return _FlowMap(out)
        return out
    if isinstance(value, list):
        items = [_canonical_shape(v, sch.get("items"), True) for v in value]
        if items and all(_is_scalar(v) for v in items):
            return _FlowList(items)
        return items
    return value


def canonical_yaml(document: Any) -> str:
    """One deterministic YAML rendering of a (resolved) document.

    Keys in the order of docs/terms.md and the schema (agreement, provider,
    customer, payment, periods, services, compensation, oracles, maintenance,
    measurement; unknown keys after, sorted); lists of plain values and
    mappings of plain values inside lists (tiers, simple services) on one
    line; text that could read as a number, boolean or time quoted. Loading
    it gives the same document, so the same document hash: it is the
    standalone form of terms written with ``extends``.
    """
    shaped = _canonical_shape(document, schema())
    return yaml.dump(shaped, Dumper=_CanonicalDumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=1_000_000, indent=2)


class _Parser:
    def __init__(self, doc: Any, source: str, marks: dict, origins: _Origins | None = None,
                 sources: tuple[str, ...] = ()):
        self.doc = doc
        self.source = source
        self.marks = marks
        self.origins = origins
        self.sources = sources or (source,)

    def error(self, parts: tuple, message: str) -> TermsError:
        parts = tuple(parts)
        if self.origins is None:
            line_col = self.marks.get(parts)
            line, column = line_col if line_col else (None, None)
            return TermsError(parts, message, source=self.source, line=line, column=column)
        file, fpath = self.origins.locate(parts)
        line_col = self.origins.marks.get(file, {}).get(fpath) if file is not None else None
        line, column = line_col if line_col else (None, None)
        return TermsError(parts, message, source=self.source, line=line, column=column,
                          origin=file, origin_path=fpath)

    def unit(self, parts: tuple, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UnitError as exc:
            raise self.error(parts, str(exc)) from None

    # -- entry

    def parse(self) -> Terms:
        doc = self.doc
        if not isinstance(doc, dict):
            raise self.error((), f"the top level must be a mapping of keys (agreement, provider, ...), got {_describe(doc)}")
        errors = list(_validator().iter_errors(doc))
        if errors:
            first = min(errors, key=lambda e: _error_order(e, self.marks))
            parts, message = _schema_error(first)
            raise self.error(parts, message)

        provider = self.party(("provider",), doc["provider"])
        customer = self.party(("customer",), doc["customer"])
        if provider.lower() == customer.lower():
            raise self.error(("customer",), f"is the same as the provider ({provider}); they must be different parties")
        payment = self.payment(doc["payment"])
        periods = self.periods(doc["periods"])
        compensation, services = self.compensation_and_services(doc["compensation"], doc["services"])
        oracles = self.oracles(doc["oracles"])
        maintenance = self.maintenance(doc.get("maintenance", {}), periods)
        measurement = self.measurement(doc.get("measurement", {}), periods)
        return Terms(
            agreement=doc["agreement"],
            provider=provider,
            customer=customer,
            payment=payment,
            periods=periods,
            services=services,
            compensation=compensation,
            oracles=oracles,
            maintenance=maintenance,
            document=doc,
            source=self.source,
            measurement=measurement,
            sources=self.sources,
        )

    # -- pieces

    def party(self, parts: tuple, value: str) -> str:
        if value.startswith("0x") and not ADDRESS_RE.match(value):
            raise self.error(parts, f"{_describe(value)} is not an address: it needs exactly 40 hex digits after 0x")
        if ADDRESS_RE.match(value):
            body = value[2:]
            if body != body.lower() and body != body.upper() and not is_checksum_address(value):
                raise self.error(
                    parts,
                    f"{value} has an invalid checksum (a typo?); the checksummed form of that address is "
                    f"{to_checksum_address(value)}, or write it all in lower case",
                )
            return to_checksum_address(value)
        return value

    def payment(self, p: dict) -> Payment:
        token = p["token"]
        if token in ("ETH", "test-usd"):
            pass
        elif ADDRESS_RE.match(token) or token.startswith("0x"):
            token = self.party(("payment", "token"), token)
            if token == ZERO_ADDRESS:
                raise self.error(("payment", "token"), "the zero address is not a token; write ETH for ether")
        else:
            raise self.error(
                ("payment", "token"),
                f"{_describe(token)} is not a token: use ETH, test-usd (dev chains) or an ERC-20 address",
            )
        known = {"ETH": ETH_DECIMALS, "test-usd": TEST_USD_DECIMALS}.get(token)
        amounts = {}
        for key, default in (("fee", None), ("bond", "0")):
            raw = p.get(key, default)
            parts = ("payment", key)
            self.unit(parts, units.check_token_amount, raw)
            if known is not None:
                _amount_checked = self.unit(parts, units.parse_token_amount, raw, known)
                if _amount_checked > MAX_AMOUNT:
                    raise self.error(parts, f"{raw} is too large: at most 2**96-1 base units")
            amounts[key] = str(raw)
        if units.check_token_amount(amounts["fee"]) == 0:
            raise self.error(("payment", "fee"), "must be more than 0 (the fee per period)")
        return Payment(token=token, fee=amounts["fee"], bond=amounts["bond"])

    def periods(self, p: dict) -> Periods:
        start = p.get("start")
        if isinstance(start, int):
            if start < 0:
                raise self.error(("periods", "start"), "unix seconds must not be negative")
        elif isinstance(start, str):
            start = self.timestamp(("periods", "start"), start)
        length = self.unit(("periods", "length"), units.parse_duration_seconds, p["length"])
        if length == 0:
            raise self.error(("periods", "length"), "must be longer than 0s")
        count = p["count"]
        if start is not None and start + length * count > constants.UINT64_MAX:
            raise self.error(("periods",), "the last period ends after the largest uint64 time")
        return Periods(start=start, length=length, count=count)

    def timestamp(self, parts: tuple, text: str) -> int:
        try:
            moment = _dt.datetime.fromisoformat(text)
        except ValueError:
            raise self.error(parts, f"{_describe(text)} is not a time; write e.g. \"2027-01-01T00:00:00Z\" or unix seconds") from None
        if moment.tzinfo is None:
            raise self.error(parts, f"{_describe(text)} has no time zone; add \"Z\" for UTC, e.g. \"2027-01-01T00:00:00Z\"")
        seconds = moment.timestamp()
        if seconds < 0 or seconds != int(seconds):
            raise self.error(parts, f"{_describe(text)} must be a whole second after 1970-01-01")
        return int(seconds)

    def schedule(self, parts: tuple, tiers: list, objective: str, cap_bps: int, cap_text: str) -> tuple[Tier, ...]:
        key, other = ("above", "below") if objective == LATENCY else ("below", "above")
        out: list[Tier] = []
        raws: list[tuple[str, str]] = []
        for i, tier in enumerate(tiers):
            tp = parts + (i,)
            if other in tier:
                if objective == LATENCY:
                    why = 'latency tiers use "above:" (a duration such as "500ms"): the credit applies when latency is above it'
                else:
                    why = 'availability tiers use "below:" (a percentage such as "99.9%"): the credit applies when availability is below it'
                raise self.error(tp + (other,), f'"{other}:" does not fit {objective}; {why}')
            if key not in tier:
                raise self.error(tp, f'missing "{key}:"; each {objective} tier says {key} which value its credit applies')
            raw = tier[key]
            if objective == LATENCY:
                threshold = self.unit(tp + (key,), units.parse_duration_us, raw)
            else:
                threshold = self.unit(tp + (key,), units.parse_percent_ppm, raw)
                if threshold == 0:
                    raise self.error(tp + (key,), 'below "0%" can never apply; use a threshold above 0%')
            credit = self.unit(tp + ("credit",), units.parse_percent_bps, tier["credit"])
            if credit == 0:
                raise self.error(tp + ("credit",), "a tier's credit must be more than 0%")
            if credit > cap_bps:
                raise self.error(
                    tp + ("credit",),
                    f'{_describe(tier["credit"])} is more than compensation.cap {_describe(cap_text)}; '
                    "lower the credit or raise the cap",
                )
            if out:
                prev_raw_threshold, prev_raw_credit = raws[-1]
                prev = out[-1]
                wrong = threshold >= prev.threshold if objective == AVAILABILITY else threshold <= prev.threshold
                if wrong:
                    relation = "below" if objective == AVAILABILITY else "above"
                    raise self.error(
                        tp + (key,),
                        f"tiers must go from mildest to most severe: {_describe(raw)} must be {relation} "
                        f"{_describe(prev_raw_threshold)} (the tier before it)",
                    )
                if credit <= prev.credit_bps:
                    raise self.error(
                        tp + ("credit",),
                        f"tiers must go from mildest to most severe: credit {_describe(tier['credit'])} must be "
                        f"more than {_describe(prev_raw_credit)} (the tier before it)",
                    )
            out.append(Tier(threshold, credit))
            raws.append((raw, tier["credit"]))
        return tuple(out)

    def compensation_and_services(self, comp: dict, raw_services: list) -> tuple[Compensation, tuple[Service, ...]]:
        basis = comp.get("basis", "per-service")
        if basis != "combined":
            for key in ("combined", "target"):
                if key in comp:
                    raise self.error(
                        ("compensation", key),
                        "is only used with basis: combined; remove it, or set compensation.basis: combined",
                    )
        combine = comp.get("combined", "min")
        cap_text = comp.get("cap", "100%")
        cap_bps = self.unit(("compensation", "cap"), units.parse_percent_bps, cap_text)
        if cap_bps == 0 or cap_bps > MAX_CAP_BPS:
            raise self.error(("compensation", "cap"), "must be more than 0% and at most 10000%")

        seen: dict[str, int] = {}
        for i, s in enumerate(raw_services):
            if s["id"] in seen:
                raise self.error(("services", i, "id"), f"{_describe(s['id'])} is already used by services[{seen[s['id']]}]; ids must be unique")
            seen[s["id"]] = i

        objectives = [s.get("objective", AVAILABILITY) for s in raw_services]
        users = [i for i, s in enumerate(raw_services) if "schedule" not in s]
        if basis == "combined":
            for i, s in enumerate(raw_services):
                if objectives[i] != objectives[0]:
                    raise self.error(
                        ("services", i, "objective"),
                        f"basis combined needs every service to share one objective, but services[0] is "
                        f"{objectives[0]} and this is {objectives[i]}; use basis: per-service",
                    )
                if "schedule" in s:
                    raise self.error(
                        ("services", i, "schedule"),
                        "a service's own schedule is only used with basis: per-service; move it to compensation.schedule",
                    )
            agreement_objective: str | None = objectives[0]
        else:
            agreement_objective = objectives[users[0]] if users else None
            for i in users:
                if objectives[i] != agreement_objective:
                    raise self.error(
                        ("services", i),
                        f"this {objectives[i]} service has no schedule of its own, but compensation.schedule is for "
                        f"{agreement_objective} (set by services[{users[0]}]); give it its own schedule",
                    )

        schedule: tuple[Tier, ...] = ()
        if agreement_objective is not None:
            if "schedule" not in comp:
                who = "basis combined" if basis == "combined" else f"services[{users[0]}] has no schedule of its own and"
                raise self.error(("compensation", "schedule"), f"missing: {who} needs compensation.schedule")
            schedule = self.schedule(("compensation", "schedule"), comp["schedule"], agreement_objective, cap_bps, cap_text)
        elif "schedule" in comp:
            # Unused but present: still validate it so a typo does not hide.
            kinds = {"above" if "above" in t else "below" for t in comp["schedule"]}
            kind_objective = LATENCY if kinds == {"above"} else AVAILABILITY
            schedule = self.schedule(("compensation", "schedule"), comp["schedule"], kind_objective, cap_bps, cap_text)

        target = None
        if basis == "combined":
            if "target" in comp:
                target = self.unit(("compensation", "target"), parse_value, agreement_objective, comp["target"])
            else:
                target = schedule[0].threshold

        services = []
        for i, s in enumerate(raw_services):
            objective = objectives[i]
            sp = ("services", i)
            target_value = self.unit(sp + ("target",), parse_value, objective, s["target"])
            if "schedule" in s:
                tiers = self.schedule(sp + ("schedule",), s["schedule"], objective, cap_bps, cap_text)
            elif basis == "combined":
                tiers = ()
            else:
                tiers = schedule
            services.append(
                Service(
                    id=s["id"],
                    objective=objective,
                    target=target_value,
                    weight=s.get("weight", 1),
                    tiers=tiers,
                    own_schedule="schedule" in s,
                    probe=self.probe(sp + ("probe",), s["probe"]) if "probe" in s else None,
                )
            )
        compensation = Compensation(
            basis=basis,
            combined=combine,
            objective=agreement_objective,
            target=target,
            schedule=schedule,
            cap_bps=cap_bps,
        )
        return compensation, tuple(services)

    def oracles(self, o: dict) -> Oracles:
        members = []
        seen: dict[str, int] = {}
        for i, m in enumerate(o["members"]):
            member = self.party(("oracles", "members", i), m)
            key = member.lower()
            if key in seen:
                raise self.error(("oracles", "members", i), f"{_describe(m)} is already oracles.members[{seen[key]}]; members must be distinct")
            seen[key] = i
            members.append(member)
        quorum = o["quorum"]
        if quorum > len(members):
            raise self.error(("oracles", "quorum"), f"{quorum} is more than the {len(members)} members; it must be 1..{len(members)}")
        deadline = self.unit(("oracles", "deadline"), units.parse_duration_seconds, o["deadline"])
        if deadline == 0:
            raise self.error(("oracles", "deadline"), "must be longer than 0s, or no report could ever arrive in time")
        return Oracles(members=tuple(members), quorum=quorum, deadline=deadline, fallback=o["fallback"])

    def maintenance(self, m: dict, periods: Periods) -> Maintenance:
        allowance = self.unit(("maintenance", "allowance"), units.parse_duration_seconds, m.get("allowance", "0s"))
        notice = self.unit(("maintenance", "notice"), units.parse_duration_seconds, m.get("notice", "0s"))
        if allowance > periods.length:
            raise self.error(
                ("maintenance", "allowance"),
                f"{_describe(m['allowance'])} is longer than a period ({units.format_seconds(periods.length)})",
            )
        return Maintenance(allowance=allowance, notice=notice)

    def measurement(self, m: dict, periods: Periods) -> Measurement:
        parts = ("measurement", "slice")
        slice_seconds = self.unit(parts, units.parse_duration_seconds, m.get("slice", "1m"))
        if slice_seconds == 0:
            raise self.error(parts, "must be longer than 0s")
        if periods.length % slice_seconds:
            raise self.error(
                parts,
                f"{_describe(m.get('slice', '1m'))} does not divide the period length "
                f"({units.format_seconds(periods.length)}) exactly; every period must hold a whole number "
                "of slices, e.g. 1m, 5m or 1h",
            )
        return Measurement(
            slice=slice_seconds,
            down_after=m.get("down_after", 1),
            gaps=m.get("gaps", GAPS_EXCLUDE),
        )

    # A probe that waits 10s by default could outlast a short interval, so the
    # default timeout never exceeds the interval.
    _DEFAULT_PROBE_INTERVAL = "30s"
    _DEFAULT_PROBE_TIMEOUT_US = 10_000_000

    def probe(self, parts: tuple, p: dict) -> Probe:
        kind = p["type"]
        own = {"http": ("url", "method", "expect_status", "keyword"), "tcp": ("host", "port")}
        for other_kind, keys in own.items():
            if other_kind == kind:
                continue
            for key in keys:
                if key in p:
                    raise self.error(parts + (key,), f"is only used with type: {other_kind}; remove it, or set type: {other_kind}")

        def duration(key: str, default: str | None) -> int | None:
            if key not in p and default is None:
                return None
            us = self.unit(parts + (key,), units.parse_duration_us, p.get(key, default), maximum=constants.UINT64_MAX)
            if us == 0:
                raise self.error(parts + (key,), "must be longer than 0s")
            return us

        interval = duration("interval", self._DEFAULT_PROBE_INTERVAL)
        if "timeout" in p:
            timeout = duration("timeout", None)
        else:
            timeout = min(self._DEFAULT_PROBE_TIMEOUT_US, interval)
        if timeout > interval:
            raise self.error(
                parts + ("timeout",),
                f"{_describe(p['timeout'])} is longer than the interval "
                f"({_describe(p.get('interval', self._DEFAULT_PROBE_INTERVAL))}); a probe must end before the next one starts",
            )
        max_latency = duration("max_latency", None)
        if max_latency is not None and max_latency > timeout:
            raise self.error(
                parts + ("max_latency",),
                f"{_describe(p['max_latency'])} is longer than the timeout, so it could never apply; lower it or raise timeout",
            )
        if kind == "http":
            if "url" not in p:
                raise self.error(parts + ("url",), 'missing: an http probe needs a url such as "https://api.example.com/health"')
            url = p["url"]
            try:
                split = urlsplit(url)
                split.port  # noqa: B018 - raises on a bad port
            except ValueError as exc:
                raise self.error(parts + ("url",), f"{_describe(url)} is not a valid URL ({exc})") from None
            if split.scheme not in ("http", "https"):
                raise self.error(parts + ("url",), f"{_describe(url)} must start with http:// or https://")
            if not split.hostname:
                raise self.error(parts + ("url",), f"{_describe(url)} has no host; write e.g. \"https://api.example.com/health\"")
            return Probe(
                type=kind, timeout_us=timeout, interval_us=interval, url=url,
                method=p.get("method", "GET"),
                expect_status=tuple(p.get("expect_status", (200,))),
                keyword=p.get("keyword"), max_latency_us=max_latency,
            )
        for key, example in (("host", "db.example.com"), ("port", "5432")):
            if key not in p:
                raise self.error(parts + (key,), f"missing: a tcp probe needs a {key} such as {example}")
        return Probe(
            type=kind, timeout_us=timeout, interval_us=interval, host=p["host"], port=p["port"],
            max_latency_us=max_latency,
        )
