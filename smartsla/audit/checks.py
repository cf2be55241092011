"""Audit one agreement from chain data alone (``smartsla audit``).

:func:`audit` rebuilds the agreement and its history (:mod:`smartsla.onchain.history`) and runs every check; each
check is also a function of a :class:`~smartsla.onchain.history.History` (plus what it needs), so it can be run and
tested on its own. Findings (:mod:`smartsla.audit.findings`) are PASS, FAIL or SKIP with the exact discrepancy;
the evidence checks live in :mod:`smartsla.audit.evidence`, the replay in :mod:`smartsla.audit.replay`.

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
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from smartsla import penalty
from smartsla.audit.evidence import check_evidence
from smartsla.audit.findings import FAIL, PASS, SKIP, AuditReport, Finding, add_finding, money_formatter
from smartsla.audit.replay import replay
from smartsla.chain.accounts import name_resolver
from smartsla.encoding import to_hex
from smartsla.onchain import eip712
from smartsla.onchain.client import Contracts
from smartsla.onchain.history import History, load_history
from smartsla.constants import COMBINE_WEIGHTED
from smartsla.onchain.types import PeriodState
from smartsla.terms.model import format_value
from smartsla.terms.errors import TermsError
from smartsla.terms.parse import load_terms
from smartsla.units import format_bps

CLONE_PREFIX = bytes.fromhex("363d3d373d3d3d363d73")
CLONE_SUFFIX = bytes.fromhex("5af43d82803e903d91602b57fd5bf3")
EIP712_TYPEHASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")


def _token_metadata(history: History) -> tuple[str, int] | None:
    """For people reading amounts; a token without ERC-20 metadata gives None (amounts stay in base units)."""
    info = history.agreement.contracts.token_info(history.agreement.token)
    return (info.symbol, info.decimals) if info.has_metadata else None


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
        terms_doc = load_terms(terms_file)
        report.name = terms_doc.agreement
        if terms_doc.document_hash() == bytes(history.terms.document_hash) and \
                len(terms_doc.services) == len(history.terms.services):
            report.objectives = [s.objective_words for s in terms_doc.services]
    report.combined = combined_values(history, terms_doc if report.objectives is not None else None)
    timed("code", lambda: check_code(contracts, history))
    timed("terms", lambda: check_terms(contracts, history, terms_doc))
    timed("reports", lambda: check_reports(history))
    timed("settlement", lambda: check_settlements(history))
    timed("funds", lambda: check_funds(history))
    timed("maintenance", lambda: check_maintenance(history))
    timed("consent", lambda: check_consent(history))
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
    add_finding(findings, "code.clone", history.address,
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
    add_finding(findings, "code.implementation", implementation, [] if ok else [f"not SlaAgreement as built here: {diff}"],
       f"SlaAgreement as built from this repository ({len(impl_code)} bytes, {filled} immutable slots: factory "
       f"{history.factory}, EIP-712 domain of chain {history.chain_id})")

    factory_code = bytes(w3.eth.get_code(history.factory, at))
    # its immutables: the implementation, and the code hash of its clones (the only code settleBatch calls)
    ok, diff, filled = compare_with_immutables(factory_code, bytes.fromhex(arts["SlaFactory"].deployed_bytecode[2:]),
                                               [_word(implementation), keccak(expected_clone)])
    add_finding(findings, "code.factory", history.factory, [] if ok else [f"not SlaFactory as built here: {diff}"],
       f"SlaFactory as built from this repository ({len(factory_code)} bytes, {filled} immutable slots: "
       f"implementation {implementation} and its clones' code hash)")
    problems = []
    if history.views.get("factory") != history.factory:
        problems.append(f"the agreement names factory {history.views.get('factory')}, not {history.factory}")
    add_finding(findings, "code.created-by-factory", history.address, problems,
       f"created by factory {history.factory} in block {history.created_block} (tx {history.created_tx})")
    return findings


def combined_values(history: History, terms_doc: Any = None) -> dict[str, Any] | None:
    """The combined number of each settled period, as payouts and simulate show it: with basis combined the one
    that decided the credit (from the chain's terms), with basis per-service the one the terms file chooses to show
    (``compensation.combined``), only given the agreement's own terms file and objectives that agree."""
    t = history.terms
    if t.is_combined:
        rules = penalty.CreditRules.from_chain(t)
        objective = terms_doc.combined_objective() if terms_doc is not None else (
            "latency" if rules.combined.lower_is_better else "availability")
        how = "weighted" if t.combine == COMBINE_WEIGHTED else "min"
        decides, target = True, format_value(objective, rules.combined.target)
    elif terms_doc is not None and terms_doc.combined_objective() is not None:
        rules, objective = terms_doc.credit_rules(), terms_doc.combined_objective()
        how, decides, target = terms_doc.compensation.combined, False, None
    else:
        return None
    periods = {p: format_value(objective, penalty.combined_value(rules, list(s.values)))
               for p, s in sorted(history.settlements.items()) if s.values}
    return {"how": how, "decides_credit": decides, "objective": objective, "target": target, "periods": periods}


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
    add_finding(findings, "terms.hash", history.address, problems, f"termsHash 0x{computed.hex()} = keccak(terms in the "
                                                          "creation log) = the agreement's stored hash")
    if terms_doc is None:
        findings.append(Finding("terms.file", history.address, SKIP, "no terms file given (--terms)"))
        return findings
    file_hash = terms_doc.document_hash()
    add_finding(findings, "terms.document-hash", str(terms_doc.source),
       [] if file_hash == history.document_hash else
       [f"the file's document hash is 0x{file_hash.hex()}, the agreement's is 0x{history.document_hash.hex()}"],
       f"document hash 0x{file_hash.hex()} is the one on chain")
    findings.append(_terms_file_matches(contracts, history, terms_doc))
    return findings


def _terms_file_matches(contracts: Contracts, history: History, terms_doc: Any) -> Finding:
    """The on-chain terms equal what the file gives (the document hash alone does not bind them: the factory
    takes any document hash)."""
    onchain = history.terms
    token = onchain.token
    is_eth = int(token, 16) == 0
    decimals = 18 if is_eth else terms_doc.payment.known_decimals
    try:
        if decimals is None:
            decimals = contracts.token(token).functions.decimals().call()
        expected = terms_doc.to_chain(
            name_resolver(contracts.chain),
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


def report_signer(history: History, period: int, values: Sequence[int], coverage: Sequence[int], root: bytes,
                  signature: bytes) -> str | None:
    """:meth:`Agreement.report_signer` with the chain id of the history (no RPC call per report)."""
    message = eip712.report_message(history.chain_id, history.address, period, values, coverage, root)
    return eip712.recover(message, signature)


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
                signer = report_signer(history, period, r.values, r.coverage, r.evidence_root, r.signature)
                if signer != r.oracle:
                    problems.append(f"report {i}: the signature recovers to {signer}, the contract logged {r.oracle}")
            if signer not in oracles:
                problems.append(f"report {i}: signer {signer} is not in the oracle set")
            if signer in signers:
                problems.append(f"report {i}: signer {signer} signed twice")
            if min(r.coverage, default=0) < history.terms.min_coverage:
                problems.append(f"report {i}: coverage {list(r.coverage)} ppm, below the terms' min_coverage "
                                f"{history.terms.min_coverage}")
            signers.append(signer)
        if len(set(signers)) < quorum:
            problems.append(f"{len(set(signers))} distinct signers, quorum is {quorum}")
        least = min((min(r.coverage, default=0) for r in s.reports), default=0)
        detail = (f"{len(signers)} reports from distinct oracles (quorum {quorum}), each measured at least "
                  f"{least / 10_000:g}% of every service (min_coverage {history.terms.min_coverage / 10_000:g}%)")
        if unread:
            detail += f"; {unread} signatures not in direct settle() calldata, signers taken from the logs"
        add_finding(findings, "reports.signers", subject, problems, detail)
        try:
            medians = tuple(penalty.aggregate_reports(rules, [r.values for r in s.reports]))
        except ValueError as exc:
            findings.append(Finding("reports.median", subject, FAIL, str(exc)))
            continue
        add_finding(findings, "reports.median", subject,
           [] if medians == s.values else [f"the contract used {list(s.values)}, the median rule gives {list(medians)}"],
           f"values {list(s.values)} = per-service median of {len(s.reports)} reports")
    return findings


def check_settlements(history: History) -> list[Finding]:
    findings: list[Finding] = []
    money = money_formatter(_token_metadata(history))
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
                add_finding(findings, "settlement", f"period {period}", [f"the reference model refuses the values: {exc}"], "")
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
                    shown = (lambda v: f"{v} bps") if name == "credit_bps" else money
                    problems.append(f"{name} {shown(g)}, the reference model gives {shown(x)}")
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
            flows = (f"credit {format_bps(s.credit_bps)}, {money(s.compensation)} to the customer "
                     f"({money(s.compensation_from_bond)} from the bond), {money(s.provider_payout)} to the provider"
                     ) if is_funded else f"unfunded: credit {format_bps(s.credit_bps)}, no money moves"
            add_finding(findings, "settlement", f"period {period}", problems, f"{how}; {flows} = reference model")
            if is_funded:
                bond -= s.compensation_from_bond
                funded.discard(period)
    return findings


def check_funds(history: History) -> list[Finding]:
    findings: list[Finding] = []
    money = money_formatter(_token_metadata(history))
    terms = history.terms
    fee = terms.fee
    problems = []
    funded: set[int] = set()
    for f in history.fundings:
        a = f.args
        if a["amount"] != fee * a["periods"]:
            problems.append(f"deposit in tx {f.tx_hash}: {money(a['amount'])} for {a['periods']} periods of fee "
                            f"{money(fee)}")
        if a["customer"] != terms.customer:
            problems.append(f"deposit in tx {f.tx_hash} from {a['customer']}, not the customer")
        periods = set(range(a["firstPeriod"], a["firstPeriod"] + a["periods"]))
        if periods & funded:
            problems.append(f"deposit in tx {f.tx_hash} funds periods already funded: {sorted(periods & funded)}")
        started = 0 if f.timestamp < terms.start else (f.timestamp - terms.start) // terms.period_length + 1
        if a["firstPeriod"] < started:
            problems.append(f"deposit in tx {f.tx_hash} funds period {a['firstPeriod']}, which had begun")
        funded |= periods
    add_finding(findings, "funds.deposits", history.address, problems,
       f"{len(history.fundings)} deposits of fee x periods for {len(funded)} periods, "
       f"{len(history.bonds)} bond postings")

    t = history.totals()
    problems = []
    settled_funded = {p for p, s in history.settlements.items() if s.funded}
    for p in settled_funded:
        s = history.settlements[p]
        if s.compensation - s.compensation_from_bond + s.provider_payout != fee:
            problems.append(f"period {p}: {money(s.compensation - s.compensation_from_bond)} + "
                            f"{money(s.provider_payout)} paid from a fee of {money(fee)}")
    if history.terminated is not None:
        a = history.terminated.args
        refunded = history.refunded_periods()
        if a["refundedPeriods"] != len(refunded) or a["refund"] != fee * len(refunded):
            problems.append(f"termination refunded {a['refundedPeriods']} periods ({money(a['refund'])}), the funded "
                            f"unsettled periods from {a['activePeriods']} on are {sorted(refunded)}")
    if t["bond_left"] < 0:
        problems.append(f"more paid from the bond than was posted ({money(t['bond_left'])})")
    balance_gap = t["held_now"] - t["held_expected"]
    if balance_gap < 0:
        problems.append(f"the contract holds {money(t['held_now'])}, {money(-balance_gap)} less than the "
                        f"{money(t['held_expected'])} it must (open fees {money(t['open_fees'])} + bond "
                        f"{money(t['bond_left'])} + owed {money(t['owed'])})")
    identity = t["escrowed"] - t["transferred_out"] - t["held_expected"]
    if identity:
        problems.append(f"escrowed {money(t['escrowed'])} - paid out {money(t['transferred_out'])} - held "
                        f"{money(t['held_expected'])} = {money(identity)}, not 0")
    detail = (f"escrowed {money(t['escrowed'])} = paid out {money(t['transferred_out'])} (customer "
              f"{money(t['paid_to_customer'])}, provider {money(t['paid_to_provider'])}, {money(t['owed'])} still "
              f"owed) + held {money(t['held_now'])}")
    if balance_gap > 0:
        detail += f"; {money(balance_gap)} more is held than the agreement's own flows put there (a direct transfer)"
    add_finding(findings, "funds.conservation", history.address, problems, detail)

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
    add_finding(findings, "funds.views", history.address, problems,
       f"bond {money(history.bond_balance)}, {open_periods} open funded periods, owed "
       f"{ {who: money(v) for who, v in owed.items()} or 0} agree with the logs")
    return findings


def check_consent(history: History) -> list[Finding]:
    """Both parties agreed to the terms on-chain before any money went in or any period was settled, and the terms'
    bond was in before the first deposit: from the creation log (its ``creator``) and the Consented, BondPosted,
    Funded and PeriodSettled logs, in chain order."""
    terms = history.terms
    money = money_formatter(_token_metadata(history))
    parties = {terms.provider: "provider", terms.customer: "customer"}
    consented: dict[str, str] = {}
    creator = next((e.args.get("creator") for e in history.events if e.name == "AgreementCreated"), None)
    if creator in parties:
        consented[parties[creator]] = f"by creating it (block {history.created_block})"
    problems: list[str] = []
    bond = 0
    bond_in_time = terms.bond == 0
    first_deposit = None
    for e in history.events:
        if e.name == "Consented":
            role = parties.get(e.args["party"])
            if role is None:
                problems.append(f"a consent by {e.args['party']}, who is not a party (block {e.block})")
            elif role in consented:
                problems.append(f"the {role} consented twice (block {e.block})")
            else:
                consented[role] = f"block {e.block}"
        elif e.name == "BondPosted":
            bond += e.args["amount"]
            bond_in_time = bond_in_time or bond >= terms.bond
        elif e.name in ("Funded", "PeriodSettled"):
            missing = [role for role in ("provider", "customer") if role not in consented]
            # a deposit by the customer is its consent, logged just before it in the same transaction
            if missing:
                problems.append(f"{e.name} in block {e.block} before the {' and the '.join(missing)} consented")
            if e.name == "Funded" and first_deposit is None:
                first_deposit = e
                if not bond_in_time:
                    problems.append(f"the first deposit (block {e.block}) came before the terms' bond of "
                                    f"{money(terms.bond)} was posted ({money(bond)} was)")
    if problems:
        return [Finding("parties.consent", history.address, FAIL, "; ".join(problems))]
    said = ", ".join(f"{role} {how}" for role, how in sorted(consented.items())) or "no one yet"
    bond_said = ("the terms ask for no bond" if terms.bond == 0 else
                 f"the terms' bond of {money(terms.bond)} was in before the first deposit" if first_deposit else
                 f"nothing funded yet (bond {money(bond)} of {money(terms.bond)} posted)")
    return [Finding("parties.consent", history.address, PASS,
                    f"consented: {said}; nothing funded or settled before both had; {bond_said}")]


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


def replay_history(contracts: Contracts, history: History, progress: Callable[[str], None] | None = None
                   ) -> tuple[list[Finding], dict[str, Any]]:
    """Re-execute the history on a fork of the chain before the creation block and compare (smartsla.replay)."""
    return replay(contracts, history, progress=progress)
