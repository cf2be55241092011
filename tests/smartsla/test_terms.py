"""Terms file loading: structure, units, semantic rules, hashing, chain tuple."""

from __future__ import annotations

import json
from pathlib import Path

import eth_abi
import pytest
import yaml
from eth_utils import keccak, to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from smartsla import constants, units
from smartsla.constants import COMBINED_ID, ZERO_ADDRESS
from smartsla.onchain.types import TERMS_ABI_TYPE
from smartsla.penalty import CreditRules, period_credit_bps
from smartsla.terms.errors import TermsError
from smartsla.terms.model import format_value, parse_value
from smartsla.terms.parse import _dividing_slices, load_terms, terms_from_document
from smartsla.terms.schema import schema
from smartsla.units import UnitError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))

BASE_TEXT = """\
agreement: acme-api-2027
provider: provider            # a dev-account name
customer: customer
payment:
  token: ETH
  fee: "1000"
  bond: "0"
periods: {start: "2027-01-01T00:00:00Z", length: 30d, count: 12}
services:
  - {id: api, objective: availability, target: "99.99%", weight: 1}
  - {id: db,  objective: availability, target: "99.9%",  weight: 1}
compensation:
  basis: per-service
  schedule:
    - {below: "99.99%", credit: "10%"}
    - {below: "99.0%",  credit: "30%"}
    - {below: "95.0%",  credit: "100%"}
  cap: "100%"
oracles: {members: [oracle-1, oracle-2, oracle-3], quorum: 2, deadline: 2d, fallback: full-credit}
maintenance: {allowance: 4h, notice: 48h}
"""


def base_doc() -> dict:
    return yaml.safe_load(BASE_TEXT)


def load_doc(doc: dict):
    return load_terms(yaml.safe_dump(doc, sort_keys=False), source_name="terms.yaml")


def fake_resolver(name: str, path: str) -> str:
    if name.startswith("0x"):
        return to_checksum_address(name)
    return to_checksum_address(keccak(text=name)[:20])


# ------------------------------------------------------------------ happy paths

def test_base_document_parses():
    t = load_terms(BASE_TEXT, source_name="terms.yaml")
    assert t.agreement == "acme-api-2027"
    assert t.service_ids == ("api", "db")
    assert t.services[0].target == 999_900
    assert t.services[1].target == 999_000
    assert [(x.threshold, x.credit_bps) for x in t.services[0].tiers] == [
        (999_900, 1000), (990_000, 3000), (950_000, 10_000)]
    assert t.services[1].tiers == t.compensation.schedule
    assert t.periods.start == 1798761600
    assert t.periods.length == 30 * 86400
    assert t.oracles.deadline == 2 * 86400
    assert t.maintenance.allowance == 4 * 3600 and t.maintenance.notice == 48 * 3600
    assert t.compensation.cap_bps == 10_000
    assert t.payment.fee_units(18) == 1000 * 10**18


def test_defaults():
    doc = base_doc()
    del doc["maintenance"]
    del doc["payment"]["bond"]
    del doc["compensation"]["cap"]
    del doc["compensation"]["basis"]
    for s in doc["services"]:
        del s["weight"]
        del s["objective"]
    t = load_doc(doc)
    # a day's notice unless the terms say otherwise: no window announced for the next block, mid-outage
    assert t.maintenance.allowance == 0 and t.maintenance.notice == 24 * 3600
    assert t.payment.bond == "0"
    assert t.compensation.cap_bps == 10_000
    assert t.compensation.basis == "per-service"
    assert all(s.weight == 1 and s.objective == "availability" for s in t.services)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_load_and_encode(path):
    t = load_terms(path)
    assert t.source == str(path)
    chain = t.to_chain(fake_resolver, to_checksum_address("0x" + "11" * 20), 6, now=1_700_000_000)
    eth_abi.encode([TERMS_ABI_TYPE], [chain])  # every field fits its ABI type
    assert chain.start == (t.periods.start or 1_700_000_000)  # start omitted -> now
    assert chain.document_hash == t.document_hash()
    assert CreditRules.from_chain(chain) == t.credit_rules()


def test_examples_exist():
    assert {p.name for p in EXAMPLES} >= {"aws-ec2.yaml", "multi-service.yaml", "latency.yaml"}


def test_aws_example_contents():
    t = load_terms(ROOT / "examples" / "aws-ec2.yaml")
    assert t.service_ids == ("ec2",)
    assert [(x.threshold, x.credit_bps) for x in t.services[0].tiers] == [
        (999_900, 1000), (990_000, 3000), (950_000, 10_000)]
    assert t.payment.token == "test-usd" and t.payment.fee_units(6) == 1000 * 10**6
    assert t.periods.count == 12 and t.periods.start is None
    assert t.oracles.quorum == 2 and t.oracles.fallback == "full-credit"
    rules = t.credit_rules()
    assert period_credit_bps(rules, [999_900]) == 0
    assert period_credit_bps(rules, [999_899]) == 1000
    assert period_credit_bps(rules, [989_999]) == 3000
    assert period_credit_bps(rules, [949_999]) == 10_000


def test_multi_service_example_combined():
    t = load_terms(ROOT / "examples" / "multi-service.yaml")
    chain = t.to_chain(fake_resolver, "0x" + "22" * 20, 6, now=1)
    assert chain.basis == 1 and chain.combine == 1  # combined, weighted
    combined = chain.combined
    assert combined.id == COMBINED_ID and combined.weight == 0
    assert combined.target == 999_000
    assert all(s.tiers == () for s in chain.services)
    assert chain.cap_bps == 15_000 and chain.bond == 500 * 10**6


def test_latency_example():
    t = load_terms(ROOT / "examples" / "latency.yaml")
    s = t.services[0]
    assert s.lower_is_better and s.target == 250_000
    assert [x.threshold for x in s.tiers] == [250_000, 500_000, 1_000_000]
    chain = t.to_chain(fake_resolver, "0x" + "22" * 20, 6, now=1)
    assert chain.services[0].lower_is_better is True


def test_to_chain_eth_and_layout():
    t = load_terms(BASE_TEXT)
    chain = t.to_chain(fake_resolver, None, None, now=None)
    assert len(chain) == 21
    # the struct's order, by position once: ABI encoding relies on it
    assert chain[2] == chain.token == ZERO_ADDRESS
    assert chain.fee == 1000 * 10**18 and chain.bond == 0
    assert chain.start == 1798761600 and chain.period_length == 2592000 and chain.period_count == 12
    assert chain.services[0].id == b"api" + b"\0" * 29
    assert chain.basis == 0 and chain.combine == 0
    assert chain.combined == (b"\0" * 32, 0, 0, False, ())
    assert chain.oracles == tuple(fake_resolver(f"oracle-{i}", "") for i in (1, 2, 3))
    assert chain.quorum == 2 and chain.report_deadline == 172800 and chain.fallback_full_credit is True
    assert chain.maintenance_allowance == 14400 and chain.maintenance_notice == 172800
    eth_abi.encode([TERMS_ABI_TYPE], [chain])


def test_to_chain_start_override():
    t = load_terms(BASE_TEXT)
    assert t.to_chain(fake_resolver, now=5).start == 1798761600  # now only fills an omitted start
    assert t.to_chain(fake_resolver, now=5, start=7).start == 7


def test_to_chain_passes_key_paths_to_resolver():
    seen = []

    def resolver(name, path):
        seen.append((name, path))
        return fake_resolver(name, path)

    load_terms(BASE_TEXT).to_chain(resolver)
    assert seen == [("provider", "provider"), ("customer", "customer"),
                    ("oracle-1", "oracles.members[0]"), ("oracle-2", "oracles.members[1]"),
                    ("oracle-3", "oracles.members[2]")]


def test_to_chain_errors():
    t = load_terms(BASE_TEXT)
    with pytest.raises(TermsError, match=r"^<terms>: oracles.members\[1\]: .*same account"):
        t.to_chain(lambda n, p: fake_resolver("x" if n.startswith("oracle") else n, p))
    with pytest.raises(TermsError, match="customer: is the same account"):
        t.to_chain(lambda n, p: fake_resolver("same", p))
    with pytest.raises(TermsError, match="provider: .*not an address"):
        t.to_chain(lambda n, p: "nope")
    with pytest.raises(TermsError, match="payment.token: is ETH"):
        t.to_chain(fake_resolver, "0x" + "11" * 20)
    doc = base_doc()
    del doc["periods"]["start"]
    with pytest.raises(TermsError, match="periods.start: is omitted"):
        load_doc(doc).to_chain(fake_resolver)
    doc["payment"]["token"] = "test-usd"
    with pytest.raises(TermsError, match="payment.token: test-usd needs"):
        load_doc(doc).to_chain(fake_resolver, now=5)
    doc["payment"]["token"] = "0x" + "ab" * 20
    doc["payment"]["fee"] = "0.001"
    t2 = load_doc(doc)
    assert t2.payment.token == to_checksum_address("0x" + "ab" * 20)
    with pytest.raises(TermsError, match="payment.token: the token's decimals"):
        t2.to_chain(fake_resolver, now=5)
    with pytest.raises(TermsError, match="payment.fee: .*3 decimals but the token has only 2"):
        t2.to_chain(fake_resolver, None, 2, now=5)
    assert t2.to_chain(fake_resolver, None, 3, now=5).fee == 1
    with pytest.raises(TermsError, match="payment.token: is 0x"):
        t2.to_chain(fake_resolver, "0x" + "cd" * 20, 3, now=5)
    doc["payment"]["fee"] = str(2**96)
    with pytest.raises(TermsError, match=r"payment.fee: .*2\*\*96"):
        load_doc(doc).to_chain(fake_resolver, None, 0, now=5)


# ------------------------------------------------------------------- bad input

def _set(path, value):
    def mutate(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return mutate


def _del(path):
    def mutate(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return mutate


def _schedule(*tiers):
    return _set(("compensation", "schedule"), [dict(t) for t in tiers])


BAD = [
    # structure and types (JSON Schema)
    (_set(("colour",), "red"), "colour", "unknown key; allowed keys here: agreement"),
    (_set(("services", 0, "wieght"), 1), "services[0].wieght", 'did you mean "weight"?'),
    (_set(("payment", "amount"), "1"), "payment.amount", "allowed keys here: token, fee, bond"),
    (_del(("payment", "fee")), "payment.fee", "missing required key"),
    (_del(("oracles",)), "oracles", "missing required key"),
    (_del(("services", 0, "target")), "services[0].target", "missing required key"),
    (_set(("services", 0, "target"), 99.99), "services[0].target", "got the number 99.99"),
    (_set(("payment", "fee"), 0.5), "payment.fee", "quote it so it stays exact"),
    (_set(("periods", "count"), "12"), "periods.count", "expected a whole number"),
    (_set(("periods", "count"), 0), "periods.count", "must be at least 1"),
    (_set(("periods", "count"), 1025), "periods.count", "must be at most 1024"),
    (_set(("services", 1, "weight"), 0), "services[1].weight", "must be at least 1"),
    (_set(("services", 1, "weight"), 1.5), "services[1].weight", "expected a whole number"),
    (_set(("services", 1, "weight"), True), "services[1].weight", "got the boolean true"),
    (_set(("services", 0, "objective"), "uptime"), "services[0].objective", "use one of: availability | latency"),
    (_set(("compensation", "basis"), "total"), "compensation.basis", "per-service | combined"),
    (_set(("oracles", "fallback"), "refund"), "oracles.fallback", "full-credit | no-credit"),
    (_set(("services",), []), "services", "needs at least 1 entry"),
    (_set(("services", 0, "id"), "API"), "services[0].id", "lower-case"),
    (_set(("services", 0, "id"), "a" * 33), "services[0].id", "at most 32"),
    (_set(("services", 0, "id"), "-api"), "services[0].id", "is not valid"),
    (_set(("provider",), "0x123"), "provider", "is not valid"),
    (_set(("agreement",), "has space"), "agreement", "is not valid"),
    (_set(("oracles", "members"), []), "oracles.members", "needs at least 1 entry"),
    (_set(("oracles", "members"), [f"o{i}" for i in range(17)]), "oracles.members", "at most 16"),
    (_set(("compensation", "schedule"), [{"below": "9%", "credit": "1%"}] * 17),
     "compensation.schedule", "at most 16"),
    (_set(("compensation", "schedule", 0, "credit"), None), "compensation.schedule[0].credit", "got nothing"),
    (_del(("compensation", "schedule", 0, "credit")), "compensation.schedule[0].credit", "missing required key"),
    (_set(("maintenance", "extra"), "1h"), "maintenance.extra", "allowed keys here: allowance, notice"),
    # units
    (_set(("services", 0, "target"), "99.99"), "services[0].target", 'add "%"'),
    (_set(("services", 0, "target"), "99.99995%"), "services[0].target", "finer than 1 ppm"),
    (_set(("services", 0, "target"), "100.1%"), "services[0].target", "more than 100%"),
    (_set(("services", 0, "target"), "250ms"), "services[0].target", "not a percentage"),
    (_set(("compensation", "schedule", 0, "credit"), "10.005%"), "compensation.schedule[0].credit", "finer than 1 basis point"),
    (_set(("compensation", "schedule", 0, "credit"), "10"), "compensation.schedule[0].credit", 'add "%"'),
    (_set(("compensation", "cap"), "0%"), "compensation.cap", "more than 0%"),
    (_set(("periods", "length"), "30"), "periods.length", "has no unit"),
    (_set(("periods", "length"), 30), "periods.length", "got the number 30"),
    (_set(("periods", "length"), "30 days"), "periods.length", "not a duration"),
    (_set(("periods", "length"), "0s"), "periods.length", "longer than 0s"),
    (_set(("periods", "length"), "1500ms"), "periods.length", "whole number of seconds"),
    (_set(("oracles", "deadline"), "0d"), "oracles.deadline", "outside 5m..90d"),
    (_set(("oracles", "deadline"), "299s"), "oracles.deadline", "fallback could be taken before the oracles"),
    (_set(("oracles", "deadline"), "91d"), "oracles.deadline", "stays locked that long"),
    (_set(("maintenance", "notice"), "366d"), "maintenance.notice", "no window could be announced"),
    (_set(("maintenance", "allowance"), "31d"), "maintenance.allowance", "longer than a period"),
    (_set(("maintenance", "notice"), "-1h"), "maintenance.notice", "must not be negative"),
    (_set(("payment", "fee"), "-5"), "payment.fee", "must not be negative"),
    (_set(("payment", "fee"), -5), "payment.fee", "must not be negative"),
    (_set(("payment", "fee"), "0"), "payment.fee", "must be more than 0"),
    (_set(("payment", "fee"), "1_000"), "payment.fee", "not a decimal amount"),
    (_set(("periods", "count"), 12.0), "periods.count", "got the number 12.0"),
    (_set(("payment", "fee"), "0.0000000000000000001"), "payment.fee", "19 decimals but the token has only 18"),
    (_set(("payment", "bond"), str(2**96)), "payment.bond", "too large"),
    (_set(("payment", "token"), "USDC"), "payment.token", "use ETH, test-usd"),
    (_set(("payment", "token"), "0x" + "00" * 20), "payment.token", "zero address"),
    (_set(("periods", "start"), "2027-01-01"), "periods.start", "no time zone"),
    (_set(("periods", "start"), "next monday"), "periods.start", "is not a time"),
    (_set(("periods", "start"), -1), "periods.start", "must not be negative"),
    (_set(("periods", "start"), 2**64 - 10), "periods", "largest uint64"),
    # parties
    (_set(("customer",), "provider"), "customer", "same as the provider"),
    (_set(("provider",), "0xAbCdEf0123456789abcdef0123456789ABCDEF01"), "provider", "invalid checksum"),
    (_set(("oracles", "members"), ["oracle-1", "oracle-2", "oracle-1"]), "oracles.members[2]", "already oracles.members[0]"),
    (_set(("oracles", "quorum"), 4), "oracles.quorum", "more than the 3 members"),
    (_set(("oracles", "quorum"), 0), "oracles.quorum", "at least 1"),
    # services
    (_set(("services", 1, "id"), "api"), "services[1].id", "already used by services[0]"),
    # tiers
    (_schedule({"below": "99.0%", "credit": "10%"}, {"below": "99.99%", "credit": "30%"}),
     "compensation.schedule[1].below",
     'tiers must go from mildest to most severe: "99.99%" must be below "99.0%"'),
    (_schedule({"below": "99.0%", "credit": "10%"}, {"below": "99%", "credit": "30%"}),
     "compensation.schedule[1].below", "must be below"),
    (_schedule({"below": "99.9%", "credit": "30%"}, {"below": "99%", "credit": "10%"}),
     "compensation.schedule[1].credit", 'credit "10%" must be more than "30%"'),
    (_schedule({"below": "99.9%", "credit": "30%"}, {"below": "99%", "credit": "30%"}),
     "compensation.schedule[1].credit", "mildest to most severe"),
    (_schedule({"above": "99.9%", "credit": "30%"}),
     "compensation.schedule[0].above", 'availability tiers use "below:"'),
    (_schedule({"credit": "30%"}), "compensation.schedule[0]", 'missing "below:"'),
    (_schedule({"below": "0%", "credit": "30%"}), "compensation.schedule[0].below", "can never apply"),
    (_schedule({"below": "99%", "credit": "0%"}), "compensation.schedule[0].credit", "more than 0%"),
    (_schedule({"below": "99%", "credit": "150%"}), "compensation.schedule[0].credit", 'more than compensation.cap "100%"'),
    (_schedule(), "compensation.schedule", "needs at least 1 entry"),
    (_del(("compensation", "schedule")), "compensation.schedule", "missing"),
    # basis rules
    (_set(("compensation", "target"), "99.9%"), "compensation.target", "only used with basis: combined"),
]


def rejected(doc, mutate, path, fragment) -> TermsError:
    """Load ``doc`` after ``mutate``: it must fail at ``path`` with a message containing ``fragment``."""
    mutate(doc)
    with pytest.raises(TermsError) as info:
        load_doc(doc)
    err = info.value
    assert err.path == path, str(err)
    assert fragment in err.message, str(err)
    return err


@pytest.mark.parametrize("mutate,path,fragment", BAD, ids=[f"{i}:{c[1]}" for i, c in enumerate(BAD)])
def test_bad_input_names_the_key_path(mutate, path, fragment):
    err = rejected(base_doc(), mutate, path, fragment)
    assert str(err) == f"terms.yaml: {path}: {err.message}"
    assert err.line is not None or path not in ("",)


def test_error_has_line_number():
    text = BASE_TEXT.replace('{below: "99.0%",  credit: "30%"}', '{below: "99.999%",  credit: "30%"}')
    with pytest.raises(TermsError) as info:
        load_terms(text, source_name="terms.yaml")
    assert info.value.path == "compensation.schedule[1].below"
    assert info.value.line == 16
    assert str(info.value).startswith("terms.yaml: compensation.schedule[1].below: tiers must go from mildest")


def test_first_error_in_file_order_is_reported():
    doc = base_doc()
    doc["agreement"] = "bad name!"
    doc["oracles"]["quorum"] = "two"
    with pytest.raises(TermsError) as info:
        load_doc(doc)
    assert info.value.path == "agreement"


def _combined(doc, **extra):
    doc["compensation"]["basis"] = "combined"
    doc["compensation"].update(extra)
    return doc


def test_combined_rules():
    doc = _combined(base_doc())
    t = load_doc(doc)
    assert t.compensation.target == 999_900  # default: first tier's threshold
    assert all(s.tiers == () for s in t.services)
    assert t.compensation.combined == "min"
    t = load_doc(_combined(base_doc(), target="99.9%", combined="weighted"))
    assert t.compensation.target == 999_000

    doc = _combined(base_doc())
    doc["services"][1] = {"id": "db", "objective": "latency", "percentile": 99, "target": "300ms"}
    with pytest.raises(TermsError, match=r"services\[1\].objective: basis combined needs every service"):
        load_doc(doc)

    doc = _combined(base_doc())
    doc["services"][1]["schedule"] = [{"below": "99%", "credit": "5%"}]
    with pytest.raises(TermsError, match=r"services\[1\].schedule: a service's own schedule is only used"):
        load_doc(doc)

    doc = _combined(base_doc(), target="250ms")
    with pytest.raises(TermsError, match="compensation.target: .*not a percentage"):
        load_doc(doc)

    doc = _combined(base_doc())
    del doc["compensation"]["schedule"]
    with pytest.raises(TermsError, match="compensation.schedule: missing: basis combined needs"):
        load_doc(doc)


def test_latency_service_rules():
    doc = base_doc()
    doc["services"].append({"id": "search", "objective": "latency", "percentile": 99, "target": "300ms"})
    with pytest.raises(TermsError, match=r"services\[2\]: this latency service has no schedule of its own"):
        load_doc(doc)

    doc["services"][2]["schedule"] = [{"below": "300ms", "credit": "10%"}]
    with pytest.raises(TermsError, match=r'services\[2\].schedule\[0\].below: "below:" does not fit latency'):
        load_doc(doc)

    doc["services"][2]["schedule"] = [{"above": "500ms", "credit": "10%"}, {"above": "400ms", "credit": "20%"}]
    with pytest.raises(TermsError, match=r'services\[2\].schedule\[1\].above: .*"400ms" must be above "500ms"'):
        load_doc(doc)

    doc["services"][2]["schedule"] = [{"above": "300ms", "credit": "10%"}, {"above": "1.5s", "credit": "20%"}]
    t = load_doc(doc)
    s = t.service("search")
    assert s.own_schedule and s.lower_is_better
    assert [(x.threshold, x.credit_bps) for x in s.tiers] == [(300_000, 1000), (1_500_000, 2000)]
    assert t.services[0].tiers == t.compensation.schedule

    doc["services"][2]["target"] = "99%"
    with pytest.raises(TermsError, match=r'services\[2\].target: "99%" is not a duration'):
        load_doc(doc)
    doc["services"][2]["target"] = "4295s"
    with pytest.raises(TermsError, match=r"services\[2\].target: .*uint32"):
        load_doc(doc)
    doc["services"][2]["target"] = "0.5us"
    with pytest.raises(TermsError, match=r"services\[2\].target: .*whole number of microseconds"):
        load_doc(doc)


def test_every_service_with_own_schedule_needs_no_agreement_schedule():
    doc = base_doc()
    del doc["compensation"]["schedule"]
    for s in doc["services"]:
        s["schedule"] = [{"below": "99%", "credit": "5%"}]
    t = load_doc(doc)
    assert t.compensation.schedule == ()
    assert all(s.own_schedule for s in t.services)


def test_credit_above_cap_allowed_when_cap_raised():
    doc = base_doc()
    doc["compensation"]["cap"] = "150%"
    doc["compensation"]["schedule"].append({"below": "90%", "credit": "150%"})
    assert load_doc(doc).compensation.cap_bps == 15_000


# --------------------------------------------------------------------- YAML

def test_yaml_syntax_error_has_line_and_column():
    with pytest.raises(TermsError) as info:
        load_terms("agreement: x\nprovider: [unclosed\n", source_name="terms.yaml")
    err = info.value
    assert err.path == "" and err.line is not None and err.column is not None
    assert str(err).startswith(f"terms.yaml: line {err.line}, column {err.column}: ")


def test_yaml_duplicate_key_is_error():
    with pytest.raises(TermsError, match=r"terms.yaml: line 2, column 1: .*duplicate key 'agreement'"):
        load_terms("agreement: x\nagreement: y\n", source_name="terms.yaml")


def test_yaml_empty_and_non_mapping():
    with pytest.raises(TermsError, match="empty"):
        load_terms("# nothing\n\n", source_name="t.yaml")
    with pytest.raises(TermsError, match="top level must be a mapping"):
        load_terms("- a\n- b\n", source_name="t.yaml")
    with pytest.raises(TermsError, match="line 2, column 1: expected a single document"):
        load_terms("a: 1\n---\nb: 2\n", source_name="t.yaml")


def test_missing_file():
    with pytest.raises(TermsError, match="nope.yaml: cannot read the terms file"):
        load_terms("nope.yaml")


def test_yaml_1_1_surprises_stay_text():
    addr = "0x" + "ab" * 20
    text = (BASE_TEXT
            .replace("provider: provider ", f"provider: {addr} ")
            .replace('start: "2027-01-01T00:00:00Z"', "start: 2027-01-01T00:00:00Z")
            .replace('fee: "1000"', "fee: 1000"))
    t = load_terms(text)
    assert t.provider == to_checksum_address(addr)
    assert t.periods.start == 1798761600
    assert t.payment.fee == "1000"
    assert t.document["periods"]["start"] == "2027-01-01T00:00:00Z"
    t = load_terms(BASE_TEXT.replace("agreement: acme-api-2027", "agreement: no").replace("count: 12", "count: 012"))
    assert t.agreement == "no" and t.periods.count == 12


def test_unix_start_and_lowercase_address():
    doc = base_doc()
    doc["periods"]["start"] = 1_800_000_000
    doc["customer"] = "0x" + "ab" * 20
    t = load_doc(doc)
    assert t.periods.start == 1_800_000_000
    assert t.customer == to_checksum_address("0x" + "ab" * 20)


# ------------------------------------------------------------------- hashing

def test_document_hash_is_keccak_of_canonical_json():
    t = load_terms(BASE_TEXT)
    doc = yaml.safe_load(BASE_TEXT)
    doc["periods"]["start"] = "2027-01-01T00:00:00Z"
    expected = keccak(json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
    assert t.document_hash() == expected and len(expected) == 32


def test_document_hash_ignores_layout_but_not_values():
    reordered = yaml.safe_dump(base_doc(), sort_keys=True, default_flow_style=False)
    assert load_terms(reordered).document_hash() == load_terms(BASE_TEXT).document_hash()
    commented = "# header comment\n" + BASE_TEXT.replace("quorum: 2", "quorum:   2")
    assert load_terms(commented).document_hash() == load_terms(BASE_TEXT).document_hash()
    changed = BASE_TEXT.replace('fee: "1000"', 'fee: "1001"')
    assert load_terms(changed).document_hash() != load_terms(BASE_TEXT).document_hash()


def test_dict_input_matches_text():
    assert terms_from_document(base_doc()) == load_terms(BASE_TEXT)
    assert load_terms(base_doc()).document_hash() == load_terms(BASE_TEXT).document_hash()


# ------------------------------------------------------------------- values

def test_parse_and_format_values():
    t = load_terms(ROOT / "examples" / "latency.yaml")
    assert t.parse_value("search", "300ms") == 300_000
    assert t.format_value("search", 300_000) == "300ms"
    assert parse_value("availability", "99.95%") == 999_500
    assert format_value("availability", 999_500) == "99.95%"
    assert format_value("availability", 1_000_000) == "100%"
    assert format_value("latency", 1_000_000) == "1s"
    assert format_value("latency", 1_500) == "1500us"
    with pytest.raises(KeyError, match="no service 'x'"):
        t.parse_value("x", "1ms")
    with pytest.raises(UnitError):
        t.parse_value("search", "99%")


@pytest.mark.parametrize("text,ppm", [("99.99%", 999_900), ("100%", 1_000_000), ("0%", 0),
                                      ("99.9999%", 999_999), ("0.0001%", 1), ("95.0%", 950_000)])
def test_percent_ppm(text, ppm):
    assert units.parse_percent_ppm(text) == ppm


@pytest.mark.parametrize("text,fragment", [("99.99995%", "finer than 1 ppm"), ("99.99", 'add "%"'),
                                           ("101%", "more than 100%"), ("-1%", "negative"),
                                           ("abc", "not a percentage"), (99.9, "as text")])
def test_percent_ppm_errors(text, fragment):
    with pytest.raises(UnitError, match=fragment):
        units.parse_percent_ppm(text)


@pytest.mark.parametrize("text,bps", [("10%", 1000), ("0.01%", 1), ("150%", 15_000), ("100%", 10_000)])
def test_percent_bps(text, bps):
    assert units.parse_percent_bps(text) == bps


def test_percent_bps_errors():
    with pytest.raises(UnitError, match="finer than 1 basis point"):
        units.parse_percent_bps("0.005%")
    with pytest.raises(UnitError, match="too large"):
        units.parse_percent_bps("50000000%")


@pytest.mark.parametrize("text,seconds", [("30d", 2_592_000), ("4h", 14_400), ("48h", 172_800), ("2s", 2),
                                          ("1m", 60), ("1w", 604_800), ("0s", 0), ("2000ms", 2), ("1.5h", 5400)])
def test_duration_seconds(text, seconds):
    assert units.parse_duration_seconds(text) == seconds


@pytest.mark.parametrize("text,fragment", [("90", "has no unit"), (90, "has no unit"), ("250ms", "whole number of seconds"),
                                           ("3y", "not a duration"), ("-2s", "negative"), ("", "not a duration")])
def test_duration_seconds_errors(text, fragment):
    with pytest.raises(UnitError, match=fragment):
        units.parse_duration_seconds(text)


@pytest.mark.parametrize("text,us", [("250ms", 250_000), ("1s", 1_000_000), ("2s", 2_000_000), ("1500us", 1500),
                                     ("0.5ms", 500)])
def test_duration_us(text, us):
    assert units.parse_duration_us(text) == us


@pytest.mark.parametrize("text,decimals,base", [("1000", 6, 1_000_000_000), ("0.5", 6, 500_000), (1000, 0, 1000),
                                                ("0.000001", 6, 1), ("1.50", 1, 15), ("0", 18, 0)])
def test_token_amount(text, decimals, base):
    assert units.parse_token_amount(text, decimals) == base


@pytest.mark.parametrize("text,fragment", [("0.0000001", "7 decimals but the token has only 6"), ("-1", "negative"),
                                           (-1, "negative"), (0.5, "quoted decimal"), ("1,000", "not a decimal"),
                                           (".5", "not a decimal"), (True, "quoted decimal")])
def test_token_amount_errors(text, fragment):
    with pytest.raises(UnitError, match=fragment):
        units.parse_token_amount(text, 6)


@given(st.integers(0, constants.PPM))
def test_ppm_round_trip(ppm):
    assert units.parse_percent_ppm(units.format_ppm(ppm)) == ppm


@given(st.integers(0, constants.UINT32_MAX))
def test_bps_and_us_round_trip(n):
    assert units.parse_percent_bps(units.format_bps(n)) == n
    assert units.parse_duration_us(units.format_us(n)) == n


@given(st.integers(0, 10**12))
def test_seconds_round_trip(n):
    assert units.parse_duration_seconds(units.format_seconds(n)) == n


@given(st.integers(0, 2**96), st.integers(0, 30))
def test_token_round_trip(n, decimals):
    assert units.parse_token_amount(units.format_token_amount(n, decimals), decimals) == n


def test_schema_is_valid_draft_2020_12():
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema())
    assert schema()["$schema"].endswith("2020-12/schema")


def test_cap_above_contract_limit_is_rejected():
    from pathlib import Path

    from smartsla.terms.errors import TermsError
    from smartsla.terms.parse import load_terms

    text = (Path(__file__).resolve().parents[2] / "examples" / "aws-ec2.yaml").read_text()
    bad = text.replace('compensation:\n', 'compensation:\n  cap: "10000.01%"\n', 1)
    import pytest

    with pytest.raises(TermsError, match="compensation.cap"):
        load_terms(bad)


# ------------------------------------------------------- probes and measurement

PROBE_TEXT = BASE_TEXT.replace(
    '''  - {id: api, objective: availability, target: "99.99%", weight: 1}
  - {id: db,  objective: availability, target: "99.9%",  weight: 1}
''',
    '''  - id: api
    objective: availability
    target: "99.99%"
    probe: {type: http, url: "https://api.example.com/health", method: GET, expect_status: [200], keyword: "ok", max_latency: 2s, timeout: 5s, interval: 30s}
  - id: db
    target: "99.9%"
    probe: {type: tcp, host: db.example.com, port: 5432, timeout: 3s, interval: 30s}
measurement:
  slice: 1m
  down_after: 2
  gaps: exclude
''')


def probe_doc() -> dict:
    return yaml.safe_load(PROBE_TEXT)


def test_probes_and_measurement_parse():
    t = load_terms(PROBE_TEXT, source_name="terms.yaml")
    api, db = t.services
    assert api.probe.type == "http" and api.probe.url == "https://api.example.com/health"
    assert api.probe.method == "GET" and api.probe.expect_status == (200,) and api.probe.keyword == "ok"
    assert api.probe.max_latency_us == 2_000_000 and api.probe.max_latency == 2.0
    assert api.probe.timeout_us == 5_000_000 and api.probe.timeout == 5.0
    assert api.probe.interval_us == 30_000_000 and api.probe.interval == 30.0
    assert (db.probe.type, db.probe.host, db.probe.port, db.probe.timeout_us) == ("tcp", "db.example.com", 5432, 3_000_000)
    assert db.probe.url is None and db.probe.max_latency_us is None
    assert (t.measurement.slice, t.measurement.down_after, t.measurement.gaps) == (60, 2, "exclude")


def test_measurement_and_probe_defaults():
    t = load_terms(BASE_TEXT, source_name="terms.yaml")
    assert all(s.probe is None for s in t.services)
    assert (t.measurement.slice, t.measurement.down_after, t.measurement.gaps) == (60, 1, "exclude")
    doc = probe_doc()
    doc["services"][0]["probe"] = {"type": "http", "url": "http://x.example/"}
    doc["services"][1]["probe"] = {"type": "tcp", "host": "db", "port": 1, "interval": "5s"}
    t = load_doc(doc)
    assert t.services[0].probe.method == "GET" and t.services[0].probe.expect_status == (200,)
    assert t.services[0].probe.interval_us == 30_000_000 and t.services[0].probe.timeout_us == 10_000_000
    # the default timeout never outlasts a short interval, and leaves a fifth of it for the probe to end
    assert t.services[1].probe.timeout_us == 4_000_000


@pytest.mark.parametrize("timeout,interval,longest", [("900ms", "1s", "800ms"), ("450ms", "500ms", "400ms"),
                                                      ("250ms", "300ms", "200ms"), ("25s", "30s", "24s")])
def test_a_timeout_must_leave_room_before_the_next_deadline(timeout, interval, longest):
    """A probe timing out at 0.9 s of a 1 s interval skipped 4 of 71 deadlines: such terms are refused, naming the
    longest timeout the interval allows (a fifth of it, at least 100 ms, is left)."""
    doc = probe_doc()
    doc["services"][1]["probe"] = {"type": "tcp", "host": "db", "port": 1, "interval": interval, "timeout": timeout}
    with pytest.raises(TermsError) as err:
        load_doc(doc)
    assert "services[1].probe.timeout" in str(err.value) and f"at most {longest}" in str(err.value)
    doc["services"][1]["probe"]["timeout"] = longest
    assert load_doc(doc).services[1].probe.timeout_us == units.parse_duration_us(longest)


def test_probe_and_measurement_are_in_the_document_hash():
    base = load_doc(probe_doc())
    for mutate in (
        _set(("measurement", "down_after"), 3),
        _set(("services", 0, "probe", "keyword"), "healthy"),
        _del(("measurement",)),
    ):
        doc = probe_doc()
        mutate(doc)
        assert load_doc(doc).document_hash() != base.document_hash()


PROBE_BAD = [
    (_set(("services", 0, "probe", "type"), "icmp"), "services[0].probe.type", "use one of: http | tcp"),
    (_del(("services", 0, "probe", "type")), "services[0].probe.type", "missing required key"),
    (_del(("services", 0, "probe", "url")), "services[0].probe.url", "an http probe needs a url"),
    (_set(("services", 0, "probe", "url"), "ftp://api.example.com/"), "services[0].probe.url", "must start with http:// or https://"),
    (_set(("services", 0, "probe", "url"), "api.example.com/health"), "services[0].probe.url", "must start with http://"),
    (_set(("services", 0, "probe", "url"), "https:///health"), "services[0].probe.url", "has no host"),
    (_set(("services", 0, "probe", "url"), "http://h:99999/"), "services[0].probe.url", "not a valid URL"),
    (_set(("services", 0, "probe", "port"), 80), "services[0].probe.port", "only used with type: tcp"),
    (_set(("services", 1, "probe", "url"), "http://x/"), "services[1].probe.url", "only used with type: http"),
    (_set(("services", 0, "probe", "method"), "FETCH"), "services[0].probe.method", "GET | HEAD"),
    (_set(("services", 0, "probe", "expect_status"), [200, 700]), "services[0].probe.expect_status[1]", "at most 599"),
    (_set(("services", 0, "probe", "expect_status"), []), "services[0].probe.expect_status", "at least 1"),
    (_set(("services", 0, "probe", "keyword"), ""), "services[0].probe.keyword", "must not be empty"),
    (_set(("services", 0, "probe", "timeout"), "0s"), "services[0].probe.timeout", "longer than 0s"),
    (_set(("services", 0, "probe", "interval"), "0ms"), "services[0].probe.interval", "longer than 0s"),
    (_set(("services", 0, "probe", "timeout"), "5"), "services[0].probe.timeout", "has no unit"),
    (_set(("services", 0, "probe", "timeout"), "1m"), "services[0].probe.timeout", "leaves too little of the interval"),
    (_set(("services", 0, "probe", "max_latency"), "6s"), "services[0].probe.max_latency", "longer than the timeout"),
    (_set(("services", 0, "probe", "colour"), "red"), "services[0].probe.colour", "unknown key"),
    (_del(("services", 1, "probe", "host")), "services[1].probe.host", "a tcp probe needs a host"),
    (_del(("services", 1, "probe", "port")), "services[1].probe.port", "a tcp probe needs a port"),
    (_set(("services", 1, "probe", "port"), 0), "services[1].probe.port", "at least 1"),
    (_set(("services", 1, "probe", "port"), 65536), "services[1].probe.port", "at most 65535"),
    (_set(("services", 1, "probe", "port"), "5432"), "services[1].probe.port", "expected a whole number"),
    (_set(("measurement", "slice"), "0s"), "measurement.slice", "longer than 0s"),
    (_set(("measurement", "slice"), "7m"), "measurement.slice", "does not divide the period length (30d)"),
    (_set(("measurement", "slice"), "7m"), "measurement.slice", "the nearest that do are 5m, 10m, 15m"),
    (_set(("measurement", "slice"), "1500ms"), "measurement.slice", "whole number of seconds"),
    (_set(("measurement", "down_after"), 0), "measurement.down_after", "at least 1"),
    (_set(("measurement", "down_after"), 1.5), "measurement.down_after", "expected a whole number"),
    (_set(("measurement", "gaps"), "ignore"), "measurement.gaps", "exclude | down | up"),
    (_set(("measurement", "window"), "1m"), "measurement.window", "allowed keys here: slice, down_after, gaps"),
]


@pytest.mark.parametrize("mutate,path,fragment", PROBE_BAD, ids=[f"{i}:{c[1]}" for i, c in enumerate(PROBE_BAD)])
def test_bad_probe_or_measurement_names_the_key_path(mutate, path, fragment):
    err = rejected(probe_doc(), mutate, path, fragment)
    assert err.line is not None or "missing" in err.message


@given(period=st.integers(1, 10**8), wanted=st.integers(1, 10**6))
def test_every_suggested_slice_divides_the_period(period, wanted):
    """The slice error's suggestions must be usable: the old fixed '1m, 5m or 1h' did not divide a 90 s period."""
    suggested = _dividing_slices(period, wanted)
    assert suggested and all(period % s == 0 for s in suggested)
