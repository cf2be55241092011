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
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time as _time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np

from .evidence import EvidenceColumns
from .samples import Sample, Status

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
]
SCHEMA_VERSION = len(MIGRATIONS)
APPLICATION = "smart-sla oracle store"

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


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


def _to_us(value: float) -> int:
    return round(value * 1_000_000)


def _agreement_key(agreement: str) -> str:
    # The same contract spelled with and without its checksum must be one journal key, or the
    # "never sign twice" promise could be dodged by a change of case.
    agreement = str(agreement)
    return agreement.lower() if _ADDRESS.match(agreement) else agreement


class Store:
    """``with Store("oracle.db") as store: store.append(samples)``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
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
        latency = None if s.latency_ms is None else _to_us(s.latency_ms / 1000)
        if latency is not None and latency < 0:
            raise ValueError(f"negative latency in {s}")
        return (s.service, _to_us(s.time), Status(s.status).value, latency, s.reason or "")

    def samples(self, service: str | None = None, start: float | None = None,
                end: float | None = None) -> Iterator[Sample]:
        """Samples with ``start <= time < end``, ordered by time (then status, latency, reason, service)."""
        where, params = [], []
        if service is not None:
            where.append("service = ?")
            params.append(service)
        if start is not None:
            where.append("time_us >= ?")
            params.append(_to_us(start))
        if end is not None:
            where.append("time_us < ?")
            params.append(_to_us(end))
        sql = "SELECT service, time_us, status, latency_us, reason FROM samples"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY time_us, status, ifnull(latency_us, -1), reason, service"
        # fetchall: a generator holding an open cursor would keep a read transaction (and the WAL) pinned.
        for service_, t, status, latency, reason in self._db.execute(sql, params).fetchall():
            yield Sample(time=t / 1_000_000, service=service_, status=Status(status),
                         latency_ms=None if latency is None else latency / 1000, reason=reason)

    def columns(self, services: Sequence[str], start: float | Sequence[float] | None = None,
                end: float | None = None) -> EvidenceColumns:
        """The samples of ``services`` with ``start <= time < end`` as numpy columns, in the evidence's
        canonical order: by service (in the order given), time, status (up, down, unknown), latency (none
        last), reason. Service index ``i`` is ``services[i]``. ``start`` may be one time per service.

        No Python object per sample: SQLite walks the (service, time_us) index, and the rows become
        arrays; one read transaction, so all services come from the same snapshot.
        """
        starts = list(start) if isinstance(start, Sequence) else [start] * len(services)
        if len(starts) != len(services):
            raise ValueError(f"{len(starts)} start times for {len(services)} services")
        sql = ("SELECT time_us, CASE status WHEN 'up' THEN 0 WHEN 'down' THEN 1 ELSE 2 END, "
               "ifnull(latency_us, -1), reason FROM samples "
               "WHERE service = ? AND time_us >= ? AND time_us < ? ORDER BY time_us")
        hi = _to_us(end) if end is not None else 2 ** 63 - 1
        db = self._db
        reasons: dict[str, int] = {}
        cols: list[list[np.ndarray]] = [[], [], [], [], []]
        db.execute("BEGIN")
        try:
            for i, (service, lo) in enumerate(zip(services, starts)):
                rows = db.execute(sql, (service, -2 ** 63 if lo is None else _to_us(lo), hi)).fetchall()
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
            (service, -2 ** 63 if not_before is None else _to_us(not_before), _to_us(before))).fetchone()
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
                       (*key, _agreement_key(signer), bytes(signature), _time.time()))

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
        return chain_id, _agreement_key(agreement), period

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
