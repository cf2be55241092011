"""Signing once and settling once, whatever crashes: against the real contracts on anvil and embedded."""

from __future__ import annotations

import threading
import time

import pytest

from oracle import submit as oracle_submit
from smartsla.constants import PPM
from smartsla.chain.anvil import AnvilProcess
from smartsla.chain.chain import Chain
from smartsla.onchain.client import Contracts
from smartsla.onchain.types import PeriodState
from tests.helpers.world import make_world


class MemoryJournal:
    """The store's report journal, in memory, for tests of the submitter alone (the SQLite one has its own)."""

    def __init__(self):
        self.intents, self.signatures, self.submissions = {}, {}, []

    def intend_report(self, chain_id, agreement, period, values, coverage, root):
        key = (chain_id, agreement, period)
        self.intents.setdefault(key, type("Intent", (), {"values": list(values), "coverage": list(coverage),
                                                         "evidence_root": root}))
        return self.intents[key]

    def record_signature(self, chain_id, agreement, period, signer, signature):
        self.signatures[(chain_id, agreement, period, signer)] = signature

    def record_submission(self, chain_id, agreement, period, tx_hash, status):
        self.submissions.append((period, status))


def test_second_submitter_counts_already_settled_as_done(world):
    agreement = world.create()
    agreement.fund(world.customer, 1)
    world.over(agreement, 0)
    journal = MemoryJournal()
    reports = [oracle_submit.sign_once(journal, agreement, o, 0, [999_000], [PPM], b"\x01" * 32)
               for o in world.oracles[:2]]
    first = oracle_submit.submit(agreement, world.oracles[0], 0, reports, store=journal)
    second = oracle_submit.submit(agreement, world.oracles[1], 0, reports, store=journal, sleep=lambda s: None)
    assert (first.status, second.status) == ("settled", "already-settled")
    assert agreement.period(0).state == PeriodState.SETTLED
    assert journal.submissions == [(0, "settled"), (0, "already-settled")]


def test_signing_again_after_a_restart_signs_the_persisted_values(world):
    agreement = world.create()
    journal = MemoryJournal()
    first = oracle_submit.sign_once(journal, agreement, world.oracles[0], 0, [999_000], [PPM], b"\x01" * 32)
    # after a restart the oracle recomputes slightly different values: it must still sign the first ones
    again = oracle_submit.sign_once(journal, agreement, world.oracles[0], 0, [998_000], [950_000],
                                    b"\x02" * 32)
    assert again.values == first.values and again.evidence_root == first.evidence_root
    assert again.coverage == first.coverage == (PPM,)
    assert again.signature == first.signature


def test_a_report_rejected_for_good_is_not_retried(world):
    agreement = world.create()
    agreement.fund(world.customer, 1)
    world.over(agreement, 0)
    reports = [agreement.sign_report(world.stranger, 0, [999_000], [PPM]),
               agreement.sign_report(world.oracles[0], 0, [1], [PPM])]
    slept = []
    with pytest.raises(oracle_submit.SubmitError, match="NotAnOracle"):
        oracle_submit.submit(agreement, world.oracles[0], 0, reports, sleep=slept.append)
    assert slept == []


@pytest.mark.anvil
def test_report_lands_after_the_node_is_stopped_and_brought_back(tmp_path, artifacts):
    state = tmp_path / "anvil-state.json"
    node = AnvilProcess.start(state_file=state)
    port = int(node.url.rsplit(":", 1)[1])
    chain = Chain.connect("custom", url=node.url)
    chain.kind = "anvil"  # a dev node we started: time travel and dev accounts allowed
    try:
        world = make_world(chain, Contracts(chain, artifacts))
        agreement = world.create()
        agreement.fund(world.customer, 1)
        world.over(agreement, 0)
        reports = [agreement.sign_report(o, 0, [985_000], [PPM]) for o in world.oracles[:2]]
        node.stop()  # dumps its state, like a node going down for maintenance

        def bring_back():
            time.sleep(1.5)
            nonlocal node
            node = AnvilProcess.start(port=port, state_file=state)
            # the dumped state keeps the blocks, not our time travel: move the clock past the period again
            Chain.connect("custom", url=node.url).w3.provider.make_request(
                "evm_setNextBlockTimestamp", [agreement.period_end(0) + 5])

        restarter = threading.Thread(target=bring_back)
        restarter.start()
        outcome = oracle_submit.submit(agreement, world.oracles[0], 0, reports, attempts=8, backoff=0.25)
        restarter.join()
        assert outcome.status == "settled" and outcome.attempts > 1
        record = agreement.period(0)
        assert record.state == PeriodState.SETTLED and record.credit_bps == 3_000
    finally:
        node.stop()


def test_an_oracle_without_ether_is_told_to_fund_its_account(artifacts):
    """Not 'Out of gas: allowance 0' six times over: the account and the command that funds it."""
    from eth_account import Account

    from oracle.submit import SubmitError, submit
    from smartsla.chain.chain import Chain
    from smartsla.onchain.client import Contracts
    from tests.helpers.world import make_world

    with Chain.connect("embedded") as chain:
        w = make_world(chain, Contracts(chain, artifacts))
        agreement = w.create()
        agreement.fund(w.customer, 1)
        w.over(agreement, 0)
        poor = Account.create()
        with pytest.raises(SubmitError, match=rf"{poor.address} has no ether.*smartsla node fund"):
            submit(agreement, poor, 0, w.reports(agreement, 0, [[999_000]] * 2), sleep=lambda _s: None)
