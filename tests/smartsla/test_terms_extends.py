"""Multi-level terms: ``extends`` resolution, merge rules, the hash of the resolved document, ``terms show``."""

from __future__ import annotations

import json
from pathlib import Path

import eth_abi
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.smartsla.test_terms import BASE_TEXT, fake_resolver

from smartsla.cli import main
from smartsla.onchain.types import TERMS_ABI_TYPE
from smartsla.terms.errors import TermsError
from smartsla.terms.extends import ResolvedDocument, resolve_terms_document
from smartsla.terms.parse import load_terms, terms_from_document
from smartsla.terms.yaml import _Loader, canonical_yaml

ROOT = Path(__file__).resolve().parents[2]
LEVELS = ROOT / "examples" / "levels"
API = LEVELS / "acme-api.yaml"
API_EU = LEVELS / "acme-api-eu.yaml"

CORPORATE = """\
provider: provider
compensation:
  basis: per-service
  schedule:
    - {below: "99.9%", credit: "10%"}
    - {below: "99.0%", credit: "25%"}
    - {below: "95.0%", credit: "100%"}
  cap: "100%"
oracles: {members: [oracle-1, oracle-2, oracle-3], quorum: 2, deadline: 2d, fallback: full-credit}
maintenance: {allowance: 4h, notice: 48h}
"""

CUSTOMER = """\
extends: corporate.yaml
customer: customer
payment: {token: ETH, fee: "1000"}
periods: {start: "2027-01-01T00:00:00Z", length: 30d, count: 12}
"""

SERVICE = """\
extends: customer.yaml
agreement: acme-api-2027
services:
  - {id: api, target: "99.9%", weight: 2}
  - {id: db, target: "99.9%"}
"""


def write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def levels(tmp_path) -> Path:
    write(tmp_path, {"corporate.yaml": CORPORATE, "customer.yaml": CUSTOMER, "service.yaml": SERVICE})
    return tmp_path


def child(folder: Path, text: str, name: str = "child.yaml", parent: str = "service.yaml") -> Path:
    path = folder / name
    path.write_text(f"extends: {parent}\n" + text)
    return path


# ------------------------------------------------------------------ resolving

def test_three_levels_resolve_to_one_agreement(levels):
    t = load_terms(levels / "service.yaml")
    assert t.agreement == "acme-api-2027"
    assert t.provider == "provider" and t.customer == "customer"          # corporate / customer level
    assert t.payment.fee == "1000" and t.periods.count == 12              # customer level
    assert t.service_ids == ("api", "db") and t.services[0].weight == 2   # service level
    assert [x.credit_bps for x in t.compensation.schedule] == [1000, 2500, 10_000]  # corporate level
    assert t.oracles.quorum == 2 and t.maintenance.allowance == 4 * 3600
    assert t.sources == tuple(str(levels / n) for n in ("corporate.yaml", "customer.yaml", "service.yaml"))
    assert "extends" not in t.document


def test_example_levels_resolve_and_encode():
    t = load_terms(API)
    assert t.sources == tuple(str(LEVELS / n) for n in ("corporate.yaml", "acme-customer.yaml", "acme-api.yaml"))
    assert t.oracles.deadline == 86400                      # acme-customer overrides corporate's 2d
    assert t.oracles.members == ("oracle-1", "oracle-2", "oracle-3") and t.oracles.fallback == "full-credit"
    assert t.measurement.down_after == 2
    assert t.services[0].probe.url == "https://api.acme.example/health"
    chain = t.to_chain(fake_resolver, "0x" + "11" * 20, 6, now=1_700_000_000)
    eth_abi.encode([TERMS_ABI_TYPE], [chain])
    assert chain.document_hash == t.document_hash()


def test_parent_levels_alone_are_not_agreements():
    with pytest.raises(TermsError, match="missing required key"):
        load_terms(LEVELS / "corporate.yaml")


def test_resolve_terms_document_returns_plain_data_and_sources(levels):
    r = resolve_terms_document(levels / "service.yaml")
    assert isinstance(r, ResolvedDocument)
    assert r.sources[-1] == r.source == str(levels / "service.yaml") and len(r.sources) == 3
    assert r.data["customer"] == "customer" and r.data["services"][0] == {"id": "api", "target": "99.9%", "weight": 2}
    assert "extends" not in r.data
    assert json.loads(r.canonical_json()) == r.data
    # not validated: a parent alone resolves fine
    assert resolve_terms_document(levels / "customer.yaml").data["provider"] == "provider"
    # without extends: just the file
    plain = resolve_terms_document(ROOT / "examples" / "aws-ec2.yaml")
    assert plain.sources == (str(ROOT / "examples" / "aws-ec2.yaml"),)


def test_extends_is_relative_to_the_extending_file(levels, monkeypatch, tmp_path_factory):
    write(levels, {"deep/nested/leaf.yaml": "extends: ../../service.yaml\nagreement: leaf\n"})
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    t = load_terms(levels / "deep" / "nested" / "leaf.yaml")
    assert t.agreement == "leaf" and t.sources[0] == str(levels / "corporate.yaml")


def test_text_and_dict_extend_relative_to_base_dir(levels):
    text = "extends: service.yaml\nagreement: from-text\n"
    t = load_terms(text, base_dir=levels, source_name="inline.yaml")
    assert t.agreement == "from-text" and t.sources[-1] == "inline.yaml"
    d = terms_from_document({"extends": "service.yaml", "agreement": "from-dict"}, base_dir=levels)
    assert d.agreement == "from-dict" and d.sources[-1] == "<terms>"


# --------------------------------------------------------------- merge rules

def test_child_overrides_scalars_and_merges_mappings_key_by_key(levels):
    t = load_terms(child(levels, "payment: {fee: \"2000\"}\noracles: {quorum: 3}\nagreement: other\n"))
    assert t.payment.fee == "2000" and t.payment.token == "ETH"          # token inherited
    assert t.oracles.quorum == 3 and t.oracles.members == ("oracle-1", "oracle-2", "oracle-3")
    assert t.agreement == "other"


def test_lists_are_replaced_as_a_whole(levels):
    t = load_terms(child(levels, """\
compensation:
  schedule: [{below: "99%", credit: "50%"}]
oracles: {members: [oracle-1, oracle-2]}
"""))
    assert [(x.threshold, x.credit_bps) for x in t.compensation.schedule] == [(990_000, 5000)]
    assert t.oracles.members == ("oracle-1", "oracle-2")
    assert t.compensation.cap_bps == 10_000  # the rest of compensation is inherited


def test_null_removes_an_inherited_key(levels):
    t = load_terms(child(levels, "maintenance: null\ncompensation: {cap: ~}\n"))
    assert "maintenance" not in t.document and t.maintenance.allowance == 0
    assert "cap" not in t.document["compensation"]
    with pytest.raises(TermsError) as info:
        load_terms(child(levels, "measurement: null\n"))
    err = info.value
    assert err.source == str(levels / "child.yaml") and err.path == "measurement" and err.line == 2
    assert "no parent file" in err.message and "delete this line" in err.message


def test_services_merge_by_id(levels):
    t = load_terms(child(levels, """\
services:
  - {id: queue, target: "99.5%"}
  - {id: api, target: "99.95%"}
"""))
    # inherited services first in the parent's order, new ids after in the child's order
    assert t.service_ids == ("api", "db", "queue")
    api = t.service("api")
    assert api.target == 999_500 and api.weight == 2  # overridden target, inherited weight
    assert t.document["services"][0] == {"id": "api", "target": "99.95%", "weight": 2}


def test_service_fields_merge_like_mappings(levels):
    write(levels, {"probed.yaml": SERVICE.replace(
        '{id: api, target: "99.9%", weight: 2}',
        '{id: api, target: "99.9%", weight: 2, probe: {type: http, url: "https://a.example/", timeout: 5s}}')})
    t = load_terms(child(levels, """\
services:
  - id: api
    weight: null
    probe: {url: "https://b.example/health"}
""", parent="probed.yaml"))
    api = t.service("api")
    assert api.weight == 1 and "weight" not in t.document["services"][0]
    assert api.probe.url == "https://b.example/health" and api.probe.timeout_us == 5_000_000


def test_example_variant_merges_removes_and_appends():
    t = load_terms(API_EU)
    assert t.service_ids == ("api", "queue")
    assert t.service("api").probe.url == "https://eu.api.acme.example/health"
    assert t.service("api").probe.timeout_us == 5_000_000 and t.service("api").weight == 2
    assert t.sources[-2:] == (str(API), str(API_EU))


def test_remove_drops_an_inherited_service(levels):
    t = load_terms(child(levels, "services:\n  - {id: db, remove: true}\n"))
    assert t.service_ids == ("api",)
    assert all("remove" not in s for s in t.document["services"])


@pytest.mark.parametrize("entry,path,fragment", [
    ("{id: cache, remove: true}", "services[0].id",
     'remove: true, but no parent file has a service "cache" (inherited services: api, db)'),
    ("{id: db, remove: true, target: \"99%\"}", "services[0].target", "takes only its id"),
    ("{id: db, remove: false}", "services[0].remove", "write remove: true"),
    ("{target: \"99%\"}", "services[0].id", "every service needs an id"),
])
def test_remove_and_id_errors(levels, entry, path, fragment):
    with pytest.raises(TermsError) as info:
        load_terms(child(levels, f"services:\n  - {entry}\n"))
    err = info.value
    assert err.source == str(levels / "child.yaml") and err.path == path and err.line is not None
    assert fragment in err.message, str(err)


def test_remove_in_a_base_file_is_explained(levels):
    write(levels, {"corporate.yaml": CORPORATE + "services:\n  - {id: x, remove: true}\n"})
    with pytest.raises(TermsError, match=r"corporate.yaml: services\[0\].remove: only removes a service inherited"):
        load_terms(levels / "service.yaml")


def test_duplicate_ids_in_a_parent_are_an_error(levels):
    write(levels, {"service.yaml": SERVICE + '  - {id: api, target: "99%"}\n'})
    with pytest.raises(TermsError) as info:
        load_terms(child(levels, "agreement: x\n"))
    assert info.value.source == str(levels / "service.yaml")
    assert info.value.path == "services[2].id" and "already used by services[0]" in info.value.message


def test_removing_every_service_leaves_an_invalid_agreement(levels):
    with pytest.raises(TermsError, match="services: needs at least 1 entry"):
        load_terms(child(levels, "services:\n  - {id: api, remove: true}\n  - {id: db, remove: true}\n"))


def test_resolution_is_deterministic(levels):
    first = resolve_terms_document(levels / "service.yaml")
    second = resolve_terms_document(levels / "service.yaml")
    assert first.data == second.data and first.canonical_yaml() == second.canonical_yaml()
    assert list(first.data) == list(second.data)


# ------------------------------------------------------------ chain errors

def test_cycle_names_the_chain(tmp_path):
    write(tmp_path, {"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: sub/c.yaml\n", "sub/c.yaml": "extends: ../a.yaml\n"})
    with pytest.raises(TermsError) as info:
        load_terms(tmp_path / "a.yaml")
    err = info.value
    assert err.path == "extends" and err.source == str(tmp_path / "sub" / "c.yaml") and err.line == 1
    chain = " -> ".join(str(tmp_path / n) for n in ("a.yaml", "b.yaml", "sub/c.yaml", "a.yaml"))
    assert chain in err.message and "remove one of these extends" in err.message


def test_self_extension_is_a_cycle(tmp_path):
    write(tmp_path, {"self.yaml": "agreement: x\nextends: ./self.yaml\n"})
    with pytest.raises(TermsError, match=r"self.yaml: extends: the extends chain loops: .*self.yaml -> .*self.yaml"):
        load_terms(tmp_path / "self.yaml")


def test_missing_parent_is_named_with_the_key_path(levels):
    path = child(levels, "agreement: x\n", parent="corprate.yaml")
    with pytest.raises(TermsError) as info:
        load_terms(path)
    err = info.value
    assert err.source == str(path) and err.path == "extends" and err.line == 1
    assert f'cannot read "corprate.yaml" ({levels / "corprate.yaml"})' in err.message
    assert "relative to the folder of the file that says extends" in err.message


def test_missing_grandparent_names_the_chain(levels):
    write(levels, {"customer.yaml": CUSTOMER.replace("corporate.yaml", "gone.yaml")})
    with pytest.raises(TermsError) as info:
        load_terms(levels / "service.yaml")
    assert info.value.source == str(levels / "customer.yaml") and info.value.path == "extends"
    assert f"reached through {levels / 'service.yaml'} -> {levels / 'customer.yaml'}" in info.value.message


@pytest.mark.parametrize("value", ["", "[a.yaml, b.yaml]", "3"])
def test_extends_must_be_one_path(tmp_path, value):
    write(tmp_path, {"t.yaml": f"extends: {value}\n"})
    with pytest.raises(TermsError, match=r"t.yaml: extends: expected the path of the terms file this one extends"):
        load_terms(tmp_path / "t.yaml")


def test_parent_syntax_error_names_the_parent(levels):
    write(levels, {"customer.yaml": CUSTOMER + "periods: {count: 3}\n"})
    with pytest.raises(TermsError, match=r"customer.yaml: line 5, column 1: .*duplicate key 'periods'"):
        load_terms(levels / "service.yaml")


# ------------------------------------------------------- validation and hash

def test_error_in_a_parent_names_the_parent_file_and_line(levels):
    write(levels, {"corporate.yaml": CORPORATE.replace('{below: "99.0%", credit: "25%"}',
                                                       '{below: "99.95%", credit: "25%"}')})
    with pytest.raises(TermsError) as info:
        load_terms(levels / "service.yaml")
    err = info.value
    assert err.source == str(levels / "service.yaml") and err.path == "compensation.schedule[1].below"
    assert err.origin == str(levels / "corporate.yaml") and err.line == 6
    assert str(err) == (f"{levels / 'service.yaml'}: compensation.schedule[1].below: {err.message} "
                        f"(written in {levels / 'corporate.yaml'}, line 6)")


def test_error_in_a_merged_service_names_the_key_path_where_it_was_written(levels):
    path = child(levels, 'services:\n  - {id: queue, target: "99.5"}\n')
    with pytest.raises(TermsError) as info:
        load_terms(path)
    err = info.value
    assert err.path == "services[2].target" and err.origin == str(path) and err.origin_path == "services[0].target"
    assert err.line == 3 and 'add "%"' in err.message
    assert str(err).endswith(f"(written in {path}, line 3, as services[0].target)")


def test_unknown_key_in_a_parent_is_reported(levels):
    write(levels, {"customer.yaml": CUSTOMER + "payment: {tokn: ETH}\n".replace("payment", "oracles")})
    with pytest.raises(TermsError) as info:
        load_terms(levels / "service.yaml")
    assert info.value.path == "oracles.tokn" and "unknown key" in info.value.message
    assert info.value.origin == str(levels / "customer.yaml")


def test_errors_without_extends_are_unchanged():
    with pytest.raises(TermsError) as info:
        load_terms(BASE_TEXT.replace("provider: provider ", 'provider: "0x12" '), source_name="terms.yaml")
    err = info.value
    assert err.origin is None and err.line == 2 and str(err) == f"terms.yaml: provider: {err.message}"


def test_resolved_document_passes_the_same_validation(levels):
    resolved = resolve_terms_document(levels / "service.yaml")
    assert terms_from_document(resolved.data) == load_terms(levels / "service.yaml")


def test_same_resolved_content_split_differently_has_the_same_hash(levels, tmp_path_factory):
    split = load_terms(levels / "service.yaml")
    # one file holding everything
    whole = yaml.safe_load(CORPORATE) | yaml.safe_load(CUSTOMER) | yaml.safe_load(SERVICE)
    del whole["extends"]
    assert load_terms(whole).document_hash() == split.document_hash()
    # two levels instead of three, keys in other files and another order
    other = tmp_path_factory.mktemp("other")
    write(other, {
        "base.yaml": CORPORATE.replace("provider: provider\n", "") + 'payment: {token: ETH, fee: "1000"}\n',
        "top.yaml": "extends: base.yaml\n" + 'agreement: acme-api-2027\nprovider: provider\ncustomer: customer\n'
                    'periods: {start: "2027-01-01T00:00:00Z", length: 30d, count: 12}\n'
                    'services:\n  - {id: api, target: "99.9%", weight: 2}\n  - {id: db, target: "99.9%"}\n',
    })
    assert load_terms(other / "top.yaml").document_hash() == split.document_hash()
    # and the canonical YAML is a standalone file with the same hash
    assert load_terms(split.canonical_yaml()).document_hash() == split.document_hash()


def test_changing_a_parent_changes_the_childs_hash(levels):
    before = load_terms(levels / "service.yaml").document_hash()
    write(levels, {"corporate.yaml": CORPORATE.replace("deadline: 2d", "deadline: 3d")})
    after = load_terms(levels / "service.yaml").document_hash()
    assert before != after


def test_the_example_hashes_match_their_canonical_yaml():
    for path in (API, API_EU):
        t = load_terms(path)
        assert load_terms(t.canonical_yaml()).document_hash() == t.document_hash()


def test_canonical_yaml_order_and_style():
    text = load_terms(API).canonical_yaml()
    keys = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith(" ")]
    assert keys == ["agreement", "provider", "customer", "payment", "periods", "services", "compensation",
                    "oracles", "maintenance", "measurement"]
    assert "    - {below: 99.9%, credit: 10%}" in text and "  members: [oracle-1, oracle-2, oracle-3]" in text
    assert "fee: '1000'" in text  # text that looks like a number stays text


_SCALARS = st.one_of(
    st.sampled_from(["1000", "0x" + "ab" * 20, "2027-01-01T00:00:00Z", "on", "no", "null", "~", "1e5", "012",
                     ".5", "99.9%", "- x", "a: b", "#c", "[x]", "'q'", "", " lead", "ü"]),
    st.text(max_size=8), st.integers(-10**20, 10**20), st.booleans(),
)
_KEYS = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)
_DOCS = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
                     max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_KEYS, _DOCS, min_size=1, max_size=5))
def test_canonical_yaml_reads_back_as_the_same_document(doc):
    text = canonical_yaml(doc)
    assert yaml.load(text, Loader=_Loader) == doc
    assert canonical_yaml(yaml.load(text, Loader=_Loader)) == text


# --------------------------------------------------------------------- CLI

def test_cli_terms_show(capsys):
    assert main(["terms", "show", str(API)]) == 0
    out = capsys.readouterr().out
    t = load_terms(API)
    digest = "0x" + t.document_hash().hex()
    for source in t.sources:
        assert f"#   {source}" in out
    assert t.canonical_yaml() in out
    assert "availability below 99.9%" in out and "10% of the fee" in out
    assert "1000 test-usd per period" in out and "12 periods of 30d" in out
    assert "2 of 3 must report" in out and "capped at 100%" in out
    assert out.rstrip().endswith(f"document hash {digest}")


def test_cli_terms_show_json(capsys):
    assert main(["terms", "show", str(API_EU), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    t = load_terms(API_EU)
    assert out["file"] == str(API_EU)
    assert out["sources"] == list(t.sources) and len(out["sources"]) == 4
    assert out["document_hash"] == "0x" + t.document_hash().hex()
    assert out["terms"] == t.document and "extends" not in out["terms"]
    tiers = out["summary"]["schedules"][0]["tiers"]
    assert tiers[0]["text"] == "availability below 99.9%: customer gets 10% of the fee"


def test_cli_terms_show_without_extends(capsys):
    path = ROOT / "examples" / "multi-service.yaml"
    assert main(["terms", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "(no extends: the file itself)" in out and "weighted average availability of api, db, queue" in out
    assert "150% of the fee (50% of it from the bond)" in out


def test_cli_terms_check_names_the_sources(capsys):
    assert main(["terms", "check", str(API)]) == 0
    out = capsys.readouterr().out
    assert "valid; document hash 0x" in out
    assert "resolved from: " + " -> ".join(load_terms(API).sources) in out
    assert main(["terms", "check", str(API), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sources"] == list(load_terms(API).sources)
    assert main(["terms", "check", str(ROOT / "examples" / "aws-ec2.yaml")]) == 0
    assert "resolved from" not in capsys.readouterr().out


def test_cli_errors_are_clear_and_exit_2(levels, capsys):
    missing = child(levels, "agreement: x\n", parent="nope.yaml")
    assert main(["terms", "show", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "extends" in err and "nope.yaml" in err and "cannot read" in err
    write(levels, {"loop.yaml": "extends: loop.yaml\n"})
    assert main(["terms", "show", str(levels / "loop.yaml"), "--json"]) == 2
    assert "loops" in capsys.readouterr().err
    bad = child(levels, 'services:\n  - {id: api, target: "99.9"}\n')
    assert main(["terms", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "services[0].target" in err and 'add "%"' in err
