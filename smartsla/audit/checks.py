"""Audit one agreement from chain data alone (``smartsla audit``).

:func:`audit` rebuilds the agreement and its history (:mod:`smartsla.history`) and runs every check; each
check is also a function of a :class:`~smartsla.history.History` (plus what it needs), so it can be run and
tested on its own. Findings are PASS, FAIL or SKIP with the exact discrepancy.

Checks (docs/audit.md):

- ``code``: the agreement is the EIP-1167 minimal proxy of the factory's implementation; the implementation's
  and the factory's runtime code equal this repository's build, immutables filled with their known values;
- ``terms``: the agreement's ``termsHash`` is keccak of the terms in the creation log; with a terms file, its
  document hash is the one on chain and the file gives exactly the on-chain terms;
- ``reports``: each settlement's reports recover to distinct members of the oracle set, at least ``quorum`` of
  them, and the values used are the contract's per-service median of them;
- ``settlement``: every settlement recomputed with the reference model (:mod:`smartsla.penalty`), its state,
  its timing, and the period record the contract keeps;
- ``funds``: every deposit, the refund, the views (bond, open periods, owed) and conservation: everything
  escrowed = everything paid out + the balance held;
- ``maintenance``: each window's notice, and the seconds each period's record counts;
- ``evidence`` (with bundles): each bundle verifies, its root is the one an oracle signed for that period, and
  the values recomputed from its raw samples with the oracle's period maths are the ones that oracle reported;
- ``replay`` (with ``replay=True``): the whole transaction history re-executed in order on a fork of the chain
  taken just before the agreement's creation, every log and the final state compared.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from smartsla import penalty
from smartsla.encoding import to_hex
from smartsla.onchain import eip712
from smartsla.onchain.client import Contracts
from smartsla.onchain.history import History, ReportRecord, load_history
from smartsla.onchain.types import PeriodState

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
CLONE_PREFIX = bytes.fromhex("363d3d373d3d3d363d73")
CLONE_SUFFIX = bytes.fromhex("5af43d82803e903d91602b57fd5bf3")
EIP712_TYPEHASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")

__all__ = [
    "FAIL",
    "PASS",
    "SKIP",
    "AuditReport",
    "Finding",
    "audit",
    "check_code",
    "check_evidence",
    "check_funds",
    "check_maintenance",
    "check_reports",
    "check_settlements",
    "check_terms",
    "evidence_checker",
    "replay_history",
]


@dataclass(frozen=True)
class Finding:
    check: str       # e.g. "reports.signers"
    subject: str     # what it is about: "agreement", "period 3", a bundle directory
    verdict: str     # PASS | FAIL | SKIP
    detail: str

    @property
    def failed(self) -> bool:
        return self.verdict == FAIL


@dataclass
class AuditReport:
    agreement: str
    chain_id: int
    findings: list[Finding]
    history: History | None
    timings: dict[str, float] = field(default_factory=dict)
    replay: dict[str, Any] | None = None         # speed and counts of the replay, when run
    evidence_values: dict[tuple[int, str], dict[str, int]] = field(default_factory=dict)  # (period, oracle) -> recomputed
    token: tuple[str, int] | None = None         # (symbol, decimals) of the agreement's token, when it says

    @property
    def ok(self) -> bool:
        return not any(f.failed for f in self.findings)

    def counts(self) -> dict[str, int]:
        c = Counter(f.verdict for f in self.findings)
        return {v: c.get(v, 0) for v in (PASS, FAIL, SKIP)}

    def to_json(self) -> dict[str, Any]:
        return {
            "agreement": self.agreement,
            "chain_id": self.chain_id,
            "result": PASS if self.ok else FAIL,
            "counts": self.counts(),
            "findings": [asdict(f) for f in self.findings],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "replay": self.replay,
            "history": self.history.to_json() if self.history else None,
        }


def _token_metadata(history: History) -> tuple[str, int] | None:
    """For people reading amounts; a token without ERC-20 metadata gives None (amounts stay in base units)."""
    info = history.agreement.contracts.token_info(history.agreement.token)
    return (info.symbol, info.decimals) if info.has_metadata else None


def _f(findings: list[Finding], check: str, subject: str, problems: list[str], ok_detail: str) -> None:
    findings.append(Finding(check, subject, FAIL if problems else PASS, "; ".join(problems) if problems else ok_detail))


# ---------------------------------------------------------------- entry point


def audit(contracts: Contracts, agreement: str, factory: str | None = None, *, terms_file: str | Path | None = None,
          evidence: Sequence[str | Path] = (), replay: bool = False,
          progress: Callable[[str], None] | None = None) -> AuditReport:
    say = progress or (lambda _m: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    history = load_history(contracts, agreement, factory, progress=say)
    timings["history"] = time.perf_counter() - t0
    report = AuditReport(history.address, history.chain_id, [], history, timings, token=_token_metadata(history))
    findings = report.findings

    def timed(name: str, fn: Callable[[], list[Finding]]) -> None:
        say(f"checking {name}")
        t = time.perf_counter()
        findings.extend(fn())
        timings[name] = time.perf_counter() - t

    terms_doc = None
    if terms_file is not None:
        from smartsla.terms.parse import load_terms

        terms_doc = load_terms(terms_file)
    timed("code", lambda: check_code(contracts, history))
    timed("terms", lambda: check_terms(contracts, history, terms_doc))
    timed("reports", lambda: check_reports(history))
    timed("settlement", lambda: check_settlements(history))
    timed("funds", lambda: check_funds(history))
    timed("maintenance", lambda: check_maintenance(history))
    if evidence:
        timed("evidence", lambda: check_evidence(history, evidence, terms_doc, report.evidence_values))
    if replay:
        say("replaying the transaction history")
        t = time.perf_counter()
        replay_findings, stats = replay_history(contracts, history, progress=say)
        findings.extend(replay_findings)
        timings["replay"] = time.perf_counter() - t
        report.replay = stats
    timings["total"] = time.perf_counter() - t0
    return report


# ---------------------------------------------------------------- code


def _word(value: int | bytes | str) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value[2:]).rjust(32, b"\0")
    if isinstance(value, int):
        return value.to_bytes(32, "big")
    return bytes(value).rjust(32, b"\0")


def _short_string(text: str) -> bytes:
    raw = text.encode()
    return raw.ljust(31, b"\0") + bytes([len(raw)])


def compare_with_immutables(actual: bytes, expected: bytes, values: Iterable[bytes]) -> tuple[bool, str, int]:
    """Compare runtime code with the compiled ``expected`` code, where the compiler left each immutable as 32
    zero bytes: a 32-byte run of zeros in ``expected`` may hold one of the known immutable ``values`` in
    ``actual``, nothing else may differ. Returns (equal, first difference, immutable slots filled)."""
    if len(actual) != len(expected):
        return False, f"{len(actual)} bytes on chain, {len(expected)} bytes built", 0
    filled = bytearray(expected)
    zero = b"\0" * 32
    count = 0
    for value in {bytes(v) for v in values}:
        start = actual.find(value)
        while start != -1:
            if expected[start:start + 32] == zero and filled[start:start + 32] == zero:
                filled[start:start + 32] = value
                count += 1
            start = actual.find(value, start + 1)
    if bytes(filled) == actual:
        return True, "", count
    first = next(i for i, (a, b) in enumerate(zip(actual, filled)) if a != b)
    return False, (f"differs from byte {first} on (chain {actual[first:first + 8].hex()}…, "
                   f"build {bytes(filled[first:first + 8]).hex()}…)"), count


def check_code(contracts: Contracts, history: History) -> list[Finding]:
    w3 = contracts.w3
    at = history.to_block
    findings: list[Finding] = []
    factory = contracts.factory_at(history.factory).contract
    implementation = to_checksum_address(factory.functions.implementation().call(block_identifier=at))
    clone = bytes(w3.eth.get_code(history.address, at))
    expected_clone = CLONE_PREFIX + bytes.fromhex(implementation[2:]) + CLONE_SUFFIX
    _f(findings, "code.clone", history.address,
       [] if clone == expected_clone else [(f"runtime code {clone.hex()[:120]} is not the EIP-1167 proxy of "
                                            f"{implementation}")],
       f"EIP-1167 minimal proxy of the factory's implementation {implementation}")

    arts = contracts.artifacts
    impl_code = bytes(w3.eth.get_code(implementation, at))
    separator = keccak(abi_encode(["bytes32", "bytes32", "bytes32", "uint256", "address"],
                                  [EIP712_TYPEHASH, keccak(text="SmartSLA"), keccak(text="1"), history.chain_id,
                                   implementation]))
    immutables = [_word(history.factory), _word(implementation), _word(history.chain_id), keccak(text="SmartSLA"),
                  keccak(text="1"), separator, _short_string("SmartSLA"), _short_string("1")]
    ok, diff, filled = compare_with_immutables(impl_code, bytes.fromhex(arts["SlaAgreement"].deployed_bytecode[2:]),
                                               immutables)
    _f(findings, "code.implementation", implementation, [] if ok else [f"not SlaAgreement as built here: {diff}"],
       f"SlaAgreement as built from this repository ({len(impl_code)} bytes, {filled} immutable slots: factory "
       f"{history.factory}, EIP-712 domain of chain {history.chain_id})")

    factory_code = bytes(w3.eth.get_code(history.factory, at))
    ok, diff, filled = compare_with_immutables(factory_code, bytes.fromhex(arts["SlaFactory"].deployed_bytecode[2:]),
                                               [_word(implementation)])
    _f(findings, "code.factory", history.factory, [] if ok else [f"not SlaFactory as built here: {diff}"],
       f"SlaFactory as built from this repository ({len(factory_code)} bytes, {filled} immutable slots: "
       f"implementation {implementation})")
    problems = []
    if history.views.get("factory") != history.factory:
        problems.append(f"the agreement names factory {history.views.get('factory')}, not {history.factory}")
    _f(findings, "code.created-by-factory", history.address, problems,
       f"created by factory {history.factory} in block {history.created_block} (tx {history.created_tx})")
    return findings


# ---------------------------------------------------------------- terms


def check_terms(contracts: Contracts, history: History, terms_doc: Any = None) -> list[Finding]:
    findings: list[Finding] = []
    computed = keccak(history.encoded_terms)
    problems = []
    if computed != history.terms_hash:
        problems.append(f"the creation log's termsHash 0x{history.terms_hash.hex()} is not keccak of its terms "
                        f"{to_hex(computed)}")
    if history.views.get("termsHash") != computed:
        problems.append(f"the agreement stores termsHash 0x{history.views['termsHash'].hex()}, the terms in the "
                        f"creation log hash to 0x{computed.hex()}")
    doc_in_terms = bytes(history.terms.document_hash)
    if doc_in_terms != history.document_hash:
        problems.append(f"the event's documentHash 0x{history.document_hash.hex()} is not the terms' "
                        f"{to_hex(doc_in_terms)}")
    _f(findings, "terms.hash", history.address, problems, f"termsHash 0x{computed.hex()} = keccak(terms in the "
                                                          "creation log) = the agreement's stored hash")
    if terms_doc is None:
        findings.append(Finding("terms.file", history.address, SKIP, "no terms file given (--terms)"))
        return findings
    file_hash = terms_doc.document_hash()
    _f(findings, "terms.document-hash", str(terms_doc.source),
       [] if file_hash == history.document_hash else
       [f"the file's document hash is 0x{file_hash.hex()}, the agreement's is 0x{history.document_hash.hex()}"],
       f"document hash 0x{file_hash.hex()} is the one on chain")
    findings.append(_terms_file_matches(contracts, history, terms_doc))
    return findings


def _terms_file_matches(contracts: Contracts, history: History, terms_doc: Any) -> Finding:
    """The on-chain terms equal what the file gives (the document hash alone does not bind them: the factory
    takes any document hash)."""
    from smartsla.terms.errors import TermsError

    onchain = history.terms
    token = onchain.token
    is_eth = int(token, 16) == 0
    decimals = 18 if is_eth else terms_doc.payment.known_decimals
    try:
        if decimals is None:
            decimals = contracts.token(token).functions.decimals().call()
        expected = terms_doc.to_chain(
            lambda value, _path: contracts.chain.resolve(value),
            token_address=None if terms_doc.payment.token == "ETH" else token,
            token_decimals=decimals, now=onchain.start)
    except (TermsError, Exception) as exc:  # noqa: BLE001 - a name that is not an address on this chain, ...
        return Finding("terms.file", str(terms_doc.source), FAIL, f"the file cannot give these terms: {exc}")
    if contracts.encode_terms(expected) == history.encoded_terms:
        return Finding("terms.file", str(terms_doc.source), PASS, "the file gives exactly the on-chain terms")
    got = contracts.decode_terms(contracts.encode_terms(expected))
    diffs = [f"{name}: file {_show(a)}, chain {_show(b)}" for name, a, b in got.differences(history.terms)]
    return Finding("terms.file", str(terms_doc.source), FAIL, "the on-chain terms differ from the file: " +
                   "; ".join(diffs))


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return to_hex(value)
    return str(value)


# ---------------------------------------------------------------- reports


def report_signer(history: History, period: int, values: Sequence[int], root: bytes, signature: bytes) -> str | None:
    """:meth:`Agreement.report_signer` with the chain id of the history (no RPC call per report)."""
    return eip712.recover(eip712.report_message(history.chain_id, history.address, period, values, root), signature)


def check_reports(history: History) -> list[Finding]:
    findings: list[Finding] = []
    agreement = history.agreement
    oracles = set(history.terms.oracles)
    quorum = history.terms.quorum
    rules = penalty.CreditRules.from_chain(agreement.terms)
    for period, s in sorted(history.settlements.items()):
        if not s.reports:
            continue
        subject = f"period {period}"
        problems = []
        signers = []
        unread = 0
        for i, r in enumerate(s.reports):
            if r.signature is None:
                unread += 1
                signer = r.oracle
            else:
                signer = report_signer(history, period, r.values, r.evidence_root, r.signature)
                if signer != r.oracle:
                    problems.append(f"report {i}: the signature recovers to {signer}, the contract logged {r.oracle}")
            if signer not in oracles:
                problems.append(f"report {i}: signer {signer} is not in the oracle set")
            if signer in signers:
                problems.append(f"report {i}: signer {signer} signed twice")
            signers.append(signer)
        if len(set(signers)) < quorum:
            problems.append(f"{len(set(signers))} distinct signers, quorum is {quorum}")
        detail = f"{len(signers)} reports from distinct oracles (quorum {quorum})"
        if unread:
            detail += f"; {unread} signatures not in direct settle() calldata, signers taken from the logs"
        _f(findings, "reports.signers", subject, problems, detail)
        try:
            medians = tuple(penalty.aggregate_reports(rules, [r.values for r in s.reports]))
        except ValueError as exc:
            findings.append(Finding("reports.median", subject, FAIL, str(exc)))
            continue
        _f(findings, "reports.median", subject,
           [] if medians == s.values else [f"the contract used {list(s.values)}, the median rule gives {list(medians)}"],
           f"values {list(s.values)} = per-service median of {len(s.reports)} reports")
    return findings


# ---------------------------------------------------------------- settlements


def check_settlements(history: History) -> list[Finding]:
    findings: list[Finding] = []
    terms = history.terms
    rules = penalty.CreditRules.from_chain(history.terms)
    fee = terms.fee
    bond = 0
    funded: set[int] = set()
    active = terms.period_count
    for e in history.events:
        a = e.args
        if e.name == "Funded":
            funded.update(range(a["firstPeriod"], a["firstPeriod"] + a["periods"]))
        elif e.name == "BondPosted":
            bond += a["amount"]
        elif e.name == "Terminated":
            active = a["activePeriods"]
        elif e.name == "Closed":
            bond = 0
        elif e.name == "PeriodSettled":
            period = a["period"]
            s = history.settlements[period]
            problems = []
            is_funded = period in funded
            by_fallback = not s.reports
            values = None if by_fallback else s.values
            try:
                want = penalty.settle_period(rules, fee, bond, values, funded=is_funded)
            except ValueError as exc:
                _f(findings, "settlement", f"period {period}", [f"the reference model refuses the values: {exc}"], "")
                continue
            expected_state = (PeriodState.SETTLED_UNFUNDED if not is_funded else
                              PeriodState.SETTLED_BY_FALLBACK if by_fallback else PeriodState.SETTLED)
            if s.state != expected_state:
                problems.append(f"state {s.state.name}, expected {expected_state.name}")
            got = (s.credit_bps, s.compensation, s.compensation_from_bond, s.provider_payout)
            exp = (want.credit_bps, want.to_customer_from_fee + want.to_customer_from_bond, want.to_customer_from_bond,
                   want.to_provider)
            for name, g, x in zip(("credit_bps", "compensation", "compensation_from_bond", "provider_payout"), got, exp):
                if g != x:
                    problems.append(f"{name} {g}, the reference model gives {x}")
            end = history.agreement.period_end(period)
            if period >= active:
                problems.append(f"period {period} settled while only {active} periods were active")
            if s.timestamp < end:
                problems.append(f"settled at {s.timestamp}, before the period ended at {end}")
            if by_fallback and s.timestamp < end + terms.report_deadline:
                problems.append(f"fallback at {s.timestamp}, before the deadline {end + terms.report_deadline}")
            if period < len(history.periods):
                rec = history.periods[period]
                if (rec.state, rec.credit_bps, rec.compensation, rec.provider_payout) != (
                        s.state, s.credit_bps, s.compensation, s.provider_payout):
                    problems.append(f"the contract's record {rec} differs from the PeriodSettled log")
            how = "fallback" if by_fallback else f"{len(s.reports)} reports"
            money = (f"credit {s.credit_bps} bps, {s.compensation} to the customer ({s.compensation_from_bond} "
                     f"from the bond), {s.provider_payout} to the provider") if is_funded else \
                f"unfunded: credit {s.credit_bps} bps, no money moves"
            _f(findings, "settlement", f"period {period}", problems, f"{how}; {money} = reference model")
            if is_funded:
                bond -= s.compensation_from_bond
                funded.discard(period)
    return findings


# ---------------------------------------------------------------- funds


def check_funds(history: History) -> list[Finding]:
    findings: list[Finding] = []
    terms = history.terms
    fee = terms.fee
    problems = []
    funded: set[int] = set()
    for f in history.fundings:
        a = f.args
        if a["amount"] != fee * a["periods"]:
            problems.append(f"deposit in tx {f.tx_hash}: {a['amount']} for {a['periods']} periods of fee {fee}")
        if a["customer"] != terms.customer:
            problems.append(f"deposit in tx {f.tx_hash} from {a['customer']}, not the customer")
        periods = set(range(a["firstPeriod"], a["firstPeriod"] + a["periods"]))
        if periods & funded:
            problems.append(f"deposit in tx {f.tx_hash} funds periods already funded: {sorted(periods & funded)}")
        started = 0 if f.timestamp < terms.start else (f.timestamp - terms.start) // terms.period_length + 1
        if a["firstPeriod"] < started:
            problems.append(f"deposit in tx {f.tx_hash} funds period {a['firstPeriod']}, which had begun")
        funded |= periods
    _f(findings, "funds.deposits", history.address, problems,
       f"{len(history.fundings)} deposits of fee x periods for {len(funded)} periods, "
       f"{len(history.bonds)} bond postings")

    t = history.totals()
    problems = []
    settled_funded = {p for p, s in history.settlements.items() if s.funded}
    for p in settled_funded:
        s = history.settlements[p]
        if s.compensation - s.compensation_from_bond + s.provider_payout != fee:
            problems.append(f"period {p}: {s.compensation - s.compensation_from_bond} + {s.provider_payout} paid "
                            f"from a fee of {fee}")
    if history.terminated is not None:
        a = history.terminated.args
        refunded = history.refunded_periods()
        if a["refundedPeriods"] != len(refunded) or a["refund"] != fee * len(refunded):
            problems.append(f"termination refunded {a['refundedPeriods']} periods ({a['refund']}), the funded "
                            f"unsettled periods from {a['activePeriods']} on are {sorted(refunded)}")
    if t["bond_left"] < 0:
        problems.append(f"more paid from the bond than was posted ({t['bond_left']})")
    balance_gap = t["held_now"] - t["held_expected"]
    if balance_gap < 0:
        problems.append(f"the contract holds {t['held_now']}, {-balance_gap} less than the {t['held_expected']} "
                        f"it must (open fees {t['open_fees']} + bond {t['bond_left']} + owed {t['owed']})")
    identity = t["escrowed"] - t["transferred_out"] - t["held_expected"]
    if identity:
        problems.append(f"escrowed {t['escrowed']} - paid out {t['transferred_out']} - held {t['held_expected']} = "
                        f"{identity}, not 0")
    detail = (f"escrowed {t['escrowed']} = paid out {t['transferred_out']} (customer {t['paid_to_customer']}, "
              f"provider {t['paid_to_provider']}, {t['owed']} still owed) + held {t['held_now']}")
    if balance_gap > 0:
        detail += f"; {balance_gap} more is held than the agreement's own flows put there (a direct transfer)"
    _f(findings, "funds.conservation", history.address, problems, detail)

    problems = []
    v = history.views
    open_periods = len(history.funded_periods() - settled_funded - history.refunded_periods())
    checks = [("bondBalance", history.bond_balance, t["bond_left"]),
              ("openFundedPeriods", v["openFundedPeriods"], open_periods),
              ("activePeriods", v["activePeriods"], history.active_periods()),
              ("closed", v["closed"], history.closed is not None)]
    owed: Counter = Counter()
    for d in history.deferred:
        owed[d.args["to"]] += d.args["amount"]
    for w in history.withdrawals:
        owed[w.args["account"]] -= w.args["amount"]
    checks += [(f"owed({who})", history.owed.get(who, 0), owed.get(who, 0)) for who in sorted(set(history.owed) | set(owed))]
    for p in history.refunded_periods():
        checks.append((f"period({p}).state", history.periods[p].state.name, PeriodState.REFUNDED.name))
    for name, got, want in checks:
        if got != want:
            problems.append(f"{name} is {got} on chain, the logs give {want}")
    _f(findings, "funds.views", history.address, problems,
       f"bond {history.bond_balance}, {open_periods} open funded periods, owed {dict(owed) or 0} agree with the logs")
    return findings


# ---------------------------------------------------------------- maintenance


def check_maintenance(history: History) -> list[Finding]:
    terms = history.terms
    problems = []
    used = [0] * terms.period_count
    announcements = [e for e in history.events if e.name == "MaintenanceAnnounced"]
    for e in announcements:
        start, end = e.args["start"], e.args["end"]
        if start < e.timestamp + terms.maintenance_notice:
            problems.append(f"window [{start}, {end}) announced at {e.timestamp}, less than "
                            f"{terms.maintenance_notice} s ahead")
        for p in range(terms.period_count):
            a, b = history.agreement.period_start(p), history.agreement.period_end(p)
            used[p] += max(0, min(end, b) - max(start, a))
    for p, seconds in enumerate(used):
        if seconds > terms.maintenance_allowance:
            problems.append(f"period {p}: {seconds} s of maintenance, allowance {terms.maintenance_allowance} s")
        if p < len(history.periods) and history.periods[p].maintenance_seconds != seconds:
            problems.append(f"period {p}: the contract counts {history.periods[p].maintenance_seconds} s, the "
                            f"windows give {seconds} s")
    if not announcements:
        return [Finding("maintenance", history.address, PASS, "no maintenance announced")]
    return [Finding("maintenance", history.address, FAIL if problems else PASS,
                    "; ".join(problems) if problems else
                    f"{len(announcements)} windows with notice, within the allowance, as the contract counts them")]


# ---------------------------------------------------------------- evidence


@dataclass
class LoadedBundle:
    """What the audit needs from one evidence bundle (see :func:`evidence_checker`)."""

    directory: str
    problems: list[str]                  # verification findings, empty when the bundle verifies
    root: bytes | None                   # recomputed from the files
    agreement: str
    chain_id: int
    period: int
    period_start: int
    period_end: int
    values: dict[str, int] | None        # as the manifest states them
    columns: Any                         # opaque to smartsla: handed back to ``recompute``
    signed: dict[str, Any] | None = None  # the oracle's signed report lying beside the bundle, if any


@dataclass
class EvidenceTools:
    load: Callable[[str], LoadedBundle]
    recompute: Callable[..., dict[str, int]]   # (terms, bundles, maintenance, start, period) -> ppm per service


# The oracle's signed report of a bundle ``period-N`` lies beside it as ``period-N.report.json``: the bundle is
# exactly what was signed, the signature cannot be inside what it signs.
SIGNED_REPORT_SUFFIX = ".report.json"


def _signed_owner(history: History, bundle: LoadedBundle) -> tuple[str | None, str]:
    """The oracle whose signed report (beside the bundle) vouches for this bundle, or None and why not."""
    signed = bundle.signed
    if signed is None:
        return None, "no signed report lies beside the bundle (period-N.report.json)"
    try:
        values = [int(v) for v in signed["values"]]
        root = bytes.fromhex(str(signed["evidence_root"]).removeprefix("0x"))
        signature = bytes.fromhex(str(signed["signature"]).removeprefix("0x"))
        period = int(signed["period"])
    except (KeyError, TypeError, ValueError) as exc:
        return None, f"the signed report is malformed ({exc.__class__.__name__}: {exc})"
    if period != bundle.period or root != bundle.root:
        return None, f"the signed report is for period {period} root 0x{root.hex()[:16]}…, not this bundle's"
    signer = history.agreement.report_signer(period, values, root, signature)
    if signer is None or signer not in history.terms.oracles:
        return None, f"the signed report is signed by {signer or 'nobody recoverable'}, not by an oracle of the agreement"
    return signer, ""


def evidence_checker() -> EvidenceTools:
    """The evidence format and the period maths the oracles use (one implementation: smartsla.evidence and
    smartsla.periods), bound for the audit."""
    import json

    import numpy as np

    from smartsla.evidence import bundle as ev
    from smartsla.measure import periods as pm

    def load(directory: str) -> LoadedBundle:
        result = ev.verify_bundle(directory)
        b = ev.load_bundle(directory)
        loaded = LoadedBundle(str(directory), [str(f) for f in result.findings],
                              bytes.fromhex(result.root[2:]) if result.root else None, b.agreement, b.chain_id,
                              b.period, b.period_start, b.period_end, b.values, b)
        signed_file = Path(directory).parent / f"{Path(directory).name}{SIGNED_REPORT_SUFFIX}"
        if signed_file.exists():
            try:
                loaded.signed = json.loads(signed_file.read_text("utf-8"))
            except ValueError as exc:
                loaded.problems.append(f"{signed_file.name} is not JSON: {exc}")
        return loaded

    def columns(bundle: LoadedBundle, service_ids: Sequence[str]) -> Any:
        return bundle.columns.sample_columns(service_ids)

    def recompute(terms: Any, bundles: list[LoadedBundle], maintenance: list[tuple[int, int]], start: int,
                  period: int) -> dict[str, int]:
        parts = [columns(b, terms.service_ids) for b in bundles]
        cols = pm.SampleColumns(np.concatenate([p.service for p in parts]), np.concatenate([p.time for p in parts]),
                                np.concatenate([p.status for p in parts]))
        return dict(pm.compute_periods(terms, cols, maintenance, start=start)[period].ppm)

    return EvidenceTools(load, recompute)


def check_evidence(history: History, dirs: Sequence[str | Path], terms_doc: Any = None,
                   recomputed_out: dict | None = None, tools: EvidenceTools | None = None) -> list[Finding]:
    """Each bundle: it verifies; it is this agreement's, on this chain, for a settled period; its root is the
    one some oracle signed in that period's reports, with the same values; and with the terms file, the values
    recomputed from its samples (plus the same oracle's bundle of the period before, when given: a run of
    failures that began there counts) are that oracle's reported values."""
    findings: list[Finding] = []
    tools = tools or evidence_checker()
    bundles: list[LoadedBundle] = []
    for d in _bundle_dirs(dirs):
        try:
            bundles.append(tools.load(str(d)))
        except Exception as exc:  # noqa: BLE001 - EvidenceError and friends: a finding, not a crash
            findings.append(Finding("evidence.bundle", str(d), FAIL, f"cannot read the bundle: {exc}"))
    # Two oracles with the same samples write the same bundle (the header does not name the oracle): a bundle
    # supports every report that signed its root.
    by_root: dict[tuple[int, bytes], list[str]] = {}
    for p, s in history.settlements.items():
        for r in s.reports:
            by_root.setdefault((p, r.evidence_root), []).append(r.oracle)
    owners: dict[str, list[str]] = {b.directory: by_root.get((b.period, b.root), []) for b in bundles}
    unused: set[str] = set()

    ids = list(history.terms.service_names)
    for b in bundles:
        subject = b.directory
        _f(findings, "evidence.bundle", subject, [f"does not verify: {p}" for p in b.problems[:5]] +
           ([f"... {len(b.problems) - 5} more"] if len(b.problems) > 5 else []),
           f"verifies: root 0x{b.root.hex() if b.root else '?'}")
        problems = []
        if b.agreement.lower() != history.address.lower():
            problems.append(f"the bundle is for agreement {b.agreement}, not {history.address}")
        if b.chain_id != history.chain_id:
            problems.append(f"the bundle is for chain {b.chain_id}, not {history.chain_id}")
        if (b.period_start, b.period_end) != (history.agreement.period_start(b.period),
                                              history.agreement.period_end(b.period)):
            problems.append(f"bounds [{b.period_start}, {b.period_end}) are not period {b.period}'s")
        s = history.settlements.get(b.period)
        report = None
        if s is None:
            problems.append(f"period {b.period} is not settled")
        else:
            report = next((r for r in s.reports if r.oracle in owners[b.directory]), None)
            if report is None:
                # an oracle's report the contract did not need (the quorum was reached without it) still binds
                # its signer: the bundle must prove what that oracle signed
                signer, why = _signed_owner(history, b)
                if signer is not None:
                    owners[b.directory] = [signer]
                    report = ReportRecord(signer, tuple(int(v) for v in b.signed["values"]), b.root or b"",
                                          bytes.fromhex(str(b.signed["signature"]).removeprefix("0x")))
                    unused.add(b.directory)
                else:
                    roots = ", ".join(f"{r.oracle[:10]}… 0x{r.evidence_root.hex()[:16]}…" for r in s.reports)
                    problems.append(f"root 0x{b.root.hex() if b.root else '?'} is in no report of period "
                                    f"{b.period} (reports: {roots or 'none'}), and {why}")
            if report is not None and b.values is not None and [b.values.get(i) for i in ids] != list(report.values):
                problems.append(f"the manifest's values {b.values} are not the reported {list(report.values)}")
        _f(findings, "evidence.root", subject, problems,
           (f"its root 0x{b.root.hex() if b.root else '?'} is what {', '.join(owners[b.directory])} signed for "
            f"period {b.period}"
            + (" (a report the contract did not need: the quorum was reached without it)"
               if b.directory in unused else "")) if report else "")
        if report is None:
            continue
        if terms_doc is None:
            findings.append(Finding("evidence.values", subject, SKIP, "recomputing needs the terms file (--terms): "
                                                                      "the measuring method is in the document"))
            continue
        context = [x for x in bundles if x.period == b.period - 1 and set(owners[x.directory]) &
                   set(owners[b.directory]) and not x.problems][:1]
        try:
            ppm = tools.recompute(terms_doc, [*context, b], history.maintenance, history.terms.start, b.period)
        except Exception as exc:  # noqa: BLE001 - bad samples for these terms
            findings.append(Finding("evidence.values", subject, FAIL, f"cannot recompute: {exc}"))
            continue
        if recomputed_out is not None:
            for oracle in owners[b.directory]:
                recomputed_out[(b.period, oracle)] = ppm
        problems = []
        checked = []
        for i, sid in enumerate(ids):
            if history.terms.services[i].lower_is_better:  # a latency value, not computed by the period maths
                continue
            checked.append(sid)
            if ppm.get(sid) != report.values[i]:
                problems.append(f"{sid}: recomputed {ppm.get(sid)} ppm, {report.oracle} reported {report.values[i]}")
        if problems and not context and b.period > 0 and terms_doc.measurement.down_after > 1:
            problems.append(f"(the oracle's bundle of period {b.period - 1} was not given: a run of failures that "
                            "began there counts from its first sample)")
        _f(findings, "evidence.values", subject, problems,
           f"{', '.join(checked) or 'no availability service'} recomputed from the samples = the report of "
           f"{', '.join(owners[b.directory])}" + (f" (with period {b.period - 1}'s bundle)" if context else ""))
    return findings


def _bundle_dirs(dirs: Sequence[str | Path]) -> list[Path]:
    """Each given directory is a bundle (it has manifest.json) or holds bundles below it."""
    found: list[Path] = []
    for d in dirs:
        d = Path(d)
        if (d / "manifest.json").exists():
            found.append(d)
            continue
        below = sorted(p.parent for p in d.rglob("manifest.json")) if d.is_dir() else []
        found.extend(below or [d])
    return found


# ---------------------------------------------------------------- replay


def replay_history(contracts: Contracts, history: History, progress: Callable[[str], None] | None = None
                   ) -> tuple[list[Finding], dict[str, Any]]:
    """Re-execute the history on a fork of the chain before the creation block and compare (smartsla.replay)."""
    from smartsla.audit.replay import replay

    return replay(contracts, history, progress=progress)
