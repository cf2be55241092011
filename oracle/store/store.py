"""The oracle's on-disk state: measured samples, the signed-report journal and a little daemon state.

:class:`Store` is one SQLite file seen through four rooms: :mod:`~oracle.store.schema` (the file, its
migrations, write transactions), :mod:`~oracle.store.samples` (append, seal, read columns),
:mod:`~oracle.store.events` (event counts for success rates and Apdex) and :mod:`~oracle.store.journal`
(intents, signatures, submissions).

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

from oracle.store.events import EventRecords
from oracle.store.journal import ReportJournal
from oracle.store.samples import SampleRecords


class Store(SampleRecords, EventRecords, ReportJournal):
    """``with Store("oracle.db") as store: store.append(samples)``."""
