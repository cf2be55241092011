"""Evidence bundles (versions 1 and 2): build, verify, prove, load; every single-byte corruption is caught and named."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracle.cli import main
from smartsla import constants
from smartsla.encoding import seconds_to_us
from smartsla.evidence import format, merkle, v1, v2
from smartsla.evidence.bundle import (
    build_bundle,
    build_bundle_columns,
    bundle_samples,
    evidence_root,
    load_bundle,
    proof,
    prove,
    verify_bundle,
)
from smartsla.evidence.columns import EvidenceColumns
from smartsla.evidence.format import BundleExistsError, EvidenceError, hour_iso
from smartsla.evidence.merkle import verify_proof
from smartsla.evidence.v1 import chunk_bytes
from smartsla.measure.events import EventColumns
from smartsla.measure.samples import STATUS_CODE, Sample, Status

AGREEMENT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
START = 1_798_761_600          # 2027-01-01T00:00:00Z
END = START + 6 * 3600


def make_samples(seed=1, n=120):
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        svc = rnd.choice(["api", "db", "web-1"])
        status = rnd.choice(list(Status))
        out.append(Sample(START + rnd.randrange(0, 5 * 3600 * 1000) / 1000, svc, status,
                          None if status is not Status.UP else rnd.randrange(1, 500_000) / 1000,
                          rnd.choice(["", "200 in 12 ms", "timeout, 5 s", 'keyword "ok" missing', "é%\n"])))
    return out


def build(directory, samples, values=None, **kw):
    return build_bundle(directory, AGREEMENT, 31337, 7, START, END, samples,
                        values if values is not None else {"api": 999_000, "db": 1_000_000}, **kw)


def make_counts(seed=3, n=40) -> EventColumns:
    """Counts of two services measured from events (one success rate, one Apdex), one per 5-minute interval."""
    rnd = random.Random(seed)
    rows = []
    for k in range(n):
        service = "orders" if k % 2 else "search"
        total = rnd.randrange(0, 10_000)
        good = rnd.randrange(0, total + 1)
        tolerating = rnd.randrange(0, total - good + 1) if service == "search" else 0
        rows.append((service, (START + 300 * (k // 2)) * 1_000_000, good, tolerating, total))
    return EventColumns.from_rows(rows, ("orders", "search"))


@pytest.fixture(scope="module", params=[1, 2], ids=["v1", "v2"])
def bundle(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"ev{request.param}") / "period-7"
    root = build(d, make_samples(), version=request.param)
    return d, root


COUNTED_VALUES = {"api": 999_000, "db": 1_000_000, "orders": 990_000, "search": 950_000}


@pytest.fixture(scope="module")
def counted_bundle(tmp_path_factory):
    """A v2 bundle with samples and the counts of two services measured from events."""
    d = tmp_path_factory.mktemp("ev-counts") / "period-7"
    root = build_bundle_columns(d, AGREEMENT, 31337, 7, START, END, EvidenceColumns.from_samples(make_samples()),
                                COUNTED_VALUES, events=make_counts())
    return d, root


def version_of(d) -> int:
    return json.loads((d / "manifest.json").read_text()).get("version", 1)


def test_round_trip(bundle, tmp_path):
    d, root = bundle
    version = version_of(d)
    result = verify_bundle(d, root)
    assert result.ok, result.findings
    assert result.root == "0x" + root.hex()
    samples = make_samples()
    assert result.samples == len(set(samples))
    key = lambda s: (s.service, s.time, s.status, s.latency_ms or -1, s.reason)
    assert sorted(bundle_samples(d), key=key) == sorted(set(samples), key=key)
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["root"] == result.root and manifest["period"] == 7
    if version == 1:
        assert (d / "chunks" / "api" / f"{START}.csv").read_bytes().startswith(b"time_us,status,latency_us,reason\n")
    else:
        assert manifest["version"] == 2 and _files(d) == ["manifest.json", "samples/api.bin", "samples/db.bin",
                                                          "samples/web-1.bin"]
    loaded = load_bundle(d)
    assert loaded.version == version and loaded.root == result.root and loaded.values == manifest["values"]
    assert sorted(loaded.services()) == ["api", "db", "web-1"]
    assert len(loaded.services()["db"]) == len({s for s in samples if s.service == "db"})
    # Rebuilding the same bundle is a no-op; a different one is refused unless asked for.
    assert build(d, list(reversed(samples)), version=version) == root
    with pytest.raises(BundleExistsError, match="already holds"):
        build(d, samples[:-1], version=version)
    other = tmp_path / "b"
    shutil.copytree(d, other)
    new_root = build(other, samples[:-1], overwrite=True, version=version)
    assert new_root != root and verify_bundle(other, new_root).ok


@pytest.mark.parametrize("version", [1, 2])
def test_root_is_independent_of_order_and_duplicates(tmp_path, version):
    samples = make_samples(seed=2)
    shuffled = samples * 2
    random.Random(3).shuffle(shuffled)
    assert build(tmp_path / "a", samples, version=version) == build(tmp_path / "b", shuffled, version=version)
    assert build(tmp_path / "c", samples, {"api": 1}, version=version) != \
        build(tmp_path / "d", samples, {"api": 2}, version=version)


@pytest.mark.parametrize("version", [1, 2])
def test_empty_bundles(tmp_path, version):
    root = build(tmp_path / "empty", [], values={}, version=version)
    result = verify_bundle(tmp_path / "empty", root)
    assert result.ok and result.chunks == 0
    # The root still pins agreement, period and values: the header leaf alone (v1), with the reasons leaf (v2).
    manifest = json.loads((tmp_path / "empty" / "manifest.json").read_text())
    head = bytes.fromhex(manifest["header_leaf"][2:])
    assert root == (head if version == 1 else merkle.hash_pair(head, v2.reasons_leaf([])))
    one = build(tmp_path / "one", [Sample(START + 5, "api", Status.DOWN)], version=version)
    assert verify_bundle(tmp_path / "one").ok
    assert verify_proof(prove(tmp_path / "one", "api", START).leaf, proof(tmp_path / "one", "api", START), one)


def test_proofs(bundle):
    d, root = bundle
    chunks = {(s.service, seconds_to_us(s.time) // constants.HOUR_US * 3600) for s in bundle_samples(d)}
    assert len(chunks) >= 10
    if version_of(d) == 1:
        manifest = json.loads((d / "manifest.json").read_text())
        assert {(c["service"], c["hour_start"]) for c in manifest["chunks"]} == chunks
    for service, hour in sorted(chunks):
        p = prove(d, service, hour)
        leaf, siblings = p.leaf, proof(d, service, hour)
        assert p.root == root and p.siblings == siblings and p.to_json()["valid"]
        assert verify_proof(leaf, siblings, root)
        assert not verify_proof(bytes([leaf[0] ^ 1]) + leaf[1:], siblings, root)
        assert not verify_proof(leaf, siblings[:-1], root) or len(siblings) == 0
    with pytest.raises(EvidenceError, match="no chunk for service 'api'"):
        proof(d, "api", START + 100 * 3600)


@pytest.mark.parametrize("version", [1, 2])
def test_samples_outside_the_period_or_bad_ids_are_refused(tmp_path, version):
    with pytest.raises(EvidenceError, match="outside period"):
        build(tmp_path / "x", [Sample(END, "api", Status.UP)], version=version)
    with pytest.raises(EvidenceError, match="cannot name a (chunk )?file"):
        build(tmp_path / "x", [Sample(START, "../etc", Status.UP)], version=version)
    if version == 2:
        with pytest.raises(EvidenceError, match="latency_us"):
            build(tmp_path / "x", [Sample(START, "api", Status.UP, 2 ** 32 / 1000)])


def _files(d: Path):
    return sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_single_byte_corruption_is_named(bundle, tmp_path_factory, data):
    assert_a_changed_byte_is_named(bundle[0], tmp_path_factory, data)


def assert_a_changed_byte_is_named(d: Path, tmp_path_factory, data) -> None:
    """One byte of one file of the bundle ``d`` changed (drawn by hypothesis): verify names that file."""
    name = data.draw(st.sampled_from(_files(d)), label="file")
    raw = (d / name).read_bytes()
    pos = data.draw(st.integers(0, len(raw) - 1), label="pos")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[pos]), label="byte")
    copy = tmp_path_factory.mktemp("c") / "b"
    shutil.copytree(d, copy)
    (copy / name).write_bytes(raw[:pos] + bytes([new]) + raw[pos + 1:])
    result = verify_bundle(copy)
    assert not result.ok
    assert name in {f.file for f in result.findings}, result.findings


def test_manifest_fields_are_pinned_by_the_root(bundle, tmp_path):
    d, root = bundle
    copy = tmp_path / "b"
    shutil.copytree(d, copy)
    m = json.loads((copy / "manifest.json").read_text())
    m["values"]["api"] = 1_000_000
    (copy / "manifest.json").write_bytes(format.canonical_json(m))
    result = verify_bundle(copy)
    assert any(f.file == "manifest.json" and "header_leaf" in f.message for f in result.findings)
    # Recomputing every hash to match does not help against the root that was signed.
    if version_of(d) == 1:
        m["header_leaf"] = "0x" + v1.header_leaf(m["agreement"], 31337, 7, START, END, m["values"]).hex()
        levels = merkle.tree_levels([bytes.fromhex(m["header_leaf"][2:])] +
                                      [bytes.fromhex(c["leaf"][2:]) for c in m["chunks"]])
        (copy / "tree.json").write_bytes(
            format.canonical_json({"levels": [["0x" + n.hex() for n in lv] for lv in levels]}))
    else:
        m["header_leaf"] = "0x" + v2.header_leaf(m["agreement"], 31337, 7, START, END, m["values"]).hex()
        levels = merkle.tree_levels([bytes.fromhex(m[k][2:]) for k in ("header_leaf", "reasons_leaf")] +
                                      [bytes.fromhex(e["service_root"][2:]) for e in m["services"]])
    m["root"] = "0x" + levels[-1][0].hex()
    (copy / "manifest.json").write_bytes(format.canonical_json(m))
    assert verify_bundle(copy).ok
    result = verify_bundle(copy, root)
    assert not result.ok and any("expected root" in f.message for f in result.findings)


def test_extra_and_missing_files(bundle, tmp_path):
    d, _ = bundle
    copy = tmp_path / "b"
    shutil.copytree(d, copy)
    folder = "chunks/api" if version_of(d) == 1 else "samples"
    (copy / folder / "notes.txt").write_text("hi")
    victim = min((copy / "chunks" / "db").iterdir()) if version_of(d) == 1 else copy / "samples" / "db.bin"
    victim.unlink()
    files = {f.file for f in verify_bundle(copy).findings}
    assert f"{folder}/notes.txt" in files and victim.relative_to(copy).as_posix() in files


def test_chunk_canonical_form():
    data = chunk_bytes([Sample(1.5, "api", Status.UP, 0.25, 'a,b "c" %\n é'), Sample(1.0, "api", Status.DOWN)])
    assert data == (b"time_us,status,latency_us,reason\n"
                    b"1000000,down,,\n"
                    b"1500000,up,250,a%2Cb %22c%22 %25%0A %C3%A9\n")


def test_records_v2():
    """The v2 record: time_us uint64, status uint8, latency_us uint32 (0xFFFFFFFF: none), reason uint32, big-endian."""
    c = EvidenceColumns.from_samples([Sample(1.5, "api", Status.UP, 0.25, "b"), Sample(1.0, "api", Status.DOWN, None, "a"),
                                      Sample(1.0, "api", Status.UP, None, "b"), Sample(1.0, "api", Status.UP, None, "b")])
    assert v2.records(c.canonical()).tobytes() == (
        (1_000_000).to_bytes(8, "big") + b"\x00" + b"\xff" * 4 + (1).to_bytes(4, "big") +      # up before down
        (1_000_000).to_bytes(8, "big") + b"\x01" + b"\xff" * 4 + (0).to_bytes(4, "big") +      # "a" is reason 0
        (1_500_000).to_bytes(8, "big") + b"\x00" + (250).to_bytes(4, "big") + (1).to_bytes(4, "big"))
    assert v2.RECORD_SIZE == 17
    # Leaves as docs/evidence.md spells them, from the raw bytes.
    chunk = v2.records(c.canonical()).tobytes()
    leaf = merkle.keccak(b"smart-sla/evidence/v2/chunk\0api\0" + (0).to_bytes(8, "big") + merkle.keccak(chunk))
    assert v2.chunk_leaves("api", chunk, np.zeros(3, np.int64))[0] == [leaf]
    assert v2.reasons_leaf(["a", "é"]) == merkle.keccak(
        b"smart-sla/evidence/v2/reasons\0" + b"\0\0\0\x01a" + b"\0\0\0\x02\xc3\xa9")


def test_cli(bundle, tmp_path, capsys):
    d, root = bundle
    assert main(["evidence", "verify", str(d)]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["evidence", "verify", str(d), "--json", "--root", "0x" + root.hex()]) == 0
    assert json.loads(capsys.readouterr().out)["result"] == "PASS"
    copy = tmp_path / "b"
    shutil.copytree(d, copy)
    if version_of(d) == 1:
        chunk = min((copy / "chunks" / "web-1").iterdir())
        chunk.write_bytes(chunk.read_bytes().replace(b",up,", b",down,", 1))
    else:
        chunk = copy / "samples" / "web-1.bin"
        raw = bytearray(chunk.read_bytes())
        raw[8] ^= 1                       # the first record's status: up <-> down
        chunk.write_bytes(bytes(raw))
    assert main(["evidence", "verify", str(copy), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["result"] == "FAIL"
    name = chunk.relative_to(copy).as_posix()
    assert any(f["file"] == name and "hash" in f["message"] for f in out["findings"]), out["findings"]
    assert main(["evidence", "verify", str(tmp_path / "nope")]) == 2
    assert main(["evidence", "prove", str(d), "api", "2027-01-01T00:00Z", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] and doc["root"] == "0x" + root.hex()
    assert main(["evidence", "prove", str(d), "api", str(START + 1)]) == 2


ROWS = st.lists(st.tuples(st.sampled_from(["api", "db"]), st.integers(0, 3 * 3600 * 1_000_000 - 1),
                          st.sampled_from([Status.UP, Status.DOWN, Status.UNKNOWN]),
                          st.one_of(st.none(), st.integers(0, 10**7)),
                          st.sampled_from(["", "200 in 3 ms", "a,b \"%\" é"])), max_size=60)


def columns_of(rows, start, ids=("api", "db")):
    reasons = sorted({r for *_, r in rows}, reverse=True)        # any order: canonical() sorts them
    return EvidenceColumns(
        tuple(ids), np.array([ids.index(s) for s, *_ in rows], np.int64),
        np.array([start * 1_000_000 + t for _, t, *_ in rows], np.int64),
        np.array([STATUS_CODE[st_] for _, _, st_, _, _ in rows], np.int8),
        np.array([-1 if lat is None else lat for *_, lat, _ in rows], np.int64),
        np.array([reasons.index(r) for *_, r in rows], np.int64), tuple(reasons))


@settings(max_examples=30, deadline=None)
@given(rows=ROWS, version=st.sampled_from([1, 2]))
def test_columns_build_the_same_bundle_as_samples(tmp_path_factory, rows, version):
    """The fast column path must write exactly the bytes (and so the root) of the per-sample path."""
    start = 1_798_761_600
    samples = [Sample(start + t / 1e6, s, st_, None if lat is None else lat / 1000, r) for s, t, st_, lat, r in rows]
    base = tmp_path_factory.mktemp("b")
    root = build_bundle(base / "objects", AGREEMENT, 1, 0, start, start + 3 * 3600, samples, {"api": 1, "db": 2},
                        version=version)
    columns = build_bundle_columns(base / "columns", AGREEMENT, 1, 0, start, start + 3 * 3600, columns_of(rows, start),
                                   {"api": 1, "db": 2}, version=version)
    assert columns == root
    assert _files(base / "objects") == _files(base / "columns")
    for name in _files(base / "objects"):
        assert (base / "objects" / name).read_bytes() == (base / "columns" / name).read_bytes()
    if version == 2:
        assert evidence_root(AGREEMENT, 1, 0, start, start + 3 * 3600, columns_of(rows, start),
                                      {"api": 1, "db": 2}) == root
        assert verify_bundle(base / "columns", root).ok
        # loading gives the samples back, once each
        def order(x: Sample) -> tuple:  # a sample without a latency sorts before one with 0 ms
            return (x.service, x.time, x.status.value, x.latency_ms is not None, x.latency_ms or 0, x.reason)

        assert sorted(load_bundle(base / "columns").columns.samples(), key=order) == sorted(set(samples), key=order)


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(["api", "db"]), st.integers(0, 5),
                               st.sampled_from([Status.UP, Status.DOWN, Status.UNKNOWN]),
                               st.one_of(st.none(), st.integers(0, 3)), st.sampled_from(["", "b", "a", "é"])),
                     max_size=40))
def test_canonical_order_with_many_ties(rows):
    """canonical() sorts by (service, time) and then only the tied rows; the result is the full five-key order."""
    c = columns_of(rows, 0).canonical()
    keys = [(int(s), int(t), int(x), 2 ** 32 - 1 if lat < 0 else int(lat), c.reasons[r].encode())
            for s, t, x, lat, r in zip(c.service, c.time_us, c.status, c.latency_us, c.reason)]
    assert keys == sorted(set(keys))
    assert len(keys) == len({(s, t, st_, lat, r) for s, t, st_, lat, r in rows})
    assert c.canonical().time_us.tolist() == c.time_us.tolist()          # already canonical: unchanged


def test_verify_and_prove_point_at_what_exists(tmp_path, capsys):
    """An agreement's folder instead of a period's bundle, and an hour with no samples: the error names the
    bundles and the hours that are there."""
    root = tmp_path / "evidence" / AGREEMENT.lower()
    build_bundle(root / "period-0", AGREEMENT, 31337, 0, START, END, [Sample(START + 10, "api", Status.UP)])
    build_bundle(root / "period-1", AGREEMENT, 31337, 1, START, END, [Sample(START + 3610, "api", Status.UP)],
                 version=1)
    assert main(["evidence", "verify", str(root)]) == 2
    assert "period-0, period-1" in capsys.readouterr().err
    for period, hour in (("period-0", START), ("period-1", START + 3600)):
        with pytest.raises(EvidenceError, match=rf"hours with samples of 'api': {hour_iso(hour)}"):
            prove(root / period, "api", START + 7200)


def test_event_counts_load_back_and_a_changed_count_is_named_by_its_hour(counted_bundle, tmp_path):
    d, root = counted_bundle
    counts = make_counts().canonical()
    loaded = load_bundle(d).event_columns(("api", "db", "orders", "search"))
    keys = ("service", "time_us", "good", "tolerating", "total")

    def rows(c):
        return {(c.service_ids[r[0]], *r[1:]) for r in zip(*(getattr(c, k).tolist() for k in keys))}

    assert rows(loaded) == rows(counts)
    result = verify_bundle(d, root)
    assert result.ok and result.intervals == len(counts) and result.samples == len(set(make_samples()))
    assert _files(d) == ["events/orders.bin", "events/search.bin", "manifest.json", "samples/api.bin",
                         "samples/db.bin", "samples/web-1.bin"]
    # the samples alone give another root: the counts are committed to
    assert root != build(tmp_path / "plain", make_samples(), COUNTED_VALUES)
    copy = tmp_path / "b"
    shutil.copytree(d, copy)
    data = bytearray((copy / "events" / "orders.bin").read_bytes())
    data[13 * 32 + 15] ^= 1          # record 13's good count, in the second hour (12 intervals an hour)
    (copy / "events" / "orders.bin").write_bytes(bytes(data))
    named = [f.message for f in verify_bundle(copy).findings if f.file == "events/orders.bin"]
    assert any("the counts of hour 2027-01-01T01:00:00Z (records 12..19" in x for x in named), named


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_single_byte_corruption_of_a_counted_bundle_is_named(counted_bundle, tmp_path_factory, data):
    assert_a_changed_byte_is_named(counted_bundle[0], tmp_path_factory, data)


def test_counts_outside_the_period_or_contradicting_are_refused(tmp_path):
    late = EventColumns.from_rows([("orders", END * 1_000_000, 1, 0, 1)], ("orders",))
    with pytest.raises(EvidenceError, match="interval's counts"):
        build_bundle_columns(tmp_path / "a", AGREEMENT, 31337, 7, START, END, EvidenceColumns.from_samples([]),
                             None, events=late)
    twice = EventColumns.from_rows([("orders", START * 1_000_000, 1, 0, 1), ("orders", START * 1_000_000, 0, 0, 1)],
                                   ("orders",))
    with pytest.raises(EvidenceError, match="two different counts for one interval"):
        build_bundle_columns(tmp_path / "b", AGREEMENT, 31337, 7, START, END, EvidenceColumns.from_samples([]),
                             None, events=twice)
    with pytest.raises(EvidenceError, match="version 2 record kind"):
        build_bundle_columns(tmp_path / "c", AGREEMENT, 31337, 7, START, END, EvidenceColumns.from_samples([]),
                             None, events=make_counts(), version=1)


def test_verify_command_counts_the_intervals_of_a_counted_bundle(counted_bundle, capsys):
    d, root = counted_bundle
    assert main(["evidence", "verify", str(d)]) == 0
    assert f"{len(make_counts().canonical())} intervals of event counts, root 0x{root.hex()}" in capsys.readouterr().out
