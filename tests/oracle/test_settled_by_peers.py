"""An oracle that signed first and whose peers settled the period sees the settlement on the chain and records it:
its store, `sla-oracle status` and its log then say what the chain says (once it said `waiting` for ever)."""

from __future__ import annotations

import json
from pathlib import Path


from oracle.daemon import Watched
from oracle.store.store import Store
from oracle.submit import sign_once
from smartsla.constants import PPM
from smartsla.chain.chain import Chain
from smartsla.onchain.client import Contracts
from smartsla.onchain.types import PeriodState
from smartsla.terms.parse import load_terms
from tests.helpers.daemon import daemon_on
from tests.helpers.world import make_world

TERMS = "examples/aws-ec2.yaml"


def test_a_period_settled_by_peers_is_recorded_as_already_settled(tmp_path, artifacts, capsys):
    with Chain.connect("embedded") as chain:
        contracts = Contracts(chain, artifacts)
        w = make_world(chain, contracts)
        agreement = w.create(quorum=2)
        agreement.fund(w.customer, 1)
        first = w.oracles[0]
        daemon = daemon_on(tmp_path, chain, contracts, first.key)
        w.over(agreement, 0, extra=30)
        # the first oracle signs and waits for a quorum; the other two settle without it
        sign_once(daemon.store, agreement, first, 0, [999_000], [PPM], b"\x22" * 32)
        agreement.settle(w.stranger, 0, w.reports(agreement, 0, [[999_000], [999_000], [999_000]])[1:])
        watched = Watched(agreement, load_terms(TERMS))
        daemon.settle_due(watched, chain.now())
        assert 0 in watched.settled
        intent = daemon.store.report(daemon.chain_id, agreement.address, 0)
        assert intent.status == "already-settled"
        with Store(tmp_path / "oracle.db", read_only=True) as store:
            assert store.pending_reports() == []
        logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
        assert [e["event"] for e in logged if e.get("period") == 0] == ["already-settled"]


def test_killed_before_signing_then_settled_by_peers_still_vouches_for_its_bundle(tmp_path, artifacts):
    """Killed -9 after writing the bundle and persisting the intent, before signing; the peers settle meanwhile.
    The restarted oracle signs the persisted values then, beside the bundle, so an auditor holding that bundle can
    hold this oracle to it (else the audit finds a bundle nobody signed)."""
    from smartsla.evidence.bundle import build_bundle
    from smartsla.measure.samples import Sample, Status

    with Chain.connect("embedded") as chain:
        contracts = Contracts(chain, artifacts)
        w = make_world(chain, contracts)
        agreement = w.create(quorum=2)
        agreement.fund(w.customer, 1)
        daemon = daemon_on(tmp_path, chain, contracts, w.oracles[0].key, "evidence_dir: evidence\n")
        w.over(agreement, 0, extra=30)
        bundle = tmp_path / "evidence" / agreement.address / "period-0"
        start = agreement.period_start(0)
        root = build_bundle(bundle, agreement.address, daemon.chain_id, 0, start, agreement.period_end(0),
                            [Sample(float(start + 30), "ec2", Status.UP)], {"ec2": PPM}, coverage={"ec2": 950_000})
        daemon.store.intend_report(daemon.chain_id, agreement.address, 0, [PPM], [950_000], root)  # then kill -9
        agreement.settle(w.stranger, 0, w.reports(agreement, 0, [[999_000], [999_000], [999_000]])[1:])
        daemon.settle_due(Watched(agreement, load_terms(TERMS)), chain.now())
        signed = json.loads((bundle.parent / "period-0.report.json").read_text())
        assert (signed["values"], signed["coverage"], signed["evidence_root"]) == ([PPM], [950_000], "0x" + root.hex())
        assert agreement.report_signer(0, [PPM], [950_000], root, bytes.fromhex(signed["signature"][2:])) \
            == w.oracles[0].address


def test_a_closed_agreement_is_no_longer_watched_or_probed(tmp_path, artifacts, capsys):
    """Probing once went on for ever after `close`."""
    with Chain.connect("embedded") as chain:
        contracts = Contracts(chain, artifacts)
        w = make_world(chain, contracts)
        agreement = w.create(periodCount=1)
        daemon = daemon_on(tmp_path, chain, contracts, w.oracles[0].key)
        probed = Path(TERMS).read_text().replace('    target: "99.99%"\n',
                                                 '    target: "99.99%"\n    probe: {type: http, url: "http://127.0.0.1:1/"}\n')
        terms = load_terms(probed)
        assert terms.services[0].probe is not None
        daemon.watched[agreement.address] = Watched(agreement, terms)
        assert daemon.start_probes(agreement.address, terms) == 1
        daemon.retire_closed()
        assert agreement.address in daemon.watched  # still running
        assert list(daemon.probing().values()) == [{agreement.address}]
        w.over(agreement, 0)
        agreement.close(w.stranger)
        daemon.retire_closed()
        assert agreement.address not in daemon.watched and agreement.address in daemon._closed
        assert daemon.probing() == {}
        assert '"event": "closed"' in capsys.readouterr().err


def test_an_agreement_not_binding_both_parties_is_measured_and_signed_but_not_submitted(tmp_path, artifacts, capsys):
    """The contract refuses to settle it (NotYetBinding): the daemon once retried six times with backoff every round
    and logged a submit failure each time. Now it says once that it waits for the parties' consent, and settles the
    period in the first round after the missing party consents."""
    from smartsla.measure.samples import Sample, Status
    from oracle.store.samples import sample_key

    with Chain.connect("embedded") as chain:
        contracts = Contracts(chain, artifacts)
        w = make_world(chain, contracts)
        agreement = w.create(quorum=1, accepted=False)  # the provider created it; the customer never consented
        daemon = daemon_on(tmp_path, chain, contracts, w.oracles[0].key)
        start = agreement.period_start(0)
        key = sample_key(agreement.address, "ec2")
        daemon.store.append([Sample(float(start + k * 60 + 30), key, Status.UP, 10.0, "200")
                             for k in range(30 * 1440)])
        w.over(agreement, 0, extra=30)
        watched = Watched(agreement, load_terms(TERMS))
        for _ in range(2):
            daemon.settle_due(watched, chain.now())
        logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
        assert [e["event"] for e in logged if e.get("period") == 0] == ["signed", "not-binding"]
        assert "customer" in [e for e in logged if e["event"] == "not-binding"][0]["missing"]
        assert 0 not in watched.settled
        agreement.accept(w.customer)
        daemon.settle_due(watched, chain.now())
        assert 0 in watched.settled
        assert agreement.period(0).state == PeriodState.SETTLED_UNFUNDED
