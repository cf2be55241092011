"""The periods a round finds ready are settled together: one ``settleBatch`` transaction for all of a factory's
quorums, instead of one transaction (and one base cost, one wait for a block) each, so that 100 agreements due at
once do not queue up behind each other. Each period is still settled exactly once with its own values; an item a
peer settled first is counted as already settled; a factory without batches gets them one by one."""

from __future__ import annotations

import json

from oracle.store.samples import sample_key
from oracle.submit import submit_batch
from smartsla.chain.chain import Chain
from smartsla.constants import PPM
from smartsla.measure.samples import Sample, Status
from smartsla.onchain.client import Contracts, Factory
from smartsla.onchain.types import PeriodState
from smartsla.terms.parse import load_terms
from tests.helpers.daemon import daemon_on
from tests.helpers.world import make_world

DOC = b"\x11" * 32
SLICE = 60


def logged(capsys, name: str) -> list[dict]:
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    return [e for e in lines if e["event"] == name]


def test_a_rounds_quorums_are_settled_in_one_transaction(tmp_path, artifacts, capsys):
    with Chain.connect("embedded") as chain:
        contracts = Contracts(chain, artifacts)
        w = make_world(chain, contracts)
        agreements = [w.create(quorum=1) for _ in range(3)]
        for agreement in agreements:
            agreement.fund(w.customer, 1)
        daemon = daemon_on(tmp_path, chain, contracts, w.oracles[0].key, "evidence_dir: evidence\n")
        daemon.factory = w.factory
        daemon.terms_by_hash[DOC] = load_terms("examples/aws-ec2.yaml")
        daemon.discover()
        assert set(daemon.watched) == {a.address for a in agreements}
        # each agreement's service down for a different number of minutes: each is paid its own credit
        downs = {a.address: down for a, down in zip(agreements, (0, 30, 600))}
        for agreement in agreements:
            start = agreement.period_start(0)
            key = sample_key(agreement.address, "ec2")
            daemon.store.append([Sample(float(start + k * SLICE + 30), key,
                                        Status.DOWN if k < downs[agreement.address] else Status.UP, 10.0, "200")
                                 for k in range(30 * 86_400 // SLICE)])
        w.over(agreements[-1], 0, extra=30)
        capsys.readouterr()
        daemon.tick()

        settled = [e for a in agreements for e in a.events("PeriodSettled")]
        assert len(settled) == 3
        assert len({e["transactionHash"] for e in settled}) == 1               # one transaction for all three
        values = {e["address"]: e["args"]["values"][0] for e in settled}
        per_period = 30 * 86_400 // SLICE
        assert values == {a.address: (per_period - downs[a.address]) * PPM // per_period for a in agreements}
        said = logged(capsys, "settled")
        assert sorted(e["agreement"] for e in said) == sorted(a.address for a in agreements)
        assert {e["batch"] for e in said} == {3}
        for agreement in agreements:
            assert daemon.store.report(daemon.chain_id, agreement.address, 0).status == "settled"

        daemon.tick()                                                           # nothing left: nothing sent
        assert [e for a in agreements for e in a.events("PeriodSettled")] == settled


def test_an_item_a_peer_settled_first_is_already_settled_and_the_rest_land(tmp_path, artifacts):
    with Chain.connect("embedded") as chain:
        contracts = Contracts(chain, artifacts)
        w = make_world(chain, contracts)
        first, second = w.create(quorum=1), w.create(quorum=1)
        for agreement in (first, second):
            agreement.fund(w.customer, 1)
        daemon = daemon_on(tmp_path, chain, contracts, w.oracles[0].key)
        w.over(second, 0)
        ours = {a.address: [a.sign_report(w.oracles[0], 0, [990_000], [PPM])] for a in (first, second)}
        for agreement in (first, second):
            daemon.store.intend_report(daemon.chain_id, agreement.address, 0, [990_000], [PPM], b"\0" * 32)
        first.settle(w.oracles[1], 0, [first.sign_report(w.oracles[1], 0, [1_000_000], [PPM])])   # a peer, first
        outcomes = submit_batch(w.factory, daemon.account, [(a, 0, ours[a.address]) for a in (first, second)],
                                store=daemon.store)
        assert [(o.agreement.address, o.status) for o in outcomes] == [(first.address, "already-settled"),
                                                                      (second.address, "settled")]
        assert "PeriodAlreadySettled" in outcomes[0].detail
        assert first.period(0).compensation == 0                              # the peer's settlement stands
        assert second.period(0).state == PeriodState.SETTLED and second.period(0).credit_bps == 1_000
        assert daemon.store.report(daemon.chain_id, first.address, 0).status == "already-settled"
        assert daemon.store.report(daemon.chain_id, second.address, 0).status == "settled"


def test_a_factory_without_batches_is_told_apart(artifacts):
    with Chain.connect("embedded") as chain:
        contracts = Contracts(chain, artifacts)
        w = make_world(chain, contracts)
        assert w.factory.supports_batch()
        # any contract without settleBatch (a factory from before it) answers the empty batch with a revert
        assert not Factory(contracts, w.token.address).supports_batch()
        assert not Factory(contracts, w.stranger.address).supports_batch()
