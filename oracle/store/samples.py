"""The samples in the store: append-only rows, sealed hour blocks (the fast read path), and reading a period
back as columns in the evidence's canonical order."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from eth_utils import to_checksum_address

from oracle.store.schema import StoreCorrupt, StoreError, StoreFile
from smartsla.constants import HOUR_US, NO_LATENCY
from smartsla.encoding import seconds_to_us
from smartsla.evidence.columns import EvidenceColumns
from smartsla.measure.periods import is_ordered
from smartsla.measure.samples import Sample, Status, status_sql

# A sealed block's sample: microseconds into its hour, status code (0 up, 1 down, 2 unknown), latency in
# microseconds (-1: none), number in the reasons table. Little-endian, packed: 17 bytes.
BLOCK_RECORD = np.dtype([("dt", "<u4"), ("status", "u1"), ("latency", "<i8"), ("reason", "<u4")])


assert BLOCK_RECORD.itemsize == 17


# Above this many rows past the seal frontier, :meth:`Store.columns` reads the unsealed rows per service along
# the (service, time) index instead of walking up the ids.
ROWID_SCAN_ROWS = 1_000_000


_MIN_US, _MAX_US = -2 ** 63, 2 ** 63 - 1


# The schema's CHECK admits only the table's names on write. A read that meets any other name is corruption, not
# "unknown": read as unknown, a 'dowN' once made an outage count as a gap and the oracle signed 100%.
CORRUPT_STATUS = 255
_STATUS_SQL = status_sql(otherwise=CORRUPT_STATUS)
# The evidence's canonical order within one service (reasons compare as UTF-8 bytes, as SQLite's BINARY does).
_CANONICAL_SQL = f"time_us, {_STATUS_SQL}, latency_us IS NULL, latency_us, reason"


def _refuse_corrupt_rows(path, rows: Sequence[tuple], status_at: int, what: str) -> None:
    if any(row[status_at] == CORRUPT_STATUS for row in rows):
        raise StoreCorrupt(f"{path}: a sample of {what} has a status no write can store: the file was changed "
                           "outside the oracle. It signs nothing from this store; restore it from a backup "
                           "(or start a new store) and check the disk")


def _refuse_corrupt_blocks(path, data: np.ndarray, counts: np.ndarray) -> None:
    """Sealed blocks are written from checked rows: any value outside what they can hold is corruption."""
    if len(data) != int(counts.sum()):
        raise StoreCorrupt(f"{path}: a sealed block's length disagrees with its sample count")
    if len(data) and (int(data["status"].max()) > 2 or int(data["dt"].max()) >= HOUR_US
                      or int(data["latency"].min()) < -1):  # -1: no latency
        raise StoreCorrupt(f"{path}: a sealed block holds a status, time or latency no sample can have: the file "
                           "was changed outside the oracle. It signs nothing from this store; restore it from a "
                           "backup (or start a new store) and check the disk")


def _ranks(texts: list[str]) -> np.ndarray:
    """rank[i] = position of texts[i] among the texts sorted by their UTF-8 bytes (the evidence's reason order)."""
    rank = np.zeros(len(texts), np.int64)
    rank[sorted(range(len(texts)), key=lambda i: texts[i].encode("utf-8"))] = np.arange(len(texts))
    return rank


# An hour is sealed (packed into blocks for fast period reads, see Store.seal_hours) this long after it ends, so
# that the samples of probes still running at the hour's end are in first. Later ones are not lost either.
SEAL_GRACE = 120


def sample_key(agreement: str, service: str) -> str:
    """The store's name for the samples of one agreement's service alone: ``0xCHECKSUMMED:service``. ``sla-oracle
    import`` writes under it (and versions before shared probes probed under it); the daemon reads it beside the
    service's shared probe key (:func:`probe_sample_key`). An address spelled in another case is the same key."""
    return f"{to_checksum_address(agreement)}:{service}"


def probe_sample_key(fingerprint: str) -> str:
    """The store's name for the samples of one shared probe (``ProbeSpec.fingerprint``): ``probe:<16 hex>``. Every
    agreement whose terms hold that same probe reads its samples from here (and its own :func:`sample_key`, where
    imports and the samples of versions before shared probes are)."""
    return f"probe:{fingerprint}"


def sealable_hour(now: float) -> int:
    """The unix hour (seconds // 3600) up to which every hour is complete at ``now``, grace included."""
    return int((now - SEAL_GRACE) // 3600)


class SampleRecords(StoreFile):
    """The samples: append-only rows, sealed hour blocks, and reading them back as columns."""

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
            try:
                parsed = Status(status)
            except ValueError:
                raise StoreCorrupt(f"{self.path}: a sample of {service_} has status {status!r}, which no write can "
                                   "store: the file was changed outside the oracle; restore it from a backup "
                                   "(or start a new store)") from None
            yield Sample(time=t / 1_000_000, service=service_, status=parsed,
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
        _refuse_corrupt_rows(self.path, rows, 1, f"{service} in hour {hour}")
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
        joined = b"".join(blobs)
        del blobs
        if len(joined) % BLOCK_RECORD.itemsize:
            raise StoreCorrupt(f"{self.path}: a sealed block is not a whole number of sample records")
        data = np.frombuffer(joined, BLOCK_RECORD)
        _refuse_corrupt_blocks(self.path, data, np.array(b_n, np.int64))
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
        for i, found_rows in out:
            _refuse_corrupt_rows(self.path, found_rows, 2, services[i])
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
                _refuse_corrupt_rows(self.path, rows, 1, service)
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

    def check_rows(self) -> None:
        """Raise :class:`StoreCorrupt` if any row holds a status no write can store (one pass over the table: for
        `sla-oracle status`, which otherwise reads only the last hour)."""
        bad = self._db.execute(f"SELECT count(*) FROM samples WHERE {_STATUS_SQL} = {CORRUPT_STATUS}").fetchone()[0]
        if bad:
            raise StoreCorrupt(f"{self.path}: {bad} sample(s) have a status no write can store: the file was changed "
                               "outside the oracle. It signs nothing from this store; restore it from a backup "
                               "(or start a new store) and check the disk")

    def count(self, service: str | None = None) -> int:
        if service is None:
            return self._db.execute("SELECT count(*) FROM samples").fetchone()[0]
        return self._db.execute("SELECT count(*) FROM samples WHERE service = ?", (service,)).fetchone()[0]
