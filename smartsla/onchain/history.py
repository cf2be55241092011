"""One agreement and its full history, rebuilt from chain data alone.

Everything comes from the chain: the terms and the document hash from the factory's ``AgreementCreated`` log,
every step from the agreement's own logs, the reports' signatures from the ``settle`` calldata, and the current
balances and views read at one block (the block the logs were read up to), so the picture is consistent.

    history = load_history(contracts, "0xAgreement")
    history.settlements[3].reports[0].signature
    history.totals()

``smartsla audit``, ``smartsla payouts`` and ``smartsla status`` are built on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

from smartsla.encoding import abi_type, to_hex
from smartsla.onchain.client import Agreement, Contracts
from smartsla.onchain.types import PeriodRecord, PeriodState

__all__ = ["EventRecord", "History", "HistoryError", "ReportRecord", "SettlementRecord", "load_history"]


class HistoryError(LookupError):
    """The address is not an agreement of that factory (or not one at all); the message says which."""


@dataclass(frozen=True)
class EventRecord:
    """One log, decoded: ``args`` holds plain values (checksummed addresses, bytes, tuples of ints)."""

    name: str
    args: dict[str, Any]
    tx_hash: str
    block: int
    log_index: int
    timestamp: int
    address: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "args": _jsonable(self.args), "tx_hash": self.tx_hash, "block": self.block,
                "log_index": self.log_index, "timestamp": self.timestamp, "address": self.address}


@dataclass(frozen=True)
class ReportRecord:
    """One oracle report a settlement used. ``oracle`` is the signer the contract recovered (ReportAccepted);
    ``signature`` comes from the transaction's calldata, None when it could not be decoded (a settle call made
    through another contract)."""

    oracle: str
    values: tuple[int, ...]
    coverage: tuple[int, ...]   # ppm of each service's eligible slices the values were measured from
    evidence_root: bytes
    signature: bytes | None


@dataclass(frozen=True)
class SettlementRecord:
    period: int
    state: PeriodState
    values: tuple[int, ...]          # the values the contract used (medians); () for a fallback
    credit_bps: int
    compensation: int                # to the customer, fee and bond part together
    compensation_from_bond: int
    provider_payout: int
    tx_hash: str
    block: int
    timestamp: int
    reports: list[ReportRecord]
    by_fallback: bool
    settled_by: str                  # the transaction's sender
    calldata_decoded: bool = True    # False when the reports' signatures could not be read from the calldata

    @property
    def funded(self) -> bool:
        return self.state != PeriodState.SETTLED_UNFUNDED


@dataclass
class History:
    agreement: Agreement
    factory: str
    chain_id: int
    created_block: int
    created_tx: str
    created_at: int
    created_by: str
    document_hash: bytes
    terms_hash: bytes                # from the AgreementCreated event
    to_block: int                    # logs were read up to this block; views below were read at it
    fundings: list[EventRecord] = field(default_factory=list)      # Funded: customer, firstPeriod, periods, amount
    bonds: list[EventRecord] = field(default_factory=list)         # BondPosted: provider, amount, bondBalance
    settlements: dict[int, SettlementRecord] = field(default_factory=dict)
    deferred: list[EventRecord] = field(default_factory=list)      # PaymentDeferred: to, amount
    withdrawals: list[EventRecord] = field(default_factory=list)   # Withdrawn: account, to, amount
    maintenance: list[tuple[int, int]] = field(default_factory=list)
    terminated: EventRecord | None = None                          # Terminated: activePeriods, refundedPeriods, refund
    closed: EventRecord | None = None                              # Closed: bondReturned
    events: list[EventRecord] = field(default_factory=list)        # creation + every agreement log, in order
    transactions: list[str] = field(default_factory=list)          # creation + every tx with an agreement log
    # the chain's own view at ``to_block``
    balance: int = 0
    bond_balance: int = 0
    owed: dict[str, int] = field(default_factory=dict)
    views: dict[str, Any] = field(default_factory=dict)            # termsHash, activePeriods, nextFundable, ...
    periods: list[PeriodRecord] = field(default_factory=list)      # period(i) for every period of the terms

    # ------------------------------------------------------------ facts

    @property
    def address(self) -> str:
        return self.agreement.address

    @property
    def terms(self) -> dict[str, Any]:
        return self.agreement.terms

    @property
    def encoded_terms(self) -> bytes:
        return self.agreement.encoded_terms

    def funded_periods(self) -> set[int]:
        funded: set[int] = set()
        for f in self.fundings:
            first, count = f.args["firstPeriod"], f.args["periods"]
            funded.update(range(first, first + count))
        return funded

    def refunded_periods(self) -> set[int]:
        """Funded periods cut off by the termination (funded, at or after the new end, never settled)."""
        if self.terminated is None:
            return set()
        end = self.terminated.args["activePeriods"]
        return {p for p in self.funded_periods() if p >= end and p not in self.settlements}

    def active_periods(self) -> int:
        return self.terminated.args["activePeriods"] if self.terminated else self.terms.period_count

    def totals(self) -> dict[str, int]:
        """Money in base units of the agreement's token, from the logs (``held_now`` from the chain).

        ``escrowed`` = ``transferred_out`` + ``held_expected``; ``held_expected`` = fees of funded periods not yet
        settled or refunded + the bond left + what is owed. ``paid_to_*`` count a payment whether it was pushed
        or deferred; ``transferred_out`` counts what actually left the contract (pushed or withdrawn).
        """
        fees_in = sum(f.args["amount"] for f in self.fundings)
        bonds_in = sum(b.args["amount"] for b in self.bonds)
        to_customer = sum(s.compensation for s in self.settlements.values())
        from_bond = sum(s.compensation_from_bond for s in self.settlements.values())
        to_provider = sum(s.provider_payout for s in self.settlements.values())
        refunded = self.terminated.args["refund"] if self.terminated else 0
        bond_returned = self.closed.args["bondReturned"] if self.closed else 0
        deferred = sum(d.args["amount"] for d in self.deferred)
        withdrawn = sum(w.args["amount"] for w in self.withdrawals)
        paid_customer = to_customer + refunded
        paid_provider = to_provider + bond_returned
        transferred_out = paid_customer + paid_provider - deferred + withdrawn
        settled_funded = {p for p, s in self.settlements.items() if s.funded}
        open_fees = self.terms.fee * len(self.funded_periods() - settled_funded - self.refunded_periods())
        bond_left = bonds_in - from_bond - bond_returned
        owed_now = deferred - withdrawn
        return {
            "escrowed": fees_in + bonds_in,
            "escrowed_fees": fees_in,
            "escrowed_bonds": bonds_in,
            "paid_to_customer": paid_customer,
            "compensation": to_customer,
            "compensation_from_bond": from_bond,
            "refunded": refunded,
            "paid_to_provider": paid_provider,
            "provider_payouts": to_provider,
            "bond_returned": bond_returned,
            "deferred": deferred,
            "withdrawn": withdrawn,
            "owed": owed_now,
            "transferred_out": transferred_out,
            "open_fees": open_fees,
            "bond_left": bond_left,
            "held_expected": open_fees + bond_left + owed_now,
            "held_now": self.balance,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "agreement": self.address,
            "factory": self.factory,
            "chain_id": self.chain_id,
            "created": {"block": self.created_block, "tx": self.created_tx, "timestamp": self.created_at,
                        "by": self.created_by},
            "document_hash": to_hex(self.document_hash),
            "terms_hash": to_hex(self.terms_hash),
            "to_block": self.to_block,
            "settlements": {str(p): _settlement_json(s) for p, s in sorted(self.settlements.items())},
            "maintenance": [list(w) for w in self.maintenance],
            "totals": self.totals(),
            "events": [e.to_json() for e in self.events],
            "transactions": list(self.transactions),
        }


# ---------------------------------------------------------------- loading


def load_history(contracts: Contracts, agreement_address: str, factory_address: str | None = None,
                 to_block: int | None = None, progress: Callable[[str], None] | None = None) -> History:
    """Rebuild ``agreement_address`` from the chain. Without ``factory_address`` the agreement is asked for its
    ``factory`` (an immutable of the implementation behind the clone); the creation log must then be found in
    that factory's logs, so an address the factory did not create is refused either way."""
    w3 = contracts.w3
    say = progress or (lambda _msg: None)
    address = to_checksum_address(agreement_address)
    if not w3.eth.get_code(address):
        raise HistoryError(f"there is no contract at {address}")
    if to_block is None:
        to_block = w3.eth.block_number
    if factory_address is None:
        factory_address = _factory_of(contracts, address, to_block)
    factory_address = to_checksum_address(factory_address)
    blocks = _BlockTimes(w3)

    say("reading the factory's creation log")
    created, agreement = _creation(contracts, address, factory_address, to_block, blocks)
    say("reading the agreement's logs")
    events = [created, *_agreement_events(agreement, created.block, to_block, blocks)]
    history = History(
        agreement=agreement, factory=factory_address, chain_id=w3.eth.chain_id,
        created_block=created.block, created_tx=created.tx_hash, created_at=created.timestamp, created_by="",
        document_hash=bytes(created.args["documentHash"]), terms_hash=bytes(created.args["termsHash"]),
        to_block=to_block, events=events,
    )
    history.transactions = list(dict.fromkeys(e.tx_hash for e in events))  # first appearance, once each
    say("reading the settling transactions")
    _sort_events(history, w3)
    say("reading the agreement's state")
    _read_state(history, to_block)
    return history


def _factory_of(contracts: Contracts, address: str, to_block: int) -> str:
    probe = contracts.w3.eth.contract(address=address, abi=contracts.artifacts["SlaAgreement"].abi)
    try:
        return probe.functions.factory().call(block_identifier=to_block)
    except Exception:  # noqa: BLE001 - any failure means the same: not one of ours
        raise HistoryError(f"{address} is not an SlaAgreement (it has no factory()); pass the factory") from None


def _creation(contracts: Contracts, address: str, factory_address: str, to_block: int,
              blocks: _BlockTimes) -> tuple[EventRecord, Agreement]:
    """The factory's AgreementCreated log of ``address`` (there is none for an agreement it did not create) and the
    agreement bound to the terms that log carries."""
    factory = contracts.factory_at(factory_address)
    topic0 = _event_topic(_event_abi(contracts.artifacts["SlaFactory"].abi, "AgreementCreated"))
    logs = _get_logs(contracts.w3, {"address": factory_address, "topics": [topic0, _address_topic(address)]}, 0,
                     to_block)
    if not logs:
        raise HistoryError(f"factory {factory_address} has no AgreementCreated log for {address}: "
                           "it did not create this agreement")
    created = _decode(factory.contract.events.AgreementCreated(), logs[0], "AgreementCreated", blocks)
    return created, Agreement(contracts, address, bytes(created.args["terms"]), factory)


def _agreement_events(agreement: Agreement, from_block: int, to_block: int, blocks: _BlockTimes) -> list[EventRecord]:
    """Every log of the agreement, decoded, in chain order."""
    decoders = {_event_topic(e): (e["name"], getattr(agreement.contract.events, e["name"])())
                for e in agreement.contract.abi if e.get("type") == "event"}
    raw = _get_logs(agreement.chain.w3, {"address": agreement.address}, from_block, to_block)
    raw.sort(key=lambda log: (int(log["blockNumber"]), int(log["logIndex"])))
    events = []
    for log in raw:
        topic = bytes(log["topics"][0]) if log["topics"] else b""
        if topic not in decoders:
            continue  # cannot happen for our bytecode; an unknown log is simply not part of the story
        name, decoder = decoders[topic]
        events.append(_decode(decoder, log, name, blocks))
    return events


def _sort_events(history: History, w3: Any) -> None:
    """Each event to its place in the history; a settlement with its reports and its transaction's calldata."""
    txs: dict[str, Any] = {}

    def tx(hash_: str) -> Any:
        if hash_ not in txs:
            txs[hash_] = w3.eth.get_transaction(hash_)
        return txs[hash_]

    history.created_by = to_checksum_address(tx(history.created_tx)["from"])
    pending_reports: dict[tuple[str, int], list[EventRecord]] = {}
    for e in history.events[1:]:
        a = e.args
        if e.name == "Funded":
            history.fundings.append(e)
        elif e.name == "BondPosted":
            history.bonds.append(e)
        elif e.name == "ReportAccepted":
            pending_reports.setdefault((e.tx_hash, a["period"]), []).append(e)
        elif e.name == "PeriodSettled":
            history.settlements[a["period"]] = _settlement(
                history.agreement, e, pending_reports.pop((e.tx_hash, a["period"]), []), tx(e.tx_hash))
        elif e.name == "PaymentDeferred":
            history.deferred.append(e)
        elif e.name == "Withdrawn":
            history.withdrawals.append(e)
        elif e.name == "MaintenanceAnnounced":
            history.maintenance.append((a["start"], a["end"]))
        elif e.name == "Terminated":
            history.terminated = e
        elif e.name == "Closed":
            history.closed = e


def _read_state(history: History, to_block: int) -> None:
    """The agreement's views and every period's record at ``to_block``."""
    agreement = history.agreement
    fn = agreement.fn
    at = {"block_identifier": to_block}
    history.balance = _balance(agreement, to_block)
    history.bond_balance = fn.bondBalance().call(**at)
    history.views = {
        "termsHash": bytes(fn.termsHash().call(**at)),
        "activePeriods": fn.activePeriods().call(**at),
        "nextFundable": fn.nextFundable().call(**at),
        "openFundedPeriods": fn.openFundedPeriods().call(**at),
        "closed": fn.closed().call(**at),
        "factory": to_checksum_address(fn.factory().call(**at)),
    }
    parties = {agreement.terms.customer, agreement.terms.provider}
    parties.update(d.args["to"] for d in history.deferred)
    history.owed = {p: fn.owed(p).call(**at) for p in sorted(parties)}
    history.periods = []
    for i in range(agreement.terms.period_count):
        state, credit, maint, comp, payout = fn.period(i).call(**at)
        history.periods.append(PeriodRecord(PeriodState(state), credit, maint, comp, payout))


def _settlement(agreement: Agreement, e: EventRecord, accepted: list[EventRecord], tx: Any) -> SettlementRecord:
    a = e.args
    state = PeriodState(a["state"])
    signatures: list[bytes] | None = None
    if accepted:
        signatures = _calldata_signatures(agreement, tx, a["period"], accepted)
    reports = [ReportRecord(r.args["oracle"], tuple(r.args["values"]), tuple(r.args["coverage"]),
                            bytes(r.args["evidenceRoot"]), signatures[i] if signatures else None)
               for i, r in enumerate(accepted)]
    return SettlementRecord(
        period=a["period"], state=state, values=tuple(a["values"]), credit_bps=a["creditBps"],
        compensation=a["compensation"], compensation_from_bond=a["compensationFromBond"],
        provider_payout=a["providerPayout"], tx_hash=e.tx_hash, block=e.block, timestamp=e.timestamp,
        reports=reports, by_fallback=state == PeriodState.SETTLED_BY_FALLBACK,
        settled_by=to_checksum_address(tx["from"]), calldata_decoded=not accepted or signatures is not None,
    )


def _calldata_signatures(agreement: Agreement, tx: Any, period: int, accepted: list[EventRecord]) -> list[bytes] | None:
    """The signatures of the reports, from the settle() calldata, matched to the ReportAccepted logs in order.
    None when the transaction is not a direct settle() call of this agreement for this period."""
    if tx.get("to") is None or to_checksum_address(tx["to"]) != agreement.address:
        return None
    try:
        func, params = agreement.contract.decode_function_input(tx["input"])
    except Exception:  # noqa: BLE001 - not our ABI's calldata
        return None
    if func.fn_name != "settle" or params.get("index") != period:
        return None
    reports = params.get("reports") or []
    if len(reports) != len(accepted):
        return None
    signatures = []
    for raw, log in zip(reports, accepted):
        values, coverage, root, signature = (
            (raw["values"], raw["coverage"], raw["evidenceRoot"], raw["signature"]) if isinstance(raw, dict) else raw)
        if (tuple(values) != tuple(log.args["values"]) or tuple(coverage) != tuple(log.args["coverage"])
                or bytes(root) != bytes(log.args["evidenceRoot"])):
            return None
        signatures.append(bytes(signature))
    return signatures


def _balance(agreement: Agreement, block: int) -> int:
    if agreement.is_eth:
        return agreement.chain.w3.eth.get_balance(agreement.address, block)
    token = agreement.contracts.token(agreement.token)
    return token.functions.balanceOf(agreement.address).call(block_identifier=block)


# ---------------------------------------------------------------- logs


class _BlockTimes:
    def __init__(self, w3: Any):
        self.w3 = w3
        self.cache: dict[int, int] = {}

    def __call__(self, number: int) -> int:
        if number not in self.cache:
            self.cache[number] = int(self.w3.eth.get_block(number)["timestamp"])
        return self.cache[number]


def _event_abi(abi: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(item for item in abi if item.get("type") == "event" and item["name"] == name)


def _event_topic(event_abi: dict[str, Any]) -> bytes:
    types = ",".join(abi_type(i) for i in event_abi["inputs"])
    return keccak(text=f"{event_abi['name']}({types})")


def _address_topic(address: str) -> str:
    return "0x" + "0" * 24 + address[2:].lower()


def _get_logs(w3: Any, params: dict[str, Any], from_block: int, to_block: int) -> list[Any]:
    """eth_getLogs over [from_block, to_block]; a range the node refuses as too large is split in two."""
    query = dict(params)
    query["topics"] = [to_hex(t) if isinstance(t, bytes) else t for t in params.get("topics", [])]
    if not query["topics"]:
        query.pop("topics")
    try:
        return list(w3.eth.get_logs({**query, "fromBlock": from_block, "toBlock": to_block}))
    except Exception as exc:
        if to_block <= from_block or not _looks_like_range_limit(exc):
            raise
    middle = (from_block + to_block) // 2
    return _get_logs(w3, params, from_block, middle) + _get_logs(w3, params, middle + 1, to_block)


def _looks_like_range_limit(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(word in text for word in ("range", "too many", "limit", "exceed", "10000", "response size"))


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, HexBytes)):
        return bytes(value)
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    return value


def _decode(decoder: Any, log: Any, name: str, blocks: _BlockTimes) -> EventRecord:
    decoded = decoder.process_log(log)
    block = int(log["blockNumber"])
    return EventRecord(name=name, args={k: _plain(v) for k, v in decoded["args"].items()},
                       tx_hash=to_hex(log["transactionHash"]), block=block,
                       log_index=int(log["logIndex"]), timestamp=blocks(block),
                       address=to_checksum_address(log["address"]))


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return to_hex(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _settlement_json(s: SettlementRecord) -> dict[str, Any]:
    return {
        "period": s.period, "state": s.state.name.lower(), "values": list(s.values), "credit_bps": s.credit_bps,
        "compensation": s.compensation, "compensation_from_bond": s.compensation_from_bond,
        "provider_payout": s.provider_payout, "tx_hash": s.tx_hash, "block": s.block, "timestamp": s.timestamp,
        "by_fallback": s.by_fallback, "settled_by": s.settled_by,
        "reports": [{"oracle": r.oracle, "values": list(r.values), "coverage": list(r.coverage),
                     "evidence_root": to_hex(r.evidence_root),
                     "signature": None if r.signature is None else to_hex(r.signature)} for r in s.reports],
    }
