"""The provider, the customer, three oracle daemons and the auditor, each a separate process, on a persistent local
node: `smartsla node start`, `factory deploy`, `create`, `fund`, `sla-oracle run` x3, `status`, `payouts`, the node
stopped and started again with the history intact."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from oracle.devnet.localnet import oracle_events, spawn_oracle
from oracle.devnet.targets import HttpTarget, TcpTarget
from smartsla.constants import PPM
from smartsla import penalty
from smartsla.chain.anvil import free_port
from smartsla.chain.chain import Chain, dev_account
from smartsla.evidence.bundle import build_bundle, load_bundle
from smartsla.measure.samples import Status
from smartsla.onchain.client import Contracts
from smartsla.terms.parse import load_terms
from smartsla.units import parse_percent_ppm

pytestmark = pytest.mark.anvil

PERIOD = 20
SCHEDULE = (("99.9%", "10%"), ("90%", "50%"), ("50%", "100%"))


def terms_text(start: int, api_url: str, db_port: int) -> str:
    tiers = "\n".join(f'    - {{below: "{b}", credit: "{c}"}}' for b, c in SCHEDULE)
    return f"""\
agreement: cli-e2e
provider: provider
customer: customer
payment: {{token: test-usd, fee: "1000", bond: "200"}}
periods: {{start: {start}, length: {PERIOD}s, count: 1}}
services:
  - id: api
    objective: availability
    target: "99.9%"
    probe: {{type: http, url: "{api_url}", expect_status: [200], timeout: 400ms, interval: 500ms}}
  - id: db
    objective: availability
    target: "99.9%"
    probe: {{type: tcp, host: 127.0.0.1, port: {db_port}, timeout: 400ms, interval: 500ms}}
compensation:
  basis: combined
  combined: min
  schedule:
{tiers}
  cap: "100%"
measurement: {{slice: 1s, down_after: 1, gaps: exclude}}
oracles: {{members: [oracle-1, oracle-2, oracle-3], quorum: 2, deadline: 1h, fallback: no-credit}}
"""


def test_provider_customer_oracles_auditor_as_separate_processes(devnode, tmp_path):
    deployed = devnode.run("factory", "deploy", "--json", json_out=True)
    api, db = HttpTarget().start(), TcpTarget().start()
    procs = []
    try:
        # the daemons start first and find the agreement when it is created, as they would in production
        start = int(time.time()) + 30
        terms_file = tmp_path / "terms.yaml"
        terms_file.write_text(terms_text(start, api.url, db.port))
        devnode.run("node", "fund", "oracle-1", "oracle-2", "oracle-3")  # gas for settling
        ports = [free_port() for _ in range(3)]
        for i in (1, 2, 3):
            peers = [f"http://127.0.0.1:{ports[j - 1]}" for j in (1, 2, 3) if j != i]
            procs.append(spawn_oracle(tmp_path, i, devnode.url, deployed["factory"], ports[i - 1], peers,
                                      [str(terms_file)]))
        created = devnode.run("create", str(terms_file), "--yes", "--json", json_out=True)
        address = created["agreement"]
        assert created["document_hash"] == "0x" + load_terms(terms_file).document_hash().hex()
        devnode.run("bond", address, "200", "--json", json_out=True)  # the terms' bond comes first
        funded = devnode.run("fund", address, "--periods", "1", "--json", json_out=True)
        assert funded["periods"] == "0..0"

        watching = time.time() + 40
        while time.time() < watching and not all(oracle_events(tmp_path, i, "watching") for i in (1, 2, 3)):
            time.sleep(0.2)
        assert time.time() < start + 6, "the oracle daemons were not watching before the outage; machine too slow?"
        time.sleep(max(0, start + 6 - time.time()))
        api.set_mode("down-503")  # the api is down for 5 s of the 20 s period; db stays up
        time.sleep(5)
        api.set_mode(None)

        deadline = start + PERIOD + 60
        status = devnode.run("status", address, "--json", json_out=True)
        while time.time() < deadline and "settled" not in status["periods_state"]:
            time.sleep(1)
            status = devnode.run("status", address, "--json", json_out=True)
        logs = "\n".join((tmp_path / f"oracle-{i}.log").read_text()[-800:] for i in (1, 2, 3))
        assert status["periods_state"].get("settled") == 1, logs

        payouts = devnode.run("payouts", address, "--json", json_out=True)
        rows = {r["service"]: r for r in payouts["periods"] if r["period"] == 0}
        assert set(rows) == {"api", "db", "(combined)"}
        assert rows["(combined)"]["value"] == rows["api"]["value"]  # combined: the worst service
        assert rows["db"]["value"] == "100%"
        api_ppm = parse_percent_ppm(rows["api"]["value"])
        assert 650_000 <= api_ppm <= 850_000, rows  # 5 of 20 s down, give or take the slices at the edges
        terms = load_terms(terms_file)
        credit = penalty.period_credit_bps(terms.credit_rules(), [api_ppm, 1_000_000])
        assert credit == 5000
        assert rows["api"]["credit"] == "50%"
        assert rows["api"]["to_customer"] == "500" and rows["api"]["to_provider"] == "500"
        assert payouts["totals"]["deposited"] == {"fees": "1000", "bond": "200"}
        assert payouts["totals"]["to_customer"]["credits"] == "500"
        settled_by = [e for i in (1, 2, 3) for e in oracle_events(tmp_path, i, "settled")]
        assert len(settled_by) == 1, settled_by  # exactly one oracle sent the settling transaction

        csv_text = devnode.run("payouts", address, "--csv").stdout
        assert csv_text.splitlines()[0].startswith("period,service,value")
        assert len(csv_text.splitlines()) == 4  # the header, two services and the combined value

        # the auditor: everything from the chain, the terms file and the evidence of every oracle that signed.
        # The third oracle signs after the quorum of two only if its round comes before the settlement is mined;
        # one that finds the period settled has nothing to sign, and writes no bundle it could not vouch for.
        signed_by = time.time() + 30
        while time.time() < signed_by and not all(
                any(e["period"] == 0 for e in oracle_events(tmp_path, i, "signed")) for i in (1, 2, 3)):
            time.sleep(0.2)
        signers = [i for i in (1, 2, 3) if any(e["period"] == 0 for e in oracle_events(tmp_path, i, "signed"))]
        assert len(signers) >= 2, signers
        assert not [e for i in (1, 2, 3) for e in oracle_events(tmp_path, i, "error")]
        evidence = [str(tmp_path / f"evidence-{i}" / address) for i in signers]
        evidence_args = [arg for d in evidence for arg in ("--evidence", d)]
        html = tmp_path / "audit.html"
        audited = devnode.run("audit", address, "--terms", str(terms_file), *evidence_args, "--json",
                              "--html", str(html), json_out=True)
        failed = [f for f in audited["findings"] if f["verdict"] == "FAIL"]
        assert audited["result"] == "PASS" and not failed, failed
        checks = {f["check"] for f in audited["findings"] if f["verdict"] == "PASS"}
        assert {"code.clone", "code.implementation", "terms.document-hash", "reports.signers", "settlement",
                "funds.conservation", "evidence.root", "evidence.values"} <= checks, checks
        assert "<svg" in html.read_text()

        # a terms file that is not the one the parties signed
        other_terms = tmp_path / "other.yaml"
        other_terms.write_text(terms_text(start, api.url, db.port).replace('fee: "1000"', 'fee: "999"'))
        foreign = devnode.run("audit", address, "--terms", str(other_terms), "--json", check=False)
        assert foreign.returncode == 1
        assert "terms.document-hash" in {f["check"] for f in json.loads(foreign.stdout)["findings"]
                                         if f["verdict"] == "FAIL"}

        # someone outside the oracle set signs a report of "all up" over a bundle of its own making
        outsider = tmp_path / "outsider" / address
        honest = load_bundle(Path(evidence[0]) / "period-0")
        all_up = [replace(smp, status=Status.UP) for smp in honest.columns.samples()]
        root = build_bundle(outsider / "period-0", address, honest.chain_id, 0, honest.period_start,
                            honest.period_end, all_up, {"api": 1_000_000, "db": 1_000_000})
        with Chain.connect("outsider", url=devnode.url) as chain:
            agreement = Contracts(chain).factory_at(deployed["factory"]).agreement(address)
            stranger = dev_account("stranger")
            signed = agreement.sign_report(stranger, 0, [1_000_000, 1_000_000], [PPM, PPM], root)
        (outsider / "period-0.report.json").write_text(json.dumps({
            "agreement": address, "chain_id": honest.chain_id, "period": 0, "oracle": stranger.address,
            "values": [1_000_000, 1_000_000], "coverage": [PPM, PPM], "evidence_root": "0x" + root.hex(),
            "signature": "0x" + signed.signature.hex()}))
        claimed = devnode.run("audit", address, "--terms", str(terms_file), "--evidence", str(outsider), "--json",
                              check=False)
        assert claimed.returncode == 1
        outsider_findings = [f for f in json.loads(claimed.stdout)["findings"] if f["verdict"] == "FAIL"]
        assert [f["check"] for f in outsider_findings] == ["evidence.root"], outsider_findings
        assert f"signed by {stranger.address}, not by an oracle of the agreement" in outsider_findings[0]["detail"]

        # one byte of one oracle's evidence changed: the bundle no longer proves what it signed
        bundle_files = sorted(p for p in Path(evidence[0]).rglob("*")
                              if p.is_file() and p.suffix not in (".json",))
        victim = bundle_files[0]
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0x01
        victim.write_bytes(bytes(data))
        forged = devnode.run("audit", address, "--terms", str(terms_file), "--evidence", evidence[0], "--json",
                             check=False)
        assert forged.returncode == 1, forged.stdout[-2000:]
        forged_checks = {f["check"] for f in json.loads(forged.stdout)["findings"] if f["verdict"] == "FAIL"}
        assert forged_checks & {"evidence.bundle", "evidence.root", "evidence.values"}, forged_checks

        # the node keeps its chain: stopped and started again, the history reads the same
        devnode.run("node", "stop")
        devnode.run("node", "start")
        assert devnode.run("payouts", address, "--json", json_out=True) == payouts
        listed = devnode.run("list", "--account", "customer", "--json", json_out=True)
        assert [r["agreement"] for r in listed] == [address]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=20)
        api.stop()
        db.stop()
