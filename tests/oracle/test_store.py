"""The oracle store: append-only samples, sealed hour blocks, schema versions and migration, the report journal,
and kill -9 in the middle."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oracle.importers.files import ImportFormatError, read_incidents_csv, read_samples_csv, read_samples_jsonl
from oracle.store import samples as store_samples
from oracle.store.schema import SCHEMA_VERSION, StoreError
from oracle.store.store import Store
from smartsla.encoding import parse_time
from smartsla.measure.samples import Sample, Status

ROOT = Path(__file__).resolve().parents[2]
AGREEMENT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def sample(t, service="api", status=Status.UP, latency=12.5, reason="200"):
    return Sample(t, service, status, latency, reason)


def test_append_is_idempotent_and_ordered(tmp_path):
    with Store(tmp_path / "o.db") as store:
        batch = [sample(30.0), sample(10.0, status=Status.DOWN, latency=None, reason="timeout"),
                 sample(20.5, "db"), sample(10.0)]
        assert store.append(batch) == 4
        assert store.append(batch) == 0
        assert store.append(reversed(batch)) == 0
        # Same instant, different observation: both kept.
        assert store.append([sample(10.0, latency=13.0)]) == 1
        got = list(store.samples())
        assert [s.time for s in got] == sorted(s.time for s in got)
        assert store.services() == ["api", "db"]
        assert [s.time for s in store.samples("api", start=10.0, end=30.0)] == [10.0, 10.0, 10.0]
        assert set(store.samples("db")) == {sample(20.5, "db")}


@settings(max_examples=30, deadline=None)
@given(st.lists(st.builds(Sample, time=st.integers(0, 4 * 10**15).map(lambda us: us / 1e6),
                          service=st.sampled_from(["api", "db", "x-1"]), status=st.sampled_from(list(Status)),
                          latency_ms=st.none() | st.integers(0, 10**9).map(lambda us: us / 1000),
                          reason=st.text(max_size=20)), max_size=30))
def test_round_trip_and_reimport(tmp_path_factory, samples):
    with Store(tmp_path_factory.mktemp("s") / "o.db") as store:
        store.append(samples)
        key = lambda s: (s.time, s.service, s.status, s.latency_ms is not None, s.latency_ms or 0, s.reason)
        assert sorted(store.samples(), key=key) == sorted(set(samples), key=key)
        assert store.append(samples) == 0


def test_wal_mode_schema_version_and_append_only(tmp_path):
    path = tmp_path / "o.db"
    with Store(path) as store:
        store.append([sample(1.0)])
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert int(db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]) == SCHEMA_VERSION
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM samples")
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(StoreError, match=rf"{path}.*newer sla-oracle.*upgrade"):
        Store(path)


def test_bad_paths_are_clear_and_harmless(tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all\n" * 100)
    before = garbage.read_bytes()
    with pytest.raises(StoreError, match=rf"{garbage}: is not an SQLite database.*move it aside"):
        Store(garbage)
    assert garbage.read_bytes() == before
    with pytest.raises(StoreError, match="does not exist; create it"):
        Store(tmp_path / "missing" / "o.db")
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(StoreError, match="not an sla-oracle store"):
        Store(other)
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(StoreError, match="not writable"):
            Store(ro / "o.db")


def test_report_journal_never_changes(tmp_path):
    root_a, root_b = b"\xaa" * 32, b"\xbb" * 32
    with Store(tmp_path / "o.db") as store:
        first = store.intend_report(31337, AGREEMENT, 3, [999_500, 1_000_000], [950_000, 1_000_000], root_a)
        # Different values, and the address spelled in lower case: still the persisted intent.
        again = store.intend_report(31337, AGREEMENT.lower(), 3, [990_000, 1_000_000], [1_000_000] * 2, root_b)
        assert again == first and again.values == (999_500, 1_000_000) and again.evidence_root == root_a
        assert again.coverage == (950_000, 1_000_000)
        assert "990000" in again.differs_from([990_000, 1_000_000], root_b).replace(",", "").replace(" ", "")
        assert again.differs_from([999_500, 1_000_000], root_a) is None
        assert store.pending_reports() == []
        store.record_signature(31337, AGREEMENT, 3, "0xSigner", b"\x01" * 65)
        assert [r.period for r in store.pending_reports()] == [3]
        store.record_submission(31337, AGREEMENT, 3, "0xabc", "sent")
        assert [r.period for r in store.pending_reports()] == [3]
        store.record_submission(31337, AGREEMENT, 3, "0xabc", "settled")
        store.record_submission(31337, AGREEMENT, 3, None, "failed")
        assert store.report(31337, AGREEMENT, 3).status == "settled"
        assert store.pending_reports() == []
        assert store.report(31337, AGREEMENT, 4) is None
        with pytest.raises(StoreError, match="intend_report before signing"):
            store.record_signature(31337, AGREEMENT, 4, "0xSigner", b"\x01" * 65)
        with pytest.raises(ValueError, match="status"):
            store.record_submission(31337, AGREEMENT, 3, None, "done")
        with pytest.raises(sqlite3.DatabaseError, match="never changes"):
            store._db.execute("UPDATE reports SET report_values = '[1]'")
        store.set_state("last_block", 1234)
        assert store.get_state("last_block") == 1234 and store.get_state("nope", 7) == 7


# -- crashes ---------------------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys
    from smartsla.measure.samples import Sample, Status
    from oracle.store.store import Store
    store = Store(sys.argv[1])
    batch = 0
    while True:
        store.append([Sample(batch * 1000 + i + 0.25, "api", Status.UP, 1.5, f"b{batch}") for i in range(50)])
        print(batch, flush=True)
        batch += 1
""")


def _child(code: str, *args) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)


def test_kill_9_during_appends_loses_at_most_the_batch_in_flight(tmp_path):
    path = tmp_path / "o.db"
    for round_ in range(3):
        child = _child(WRITER.replace("batch = 0", f"batch = {round_ * 10_000}"), path)
        committed = -1
        for line in child.stdout:
            committed = int(line)
            if committed >= round_ * 10_000 + 20:
                break
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        with Store(path) as store:
            assert store.integrity_check() == "ok"
            per_batch: dict[str, int] = {}
            for s in store.samples():
                per_batch[s.reason] = per_batch.get(s.reason, 0) + 1
            # Every batch is all or nothing, and everything reported committed is there.
            assert set(per_batch.values()) == {50}
            done = {int(r[1:]) for r in per_batch if int(r[1:]) >= round_ * 10_000}
            assert set(range(round_ * 10_000, committed + 1)) <= done
            assert len(done - set(range(round_ * 10_000, committed + 1))) <= 1


INTENDER = textwrap.dedent("""
    import sys, time
    from oracle.store.store import Store
    store = Store(sys.argv[1])
    for period in range(1000):
        intent = store.intend_report(1, sys.argv[2], period, [int(sys.argv[3]), period], [10**6, 10**6],
                                     bytes([period % 256]) * 32)
        print(period, *intent.values, flush=True)
        time.sleep(0.001)       # "signing"
        store.record_signature(1, sys.argv[2], period, "0xsigner", b"sig")
""")


def test_kill_9_between_intent_and_signature_keeps_the_intent(tmp_path):
    path = tmp_path / "o.db"
    child = _child(INTENDER, path, AGREEMENT, 111)
    seen = {}
    for line in child.stdout:
        period, a, b = map(int, line.split())
        seen[period] = (a, b)
        if period >= 15:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    # A restarted oracle that now computes different values still gets (and signs) the persisted ones.
    child = _child(INTENDER, path, AGREEMENT, 222)
    again = {}
    for line in child.stdout:
        period, a, b = map(int, line.split())
        again[period] = (a, b)
        if period >= 30:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    for period, values in seen.items():
        assert again[period] == values == (111, period)
    assert again[30] == (222, 30)
    with Store(path) as store:
        assert store.integrity_check() == "ok"
        for period, values in seen.items():
            assert store.report(1, AGREEMENT, period).values == values


# -- importers -------------------------------------------------------------------------------------

def test_import_csv_jsonl_and_errors(tmp_path):
    csv_file = tmp_path / "s.csv"
    csv_file.write_text("service,time,status,latency_ms,reason\n"
                        "api,2027-01-01T00:00:00Z,up,12.5,\"200, fine\"\n"
                        "api,1798761660,DOWN,,timeout\n")
    got = read_samples_csv(csv_file)
    assert got == [Sample(1798761600.0, "api", Status.UP, 12.5, "200, fine"),
                   Sample(1798761660.0, "api", Status.DOWN, None, "timeout")]
    headerless = tmp_path / "h.csv"
    headerless.write_text("api,1798761600,up\n")
    assert read_samples_csv(headerless) == [Sample(1798761600.0, "api", Status.UP, None, "")]
    jl = tmp_path / "s.jsonl"
    jl.write_text('{"service": "api", "time": 1798761600, "status": "up", "latency_ms": 12.5, "reason": "200, fine"}\n\n'
                  '{"service": "api", "time": "2027-01-01T00:01:00+00:00", "status": "down", "reason": "timeout"}\n')
    assert read_samples_jsonl(jl) == got
    with Store(tmp_path / "o.db") as store:
        assert store.append(read_samples_csv(csv_file)) == 2
        assert store.append(read_samples_jsonl(jl)) == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("api,1798761600,up\napi,2027-01-01T00:00:00,up\n")
    with pytest.raises(ImportFormatError, match=rf"{bad}:2: .*no time zone"):
        read_samples_csv(bad)
    bad.write_text("api,1798761600,sideways\n")
    with pytest.raises(ImportFormatError, match=rf"{bad}:1: status"):
        read_samples_csv(bad)
    jl.write_text('{"service": "API", "time": 1, "status": "up"}\n')
    with pytest.raises(ImportFormatError, match=rf"{jl}:1: service 'API'"):
        read_samples_jsonl(jl)


def test_incidents_cover_every_slice(tmp_path):
    f = tmp_path / "incidents.csv"
    f.write_text("service,start,end\napi,130,250\napi,200,300\ndb,0,1\n")
    got = read_incidents_csv(f, ["api", "db", "web"], slice_seconds=60, start=0, end=360)
    by = {svc: [(s.time, s.status) for s in got if s.service == svc] for svc in ("api", "db", "web")}
    D, U = Status.DOWN, Status.UP
    # [130, 300) merged: slices 120, 180, 240 down; 0, 60, 300 up.
    assert by["api"] == [(0, U), (60, U), (130, D), (180, D), (240, D), (300, U)]
    assert by["db"] == [(0, D)] + [(t, U) for t in (60, 120, 180, 240, 300)]
    assert by["web"] == [(t, U) for t in range(0, 360, 60)]
    assert [s.time for s in read_incidents_csv(f, slice_seconds=60) if s.service == "api"] == [130, 180, 240]
    f.write_text("api,300,200\n")
    with pytest.raises(ImportFormatError, match=rf"{f}:1: end 200 is not after start 300"):
        read_incidents_csv(f)


# ------------------------------------------------------------------ columns: the daemon's path

def test_columns_are_canonical_and_per_service(tmp_path):
    with Store(tmp_path / "o.db") as store:
        store.append([sample(10.0, status=Status.DOWN, latency=None, reason="timeout"), sample(10.0),
                      sample(5.0, "db", reason="b"), sample(30.0), sample(40.0, "other")])
        cols = store.columns(["db", "api", "missing"], start=1.0, end=35.0)
        assert cols.service_ids == ("db", "api", "missing")
        assert cols.service.tolist() == [0, 1, 1, 1]
        # equal times: up before down, as the period maths and the evidence order them
        assert cols.time_us.tolist() == [5_000_000, 10_000_000, 10_000_000, 30_000_000]
        assert cols.status.tolist() == [0, 0, 1, 0]
        assert cols.latency_us.tolist() == [12_500, 12_500, -1, 12_500]
        assert [cols.reasons[r] for r in cols.reason.tolist()] == ["b", "200", "timeout", "200"]
        assert list(cols.reasons) == sorted(cols.reasons)
        # one start per service
        assert store.columns(["db", "api"], start=[6.0, 10.0]).time_us.tolist() == [10_000_000, 10_000_000,
                                                                                     30_000_000]
        assert len(store.columns(["api"], start=50.0)) == 0
        assert store.last_up_before("api", 30.0) == 10.0
        assert store.last_up_before("api", 30.0, not_before=11.0) is None


def _terms(down_after):
    from smartsla.terms.parse import load_terms

    return load_terms(f"""\
agreement: a
provider: provider
customer: customer
payment: {{token: ETH, fee: "1"}}
periods: {{start: 0, length: 10m, count: 3}}
services: [{{id: api, target: '99%'}}, {{id: db, target: '99%'}}]
compensation: {{schedule: [{{below: "99%", credit: "10%"}}]}}
oracles: {{members: [o1], quorum: 1, deadline: 1d, fallback: no-credit}}
measurement: {{slice: 1m, down_after: {down_after}, gaps: exclude}}
""")


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(["api", "db"]), st.integers(0, 1800 * 1000).map(lambda ms: ms / 1000),
                               st.sampled_from(list(Status)), st.none() | st.integers(0, 10**6).map(lambda us: us / 1000),
                               st.sampled_from(["", "200 in 3 ms", "timeout", "é,%"])), max_size=80),
       down_after=st.integers(1, 3), index=st.integers(0, 2))
def test_store_columns_give_the_values_and_root_of_the_object_path(tmp_path_factory, rows, down_after, index):
    """What the daemon does (store -> columns -> compute_periods -> evidence root, with the previous period read
    only from each service's last up sample) equals the object path (Sample objects of both periods ->
    compute_periods; the period's Sample objects -> build_bundle)."""
    from smartsla.evidence.bundle import build_bundle, build_bundle_columns, evidence_root, verify_bundle
    from smartsla.measure.periods import compute_periods

    terms = _terms(down_after)
    samples = [Sample(t, s, status, lat, r) for s, t, status, lat, r in rows]
    start, end, previous = index * 600, (index + 1) * 600, max(0, index - 1) * 600
    base = tmp_path_factory.mktemp("c")
    with Store(base / "o.db") as store:
        store.append(samples)
        stored = list(store.samples())          # the store keeps microseconds: compare with what it holds
        starts = [store.last_up_before(sid, start, previous) if start > previous else None for sid in ("api", "db")]
        context = store.columns(["api", "db"], [previous if t is None else t for t in starts], end)
    objects = [s for s in stored if previous <= s.time < end]
    expected = compute_periods(terms, objects, start=0)[index]
    got = compute_periods(terms, context.sample_columns(), start=0)[index]
    assert got == expected
    values = {sid: c.ppm for sid, c in got.services.items()}
    period = [s for s in stored if start <= s.time < end]
    root = build_bundle(base / "objects", AGREEMENT, 1, index, start, end, period, values)
    columns = context.between(start, end)
    assert evidence_root(AGREEMENT, 1, index, start, end, columns, values) == root
    assert build_bundle_columns(base / "columns", AGREEMENT, 1, index, start, end, columns, values) == root
    assert verify_bundle(base / "columns", root).ok


# ------------------------------------------------------------------ sealed hour blocks (schema 2)

HOUR = 3600
BASE = 1_798_761_600          # 2027-01-01T00:00:00Z, on the hour
FIELDS = ("service", "time_us", "status", "latency_us", "reason")


def assert_same_columns(a, b):
    assert a.service_ids == b.service_ids
    for f in FIELDS:
        assert getattr(a, f).tolist() == getattr(b, f).tolist(), f
    assert a.reasons == b.reasons


def blocks_equal_rows(store, services, starts=None, end=None):
    got = store.columns(services, starts, end)
    assert_same_columns(got, store.columns_from_rows(services, starts, end))
    return got


sealed_samples = st.builds(
    Sample,
    # ~6 hours around BASE, on microseconds, some exactly on an hour; a few before 1970.
    time=st.one_of(st.integers(-2 * HOUR * 10**6, 6 * HOUR * 10**6).map(lambda us: BASE + us / 1e6),
                   st.integers(-2, 6).map(lambda h: float(BASE + h * HOUR)),
                   st.integers(-10**7, 10**7).map(lambda us: us / 1e6)),
    service=st.sampled_from(["api", "db", "x"]), status=st.sampled_from(list(Status)),
    latency_ms=st.none() | st.sampled_from([0.0, 1.5, 12.0, 12.001]),
    reason=st.sampled_from(["", "200 in 3 ms", "timeout", "é,%", "Z", "a\nb"]))
steps = st.lists(st.one_of(
    st.tuples(st.just("append"), st.lists(sealed_samples, max_size=25)),
    st.tuples(st.just("seal"), st.integers(-3, 7).map(lambda h: BASE + h * HOUR) | st.floats(-10, 7 * HOUR).map(
        lambda s: BASE + s), st.sampled_from([1, 3, 7, 200_000]))), max_size=8)
bounds = st.none() | st.integers(-3 * HOUR, 7 * HOUR).map(lambda s: BASE + s) | st.integers(-20, 20).map(float)


@settings(max_examples=60, deadline=None)
@given(steps=steps, data=st.data())
def test_columns_from_blocks_and_rows_equal_columns_from_rows(tmp_path_factory, steps, data):
    """Random appends (some late, for hours already sealed), random seals (any cut-off, tiny transactions),
    random reads: blocks + rows always give exactly the columns of the rows alone."""
    with Store(tmp_path_factory.mktemp("b") / "o.db") as store:
        for step in steps:
            if step[0] == "append":
                store.append(step[1])
            else:
                store.seal_hours(step[1], max_rows=step[2])
            services = data.draw(st.lists(st.sampled_from(["api", "db", "x", "missing"]), max_size=4, unique=True))
            starts = data.draw(bounds | st.lists(bounds, min_size=len(services), max_size=len(services)))
            end = data.draw(bounds)
            got = blocks_equal_rows(store, services, starts, end)
            # The other way to the unsealed rows (per service along the index, for a big backlog): the same.
            with mock.patch.object(store_samples, "ROWID_SCAN_ROWS", 0):
                assert_same_columns(store.columns(services, starts, end), got)
        # Everything sealed: each sample is in exactly one place.
        store.seal_hours(BASE + 10 * HOUR)
        everything = blocks_equal_rows(store, ["api", "db", "x"])
        assert len(everything) == store.count()
        before_1970 = store._db.execute("SELECT count(*) FROM samples WHERE time_us < 0").fetchone()[0]
        assert store.seal_info()["sealed_samples"] == store.count() - before_1970


def test_late_samples_are_read_once_then_sealed_into_a_further_block(tmp_path):
    """The rule: a block is never rewritten. A sample that arrives for an hour already sealed is read from its
    row (its id is above the block's through_id) and merged in canonical order; the next seal packs it into a
    further block of that hour (seq 1), which covers only ids above the first block's."""
    with Store(tmp_path / "o.db") as store:
        store.append([sample(BASE + 30 * i, reason=f"200 in {i} ms") for i in range(240)])   # hours 0 and 1
        assert store.seal_hours(BASE + 2 * HOUR + 59) == 2
        assert store.seal_hours(BASE + 2 * HOUR + 59) == 0                                  # idempotent
        assert store.seal_info() == {"blocks": 2, "sealed_samples": 240, "frontier": 240}
        late = [sample(BASE + 15, status=Status.DOWN, latency=None, reason="timeout"),     # inside hour 0
                sample(BASE + 30, latency=None, reason="late, same instant")]
        assert store.append(late) == 2
        assert store.append(late) == 0            # a re-import changes nothing
        got = blocks_equal_rows(store, ["api"])
        assert len(got) == 242
        assert got.time_us[:4].tolist() == [BASE * 10**6, (BASE + 15) * 10**6, (BASE + 30) * 10**6,
                                            (BASE + 30) * 10**6]
        assert [got.reasons[r] for r in got.reason[2:4]] == ["200 in 1 ms", "late, same instant"]
        assert store.seal_hours(BASE + 2 * HOUR) == 1
        assert store._db.execute("SELECT hour, seq, n, through_id FROM sample_blocks ORDER BY hour, seq").fetchall() \
            == [(BASE // HOUR, 0, 120, 240), (BASE // HOUR, 1, 2, 242), (BASE // HOUR + 1, 0, 120, 240)]
        assert_same_columns(blocks_equal_rows(store, ["api"]), got)
        # The hour in progress stays in rows (and pins the frontier below it) until it is complete.
        store.append([sample(BASE + 2 * HOUR + 10)])
        assert store.seal_hours(BASE + 2 * HOUR + 3599) == 0
        assert store.seal_info()["frontier"] == 242
        assert len(blocks_equal_rows(store, ["api"])) == 243
        assert store.seal_hours(BASE + 3 * HOUR) == 1
        assert store.seal_info() == {"blocks": 4, "sealed_samples": 243, "frontier": 243}


def test_sealed_blocks_and_the_frontier_are_append_only(tmp_path):
    path = tmp_path / "o.db"
    with Store(path) as store:
        store.append([sample(BASE + i) for i in range(10)])
        store.seal_hours(BASE + HOUR)
    db = sqlite3.connect(path)
    for sql in ("UPDATE sample_blocks SET n = n", "UPDATE sample_blocks SET records = zeroblob(170)",
                "DELETE FROM sample_blocks", "UPDATE reasons SET text = 'other'", "DELETE FROM reasons"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(sql)
    with pytest.raises(sqlite3.DatabaseError, match="only moves forward"):
        db.execute("UPDATE seal_state SET frontier = 0")
    with pytest.raises(sqlite3.DatabaseError, match="never deleted"):
        db.execute("DELETE FROM seal_state")
    with pytest.raises(sqlite3.IntegrityError):     # a block's records are 17 bytes each
        db.execute("INSERT INTO sample_blocks VALUES ('api', 1, 0, 1, 2, zeroblob(33))")
    db.close()


SEALER = textwrap.dedent("""
    import os, signal, sys
    from oracle.store.store import Store
    store = Store(sys.argv[1])
    real, calls = Store._seal_group, [0]
    def seal_group(self, *args):
        written = real(self, *args)
        calls[0] += 1
        if calls[0] == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)        # inside a seal transaction, blocks written, no commit
        return written
    Store._seal_group = seal_group
    store.seal_hours(float(sys.argv[3]), max_rows=int(sys.argv[4]))
""")


@pytest.mark.parametrize("kill_at, max_rows, committed", [(1, 100_000, 0), (5, 100_000, 0), (14, 250, 6)])
def test_kill_9_inside_a_seal_keeps_the_store_readable(tmp_path, kill_at, max_rows, committed):
    """A seal is one transaction per window of rows: killed inside one, the store opens, reads exactly what
    the rows hold (blocks of committed windows + rows), and the next seal completes the job."""
    path = tmp_path / "o.db"
    services = ["api", "db", "web"]
    with Store(path) as store:
        # 6 hours x 3 services, appended in time order as the daemon does (120 a service-hour).
        store.append([sample(BASE + 30 * i + k, svc, reason=f"{svc} {i % 5}")
                      for i in range(6 * 120) for k, svc in enumerate(services)])
        expected = store.columns_from_rows(services)
    child = _child(SEALER, path, kill_at, BASE + 6 * HOUR, max_rows)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    with Store(path) as store:
        assert store.integrity_check() == "ok"
        info = store.seal_info()
        # One window of 100,000 rows: nothing committed. Windows of 250 rows (a block takes all its hour's rows
        # up to the newest id): hour 0 in the first, hour 1 in the second, killed in the third.
        assert info["blocks"] == committed
        assert_same_columns(store.columns(services), expected)
        assert store.seal_hours(BASE + 6 * HOUR) == 18 - info["blocks"]
        assert store.seal_info() == {"blocks": 18, "sealed_samples": 6 * 120 * 3, "frontier": 6 * 120 * 3}
        assert_same_columns(store.columns(services), expected)


def test_migration_from_schema_1(tmp_path):
    """A store written by the schema-1 code (tests/oracle/data/oracle-store-v1.db, made by the oracle before blocks
    existed) opens, is migrated in place, keeps its samples, journal and state, and seals and reads."""
    path = tmp_path / "o.db"
    path.write_bytes((ROOT / "tests" / "oracle" / "data" / "oracle-store-v1.db").read_bytes())
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
    raw.close()
    api, db = f"{AGREEMENT.lower()}:api", f"{AGREEMENT.lower()}:db"
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 4
        assert store.integrity_check() == "ok"
        assert store.count() == 721
        old = store.report(31337, AGREEMENT, 0)
        assert old.values == (999_500, 1_000_000) and old.coverage is None  # persisted before reports had coverage
        assert store.get_state("last_block") == 1234
        assert store.seal_info() == {"blocks": 0, "sealed_samples": 0, "frontier": 0}
        before = blocks_equal_rows(store, [api, db])
        assert store.seal_hours(BASE + 3 * HOUR) == 6
        assert_same_columns(blocks_equal_rows(store, [api, db]), before)
        assert len(before) == 721 and before.time_us[0] == -5_500_000     # the 1969 sample: never sealed, still read
        store.append([sample(BASE + 3 * HOUR, api)])
    with Store(path) as store:
        assert store.schema_version == 4 and store.count() == 722
        assert len(blocks_equal_rows(store, [api, db], BASE, BASE + 4 * HOUR)) == 721


def test_read_only_store_never_changes_the_file(tmp_path):
    """`sla-oracle status` looks at a running daemon's store: it must not migrate, create or write it."""
    old = tmp_path / "old.db"
    shutil.copy(Path(__file__).parent / "data" / "oracle-store-v1.db", old)
    before = old.read_bytes()
    with Store(old, read_only=True) as store:
        assert store.services()
    assert old.read_bytes() == before
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "missing.db", read_only=True)
    assert not (tmp_path / "missing.db").exists()


def test_import_command_seals_the_complete_hours_it_brings(tmp_path):
    """History imported in bulk is read from hour blocks at once, not row by row until the daemon's next seal."""
    import sqlite3

    from oracle.cli import main as oracle_main

    csv_file = tmp_path / "old.csv"
    csv_file.write_text("".join(f"api,{1767225600 + 30 * i},up\n" for i in range(240)))  # two hours of 2026-01-01
    db = tmp_path / "o.db"
    assert oracle_main(["import", "--db", str(db), "--agreement", AGREEMENT, str(csv_file)]) == 0
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*), sum(n) FROM sample_blocks").fetchone() == (2, 240)
    with Store(db) as store:
        cols = store.columns(store.services(), 1767225600, 1767225600 + 7200)
        assert len(cols.time_us) == 240


AGREEMENT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def test_imported_samples_are_where_the_daemon_reads_them(tmp_path, capsys):
    """An imported service is measured from its imports: the rows land under the key the daemon reads for that
    agreement's service, however the operator spells the address."""
    from oracle.cli import main as oracle_main
    from oracle.store.samples import sample_key

    csv_file = tmp_path / "api.csv"
    csv_file.write_text("".join(f"api,{1767225600 + 30 * i},{'down' if i < 4 else 'up'}\n" for i in range(6)))
    db = tmp_path / "o.db"
    assert oracle_main(["import", "--db", str(db), "--agreement", AGREEMENT.lower(), str(csv_file)]) == 0
    with Store(db) as store:
        assert store.services() == [sample_key(AGREEMENT, "api")] == [f"{AGREEMENT}:api"]
        cols = store.columns([sample_key(AGREEMENT, "api")], 1767225600, 1767225600 + 3600)
        assert list(cols.status) == [1, 1, 1, 1, 0, 0]


def test_an_import_names_its_agreement(tmp_path, capsys):
    """Without --agreement the samples would sit under a key no daemon reads: refused, nothing written."""
    from oracle.cli import main as oracle_main

    csv_file = tmp_path / "api.csv"
    csv_file.write_text("api,1767225600,up\n")
    db = tmp_path / "o.db"
    assert oracle_main(["import", "--db", str(db), str(csv_file)]) == 2
    assert "--agreement" in capsys.readouterr().err
    assert not db.exists()
    assert oracle_main(["import", "--db", str(db), "--agreement", "acme", str(csv_file)]) == 2
    assert "0x address" in capsys.readouterr().err


def test_millisecond_times_are_refused_and_future_rows_named(tmp_path, capsys):
    """A monitor's export in milliseconds once imported as the year 58,970; rows ahead of this machine's clock
    are kept (a clock may be behind) but said."""
    import time as _time

    from oracle.cli import main as oracle_main

    ms = tmp_path / "ms.csv"
    ms.write_text("api,1767225600000,up\n")
    assert oracle_main(["import", "--db", str(tmp_path / "a.db"), "--agreement", AGREEMENT, str(ms)]) == 2
    err = capsys.readouterr().err
    assert "milliseconds" in err and "ms.csv:1" in err
    ahead = tmp_path / "ahead.csv"
    future = int(_time.time()) + 7 * 86_400
    ahead.write_text(f"api,{future},up\napi,{future - 30 * 86_400},up\n")
    assert oracle_main(["import", "--db", str(tmp_path / "b.db"), "--agreement", AGREEMENT, str(ahead)]) == 0
    captured = capsys.readouterr()
    assert "2 samples, 2 new" in captured.out
    assert "1 sample(s) are ahead of this machine's clock" in captured.err



def test_jsonl_times_keep_their_digits_so_sub_microsecond_times_are_refused(tmp_path):
    """json.loads would round 1798761659.99999999 to 1798761660.0, onto the next slice's edge, unseen."""
    path = tmp_path / "s.jsonl"
    path.write_text('{"service": "api", "time": 1798761659.999999, "status": "up", "latency_ms": 12.5}\n'
                    '{"service": "api", "time": 1798761659.99999999, "status": "down"}\n')
    with pytest.raises(ImportFormatError, match=r"s.jsonl:2: .*finer than a microsecond"):
        read_samples_jsonl(path)
    path.write_text('{"service": "api", "time": 1798761659.999999, "status": "up", "latency_ms": 12.5}\n')
    [sample] = read_samples_jsonl(path)
    assert sample.latency_ms == 12.5 and round(sample.time * 1_000_000) == 1798761659_999999


def test_only_sample_times_must_be_whole_microseconds():
    """A range bound such as `import --from` may carry a float's 7 decimals (str(time.time())); refusing it once
    failed a Prometheus import. Only a sample's own time is placed in a slice, so only it must be exact."""
    assert parse_time("1796133625.2659729") == pytest.approx(1796133625.2659729)
    with pytest.raises(ValueError, match="finer than a microsecond"):
        parse_time("1796133625.2659729", exact_us=True)
