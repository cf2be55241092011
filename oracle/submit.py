"""Sign a period's report exactly once, and get a quorum of reports settled on-chain exactly once.

The journal in the store is written before anything is signed, so an oracle that crashes and restarts signs
the same values again (or finds its earlier signature), never different ones. Submission retries with
backoff; a revert saying the period is already settled counts as done, whoever settled it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from eth_account.signers.local import LocalAccount

from smartsla.chain.reverts import Reverted
from smartsla.onchain.client import Agreement, Factory
from smartsla.onchain.types import SignedReport

DONE_ERRORS = {"PeriodAlreadySettled"}
# Not worth retrying: the same transaction would fail the same way.
FINAL_ERRORS = {"NotAnOracle", "DuplicateSigner", "QuorumNotReached", "WrongValueCount", "ValueOutOfRange",
                "CoverageTooLow", "CoverageOutOfRange", "PeriodNotActive", "TermsMismatch"}


class SubmitError(Exception):
    """The reports could not be settled; the message says why."""


@dataclass(frozen=True)
class Outcome:
    status: str            # settled | already-settled
    tx_hash: str | None
    attempts: int


def sign_once(store, agreement: Agreement, account: LocalAccount, period: int, values: Sequence[int],
              coverage: Sequence[int], evidence_root: bytes) -> SignedReport:
    """Persist (agreement, period, values, coverage, root) before signing; sign what was persisted first."""
    chain_id = agreement.chain.w3.eth.chain_id
    intent = store.intend_report(chain_id, agreement.address, period, list(values), list(coverage), evidence_root)
    if intent.coverage is None:
        raise SubmitError(f"period {period} of {agreement.address} was persisted by an sla-oracle older than "
                          "coverage in reports; it cannot be signed in today's form (the fallback settles it)")
    report = agreement.sign_report(account, period, list(intent.values), list(intent.coverage), intent.evidence_root)
    store.record_signature(chain_id, agreement.address, period, account.address, report.signature)
    return report


def most_complete(reports: Iterable[SignedReport], quorum: int) -> list[SignedReport]:
    """The ``quorum`` reports that measured the most of the period (weakest service first, then all services; the
    signer breaks ties so every oracle picks the same): a report from an oracle that was down for part of the period
    gives way to one that saw it whole."""
    ranked = sorted(reports, key=lambda r: (-r.least_coverage, -sum(r.coverage), r.signer.lower()))
    return ranked[:quorum]


def submit(agreement: Agreement, sender: LocalAccount, period: int, reports: Sequence[SignedReport], *,
           attempts: int = 6, backoff: float = 0.5, sleep: Callable[[float], None] = time.sleep,
           store=None) -> Outcome:
    """Settle ``period`` from ``reports``, retrying transport failures with exponential backoff."""
    chain_id = None
    last_error: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            if chain_id is None:
                chain_id = agreement.chain.w3.eth.chain_id
            receipt = agreement.settle(sender, period, reports)
        except Reverted as exc:
            if exc.error in DONE_ERRORS:
                _record(store, chain_id, agreement, period, None, "already-settled")
                return Outcome("already-settled", None, attempt)
            if exc.error in FINAL_ERRORS:
                _record(store, chain_id, agreement, period, None, "failed")
                raise SubmitError(f"period {period} of {agreement.address}: {exc}") from None
            last_error = exc
        except Exception as exc:  # noqa: BLE001 - a node that is down or restarting: try again
            last_error = exc
            if _without_ether(agreement, sender):
                raise SubmitError(f"period {period} of {agreement.address}: the oracle's account {sender.address} "
                                  "has no ether for gas on this chain; fund it (on a dev node: `smartsla node fund "
                                  f"{sender.address}`)") from None
        else:
            tx_hash = receipt["transactionHash"].hex()
            _record(store, chain_id, agreement, period, tx_hash, "settled")
            return Outcome("settled", tx_hash, attempt)
        # A transaction may have landed although we saw an error (e.g. the node died after accepting it).
        try:
            if not agreement.period(period).state.is_open:
                _record(store, chain_id, agreement, period, None, "already-settled")
                return Outcome("already-settled", None, attempt)
        except Exception:  # noqa: BLE001 - still unreachable; keep backing off
            pass
        if attempt < attempts:
            sleep(backoff * 2 ** (attempt - 1))
    raise SubmitError(f"period {period} of {agreement.address} not settled after {attempts} attempts: {last_error}")


@dataclass(frozen=True)
class ItemOutcome:
    """What became of one item of a batch: ``settled`` (by this batch), ``already-settled`` (by someone else, or
    by a transaction this oracle could not confirm), ``failed`` (refused as the same reports would be again:
    journalled as failed and logged, and, as for a lone ``submit``, the next round measures nothing new but sends
    again) or ``retry`` (refused for now, e.g. by a node that went down: the next round tries again)."""

    agreement: Agreement
    period: int
    status: str
    tx_hash: str | None
    detail: str = ""


def submit_batch(factory: Factory, sender: LocalAccount,
                 items: Sequence[tuple[Agreement, int, Sequence[SignedReport]]], *, store=None) -> list[ItemOutcome]:
    """Settle several agreements' periods in one ``settleBatch`` transaction. An item the contract refused is
    judged by its own revert, as ``submit`` judges one; if the transaction itself failed (a node down, a
    transaction that may or may not have landed), the chain says which periods are settled now and the rest are
    tried again next round, one way or the other."""
    chain = factory.contracts.chain
    chain_id = chain.w3.eth.chain_id
    try:
        batch = factory.settle_batch(sender, items)
    except Exception as exc:  # noqa: BLE001 - transport or a whole-batch revert: the chain says what is settled
        out = []
        for agreement, period, _ in items:
            try:
                done = not agreement.period(period).state.is_open
            except Exception:  # noqa: BLE001 - still unreachable: next round
                done = False
            if done:
                _record(store, chain_id, agreement, period, None, "already-settled")
            out.append(ItemOutcome(agreement, period, "already-settled" if done else "retry", None, str(exc)))
        return out
    tx_hash = batch.receipt["transactionHash"].hex()
    failed = {(address, period): reason for address, period, reason in batch.failed}
    out = []
    for agreement, period, _ in items:
        reason = failed.get((agreement.address, period))
        if reason is None:
            _record(store, chain_id, agreement, period, tx_hash, "settled")
            out.append(ItemOutcome(agreement, period, "settled", tx_hash))
            continue
        error = chain.decode_revert(reason)
        if error.error in DONE_ERRORS:
            status = "already-settled"
        elif error.error in FINAL_ERRORS:
            status = "failed"
        else:
            status = "retry"
        if status != "retry":
            _record(store, chain_id, agreement, period, None, status)
        out.append(ItemOutcome(agreement, period, status, tx_hash, str(error)))
    return out


def _without_ether(agreement: Agreement, sender: LocalAccount) -> bool:
    try:
        return agreement.chain.w3.eth.get_balance(sender.address) == 0
    except Exception:  # noqa: BLE001 - the node is unreachable: that is the error to retry, not this one
        return False


def _record(store, chain_id, agreement: Agreement, period: int, tx_hash: str | None, status: str) -> None:
    if store is not None and chain_id is not None:
        store.record_submission(chain_id, agreement.address, period, tx_hash, status)
