"""smartsla.audit and ``smartsla audit``: an honest agreement passes every check (embedded and anvil); a terms file
that is not the agreement's, a report from outside the oracle set, a wrong settlement, missing money, forged or
lying evidence each give the right FAIL; the replay passes for an honest history."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from smartsla.audit.checks import (
    audit,
    check_funds,
    check_reports,
    check_settlements,
    compare_with_immutables,
)
from smartsla.audit.findings import FAIL, PASS, SKIP
from smartsla.audit.html import _period_axis, _time, _value_axis, render
from smartsla.chain.chain import Chain
from smartsla.evidence.bundle import build_bundle
from smartsla.measure.periods import compute_periods
from smartsla.measure.samples import Sample, Status
from smartsla.onchain.client import Contracts
from smartsla.onchain.history import load_history
from smartsla.terms.parse import load_terms
from smartsla.units import format_ppm, format_token_amount
from tests.helpers.chains import CHAINS
from tests.helpers.world import make_world

TERMS = """\
agreement: audit-test
provider: provider
customer: customer
payment: {token: test-usd, fee: "1000", bond: "100"}
periods: {length: 1h, count: 4}
services:
  - {id: api, objective: availability, target: "99.9%"}
  - {id: db, objective: availability, target: "99.5%"}
compensation:
  basis: per-service
  schedule:
    - {below: "99.9%", credit: "10%"}
    - {below: "95%", credit: "50%"}
oracles: {members: [oracle-1, oracle-2, oracle-3], quorum: 2, deadline: 10m, fallback: full-credit}
maintenance: {allowance: 10m, notice: 5m}
measurement: {slice: 60s, down_after: 1, gaps: exclude}
"""
# per period: (service, first second down, last second down) relative to the period's start
OUTAGES = {0: [], 1: [("api", 120, 300)], 2: [("api", 600, 4000), ("db", 0, 90)]}


def samples_for(start: int, period: int, length: int = 3600) -> list[Sample]:
    out = []
    for t in range(0, length, 30):
        for sid in ("api", "db"):
            down = any(s == sid and a <= t <= b for s, a, b in OUTAGES.get(period, []))
            out.append(Sample(start + t + 0.25, sid, Status.DOWN if down else Status.UP, None if down else 12.5,
                              "timeout" if down else "200 in 12 ms"))
    return out


@pytest.fixture(scope="module", params=CHAINS)
def scenario(request, artifacts, tmp_path_factory):
    """Periods 0-2 settled by oracle reports with evidence (2, 3 and 3 reports; in period 2 oracle-3 lies that
    api was up, with its real samples in its bundle), a maintenance window, period 3 by the fallback, closed."""
    tmp = tmp_path_factory.mktemp(f"audit-{request.param}")
    with Chain.connect(request.param) as chain:
        contracts = Contracts(chain, artifacts)
        w = make_world(chain, contracts)
        terms_file = tmp / "terms.yaml"
        terms_file.write_text(TERMS)
        terms = load_terms(terms_file)
        chain_terms = terms.to_chain(lambda value, _path: chain.resolve(value), token_address=w.token.address,
                                     now=chain.now() + 600)
        agreement = w.factory.create(w.provider, chain_terms)
        agreement.post_bond(w.provider, 100 * 10**6)  # the terms' bond, before any funding
        agreement.fund(w.customer, 4)
        window = (agreement.period_start(1) + 1800, 300)
        agreement.announce_maintenance(w.provider, *window)
        maintenance = [(window[0], window[0] + window[1])]
        bundles: dict[tuple[int, int], Path] = {}
        start = agreement.terms.start
        for period, reporters in ((0, [0, 1]), (1, [0, 1, 2]), (2, [0, 1, 2])):
            w.over(agreement, period)
            p_start = agreement.period_start(period)
            samples = samples_for(p_start, period)
            result = compute_periods(terms, samples, maintenance, start=start)[period]
            ppm, coverage = result.values, result.coverage
            reports = []
            for k in reporters:
                values = dict(ppm)
                if period == 2 and k == 2:
                    values["api"] = 1_000_000  # the liar
                directory = tmp / "evidence" / f"oracle-{k + 1}" / f"period-{period}"
                root = build_bundle(directory, agreement.address, chain.w3.eth.chain_id, period, p_start,
                                    agreement.period_end(period), samples, values, coverage=coverage)
                bundles[(k, period)] = directory
                reports.append(agreement.sign_report(w.oracles[k], period, [values["api"], values["db"]],
                                                     [coverage["api"], coverage["db"]], root))
            agreement.settle(w.stranger, period, reports)
        w.over(agreement, 3, agreement.terms.report_deadline)
        agreement.settle_by_fallback(w.stranger, 3)
        agreement.close(w.stranger)
        yield {"chain": chain, "contracts": contracts, "world": w, "agreement": agreement, "terms_file": terms_file,
               "bundles": bundles, "tmp": tmp}


def verdicts(report, check: str) -> list[str]:
    return [f.verdict for f in report.findings if f.check == check]


def fails(findings) -> list:
    return [f for f in findings if f.verdict == FAIL]


def test_honest_agreement_passes_everything(scenario):
    honest = [d for (k, p), d in scenario["bundles"].items() if (k, p) != (2, 2)]
    report = audit(scenario["contracts"], scenario["agreement"].address, terms_file=scenario["terms_file"],
                   evidence=honest)
    assert report.ok, [f for f in report.findings if f.verdict != PASS]
    assert report.counts()[SKIP] == 0
    checks = {f.check for f in report.findings}
    assert checks >= {"code.clone", "code.implementation", "code.factory", "terms.hash", "terms.document-hash",
                      "terms.file", "reports.signers", "reports.median", "settlement", "funds.conservation",
                      "funds.views", "maintenance", "evidence.bundle", "evidence.root", "evidence.values",
                      "parties.consent"}
    assert verdicts(report, "settlement") == [PASS] * 4
    assert verdicts(report, "evidence.values") == [PASS] * len(honest)
    # basis per-service with the default compensation.combined (min): the combined number is shown, deciding nothing
    combined = report.combined
    assert (combined["how"], combined["decides_credit"], combined["objective"]) == ("min", False, "availability")
    h = report.history
    assert combined["periods"] == {p: format_ppm(min(s.values)) for p, s in h.settlements.items() if s.values}
    assert "combined (min) availability" in render(report) and "shown only" in render(report)
    assert len(report.evidence_values) == len(honest)
    assert json.loads(json.dumps(report.to_json()))["result"] == PASS
    assert report.timings["total"] < 5


def test_consent_and_the_bond_before_funding_are_checked_from_the_logs(scenario):
    """The contract enforces both; the audit holds the logs to it, so a history that broke it would show (here the
    logs are edited: the consent left out, the bond moved after the deposit)."""
    from smartsla.audit.checks import check_consent

    history = load_history(scenario["contracts"], scenario["agreement"].address)
    [ok] = check_consent(history)
    assert ok.verdict == PASS and "provider by creating it" in ok.detail and "customer block" in ok.detail
    assert "bond of 100 tUSD was in before the first deposit" in ok.detail
    without = dataclasses.replace(history, events=[e for e in history.events if e.name != "Consented"])
    [bad] = check_consent(without)
    assert bad.verdict == FAIL and "Funded in block" in bad.detail and "before the customer consented" in bad.detail
    bond = next(e for e in history.events if e.name == "BondPosted")
    late = [e for e in history.events if e is not bond]
    late.insert(next(i for i, e in enumerate(late) if e.name == "Funded") + 1, bond)
    [bad] = check_consent(dataclasses.replace(history, events=late))
    assert bad.verdict == FAIL and "came before the terms' bond of 100 tUSD was posted (0 tUSD was)" in bad.detail


def test_lying_oracle_is_caught_by_its_own_evidence(scenario):
    liar = scenario["bundles"][(2, 2)]
    report = audit(scenario["contracts"], scenario["agreement"].address, terms_file=scenario["terms_file"],
                   evidence=[liar])
    [bad] = fails(report.findings)
    assert bad.check == "evidence.values" and bad.subject == str(liar)
    assert "api: recomputed" in bad.detail and "reported 1000000" in bad.detail
    # without the terms file the values cannot be recomputed: a SKIP, not a pass
    report = audit(scenario["contracts"], scenario["agreement"].address, evidence=[liar])
    assert verdicts(report, "evidence.values") == [SKIP] and verdicts(report, "terms.file") == [SKIP]


def test_forged_evidence_fails(scenario, tmp_path):
    original = scenario["bundles"][(0, 1)]
    agreement = scenario["agreement"]
    # samples edited and the bundle rebuilt: internally consistent, but not what the oracle signed
    forged = tmp_path / "forged" / "period-1"
    samples = [s for s in samples_for(agreement.period_start(1), 1) if s.status == Status.UP]
    build_bundle(forged, agreement.address, scenario["chain"].w3.eth.chain_id, 1, agreement.period_start(1),
                 agreement.period_end(1), samples, json.loads((original / "manifest.json").read_text())["values"])
    # a byte of the signed bundle changed in place
    tampered = tmp_path / "tampered" / "period-1"
    shutil.copytree(original, tampered)
    victim = next(p for p in sorted(tampered.rglob("*")) if p.is_file() and p.name not in ("manifest.json",
                                                                                          "tree.json"))
    data = bytearray(victim.read_bytes())
    data[-2] ^= 1
    victim.write_bytes(bytes(data))
    report = audit(scenario["contracts"], agreement.address, terms_file=scenario["terms_file"],
                   evidence=[forged, tampered])
    bad = {(f.check, f.subject) for f in fails(report.findings)}
    assert ("evidence.root", str(forged)) in bad
    assert ("evidence.bundle", str(tampered)) in bad
    assert not [f for f in report.findings if f.subject in (str(forged), str(tampered)) and f.verdict == PASS
                and f.check != "evidence.bundle"]


def test_terms_file_that_is_not_the_agreements(scenario, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text(TERMS.replace('fee: "1000"', 'fee: "2000"'))
    report = audit(scenario["contracts"], scenario["agreement"].address, terms_file=other)
    bad = {f.check: f.detail for f in fails(report.findings)}
    assert set(bad) == {"terms.document-hash", "terms.file"}
    assert "0x" + load_terms(other).document_hash().hex() in bad["terms.document-hash"]
    assert "fee: file 2000000000, chain 1000000000" in bad["terms.file"]


def test_reports_from_outside_the_oracle_set_or_twice(scenario):
    w, agreement = scenario["world"], scenario["agreement"]
    history = load_history(scenario["contracts"], agreement.address)
    s = history.settlements[1]
    outsider = agreement.sign_report(w.stranger, 1, s.reports[0].values, s.reports[0].coverage,
                                     s.reports[0].evidence_root)
    forged = dataclasses.replace(s.reports[0], oracle=w.stranger.address, signature=outsider.signature)
    history.settlements[1] = dataclasses.replace(s, reports=[forged, s.reports[1], s.reports[1]])
    [bad] = [f for f in fails(check_reports(history)) if f.check == "reports.signers"]
    assert bad.subject == "period 1"
    assert f"signer {w.stranger.address} is not in the oracle set" in bad.detail
    assert f"signer {s.reports[1].oracle} signed twice" in bad.detail
    # a signature that does not recover to the logged signer
    other = dataclasses.replace(s.reports[0], signature=s.reports[1].signature)
    history.settlements[1] = dataclasses.replace(s, reports=[other, s.reports[1]])
    [bad] = [f for f in fails(check_reports(history)) if f.check == "reports.signers"]
    assert "recovers to" in bad.detail
    # values that are not the median of the reports
    history.settlements[1] = dataclasses.replace(s, values=(999_999, s.values[1]))
    [bad] = fails(check_reports(history))
    assert bad.check == "reports.median" and "the median rule gives" in bad.detail


def test_wrong_settlement_and_missing_money(scenario):
    history = load_history(scenario["contracts"], scenario["agreement"].address)
    s = history.settlements[2]
    history.settlements[2] = dataclasses.replace(s, compensation=s.compensation + 1)
    [bad] = fails(check_settlements(history))
    # one base unit off, said in the token's units (6 decimals): people read tUSD, not base units
    assert bad.subject == "period 2" and f"compensation {format_token_amount(s.compensation + 1, 6)} tUSD, the " \
                                         f"reference model gives {format_token_amount(s.compensation, 6)} tUSD" \
                                         in bad.detail
    history.settlements[2] = s
    history.balance -= 1
    [bad] = fails(check_funds(history))
    assert bad.check == "funds.conservation" and "0.000001 tUSD less than" in bad.detail


def test_code_comparison_fills_only_known_immutables():
    built = bytes.fromhex("6080") + b"\0" * 32 + bytes.fromhex("5b00")
    value = (0xABCDEF).to_bytes(32, "big")
    chain_code = bytes.fromhex("6080") + value + bytes.fromhex("5b00")
    assert compare_with_immutables(chain_code, built, [value]) == (True, "", 1)
    ok, diff, _ = compare_with_immutables(chain_code, built, [(1).to_bytes(32, "big")])
    assert not ok and "byte 31" in diff  # the first byte that differs: the value's leading zeros match
    ok, diff, _ = compare_with_immutables(chain_code[:-1] + b"\x01", built, [value])
    assert not ok and "byte 35" in diff


def test_replay_of_an_honest_history(scenario):
    report = audit(scenario["contracts"], scenario["agreement"].address, replay=True)
    assert report.ok, fails(report.findings)
    assert verdicts(report, "replay.transactions") == [PASS] and verdicts(report, "replay.state") == [PASS]
    assert report.replay["transactions"] >= len(report.history.transactions)
    assert report.replay["gas_original"] == report.replay["gas_replayed"]


def test_audit_command(scenario, tmp_path, monkeypatch, capsys):
    from smartsla import cli
    from smartsla.cli import audit as audit_cli
    from smartsla.cli.common import Session

    monkeypatch.setattr(scenario["chain"], "close", lambda: None)  # the module's other tests use this chain
    monkeypatch.setattr(audit_cli, "open_session",
                        lambda args: Session(scenario["chain"], scenario["contracts"], scenario["chain"].kind))
    address = scenario["agreement"].address
    honest = str(scenario["bundles"][(0, 1)])
    html = tmp_path / "audit.html"
    code = cli.main(["audit", address, "--network", "embedded", "--terms", str(scenario["terms_file"]),
                     "--evidence", honest, "--html", str(html)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "PASS" in out and "0 failed" in out
    page = html.read_text()
    assert page.count("<svg") == 5 and "FAIL" not in page.split("<h2>Findings")[0]  # api, db, credit, money, maint.
    code = cli.main(["audit", address, "--network", "embedded", "--json", "--evidence",
                     str(scenario["bundles"][(2, 2)]), "--terms", str(scenario["terms_file"])])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["result"] == FAIL and doc["counts"]["FAIL"] == 1
    assert cli.main(["audit", "0x1234", "--network", "embedded"]) == 2


def test_html_plots_are_well_formed_with_integer_period_ticks(scenario):
    evidence = [scenario["bundles"][(0, 1)], scenario["bundles"][(2, 2)]]  # one honest, the liar's
    report = audit(scenario["contracts"], scenario["agreement"].address, terms_file=scenario["terms_file"],
                   evidence=evidence)
    page = render(report)
    svgs = re.findall(r"<svg.*?</svg>", page, re.DOTALL)
    assert len(svgs) == 5  # api, db, credit, money, maintenance
    count = report.history.terms.period_count
    for svg in svgs[:3]:  # the period plots
        root = ET.fromstring(svg)
        labels = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text") if t.get("class") == "xtick"]
        assert labels and len(labels) == len(set(labels))
        assert all(label.isdigit() and 0 <= int(label) < count for label in labels), labels
        plot, *rects = [{k: float(r.get(k)) for k in ("x", "y", "width", "height")}
                        for r in root.iter("{http://www.w3.org/2000/svg}rect")]
        for r in rects:  # bars and bands inside the plot area (the legend's swatches are below it)
            if r["y"] < plot["y"] + plot["height"]:
                assert plot["x"] - 0.1 <= r["x"] and r["x"] + r["width"] <= plot["x"] + plot["width"] + 0.1, r
                assert r["height"] >= 0 and r["y"] + r["height"] <= plot["y"] + plot["height"] + 0.1, r
    ET.fromstring(svgs[3])
    ET.fromstring(svgs[4])
    # many periods: every k-th labelled, unique integers; a zoomed, nice y range around 99.95% vs 99.9%
    for n in (1, 3, 36, 365):
        labels = [label for _x, label in _period_axis(n).ticks]
        assert labels[0] == "0" and len(labels) == len(set(labels)) <= 20 and all(s.isdigit() for s in labels)
    axis = _value_axis([99.95, 99.9], floor=0, ceiling=100, min_span=0.01, unit="%", label="")
    assert 99.8 <= axis.lo < 99.9 and 99.95 < axis.hi <= 100
    assert [label for _v, label in axis.ticks] == ["99.88%", "99.90%", "99.92%", "99.94%", "99.96%"]


def test_people_read_the_audit_in_token_units_with_the_agreements_name_and_its_maintenance(scenario):
    """The table and the page for people: amounts in tUSD (base units only in the JSON), the terms' name in the
    header, and the announced window drawn on the time line and listed."""
    report = audit(scenario["contracts"], scenario["agreement"].address, terms_file=scenario["terms_file"])
    assert report.name == "audit-test" and report.to_json()["name"] == "audit-test"
    details = " ".join(f.detail for f in report.findings if f.check in ("settlement", "funds.conservation"))
    assert "1000 tUSD" in details or "900 tUSD" in details
    assert "1000000000" not in details and "900000000" not in details  # the fee in base units (6 decimals)
    page = render(report)
    assert re.search(r"<h1>Audit of audit-test <code>0x", page)
    assert "fee per period</th><td>1000 tUSD" in page and "escrowed</th><td>4100 tUSD" in page
    section = page[page.index("<h2>Maintenance</h2>"):]
    window = scenario["agreement"].period_start(1) + 1800
    drawn = re.findall(r"<rect [^>]*><title>maintenance ([^<]*)</title>", section)
    assert len(drawn) == 1 and drawn[0].endswith("(300 s)")
    assert "<td>1</td>" in section and "1 window(s)" in section  # listed under its period
    assert _time(window) in drawn[0]
    assert report.to_json()["history"]["maintenance"] == [[window, window + 300]]  # machines: exact seconds


def test_the_audit_resolves_keystore_names_as_create_does(tmp_path, monkeypatch, artifacts):
    """A terms file naming keystore accounts: the audit must resolve them as `smartsla create` did, or an honest
    provider's file reads as a different agreement (the audit once resolved dev-account names only)."""
    from eth_account import Account

    from smartsla.chain.accounts import save_keystore
    from smartsla.cli.provider import address_resolver

    monkeypatch.setenv("SMARTSLA_HOME", str(tmp_path / "home"))
    provider, customer = Account.create(), Account.create()
    save_keystore("acme-provider", provider, "pw")
    save_keystore("acme-customer", customer, "pw")
    terms_file = tmp_path / "named.yaml"
    terms_file.write_text(TERMS.replace("provider: provider", "provider: acme-provider")
                               .replace("customer: customer", "customer: acme-customer"))
    with Chain.connect("embedded") as chain:
        contracts = Contracts(chain, artifacts)
        w = make_world(chain, contracts)
        chain.ensure_ether(provider.address)
        terms = load_terms(terms_file)

        class Session:  # what `create` resolves through: the command's own resolver
            pass

        session = Session()
        session.chain, session.network = chain, "embedded"
        onchain = terms.to_chain(address_resolver(session), token_address=w.token.address, now=chain.now() + 600)
        assert onchain.provider == provider.address
        agreement = w.factory.create(provider, onchain)
        report = audit(contracts, agreement.address, terms_file=terms_file)
        assert verdicts(report, "terms.file") == ["PASS"], [str(f) for f in fails(report.findings)]
