"""The oracle's on-disk state: measured samples, the signed-report journal and a little daemon state.

One SQLite file in WAL mode. Samples are append-only: there is no API to change or delete one, and
triggers refuse it from outside the API too, because evidence already published for a period must stay
reproducible. The report journal is what makes "a period once signed is never signed with other values"
survive crashes: the values are persisted (and fsynced) *before* anything is signed, and a later call
for the same (chain id, agreement, period) gets the persisted values back, never the new ones.

Durability: ``synchronous=FULL``. With WAL, NORMAL only loses commits on power loss or an OS crash,
not on a process crash; but the journal's promise has to hold across a power cut between "intent
persisted" and "signature broadcast" too, otherwise a restarted oracle could sign a second, different
report for the same period. FULL costs one fsync per transaction, and appends are batched, so it is cheap.

Reading a month fast (schema 2): the rows stay the record, and :meth:`Store.seal_hours` adds a compact copy
of every complete hour, one block per (service, hour) of packed 17-byte records, written in one transaction
and never rewritten (triggers again). :meth:`Store.columns` reads the blocks (about 72,000 blobs for 100
services x 30 days) and only the rows no block holds, so a month comes back in about a second instead of
~17 s through a Python tuple per row. Which rows those are is decided by ids, never by time, so a sample that
arrives late for a sealed hour (an import, a slow probe, clock skew) is neither lost nor counted twice:

* a block records ``through_id``: it holds every row of its (service, hour) with ``id <= through_id`` that no
  earlier block of that hour holds; a later seal packs rows that arrived since into a further block of the
  same hour (``seq`` 1, 2, ...);
* the seal frontier: every row with ``id <= frontier`` and a time from 1970 on is in a block. Rows are never
  deleted, so ids only grow, and new rows are always above the frontier. ``columns`` reads the rows above
  it and drops those a block of their hour already holds (``id <= through_id``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time as _time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np

from smartsla.constants import HOUR_US, NO_LATENCY
from smartsla.encoding import address_key, seconds_to_us
from smartsla.evidence.columns import EvidenceColumns
from smartsla.measure.periods import is_ordered
from smartsla.measure.samples import UNKNOWN, Sample, Status, status_sql

SUBMISSION_STATUSES = ("sent", "settled", "already-settled", "failed")
FINAL_STATUSES = ("settled", "already-settled")

# Each entry upgrades the schema by one version and runs in one transaction with the version bump.
# Append new steps; never edit a released one (databases in the field already ran it).
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE samples (
            id INTEGER PRIMARY KEY,
            service TEXT NOT NULL,
            time_us INTEGER NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('up', 'down', 'unknown')),
            latency_us INTEGER CHECK (latency_us IS NULL OR latency_us >= 0),
            reason TEXT NOT NULL DEFAULT ''
        )""",
        # The whole sample is its identity, so re-importing it is a no-op while two different
        # observations at the same instant (say two probe locations) are both kept. ifnull() because a
        # UNIQUE index treats NULLs as distinct, which would let a latency-less sample in twice.
        # Its (service, time_us) prefix is the index the per-service time-range queries use.
        """CREATE UNIQUE INDEX samples_identity
            ON samples (service, time_us, status, ifnull(latency_us, -1), reason)""",
        "CREATE INDEX samples_time ON samples (time_us)",
        """CREATE TRIGGER samples_no_update BEFORE UPDATE ON samples
            BEGIN SELECT RAISE(ABORT, 'samples are append-only'); END""",
        """CREATE TRIGGER samples_no_delete BEFORE DELETE ON samples
            BEGIN SELECT RAISE(ABORT, 'samples are append-only'); END""",
        """CREATE TABLE reports (
            chain_id INTEGER NOT NULL,
            agreement TEXT NOT NULL,
            period INTEGER NOT NULL,
            report_values TEXT NOT NULL,
            evidence_root BLOB NOT NULL CHECK (length(evidence_root) = 32),
            intended_at REAL NOT NULL,
            tx_hash TEXT,
            status TEXT CHECK (status IS NULL OR status IN ('sent', 'settled', 'already-settled', 'failed')),
            updated_at REAL,
            PRIMARY KEY (chain_id, agreement, period)
        )""",
        """CREATE TRIGGER reports_values_fixed BEFORE UPDATE OF report_values, evidence_root ON reports
            WHEN NEW.report_values IS NOT OLD.report_values OR NEW.evidence_root IS NOT OLD.evidence_root
            BEGIN SELECT RAISE(ABORT, 'a report intent never changes once persisted'); END""",
        """CREATE TRIGGER reports_no_delete BEFORE DELETE ON reports
            BEGIN SELECT RAISE(ABORT, 'report intents are never deleted'); END""",
        """CREATE TABLE signatures (
            chain_id INTEGER NOT NULL,
            agreement TEXT NOT NULL,
            period INTEGER NOT NULL,
            signer TEXT NOT NULL,
            signature BLOB NOT NULL,
            signed_at REAL NOT NULL,
            PRIMARY KEY (chain_id, agreement, period, signer),
            FOREIGN KEY (chain_id, agreement, period) REFERENCES reports (chain_id, agreement, period)
        )""",
        # A log rather than a column: a submission may be retried, and a relayer may submit periods it
        # never intended itself.
        """CREATE TABLE submissions (
            id INTEGER PRIMARY KEY,
            chain_id INTEGER NOT NULL,
            agreement TEXT NOT NULL,
            period INTEGER NOT NULL,
            tx_hash TEXT,
            status TEXT NOT NULL,
            at REAL NOT NULL
        )""",
        "CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ],
    # 2: sealed hour blocks, so that a month is read as ~72,000 blobs instead of 8.64 million rows.
    [
        # Reason texts by number, for the blocks' records. Append-only: a block refers to them forever.
        "CREATE TABLE reasons (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE)",
        """CREATE TRIGGER reasons_no_update BEFORE UPDATE ON reasons
            BEGIN SELECT RAISE(ABORT, 'reasons are append-only'); END""",
        """CREATE TRIGGER reasons_no_delete BEFORE DELETE ON reasons
            BEGIN SELECT RAISE(ABORT, 'reasons are append-only'); END""",
        # One block: the rows of (service, hour) with id <= through_id that no earlier block of that
        # (service, hour) holds, as n packed records (BLOCK_RECORD), in canonical order. seq 0 is the hour's
        # first seal; a later seq holds rows that arrived for it after that (imports, late probes).
        """CREATE TABLE sample_blocks (
            service TEXT NOT NULL,
            hour INTEGER NOT NULL CHECK (hour >= 0),
            seq INTEGER NOT NULL CHECK (seq >= 0),
            through_id INTEGER NOT NULL,
            n INTEGER NOT NULL CHECK (n > 0),
            records BLOB NOT NULL CHECK (length(records) = 17 * n),
            PRIMARY KEY (service, hour, seq)
        )""",
        """CREATE TRIGGER sample_blocks_no_update BEFORE UPDATE ON sample_blocks
            BEGIN SELECT RAISE(ABORT, 'sealed blocks are append-only'); END""",
        """CREATE TRIGGER sample_blocks_no_delete BEFORE DELETE ON sample_blocks
            BEGIN SELECT RAISE(ABORT, 'sealed blocks are append-only'); END""",
        # Every sample with id <= frontier and time >= 0 is in a block. It only moves forward.
        "CREATE TABLE seal_state (one INTEGER PRIMARY KEY CHECK (one = 1), frontier INTEGER NOT NULL)",
        "INSERT INTO seal_state VALUES (1, 0)",
        """CREATE TRIGGER seal_state_forward BEFORE UPDATE ON seal_state
            WHEN NEW.frontier < OLD.frontier OR NEW.one IS NOT OLD.one
            BEGIN SELECT RAISE(ABORT, 'the seal frontier only moves forward'); END""",
        """CREATE TRIGGER seal_state_no_delete BEFORE DELETE ON seal_state
            BEGIN SELECT RAISE(ABORT, 'the seal frontier is never deleted'); END""",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
APPLICATION = "smart-sla oracle store"

# A sealed block's sample: microseconds into its hour, status code (0 up, 1 down, 2 unknown), latency in
# microseconds (-1: none), number in the reasons table. Little-endian, packed: 17 bytes.
BLOCK_RECORD = np.dtype([("dt", "<u4"), ("status", "u1"), ("latency", "<i8"), ("reason", "<u4")])
assert BLOCK_RECORD.itemsize == 17
# Above this many rows past the seal frontier, :meth:`Store.columns` reads the unsealed rows per service along
# the (service, time) index instead of walking up the ids.
ROWID_SCAN_ROWS = 1_000_000
_MIN_US, _MAX_US = -2 ** 63, 2 ** 63 - 1
# The schema's CHECK admits only the table's names on write; a read maps anything else to unknown.
_STATUS_SQL = status_sql(otherwise=UNKNOWN)
# The evidence's canonical order within one service (reasons compare as UTF-8 bytes, as SQLite's BINARY does).
_CANONICAL_SQL = f"time_us, {_STATUS_SQL}, latency_us IS NULL, latency_us, reason"



class StoreError(Exception):
    """The store cannot be opened or used; the message names the file and what to do."""


@dataclass(frozen=True)
class ReportIntent:
    chain_id: int
    agreement: str
    period: int
    values: tuple[int, ...]
    evidence_root: bytes
    intended_at: float
    signatures: dict[str, bytes] = field(default_factory=dict)   # signer -> signature
    tx_hash: str | None = None
    status: str | None = None      # latest submission status, None if never submitted

    def differs_from(self, values: Iterable[int], evidence_root: bytes) -> str | None:
        """Why a freshly computed (values, root) is not what was persisted, or None if it is the same."""
        values = tuple(values)
        problems = []
        if values != self.values:
            problems.append(f"values {list(values)} but {list(self.values)} were persisted")
        if bytes(evidence_root) != self.evidence_root:
            problems.append(f"evidence root 0x{bytes(evidence_root).hex()} but 0x{self.evidence_root.hex()} was persisted")
        return "; ".join(problems) or None


def _ranks(texts: list[str]) -> np.ndarray:
    """rank[i] = position of texts[i] among the texts sorted by their UTF-8 bytes (the evidence's reason order)."""
    rank = np.zeros(len(texts), np.int64)
    rank[sorted(range(len(texts)), key=lambda i: texts[i].encode("utf-8"))] = np.arange(len(texts))
    return rank


# An hour is sealed (packed into blocks for fast period reads, see Store.seal_hours) this long after it ends, so
# that the samples of probes still running at the hour's end are in first. Later ones are not lost either.
SEAL_GRACE = 120


def sealable_hour(now: float) -> int:
    """The unix hour (seconds // 3600) up to which every hour is complete at ``now``, grace included."""
    return int((now - SEAL_GRACE) // 3600)


class Store:
    """``with Store("oracle.db") as store: store.append(samples)``."""

    def __init__(self, path: str | os.PathLike, read_only: bool = False):
        """``read_only`` (``sla-oracle status``, people looking): never create, migrate or write the file, so that
        looking at a running daemon's store with another version of the tool cannot change it under the daemon."""
        self.path = Path(path)
        self.read_only = read_only
        self._reason_ids: dict[str, int] = {}     # committed rows of the reasons table, as far as seen
        self._reason_texts: dict[int, str] = {}
        self._db = self._connect()
        try:
            self._setup()
        except BaseException:
            self._db.close()
            raise

    # -- opening -------------------------------------------------------------------------------

    def _fail(self, problem: str, fix: str) -> StoreError:
        return StoreError(f"{self.path}: {problem}; {fix}")

    def _connect(self) -> sqlite3.Connection:
        path = self.path
        if path.is_dir():
            return self._raise("is a directory", "give the path of a database file inside it, e.g. "
                                                   f"{path / 'oracle.db'}")
        if self.read_only:
            if not path.is_file():
                self._raise("does not exist", "check the path (`store` in the configuration)")
            try:
                return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=10.0)
            except sqlite3.Error as exc:
                self._raise(f"cannot be opened for reading ({exc})", "check the path and its permissions")
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            self._raise(f"directory {parent} does not exist", f"create it (mkdir -p {parent}) or choose another path")
        if path.exists() and not os.access(path, os.R_OK | os.W_OK):
            self._raise("is not readable and writable by this user", "fix its permissions or choose another path")
        if not path.exists() and not os.access(parent, os.W_OK | os.X_OK):
            self._raise(f"directory {parent} is not writable", "choose a writable directory or fix its permissions")
        try:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE) so a batch is exactly one.
            db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        except sqlite3.Error as exc:
            self._raise(f"cannot be opened ({exc})", "check the path and its permissions")
        return db

    def _raise(self, problem: str, fix: str):
        raise self._fail(problem, fix)

    def _setup(self) -> None:
        db = self._db
        try:
            # Read before writing anything: on a file that is not a database this fails and leaves it untouched.
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            self._raise(f"is not an SQLite database or is corrupted ({exc})",
                        "move it aside and start a new store, or restore it from a backup")
        if tables and "meta" not in tables:
            self._raise(f"is an SQLite database but not an sla-oracle store (tables: {', '.join(sorted(tables))})",
                        "choose another path")
        version = 0
        if "meta" in tables:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            app = db.execute("SELECT value FROM meta WHERE key = 'application'").fetchone()
            if row is None or app is None or app[0] != APPLICATION:
                self._raise("has a meta table but is not an sla-oracle store", "choose another path")
            version = int(row[0])
            if version > SCHEMA_VERSION:
                self._raise(f"was written by a newer sla-oracle (schema version {version}; this one knows up to "
                            f"{SCHEMA_VERSION})", "upgrade sla-oracle; do not open it with this version")
        if self.read_only:
            if version == 0:
                self._raise("is an empty store", "it fills once the daemon has run")
            return
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.OperationalError as exc:
            self._raise(f"cannot be written ({exc})", "check that the file and its directory are writable")
        if mode.lower() != "wal":
            self._raise(f"cannot use WAL mode (got {mode!r})", "put the store on a local file system")
        for step in range(version, SCHEMA_VERSION):
            self._migrate(step)

    def _migrate(self, step: int) -> None:
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            if step == 0:
                db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                db.execute("INSERT OR REPLACE INTO meta VALUES ('application', ?)", (APPLICATION,))
            # Another process may have migrated while we waited for the lock.
            current = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if current is not None and int(current[0]) > step:
                db.execute("COMMIT")
                return
            for sql in MIGRATIONS[step]:
                db.execute(sql)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(step + 1),))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._raise(f"schema migration to version {step + 1} failed ({exc})",
                        "nothing was changed; check that the file is writable and report this")

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None  # type: ignore[assignment]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])

    def integrity_check(self) -> str:
        """``"ok"`` or SQLite's list of problems."""
        return "\n".join(r[0] for r in self._db.execute("PRAGMA integrity_check"))

    def _write(self, fn, *args):
        """Run ``fn`` in one write transaction; roll back on any error so nothing is half-written."""
        db = self._db
        if db is None:
            raise StoreError(f"{self.path}: store is closed")
        try:
            db.execute("BEGIN IMMEDIATE")
            result = fn(db, *args)
            db.execute("COMMIT")
            return result
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{self.path}: write failed ({exc}); nothing from this call was stored") from exc
            raise

    # -- samples -------------------------------------------------------------------------------

    def append(self, samples: Iterable[Sample]) -> int:
        """Store a batch in one transaction; returns how many were new (already stored ones are skipped).

        Times and latencies are kept to the microsecond; that is the oracle's resolution everywhere.
        """
        rows = [self._row(s) for s in samples]

        def insert(db):
            before = db.total_changes
            db.executemany("INSERT OR IGNORE INTO samples (service, time_us, status, latency_us, reason) "
                           "VALUES (?, ?, ?, ?, ?)", rows)
            return db.total_changes - before

        return self._write(insert) if rows else 0

    @staticmethod
    def _row(s: Sample) -> tuple:
        if not isinstance(s, Sample):
            raise TypeError(f"expected a Sample, got {type(s).__name__}")
        latency = None if s.latency_ms is None else seconds_to_us(s.latency_ms / 1000)
        if latency is not None and latency < 0:
            raise ValueError(f"negative latency in {s}")
        return (s.service, seconds_to_us(s.time), Status(s.status).value, latency, s.reason or "")

    def samples(self, service: str | None = None, start: float | None = None,
                end: float | None = None) -> Iterator[Sample]:
        """Samples with ``start <= time < end``, ordered by time (then status, latency, reason, service)."""
        where, params = [], []
        if service is not None:
            where.append("service = ?")
            params.append(service)
        if start is not None:
            where.append("time_us >= ?")
            params.append(seconds_to_us(start))
        if end is not None:
            where.append("time_us < ?")
            params.append(seconds_to_us(end))
        sql = "SELECT service, time_us, status, latency_us, reason FROM samples"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY time_us, status, ifnull(latency_us, -1), reason, service"
        # fetchall: a generator holding an open cursor would keep a read transaction (and the WAL) pinned.
        for service_, t, status, latency, reason in self._db.execute(sql, params).fetchall():
            yield Sample(time=t / 1_000_000, service=service_, status=Status(status),
                         latency_ms=None if latency is None else latency / 1000, reason=reason)

    # -- sealed hours: the fast read path ------------------------------------------------------

    def seal_hours(self, before: float, max_rows: int = 200_000) -> int:
        """Pack every complete hour (one that ends at or before ``before``, unix seconds) into blocks, one
        per (service, hour); returns how many blocks were written. Idempotent: call it as often as you like.

        The rows stay as they are; a block is a second, compact copy of them that :meth:`columns` reads
        instead. Each transaction handles at most ``max_rows`` new rows (so a first seal of a big store does
        not hold the write lock for long) and is complete on its own: an interrupted seal leaves the blocks
        of the transactions that committed, and the next call carries on. A block is never rewritten;
        samples that arrive for an hour after it was sealed are read from their rows until the next seal
        packs them into a further block of that hour (``seq`` 1, 2, ...). Times before 1970 are never sealed.
        """
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        cutoff = seconds_to_us(before) // HOUR_US * HOUR_US
        if cutoff <= 0:
            return 0
        lo: int | None = None
        pinned: int | None = None       # first row seen that is too new to seal: the frontier stays below it
        written = 0
        while True:
            pending: dict[str, int] = {}

            def step(db, pending: dict[str, int]) -> int | None:
                nonlocal lo, pinned
                frontier = db.execute("SELECT frontier FROM seal_state").fetchone()[0]
                lo = frontier if lo is None else max(lo, frontier)
                top = db.execute("SELECT max(id) FROM samples").fetchone()[0] or 0
                hi = min(top, lo + max_rows)
                if hi <= lo:
                    return None
                window = (lo, hi)
                groups = db.execute("SELECT service, time_us / ? AS hour FROM samples NOT INDEXED WHERE id > ? AND "
                                    "id <= ? AND time_us >= 0 AND time_us < ? GROUP BY service, hour "
                                    "ORDER BY hour, service", (HOUR_US, *window, cutoff)).fetchall()
                first_open = db.execute("SELECT min(id) FROM samples NOT INDEXED WHERE id > ? AND id <= ? "
                                        "AND time_us >= ?", (*window, cutoff)).fetchone()[0]
                n = sum(self._seal_group(db, service, hour, top, pending) for service, hour in groups)
                if pinned is None and first_open is not None:
                    pinned = first_open
                db.execute("UPDATE seal_state SET frontier = max(frontier, ?)", (hi if pinned is None else pinned - 1,))
                lo = hi
                return n

            n = self._write(step, pending)
            self._reason_ids.update(pending)    # committed now
            if n is None:
                return written
            written += n

    def _seal_group(self, db: sqlite3.Connection, service: str, hour: int, top: int, pending: dict[str, int]) -> int:
        """Write the block of ``service``'s rows in ``hour`` with id <= ``top`` that no block holds yet."""
        seq, after = db.execute("SELECT ifnull(max(seq) + 1, 0), ifnull(max(through_id), 0) FROM sample_blocks "
                                "WHERE service = ? AND hour = ?", (service, hour)).fetchone()
        if after >= top:
            return 0
        rows = db.execute(f"SELECT time_us, {_STATUS_SQL}, ifnull(latency_us, -1), reason FROM samples "
                          f"WHERE service = ? AND time_us >= ? AND time_us < ? AND id > ? AND id <= ? "
                          f"ORDER BY {_CANONICAL_SQL}",
                          (service, hour * HOUR_US, (hour + 1) * HOUR_US, after, top)).fetchall()
        if not rows:
            return 0
        n = len(rows)
        t, status, latency, reason = zip(*rows)
        records = np.empty(n, BLOCK_RECORD)
        records["dt"] = np.fromiter(t, np.int64, n) - hour * HOUR_US
        records["status"] = status
        records["latency"] = latency
        records["reason"] = [self._reason_id(db, r, pending) for r in reason]
        db.execute("INSERT INTO sample_blocks (service, hour, seq, through_id, n, records) VALUES (?, ?, ?, ?, ?, ?)",
                   (service, hour, seq, top, n, records.tobytes()))
        return 1

    def _reason_id(self, db: sqlite3.Connection, text: str, pending: dict[str, int]) -> int:
        rid = self._reason_ids.get(text)
        if rid is None:
            rid = pending.get(text)
        if rid is None:
            row = db.execute("SELECT id FROM reasons WHERE text = ?", (text,)).fetchone()
            rid = row[0] if row is not None else db.execute("INSERT INTO reasons (text) VALUES (?)", (text,)).lastrowid
            pending[text] = rid          # joins the cache only once the transaction has committed
        return rid

    def seal_info(self) -> dict[str, int]:
        """How much is sealed: blocks, samples in them, and the frontier (every sample with a larger id, or a
        time before 1970, is read from its row)."""
        blocks, samples = self._db.execute("SELECT count(*), ifnull(sum(n), 0) FROM sample_blocks").fetchone()
        frontier = self._db.execute("SELECT frontier FROM seal_state").fetchone()[0]
        return {"blocks": blocks, "sealed_samples": samples, "frontier": frontier}

    def columns(self, services: Sequence[str], start: float | Sequence[float] | None = None,
                end: float | None = None) -> EvidenceColumns:
        """The samples of ``services`` with ``start <= time < end`` as numpy columns, in the evidence's
        canonical order: by service (in the order given), time, status (up, down, unknown), latency (none
        last), reason. Service index ``i`` is ``services[i]``. ``start`` may be one time per service.

        Sealed hours (:meth:`seal_hours`) come from their blocks, one blob per (service, hour); everything
        no block holds (ids above the seal frontier that no block of their hour covers, times before 1970)
        from its rows. One read transaction, so it is all one snapshot, and the result is exactly
        :meth:`columns_from_rows`'s.
        """
        starts = list(start) if isinstance(start, Sequence) else [start] * len(services)
        if len(starts) != len(services):
            raise ValueError(f"{len(starts)} start times for {len(services)} services")
        services = tuple(services)
        los = [_MIN_US if s is None else seconds_to_us(s) for s in starts]
        hi = seconds_to_us(end) if end is not None else _MAX_US
        db = self._db
        if db is None:
            raise StoreError(f"{self.path}: store is closed")
        db.execute("BEGIN")
        try:
            frontier = db.execute("SELECT frontier FROM seal_state").fetchone()[0]
            top = db.execute("SELECT max(id) FROM samples").fetchone()[0] or 0
            blocks = self._read_blocks(db, services, los, hi)
            rows = self._read_rows(db, services, los, hi, frontier, top)
        finally:
            db.execute("COMMIT")
        return self._merge(services, los, hi, blocks, rows)

    def _read_blocks(self, db, services, los, hi):
        blobs: list[bytes] = []
        b_svc: list[int] = []
        b_hour: list[int] = []
        b_n: list[int] = []
        b_through: list[int] = []
        sql = "SELECT hour, through_id, n, records FROM sample_blocks WHERE service = ? AND hour >= ? AND hour <= ? " \
              "ORDER BY hour, seq"
        for i, (service, lo) in enumerate(zip(services, los)):
            lo = max(lo, 0)
            if hi <= lo:
                continue
            for hour, through, n, records in db.execute(sql, (service, lo // HOUR_US, (hi - 1) // HOUR_US)):
                blobs.append(records)
                b_svc.append(i)
                b_hour.append(hour)
                b_n.append(n)
                b_through.append(through)
        data = np.frombuffer(b"".join(blobs), BLOCK_RECORD)
        del blobs
        return (np.array(b_svc, np.int64), np.array(b_hour, np.int64), np.array(b_n, np.int64),
                np.array(b_through, np.int64), data)

    def _read_rows(self, db, services, los, hi, frontier, top) -> list[tuple[int, list[tuple]]]:
        """Rows that may be in no block, per service index: (id, time_us, status, latency_us, reason) tuples."""
        cols = f"id, time_us, {_STATUS_SQL}, ifnull(latency_us, -1), reason"
        out: list[tuple[int, list[tuple]]] = []
        if top > frontier:
            if top - frontier <= ROWID_SCAN_ROWS:
                # Few rows above the frontier (the usual case: the hour in progress): one walk up the ids.
                positions: dict[str, list[int]] = {}
                for i, s in enumerate(services):
                    positions.setdefault(s, []).append(i)
                found = db.execute(f"SELECT service, {cols} FROM samples NOT INDEXED WHERE id > ? AND time_us >= ? "
                                   "AND time_us < ? AND service IN (SELECT value FROM json_each(?))",
                                   (frontier, max(0, min(los, default=0)), hi, json.dumps(list(positions)))).fetchall()
                per: dict[int, list[tuple]] = {}
                for service, *row in found:
                    for i in positions[service]:
                        if row[1] >= los[i]:
                            per.setdefault(i, []).append(row)
                out.extend(per.items())
            else:
                # Most of the store is unsealed (an old store before its first seal): per service along the
                # (service, time) index.
                sql = f"SELECT {cols} FROM samples WHERE service = ? AND time_us >= ? AND time_us < ? AND id > ? " \
                      "ORDER BY time_us"     # the index's order; ties at one instant are sorted below if any
                for i, (service, lo) in enumerate(zip(services, los)):
                    if hi > max(lo, 0):
                        out.append((i, db.execute(sql, (service, max(lo, 0), hi, frontier)).fetchall()))
        sql = f"SELECT {cols} FROM samples WHERE service = ? AND time_us >= ? AND time_us < ?"
        for i, (service, lo) in enumerate(zip(services, los)):
            if lo < 0 and min(hi, 0) > lo:        # before 1970: never sealed
                out.append((i, db.execute(sql, (service, lo, min(hi, 0))).fetchall()))
        return [(i, rows) for i, rows in out if rows]

    def _merge(self, services, los, hi, blocks, rows) -> EvidenceColumns:
        b_svc, b_hour, b_n, b_through, data = blocks
        # Reasons: the blocks' ids (texts from the append-only reasons table) and the rows' texts, once each.
        used = np.flatnonzero(np.bincount(data["reason"])) if len(data) else np.zeros(0, np.int64)
        missing = [int(r) for r in used if int(r) not in self._reason_texts]
        if missing:
            self._reason_texts.update(self._db.execute("SELECT id, text FROM reasons").fetchall())
        index: dict[str, int] = {}
        remap = np.zeros(int(used[-1]) + 1 if len(used) else 0, np.int64)
        for r in used.tolist():
            remap[r] = index.setdefault(self._reason_texts[r], len(index))
        svc = np.repeat(b_svc, b_n)
        t = np.repeat(b_hour * HOUR_US, b_n) + data["dt"]
        st = data["status"].astype(np.int8)
        lat = data["latency"].astype(np.int64)
        rid = remap[data["reason"]] if len(data) else np.zeros(0, np.int64)
        del data
        # Hours cut by a start or end that is not on the hour.
        los_arr = np.array(los, np.int64)
        if len(t) and (hi % HOUR_US or any(lo > 0 and lo % HOUR_US for lo in los)):
            keep = (t >= los_arr[svc]) & (t < hi)
            if not keep.all():
                svc, t, st, lat, rid = svc[keep], t[keep], st[keep], lat[keep], rid[keep]
        # Services with a late block (seq > 0) are not in order: their hours hold two sorted runs.
        unordered = set(b_svc[1:][(b_svc[1:] == b_svc[:-1]) & (b_hour[1:] == b_hour[:-1])].tolist())
        if rows:
            parts: list[list[np.ndarray]] = [[], [], [], [], [], []]
            for i, chunk in rows:
                n = len(chunk)
                r_id, r_t, r_st, r_lat, r_reason = zip(*chunk)
                for part, values, dtype in zip(parts, (r_id, r_t, r_st, r_lat), (np.int64, np.int64, np.int8, np.int64)):
                    part.append(np.fromiter(values, dtype, n))
                parts[4].append(np.fromiter(map(lambda r, add=index.setdefault: add(r, len(index)), r_reason),
                                            np.int64, n))
                parts[5].append(np.full(n, i, np.int64))
            del rows
            r_id, r_t, r_st, r_lat, r_rid, r_svc = (np.concatenate(p) for p in parts)
            del parts
            # A row of a sealed hour that a block of that hour already holds (id <= its through_id) is not
            # read twice. Blocks are in (service, hour, seq) order, through_id growing with seq.
            if len(b_svc):
                key_b = b_svc * 2 ** 32 + b_hour
                key_r = r_svc * 2 ** 32 + np.where(r_t >= 0, r_t // HOUR_US, -1)
                at = np.searchsorted(key_b, key_r, side="right") - 1
                hit = (at >= 0) & (key_b[np.maximum(at, 0)] == key_r)
                covered = hit & (r_id <= b_through[np.maximum(at, 0)])
                if covered.any():
                    keep = ~covered
                    r_svc, r_t, r_st, r_lat, r_rid = r_svc[keep], r_t[keep], r_st[keep], r_lat[keep], r_rid[keep]
            texts = list(index)
            rank = _ranks(texts)
            keys = (r_svc, r_t, r_st, np.where(r_lat < 0, NO_LATENCY, r_lat), rank[r_rid])
            if not is_ordered(*keys):
                order = np.lexsort(keys[::-1])
                r_svc, r_t, r_st, r_lat, r_rid = r_svc[order], r_t[order], r_st[order], r_lat[order], r_rid[order]
            del keys
            # A service's rows go after its block samples; if they are not all later, sort that service.
            for s in np.unique(r_svc).tolist():
                a, b = np.searchsorted(svc, [s, s + 1])
                if b > a and r_t[np.searchsorted(r_svc, s)] <= t[b - 1]:
                    unordered.add(s)
            at = np.searchsorted(svc, r_svc, side="right")
            svc, t, st, lat, rid = (np.insert(svc, at, r_svc), np.insert(t, at, r_t), np.insert(st, at, r_st),
                                    np.insert(lat, at, r_lat), np.insert(rid, at, r_rid))
        texts = list(index)
        if unordered:
            rank = _ranks(texts)
            for s in sorted(unordered):
                a, b = np.searchsorted(svc, [s, s + 1])
                o = a + np.lexsort((rank[rid[a:b]], np.where(lat[a:b] < 0, NO_LATENCY, lat[a:b]), st[a:b], t[a:b]))
                t[a:b], st[a:b], lat[a:b], rid[a:b] = t[o], st[o], lat[o], rid[o]
        return EvidenceColumns(services, svc, t, st, lat, rid, tuple(texts)).canonical()

    def columns_from_rows(self, services: Sequence[str], start: float | Sequence[float] | None = None,
                          end: float | None = None) -> EvidenceColumns:
        """What :meth:`columns` gives, read from the rows alone (no blocks): the reference it is tested
        against, and the slow way (~0.5 million rows/s, a Python tuple per row)."""
        starts = list(start) if isinstance(start, Sequence) else [start] * len(services)
        if len(starts) != len(services):
            raise ValueError(f"{len(starts)} start times for {len(services)} services")
        sql = (f"SELECT time_us, {_STATUS_SQL}, ifnull(latency_us, -1), reason FROM samples "
               "WHERE service = ? AND time_us >= ? AND time_us < ? ORDER BY time_us")
        hi = seconds_to_us(end) if end is not None else _MAX_US
        db = self._db
        reasons: dict[str, int] = {}
        cols: list[list[np.ndarray]] = [[], [], [], [], []]
        db.execute("BEGIN")
        try:
            for i, (service, lo) in enumerate(zip(services, starts)):
                rows = db.execute(sql, (service, _MIN_US if lo is None else seconds_to_us(lo), hi)).fetchall()
                if not rows:
                    continue
                n = len(rows)
                t, status, latency, reason = zip(*rows)
                del rows
                cols[0].append(np.full(n, i, np.int64))
                cols[1].append(np.fromiter(t, np.int64, n))
                cols[2].append(np.fromiter(status, np.int8, n))
                cols[3].append(np.fromiter(latency, np.int64, n))
                cols[4].append(np.fromiter(map(lambda r, add=reasons.setdefault: add(r, len(reasons)), reason),
                                           np.int64, n))
        finally:
            db.execute("COMMIT")
        dtypes = (np.int64, np.int64, np.int8, np.int64, np.int64)
        arrays = [np.concatenate(c) if c else np.zeros(0, d) for c, d in zip(cols, dtypes)]
        return EvidenceColumns(tuple(services), *arrays[:4], arrays[4], tuple(reasons)).canonical()

    def last_up_before(self, service: str, before: float, not_before: float | None = None) -> float | None:
        """Time of the service's last ``up`` sample with ``not_before <= time < before``, or None."""
        row = self._db.execute(
            "SELECT time_us FROM samples WHERE service = ? AND status = 'up' AND time_us >= ? AND time_us < ? "
            "ORDER BY time_us DESC LIMIT 1",
            (service, -2 ** 63 if not_before is None else seconds_to_us(not_before), seconds_to_us(before))).fetchone()
        return None if row is None else row[0] / 1_000_000

    def services(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT service FROM samples ORDER BY service")]

    def count(self, service: str | None = None) -> int:
        if service is None:
            return self._db.execute("SELECT count(*) FROM samples").fetchone()[0]
        return self._db.execute("SELECT count(*) FROM samples WHERE service = ?", (service,)).fetchone()[0]

    # -- report journal ------------------------------------------------------------------------

    def intend_report(self, chain_id: int, agreement: str, period: int, values: list[int],
                      evidence_root: bytes) -> ReportIntent:
        """Persist what is about to be signed, or return what was persisted first for this period.

        Always sign the *returned* intent. If it differs from the arguments (see
        :meth:`ReportIntent.differs_from`) the period was already signed with those values: log it.
        """
        key = self._key(chain_id, agreement, period)
        values = [int(v) for v in values]
        for v in values:
            if not 0 <= v < 2 ** 32:
                raise ValueError(f"report value {v} does not fit a uint32")
        root = bytes(evidence_root)
        if len(root) != 32:
            raise ValueError(f"evidence root must be 32 bytes, got {len(root)}")

        def intend(db):
            if self._fetch(db, key) is None:
                db.execute("INSERT INTO reports (chain_id, agreement, period, report_values, evidence_root, "
                           "intended_at) VALUES (?, ?, ?, ?, ?, ?)",
                           (*key, json.dumps(values), root, _time.time()))

        self._write(intend)
        return self._fetch(self._db, key)  # type: ignore[return-value]

    def record_signature(self, chain_id: int, agreement: str, period: int, signer: str, signature: bytes) -> None:
        key = self._key(chain_id, agreement, period)

        def record(db):
            if self._fetch(db, key) is None:
                raise StoreError(f"{self.path}: no report intent for chain {key[0]}, {key[1]}, period {key[2]}; "
                                 "call intend_report before signing")
            # First signature wins: a re-signature of the same message is equivalent, and keeping the
            # first means the journal shows what may already have been broadcast.
            db.execute("INSERT OR IGNORE INTO signatures VALUES (?, ?, ?, ?, ?, ?)",
                       (*key, address_key(signer), bytes(signature), _time.time()))

        self._write(record)

    def record_submission(self, chain_id: int, agreement: str, period: int, tx_hash: str | None,
                          status: str) -> None:
        if status not in SUBMISSION_STATUSES:
            raise ValueError(f"submission status {status!r}; expected one of {', '.join(SUBMISSION_STATUSES)}")
        key = self._key(chain_id, agreement, period)
        now = _time.time()

        def record(db):
            db.execute("INSERT INTO submissions (chain_id, agreement, period, tx_hash, status, at) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (*key, tx_hash, status, now))
            # A settled period stays settled even if a later duplicate submission fails.
            db.execute("UPDATE reports SET status = ?, tx_hash = coalesce(?, tx_hash), updated_at = ? "
                       "WHERE chain_id = ? AND agreement = ? AND period = ? "
                       "AND (status IS NULL OR status NOT IN ('settled', 'already-settled'))",
                       (status, tx_hash, now, *key))

        self._write(record)

    def report(self, chain_id: int, agreement: str, period: int) -> ReportIntent | None:
        return self._fetch(self._db, self._key(chain_id, agreement, period))

    def pending_reports(self) -> list[ReportIntent]:
        """Signed but not (known to be) settled, oldest period first."""
        keys = self._db.execute(
            "SELECT chain_id, agreement, period FROM reports r WHERE "
            "(status IS NULL OR status NOT IN ('settled', 'already-settled')) AND EXISTS (SELECT 1 FROM "
            "signatures s WHERE s.chain_id = r.chain_id AND s.agreement = r.agreement AND s.period = r.period) "
            "ORDER BY chain_id, agreement, period").fetchall()
        return [self._fetch(self._db, tuple(k)) for k in keys]  # type: ignore[misc]

    @staticmethod
    def _key(chain_id: int, agreement: str, period: int) -> tuple[int, str, int]:
        chain_id, period = int(chain_id), int(period)
        if not 0 < chain_id < 2 ** 63:
            raise ValueError(f"chain id {chain_id} out of range")
        if not 0 <= period < 2 ** 63:
            raise ValueError(f"period {period} out of range")
        return chain_id, address_key(agreement), period

    @staticmethod
    def _fetch(db: sqlite3.Connection, key: tuple) -> ReportIntent | None:
        row = db.execute("SELECT report_values, evidence_root, intended_at, tx_hash, status FROM reports "
                         "WHERE chain_id = ? AND agreement = ? AND period = ?", key).fetchone()
        if row is None:
            return None
        sigs = dict(db.execute("SELECT signer, signature FROM signatures WHERE chain_id = ? AND agreement = ? "
                               "AND period = ? ORDER BY signer", key).fetchall())
        return ReportIntent(chain_id=key[0], agreement=key[1], period=key[2], values=tuple(json.loads(row[0])),
                            evidence_root=bytes(row[1]), intended_at=row[2], signatures=sigs,
                            tx_hash=row[3], status=row[4])

    # -- daemon state --------------------------------------------------------------------------

    def get_state(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_state(self, key: str, value: Any) -> None:
        """Any JSON value; read back with :meth:`get_state` as the same JSON type."""
        text = json.dumps(value)
        self._write(lambda db: db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, text)))
