"""The report journal, which makes "a period once signed is never signed with other values" survive crashes:
the values are persisted (and fsynced) before anything is signed, and a later call for the same (chain id,
agreement, period) gets the persisted values back, never the new ones. Signatures and submissions beside them."""

from __future__ import annotations

import json
import sqlite3
import time as _time
from collections.abc import Iterable
from dataclasses import dataclass, field

from oracle.store.schema import StoreCorrupt, StoreError, StoreFile
from smartsla.constants import PPM
from smartsla.encoding import address_key

SUBMISSION_STATUSES = ("sent", "settled", "already-settled", "failed")
FINAL_STATUSES = ("settled", "already-settled")
_FINAL_SQL = "(" + ", ".join(f"'{s}'" for s in FINAL_STATUSES) + ")"  # for the queries


@dataclass(frozen=True)
class ReportIntent:
    chain_id: int
    agreement: str
    period: int
    values: tuple[int, ...]
    coverage: tuple[int, ...] | None   # None: persisted by a version before reports carried coverage
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


class ReportJournal(StoreFile):
    """What was signed: report intents persisted before signing, signatures, submissions."""

    def intend_report(self, chain_id: int, agreement: str, period: int, values: list[int], coverage: list[int],
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
        coverage = [int(c) for c in coverage]
        if len(coverage) != len(values) or not all(0 <= c <= PPM for c in coverage):
            raise ValueError(f"coverage {coverage}: one ppm (0..{PPM}) per value")
        root = bytes(evidence_root)
        if len(root) != 32:
            raise ValueError(f"evidence root must be 32 bytes, got {len(root)}")

        def intend(db):
            if self._fetch(db, key) is None:
                db.execute("INSERT INTO reports (chain_id, agreement, period, report_values, report_coverage, "
                           "evidence_root, intended_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (*key, json.dumps(values), json.dumps(coverage), root, _time.time()))

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
                       f"AND (status IS NULL OR status NOT IN {_FINAL_SQL})",
                       (status, tx_hash, now, *key))

        self._write(record)

    def report(self, chain_id: int, agreement: str, period: int) -> ReportIntent | None:
        return self._fetch(self._db, self._key(chain_id, agreement, period))

    def pending_reports(self) -> list[ReportIntent]:
        """Signed but not (known to be) settled, oldest period first."""
        keys = self._db.execute(
            "SELECT chain_id, agreement, period FROM reports r WHERE "
            f"(status IS NULL OR status NOT IN {_FINAL_SQL}) AND EXISTS (SELECT 1 FROM "
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
        row = db.execute("SELECT report_values, report_coverage, evidence_root, intended_at, tx_hash, status "
                         "FROM reports WHERE chain_id = ? AND agreement = ? AND period = ?", key).fetchone()
        if row is None:
            return None
        sigs = dict(db.execute("SELECT signer, signature FROM signatures WHERE chain_id = ? AND agreement = ? "
                               "AND period = ? ORDER BY signer", key).fetchall())
        values = _numbers(row[0], 2**32 - 1, key)
        coverage = None if row[1] is None else _numbers(row[1], PPM, key)
        if coverage is not None and len(coverage) != len(values):
            raise StoreCorrupt(f"the report intent of period {key[2]} of {key[1]} has {len(values)} values but "
                               f"{len(coverage)} coverages")
        return ReportIntent(chain_id=key[0], agreement=key[1], period=key[2], values=values, coverage=coverage,
                            evidence_root=bytes(row[2]), intended_at=row[3], signatures=sigs,
                            tx_hash=row[4], status=row[5])


def _numbers(text: object, most: int, key: tuple) -> tuple[int, ...]:
    """A persisted list of integers, read as strictly as it was written: anything else is corruption, and signing
    it would sign what no measurement produced."""
    try:
        numbers = json.loads(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        numbers = None
    if not isinstance(numbers, list) or not all(type(n) is int and 0 <= n <= most for n in numbers):
        raise StoreCorrupt(f"the report intent of period {key[2]} of {key[1]} holds {str(text)[:80]!r}, not a list "
                           f"of integers 0..{most}: the store was changed behind the oracle's back")
    return tuple(numbers)
