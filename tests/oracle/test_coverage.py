"""A report says how much of the period it measured, and an oracle that measured too little does not sign.

Once, an oracle that saw nothing signed 100% with no log line; two oracles restarting during an outage settled a
period at 100% that the third measured at 87.5%; an oracle whose clock stepped back an hour signed 1000000 for five
periods. Here the daemon's own rounds run on the embedded chain with real samples in its real store: below the
terms' min_coverage nothing is signed or written and the operator is told why; samples imported later lift it; a
period not over by this machine's clock waits; a skew between the clocks is logged once; the quorum's most complete
reports are the ones submitted; a peer's report below the minimum is refused like any bad answer."""

from __future__ import annotations

import json
import sqlite3

import pytest

from oracle.daemon import Watched
from oracle.store.samples import sample_key
from oracle.store.schema import StoreCorrupt
from oracle.store.store import Store
from oracle.submit import most_complete
from smartsla.chain.chain import Chain
from smartsla.constants import PPM
from smartsla.measure.samples import Sample, Status
from smartsla.onchain.client import Contracts
from smartsla.onchain.types import PeriodState
from smartsla.terms.parse import load_terms
from tests.helpers.daemon import daemon_on
from tests.helpers.world import make_world
from tests.oracle.test_hostile_peers import HostilePeer, response

TERMS = "examples/aws-ec2.yaml"    # 30-day periods of 1-minute slices: 43,200 per period
SLICE = 60


def events(capsys, name: str) -> list[dict]:
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    return [e for e in lines if e["event"] == name]


def samples(agreement, slices: range, status: str = Status.UP) -> list[Sample]:
    """One sample in each of these slices of period 0 (mid-slice)."""
    key = sample_key(agreement.address, "ec2")
    start = agreement.period_start(0)
    return [Sample(float(start + k * SLICE + 30), key, status, 10.0, "200") for k in slices]


@pytest.fixture
def setting(tmp_path, artifacts):
    with Chain.connect("embedded") as chain:
        contracts = Contracts(chain, artifacts)
        w = make_world(chain, contracts)
        agreement = w.create(quorum=1)
        agreement.fund(w.customer, 1)
        daemon = daemon_on(tmp_path, chain, contracts, w.oracles[0].key, "evidence_dir: evidence\n")
        watched = Watched(agreement, load_terms(TERMS))
        daemon.watched[agreement.address] = watched
        yield chain, w, agreement, daemon, watched


def test_an_oracle_that_measured_too_little_signs_nothing_until_an_import_fills_the_hole(setting, tmp_path, capsys):
    chain, w, agreement, daemon, watched = setting
    per_period = 30 * 86_400 // SLICE
    # samples for 80% of the period, every one of them up: the values would read 100%
    daemon.store.append(samples(agreement, range(0, per_period * 8 // 10)))
    w.over(agreement, 0, extra=30)
    daemon.settle_due(watched, chain.now())
    assert agreement.period(0).state == PeriodState.FUNDED
    assert daemon.store.report(daemon.chain_id, agreement.address, 0) is None       # nothing persisted, nothing signed
    assert not (tmp_path / "evidence" / agreement.address / "period-0").exists()   # and no bundle
    said = events(capsys, "not-signed")
    assert [(e["reason"], e["coverage"], e["min_coverage"]) for e in said] == [("low-coverage", {"ec2": 800_000},
                                                                                900_000)]
    assert "ec2 80%" in said[0]["detail"] and "min_coverage 90%" in said[0]["detail"]
    daemon.settle_due(watched, chain.now())
    assert events(capsys, "not-signed") == []                                    # said once, not every round
    assert b'sla_oracle_reports_withheld_total{reason="low-coverage"} 1.0' in daemon.metrics.render()

    # the operator imports the rest (all but 1%): the next round signs, with the coverage it measured
    daemon.store.append(samples(agreement, range(per_period * 8 // 10, per_period * 99 // 100)))
    daemon.settle_due(watched, chain.now())
    assert agreement.period(0).state == PeriodState.SETTLED
    intent = daemon.store.report(daemon.chain_id, agreement.address, 0)
    assert intent.coverage == (990_000,) and intent.values == (PPM,)
    manifest = json.loads((tmp_path / "evidence" / agreement.address / "period-0" / "manifest.json").read_text())
    assert manifest["coverage"] == {"ec2": 990_000}
    accepted = agreement.events("ReportAccepted")
    assert [tuple(e["args"]["coverage"]) for e in accepted] == [(990_000,)]


def test_a_period_not_over_by_this_machines_clock_waits(setting, capsys):
    """The chain's time jumped ahead (or this clock stepped back an hour): the chain says the period is over, the
    samples' clock says it is still running. Signing then would sign an unfinished period."""
    chain, w, agreement, daemon, watched = setting
    daemon.store.append(samples(agreement, range(0, 30 * 86_400 // SLICE)))
    w.over(agreement, 0, extra=30)
    behind = chain.now() - 3_600
    daemon.clock = lambda: behind
    daemon.settle_due(watched, chain.now())
    assert agreement.period(0).state == PeriodState.FUNDED
    assert daemon.store.report(daemon.chain_id, agreement.address, 0) is None
    said = events(capsys, "not-signed")
    assert [e["reason"] for e in said] == ["not-over-here"] and "signing waits for both" in said[0]["detail"]
    daemon.check_clock(chain.now())
    skew = events(capsys, "clock-skew")
    assert len(skew) == 1 and skew[0]["chain_minus_local_s"] == pytest.approx(3_600, abs=2)
    assert "time sync" in skew[0]["hint"]
    daemon.check_clock(chain.now())
    assert events(capsys, "clock-skew") == []                                    # once per episode
    assert b"sla_oracle_clock_skew_seconds 3600" in daemon.metrics.render()

    daemon.clock = chain.now                                                     # the clocks agree again
    daemon.check_clock(chain.now())
    assert len(events(capsys, "clock-agrees")) == 1
    daemon.settle_due(watched, chain.now())
    assert agreement.period(0).state == PeriodState.SETTLED


def test_the_quorum_is_made_of_the_most_complete_reports(tmp_path, artifacts):
    """With more reports than the quorum, the ones that measured the most are submitted, whatever order they
    arrived in: an oracle back from a restart gives way to one that saw the whole period."""
    with Chain.connect("embedded") as chain:
        w = make_world(chain, Contracts(chain, artifacts))
        agreement = w.create(quorum=2)
        agreement.fund(w.customer, 1)
        w.over(agreement, 0)
        restarted, whole, partial = w.reports(agreement, 0, [[PPM], [875_000], [880_000]],
                                              coverage=[[910_000], [PPM], [990_000]])
        chosen = most_complete([restarted, whole, partial], 2)
        assert [r.signer for r in chosen] == [whole.signer, partial.signer]
        assert most_complete([partial, whole, restarted], 2) == chosen          # order of arrival does not matter
        agreement.settle(w.stranger, 0, chosen)
        settled = agreement.events("PeriodSettled")[0]["args"]
        assert list(settled["values"]) == [875_000]    # the median of the two complete ones (of two, the lower), not 100%


def test_a_peers_report_below_the_minimum_is_refused(setting, capsys):
    """Signed by an oracle of the agreement, but the contract would refuse it and the whole settlement with it."""
    chain, w, agreement, daemon, watched = setting
    w.over(agreement, 0)
    low = agreement.sign_report(w.oracles[1], 0, [PPM], [500_000], b"\x22" * 32)
    body = json.dumps({"values": [PPM], "coverage": [500_000], "evidenceRoot": "0x" + "22" * 32,
                       "signature": "0x" + low.signature.hex(), "signer": low.signer}).encode()
    missing = json.dumps({"values": [PPM], "evidenceRoot": "0x" + "22" * 32,
                          "signature": "0x" + low.signature.hex()}).encode()
    for answer, reason in ((body, "low-coverage"), (missing, "malformed")):
        peer = HostilePeer(lambda _p, answer=answer: [(response(answer), 0)])
        try:
            assert daemon.peer_report(peer.url, agreement, 0) is None
        finally:
            peer.stop()
        said = events(capsys, "bad-peer-report")
        assert [e["reason"] for e in said] == [reason]


def test_a_changed_coverage_in_the_journal_is_corruption(tmp_path):
    """The journal is read as strictly as it is written: a coverage no write could store stops signing."""
    path = tmp_path / "o.db"
    agreement = "0x" + "ab" * 20
    with Store(path) as store:
        store.intend_report(31337, agreement, 0, [PPM], [950_000], b"\x01" * 32)
    raw = sqlite3.connect(path)
    raw.execute("DROP TRIGGER reports_coverage_fixed")   # what an editor of the file could do
    raw.execute("UPDATE reports SET report_coverage = '[9500000]'")
    raw.commit()
    raw.close()
    with Store(path) as store, pytest.raises(StoreCorrupt, match="not a list of integers 0..1000000"):
        store.report(31337, agreement, 0)


def test_this_clock_ahead_of_the_chain_is_said_and_the_chain_still_decides(setting, capsys):
    """The other way round: this machine's clock jumped ahead. The log says so (a negative skew), and no period is
    signed before the chain calls it over, whatever this clock says."""
    chain, w, agreement, daemon, watched = setting
    daemon.store.append(samples(agreement, range(0, 30 * 86_400 // SLICE)))
    daemon.clock = lambda: chain.now() + 40 * 86_400      # past period 0's end by this clock, not the chain's
    daemon.check_clock(chain.now())
    skew = events(capsys, "clock-skew")
    assert len(skew) == 1 and skew[0]["chain_minus_local_s"] < -39 * 86_400
    daemon.settle_due(watched, chain.now())
    assert agreement.period(0).state == PeriodState.FUNDED
    assert daemon.store.report(daemon.chain_id, agreement.address, 0) is None
