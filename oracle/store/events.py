"""The event counts in the store: append-only rows, one per (service, interval), checked on the way in (no
second, different count for an interval, no overlapping intervals) and read back as columns for the period
maths and the evidence."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from oracle.store.schema import StoreCorrupt, StoreError, StoreFile
from smartsla.encoding import format_time_us
from smartsla.measure.events import EventColumns, EventError


class EventConflict(EventError):
    """An import that would contradict counts already stored (or itself)."""


@dataclass(frozen=True)
class EventRow:
    """The counts of one interval of one service (``service`` is the store's key, see ``sample_key``);
    ``seconds`` is the interval's length when known (0: not stated), used only to refuse overlaps."""

    service: str
    time_us: int
    seconds: int
    good: int
    tolerating: int
    total: int
    source: str = ""

    @property
    def counts(self) -> tuple[int, int, int]:
        return (self.good, self.tolerating, self.total)

    @property
    def end_us(self) -> int:
        return self.time_us + self.seconds * 1_000_000


class EventRecords(StoreFile):
    """Event counts: append (idempotent, refusing contradictions) and read as :class:`EventColumns`."""

    def append_events(self, rows: Iterable[EventRow]) -> int:
        """Store a batch in one transaction; returns how many were new. A row already stored with the same counts
        is skipped; a different count for a stored interval, or an interval overlapping another of its service,
        is an :class:`EventConflict` and nothing of the batch is stored."""
        rows = list(rows)
        if not rows:
            return 0
        for r in rows:
            if r.seconds * 1_000_000 > _LONGEST_US:
                raise EventError(f"{r.service} at {format_time_us(r.time_us)}: an interval of {r.seconds} s is longer "
                                 "than a day; count shorter intervals (at most one slice each)")
            if min(r.good, r.tolerating, r.total, r.seconds) < 0 or r.good + r.tolerating > r.total:
                raise EventError(f"{r.service} at {format_time_us(r.time_us)}: counts {r.counts} are not 0 <= good + "
                                 "tolerating <= total")

        def insert(db):
            new = self._new_rows(db, rows)
            before = db.total_changes
            db.executemany("INSERT INTO events (service, time_us, seconds, good, tolerating, total, source) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [(r.service, r.time_us, r.seconds, r.good, r.tolerating, r.total, r.source) for r in new])
            return db.total_changes - before

        return self._write(insert)

    def _new_rows(self, db, rows: list[EventRow]) -> list[EventRow]:
        """The rows not stored yet, after checking the batch against itself and the store, service by service."""
        by_service: dict[str, list[EventRow]] = {}
        for r in rows:
            by_service.setdefault(r.service, []).append(r)
        new: list[EventRow] = []
        for service, mine in by_service.items():
            lo = min(r.time_us for r in mine)
            hi = max(r.end_us for r in mine)
            # stored rows that could meet these: starting before the batch's end, at most the longest interval
            # before its start (along the (service, time_us) index)
            stored = [EventRow(service, t, sec, g, tol, n) for t, sec, g, tol, n in db.execute(
                "SELECT time_us, seconds, good, tolerating, total FROM events WHERE service = ? AND time_us <= ? "
                "AND time_us >= ? ORDER BY time_us", (service, hi, lo - _LONGEST_US))]
            known = {r.time_us: r for r in stored}
            fresh: dict[int, EventRow] = {}
            for r in mine:
                seen = known.get(r.time_us) or fresh.get(r.time_us)
                if seen is not None:
                    if seen.counts != r.counts or (seen.seconds and r.seconds and seen.seconds != r.seconds):
                        raise EventConflict(
                            f"{service} at {format_time_us(r.time_us)}: counts good {r.good}, tolerating {r.tolerating}, "
                            f"total {r.total} for an interval already counted as good {seen.good}, tolerating "
                            f"{seen.tolerating}, total {seen.total}; counts are never changed once stored")
                    continue
                fresh[r.time_us] = r
            reach: EventRow | None = None     # the interval reaching furthest so far
            for b in sorted([*stored, *fresh.values()], key=lambda r: r.time_us):
                if reach is not None and b.time_us < reach.end_us:
                    raise EventConflict(
                        f"{service}: the interval at {format_time_us(b.time_us)} starts inside the one at "
                        f"{format_time_us(reach.time_us)} ({reach.seconds} s long); intervals of a service must not "
                        "overlap, or their events would count twice")
                if b.seconds and (reach is None or b.end_us > reach.end_us):
                    reach = b
            new.extend(fresh.values())
        return new

    def event_columns(self, services: Sequence[str], start: float | None = None,
                      end: float | None = None) -> EventColumns:
        """The counts of ``services`` (store keys; index ``i`` is ``services[i]``) whose interval starts in
        ``[start, end)``, ordered by service then time."""
        db = self._db
        if db is None:
            raise StoreError(f"{self.path}: store is closed")
        lo = -2 ** 63 if start is None else int(round(start * 1_000_000))
        hi = 2 ** 63 - 1 if end is None else int(round(end * 1_000_000))
        cols: list[list[int]] = [[], [], [], [], []]
        for i, key in enumerate(services):
            for t, g, tol, n in db.execute("SELECT time_us, good, tolerating, total FROM events WHERE service = ? "
                                           "AND time_us >= ? AND time_us < ? ORDER BY time_us", (key, lo, hi)):
                if not (isinstance(g, int) and isinstance(tol, int) and isinstance(n, int)) or g < 0 or tol < 0 \
                        or g + tol > n:
                    raise StoreCorrupt(f"{self.path}: counts of {key} at {format_time_us(t)} ({g}, {tol}, {n}) are not "
                                       "what any write stores: the file was changed outside the oracle; restore it "
                                       "from a backup")
                for col, v in zip(cols, (i, t, g, tol, n)):
                    col.append(v)
        return EventColumns(tuple(services), *(np.asarray(c, np.int64) for c in cols))

    def event_count_between(self, service: str, start: int, end: int) -> int:
        """How many intervals of ``service`` start in ``[start, end)`` (unix seconds)."""
        return self._db.execute("SELECT count(*) FROM events WHERE service = ? AND time_us >= ? AND time_us < ?",
                                (service, int(start) * 1_000_000, int(end) * 1_000_000)).fetchone()[0]

    def event_count(self, service: str | None = None) -> int:
        sql, params = "SELECT count(*) FROM events", ()
        if service is not None:
            sql, params = sql + " WHERE service = ?", (service,)
        return self._db.execute(sql, params).fetchone()[0]


# The longest interval a stored row may state (a day): how far back an overlap check looks.
_LONGEST_US = 86_400 * 1_000_000
