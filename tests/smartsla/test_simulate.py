"""`smartsla simulate`: the real contract on the embedded chain, checked against the Python reference model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from smartsla import penalty
from smartsla.cli import main
from smartsla.terms.parse import load_terms
from smartsla.units import format_token_amount

ROOT = Path(__file__).resolve().parents[2]
MULTI = ROOT / "examples" / "multi-service.yaml"
AWS = ROOT / "examples" / "aws-ec2.yaml"


def run_json(capsys, *args: str) -> dict:
    assert main(["simulate", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def expected(terms, values_per_period: list[dict[str, int]], decimals: int = 6) -> list[tuple[int, str, str]]:
    fee = terms.payment.fee_units(decimals)
    bond = terms.payment.bond_units(decimals)
    out = []
    for values in values_per_period:
        s = penalty.settle_period(terms, fee, bond, values)
        bond -= s.to_customer_from_bond
        out.append((s.credit_bps, format_token_amount(s.to_customer_from_fee + s.to_customer_from_bond, decimals),
                    format_token_amount(s.to_provider, decimals)))
    return out


def test_multi_service_matches_reference_model(capsys):
    periods = ["api=100%,db=99.95%,queue=100%", "api=99.95%,db=99.5%,queue=99.9%",
               "api=98.9%,db=97.0%,queue=94.0%", "api=80%,db=85%,queue=70%"]
    args = [str(MULTI)]
    for p in periods:
        args += ["--period", p]
    out = run_json(capsys, *args)
    terms = load_terms(MULTI)
    values = [{k: terms.parse_value(k, v) for k, v in (kv.split("=") for kv in p.split(","))} for p in periods]
    want = expected(terms, values)
    got = [(p["credit_bps"], p["compensation"], p["provider_payout"]) for p in out["periods"]]
    assert got == want
    # the last period's credit is above 100%: the excess came from the bond
    assert want[-1][0] > 10_000
    assert out["agreement"].startswith("0x") and len(out["agreement"]) == 42
    assert out["gas"]["create"] > 0 and out["gas"]["fund"] > 0
    assert all(p["gas_used"] > 50_000 for p in out["periods"])
    total = sum(float(p["compensation"]) for p in out["periods"])
    assert float(out["totals"]["compensation"]) == pytest.approx(total)
    assert [p["values"] for p in out["periods"]][1] == {"api": "99.95%", "db": "99.5%", "queue": "99.9%"}


def test_single_service_shorthand(capsys):
    out = run_json(capsys, str(AWS), "--period", "99.95%", "--period", "98.2%", "--period", "94.99%")
    assert [p["credit_bps"] for p in out["periods"]] == [1_000, 3_000, 10_000]
    assert [p["compensation"] for p in out["periods"]] == ["100", "300", "1000"]
    assert [p["provider_payout"] for p in out["periods"]] == ["900", "700", "0"]
    assert out["totals"] == {"compensation": "1400", "provider_payout": "1600"}


def test_tier_boundary_is_strict(capsys):
    # "below 99.0%" is strictly less: exactly 99.0% stays in the 10% tier
    out = run_json(capsys, str(AWS), "--period", "99.0%", "--period", "99.99%")
    assert [p["credit_bps"] for p in out["periods"]] == [1_000, 0]


@pytest.mark.parametrize("period, message", [
    ("api=99%", "no value for db, queue"),
    ("api=99%,db=99%,queue=99%,cache=1%", "unknown service 'cache'"),
    ("99.9%", "write them as"),
    ("api=99.9,db=99%,queue=99%", "api"),
    ("api=101%,db=99%,queue=99%", "api"),
    ("api=99%,api=98%,db=1%,queue=1%", "given twice"),
])
def test_bad_period_arguments(capsys, period, message):
    assert main(["simulate", str(MULTI), "--period", period]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err


def test_too_many_periods(capsys):
    args = ["simulate", str(AWS)] + ["--period", "100%"] * 13
    assert main(args) == 2
    assert "only 12 periods" in capsys.readouterr().err


def test_invalid_terms_file_is_reported_and_nothing_runs(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(AWS.read_text().replace('quorum: 2', 'quorum: 5'))
    assert main(["simulate", str(bad), "--period", "99%"]) == 2
    err = capsys.readouterr().err
    assert "oracles.quorum" in err


def test_command_line_table():
    """The installed entry point prints the table people read."""
    proc = subprocess.run([sys.executable, "-m", "smartsla.cli", "simulate", str(AWS), "--period", "99.95%"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "credit" in proc.stdout and "10%" in proc.stdout and "900" in proc.stdout


def test_terms_check_prints_document_hash(capsys):
    assert main(["terms", "check", str(AWS), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is True
    assert out["document_hash"] == "0x" + load_terms(AWS).document_hash().hex()


def test_terms_check_names_the_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(AWS.read_text().replace('target: "99.99%"', 'target: "99.99"'))
    assert main(["terms", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "services[0].target" in err and "%" in err


def test_help_teaches_with_examples(capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "--period 99.95%" in out


def test_the_combined_value_is_shown_in_both_bases(capsys, tmp_path):
    """basis combined: the combined value is the one that decided the credit, and is now shown; basis per-service
    with compensation.combined: shown, deciding nothing; across objectives: none."""
    out = run_json(capsys, str(MULTI), "--period", "api=100%,db=99.95%,queue=99%")
    assert out["combined"] == {"how": "weighted", "decides_credit": True}
    # weighted 2:1:1 -> (2 * 100% + 99.95% + 99%) / 4 = 99.7375%
    assert out["periods"][0]["combined"] == "99.7375%"
    doc = MULTI.read_text().replace("basis: combined", "basis: per-service").replace('  target: "99.9%"\n', "")
    per_service = tmp_path / "per-service.yaml"
    per_service.write_text(doc)
    terms = load_terms(per_service)
    assert terms.compensation.basis == "per-service"
    out = run_json(capsys, str(per_service), "--period", "api=100%,db=99.95%,queue=99%")
    assert out["combined"] == {"how": "weighted", "decides_credit": False}
    assert out["periods"][0]["combined"] == "99.7375%"
    assert out["periods"][0]["credit_bps"] == penalty.period_credit_bps(terms, [1_000_000, 999_500, 990_000])
    out = run_json(capsys, str(ROOT / "examples" / "latency.yaml"), "--period", "search=400ms,api=100%,api-p95=350ms")
    assert out["combined"] is None and out["periods"][0]["combined"] is None
    assert out["periods"][0]["credit_bps"] == (1_000 + 0 + 500) // 3


@pytest.mark.parametrize("example,period,credit", [("aws-s3.yaml", "98.5%", 2_500), ("xla.yaml", "0.8", 2_500)])
def test_the_new_examples_simulate(capsys, example, period, credit):
    """Each example runs on the real contract: S3's table at 98.5% (below 99.0%: 25%), the XLA at a score of 0.8
    (below 0.85: 25%), the score shown as a score."""
    out = run_json(capsys, str(ROOT / "examples" / example), "--period", period)
    assert out["periods"][0]["credit_bps"] == credit
    assert list(out["periods"][0]["values"].values()) == [period]
