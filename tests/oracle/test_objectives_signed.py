"""The daemon signs each objective's own value: the p99 and p95 of its probes' latencies and the Apdex score, not
the availability. It once signed a latency service's availability (100% read as 1,000,000 µs = 1 s) and the
contract paid a credit for a fast service. Here the daemon's own round, on the embedded chain, measures scripted
latencies from its real store, signs, settles, and the contract pays the credit the latencies imply; the auditor
recomputes every value from the bundle the daemon wrote."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from oracle.daemon import Watched
from oracle.store.samples import sample_key
from smartsla import cli as smartsla_cli
from smartsla.audit.checks import audit
from smartsla.audit.findings import PASS
from smartsla.audit.html import render
from smartsla.chain.chain import Chain
from smartsla.measure.samples import Sample, Status
from smartsla.onchain.client import Contracts
from smartsla.onchain.types import PeriodState
from smartsla.terms.parse import load_terms
from tests.helpers.daemon import daemon_on
from tests.helpers.world import make_world

SLICE = 60


def _agreement(tmp_path, chain, w, doc: dict):
    """The terms file ``doc`` (quorum 1: this test runs one oracle) created on chain with the world's accounts."""
    doc["oracles"]["quorum"] = 1
    path = tmp_path / "terms.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    terms = load_terms(path)
    names = {"provider": w.provider.address, "customer": w.customer.address,
             **{f"oracle-{i + 1}": o.address for i, o in enumerate(w.oracles)}}
    chain_terms = terms.to_chain(lambda name, _path: names.get(name, name), w.token.address, 6,
                                 now=chain.now() + 60)
    agreement = w.factory.create(w.provider, chain_terms)
    agreement.accept(w.customer)
    fee = chain_terms.fee
    w.mint(w.provider, chain_terms.bond)
    w.mint(w.customer, fee)
    agreement.post_bond(w.provider, chain_terms.bond)
    agreement.fund(w.customer, 1)
    return terms, path, agreement


def _watching(tmp_path, chain, artifacts, doc: dict):
    """The world, the agreement of the terms ``doc`` and one oracle daemon watching it: (contracts, world, terms,
    terms file, agreement, daemon, watched)."""
    contracts = Contracts(chain, artifacts)
    w = make_world(chain, contracts)
    terms, path, agreement = _agreement(tmp_path, chain, w, doc)
    daemon = daemon_on(tmp_path, chain, contracts, w.oracles[0].key, "evidence_dir: evidence\n")
    watched = Watched(agreement, terms)
    daemon.watched[agreement.address] = watched
    return contracts, w, terms, path, agreement, daemon, watched


def _example(name: str) -> dict:
    return yaml.safe_load(Path(f"examples/{name}.yaml").read_text())


def _scripted(agreement, service: str, latency_ms) -> list[Sample]:
    """One up sample mid-slice in every slice of period 0, its latency ``latency_ms(k)`` for slice k."""
    key = sample_key(agreement.address, service)
    start = agreement.period_start(0)
    per_period = agreement.terms.period_length // SLICE
    return [Sample(float(start + k * SLICE + 30), key, Status.UP, float(latency_ms(k)), "200")
            for k in range(per_period)]


def test_latency_percentiles_are_signed_and_paid_as_the_latencies_imply(tmp_path, artifacts):
    with Chain.connect("embedded") as chain:
        contracts, w, terms, path, agreement, daemon, watched = _watching(tmp_path, chain, artifacts,
                                                                         _example("latency"))
        # search: 2% of answers take 400 ms, so its p99 is 400 ms (above 250 ms: 10%); api answers every probe
        # (100%, no credit) and 6% of them take 350 ms, so api-p95, measured from api's probe, is 350 ms (5%)
        daemon.store.append(_scripted(agreement, "search", lambda k: 400 if k % 50 == 0 else 12))
        daemon.store.append(_scripted(agreement, "api", lambda k: 350 if k % 100 < 6 else 20))
        w.over(agreement, 0, extra=30)
        daemon.settle_due(watched, chain.now())

        intent = daemon.store.report(daemon.chain_id, agreement.address, 0)
        assert list(intent.values) == [400_000, 1_000_000, 350_000]
        assert list(intent.coverage) == [1_000_000] * 3
        record = agreement.period(0)
        assert record.state == PeriodState.SETTLED
        assert record.credit_bps == (1_000 + 0 + 500) // 3

        report = audit(contracts, agreement.address, terms_file=path,
                       evidence=[tmp_path / "evidence" / agreement.address / "period-0"])
        values = [f for f in report.findings if f.check == "evidence.values"]
        assert [f.verdict for f in values] == [PASS], values
        assert "search, api, api-p95 recomputed" in values[0].detail


def payouts_json(monkeypatch, capsys, chain, contracts, address, *extra) -> list[dict]:
    """``smartsla payouts --json`` on this test's embedded chain."""
    from smartsla.cli import customer
    from smartsla.cli.common import Session

    monkeypatch.setattr(chain, "close", lambda: None)
    monkeypatch.setattr(customer, "open_session", lambda args: Session(chain, contracts, chain.kind))
    capsys.readouterr()
    assert smartsla_cli.main(["payouts", address, "--network", "embedded", "--json", *extra]) == 0, \
        capsys.readouterr().err
    return json.loads(capsys.readouterr().out)["periods"]


def test_apdex_is_signed_from_the_probes_latencies(tmp_path, artifacts, monkeypatch, capsys):
    with Chain.connect("embedded") as chain:
        contracts, w, terms, path, agreement, daemon, watched = _watching(tmp_path, chain, artifacts,
                                                                         _example("xla"))
        # T = 500 ms: 80% satisfied (100 ms), 10% tolerating (exactly 4T = 2 s), 10% frustrated (2.5 s):
        # (0.8 + 0.1 / 2) = 0.85, below 0.94 and not below 0.85: the first tier
        daemon.store.append(_scripted(agreement, "checkout", lambda k: 100 if k % 10 < 8 else 2000 if k % 10 == 8
                                      else 2500))
        w.over(agreement, 0, extra=30)
        daemon.settle_due(watched, chain.now())
        intent = daemon.store.report(daemon.chain_id, agreement.address, 0)
        assert list(intent.values) == [850_000]
        assert agreement.period(0).credit_bps == terms.services[0].tiers[0].credit_bps
        report = audit(contracts, agreement.address, terms_file=path,
                       evidence=[tmp_path / "evidence" / agreement.address / "period-0"])
        assert [f.verdict for f in report.findings if f.check == "evidence.values"] == [PASS]
        assert report.objectives == ["apdex (T = 500ms)"]
        page = render(report)
        assert "checkout (apdex (T = 500ms), target 0.94)" in page and "apdex (T = 500ms) (score)" in page

        # the customer's payouts show the score as a score once the terms are given, a percentage without
        factory = ("--factory", w.factory.address)
        rows = payouts_json(monkeypatch, capsys, chain, contracts, agreement.address, *factory, "--terms", str(path))
        assert [(r["service"], r["value"], r["target"]) for r in rows] == [("checkout", "0.85", "0.94")]
        rows = payouts_json(monkeypatch, capsys, chain, contracts, agreement.address, *factory)
        assert [(r["service"], r["value"]) for r in rows] == [("checkout", "85%")]
        other = tmp_path / "other.yaml"
        other.write_text(path.read_text().replace("target: '0.94'", "target: '0.95'"))
        assert other.read_text() != path.read_text()
        assert smartsla_cli.main(["payouts", agreement.address, "--network", "embedded", *factory,
                                  "--terms", str(other)]) == 2
        assert "is not the terms of" in capsys.readouterr().err


def test_a_success_rate_from_imported_counts_is_signed_paid_and_audited(tmp_path, artifacts):
    """S3's error-rate uptime from the provider's counts in the store: 5-minute slices, in one of every ten 20%
    of the requests fail and some slices have no requests (good): the mean is 98.0%, below 99.0% (25%)."""
    from oracle.store.events import EventRow

    with Chain.connect("embedded") as chain:
        doc = _example("aws-s3")
        del doc["periods"]["start"]
        del doc["services"][0]["events"]           # counts imported, not read from Prometheus
        contracts, w, terms, path, agreement, daemon, watched = _watching(tmp_path, chain, artifacts, doc)
        key = sample_key(agreement.address, "s3")
        start = agreement.period_start(0)
        rows = []
        for k in range(agreement.terms.period_length // 300):
            total = 0 if k % 10 == 5 else 1000
            good = 800 if k % 10 == 0 else total
            rows.append(EventRow(key, (start + 300 * k) * 10**6, 300, good, 0, total))
        daemon.store.append_events(rows)
        w.over(agreement, 0, extra=30)
        daemon.settle_due(watched, chain.now())
        intent = daemon.store.report(daemon.chain_id, agreement.address, 0)
        assert list(intent.values) == [980_000] and list(intent.coverage) == [1_000_000]
        assert agreement.period(0).credit_bps == 2_500

        bundle = tmp_path / "evidence" / agreement.address / "period-0"
        assert (bundle / "events" / "s3.bin").stat().st_size == 32 * len(rows)
        report = audit(contracts, agreement.address, terms_file=path, evidence=[bundle])
        assert [f.verdict for f in report.findings if f.check == "evidence.values"] == [PASS]

        # one count changed in the bundle: 800 good of 1000 becomes 1000 of 1000
        data = bytearray((bundle / "events" / "s3.bin").read_bytes())
        data[8:16] = (1000).to_bytes(8, "big")
        (bundle / "events" / "s3.bin").write_bytes(bytes(data))
        report = audit(contracts, agreement.address, terms_file=path, evidence=[bundle])
        bundle_findings = [f for f in report.findings if f.check == "evidence.bundle"]
        assert [f.verdict for f in bundle_findings] == ["FAIL"]
        assert "events/s3.bin: its records hash to events root" in bundle_findings[0].detail
        # and which records: those of the first hour, where the changed count is
        assert "the counts of hour" in bundle_findings[0].detail and "(records 0.." in bundle_findings[0].detail
        assert not report.ok
