"""The store's file: its versioned schema (migrations, each one released never edited), opening it safely
(read-only for people looking, WAL and synchronous=FULL for the daemon), one write transaction at a time, and
the daemon's small key-value state."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Self

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
    # 3: a report states how much of each service's period it measured (its coverage, ppm), signed with the
    # values. An intent persisted before this version has none, and cannot be signed in today's form.
    [
        "ALTER TABLE reports ADD COLUMN report_coverage TEXT",
        """CREATE TRIGGER reports_coverage_fixed BEFORE UPDATE OF report_coverage ON reports
            WHEN OLD.report_coverage IS NOT NULL AND NEW.report_coverage IS NOT OLD.report_coverage
            BEGIN SELECT RAISE(ABORT, 'a report intent never changes once persisted'); END""",
    ],
    # 4: event counts (success rates, Apdex from counts), append-only like the samples. One row per (service,
    # interval start): a second, different count for the same interval is refused by the API, not stored.
    [
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            service TEXT NOT NULL,
            time_us INTEGER NOT NULL,
            seconds INTEGER NOT NULL CHECK (seconds >= 0),
            good INTEGER NOT NULL CHECK (good >= 0),
            tolerating INTEGER NOT NULL CHECK (tolerating >= 0),
            total INTEGER NOT NULL CHECK (total >= good + tolerating),
            source TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE UNIQUE INDEX events_interval ON events (service, time_us)",
        """CREATE TRIGGER events_no_update BEFORE UPDATE ON events
            BEGIN SELECT RAISE(ABORT, 'event counts are append-only'); END""",
        """CREATE TRIGGER events_no_delete BEFORE DELETE ON events
            BEGIN SELECT RAISE(ABORT, 'event counts are append-only'); END""",
    ],
]


SCHEMA_VERSION = len(MIGRATIONS)
APPLICATION = "smart-sla oracle store"


class StoreError(Exception):
    """The store cannot be opened or used; the message names the file and what to do."""


class StoreCorrupt(StoreError):
    """A read met a value no write can have stored (the schema's CHECKs guard writes only): the file was changed
    behind the store's back. Nothing read from it may be signed."""


class StoreFile:
    """The SQLite file itself: opening it safely, migrating its schema, one write transaction at a time, and
    the daemon's small key-value state. :class:`Store` adds the samples and the report journal."""


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

    # -- daemon state --------------------------------------------------------------------------

    def get_state(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_state(self, key: str, value: Any) -> None:
        """Any JSON value; read back with :meth:`get_state` as the same JSON type."""
        text = json.dumps(value)
        self._write(lambda db: db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, text)))
