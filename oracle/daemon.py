"""``sla-oracle run``: watch the agreements that name this oracle, probe their services, and settle each period.

One asyncio loop runs the probe scheduler; chain work (discovery, computing, signing, gathering peers'
reports, submitting) runs in a worker thread every ``poll`` seconds, because web3's client is synchronous.
Every step is idempotent and journalled in the store, so the daemon can be killed at any point and restarted.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from eth_account.signers.local import LocalAccount

from oracle.config import OracleConfig
from oracle.importers.prometheus import PrometheusError, query_range_counts
from oracle.probes import Prober, ProbeSpec, Scheduler
from oracle.server import Metrics, PeerError, ReportServer, fetch_report
from oracle.store.events import EventConflict, EventRow
from oracle.store.journal import FINAL_STATUSES
from oracle.store.samples import probe_sample_key, sample_key, sealable_hour
from oracle.store.schema import StoreCorrupt, StoreError
from oracle.store.store import Store
from oracle.store.writer import GroupWriter
from oracle.submit import SubmitError, most_complete, sign_once, submit, submit_batch
from smartsla.chain.chain import Chain
from smartsla.chain.reverts import Unreachable
from smartsla.constants import PPM
from smartsla.encoding import to_hex
from smartsla.evidence.bundle import build_bundle_columns
from smartsla.evidence.columns import EvidenceColumns
from smartsla.measure.events import EventColumns
from smartsla.measure.periods import compute_periods
from smartsla.measure.samples import Sample, Status
from smartsla.onchain.client import Agreement, Contracts
from smartsla.onchain.types import PeriodState, SignedReport
from smartsla.terms.model import Terms
from smartsla.terms.parse import load_terms


def log(event: str, **fields: Any) -> None:
    """One JSON object per line on stderr: easy to grep, easy to ship. Keys never appear here."""
    record = {"ts": round(time.time(), 3), "event": event, **fields}
    print(json.dumps(record, default=str), file=sys.stderr, flush=True)


def probe_spec(key: str, probe: Any) -> ProbeSpec:
    """The terms' probe of a service as the prober's spec; ``key`` names the samples in the store."""
    if probe.type == "http":
        return ProbeSpec.http(key, probe.url, method=probe.method, expect_status=tuple(probe.expect_status),
                              keyword=probe.keyword, max_latency=probe.max_latency, timeout=probe.timeout,
                              interval=probe.interval)
    return ProbeSpec.tcp(key, probe.host, probe.port, timeout=probe.timeout, interval=probe.interval)


def shared_probe(probe: Any) -> ProbeSpec:
    """The terms' probe as the one schedule every agreement with the same probe shares: its samples are stored under
    the probe's own key (``probe_sample_key``), so a provider's endpoint in a thousand agreements is probed once."""
    spec = probe_spec("", probe)
    return replace(spec, service=probe_sample_key(spec.fingerprint()))


def probed_services(terms: Terms) -> dict[str, ProbeSpec]:
    """{service id: its shared probe} for the services of ``terms`` that are probed."""
    return {s.id: shared_probe(s.probe) for s in terms.services if s.probe}


def is_corruption(exc: BaseException) -> bool:
    """A read that met an impossible value, or SQLite finding its file malformed ("database disk image is
    malformed" is a bare DatabaseError; a locked or full database is an OperationalError, not corruption)."""
    return isinstance(exc, StoreCorrupt) or type(exc) is sqlite3.DatabaseError


# a whole peer exchange, connect to last byte: one slow peer delays a round by at most this, per period
PEER_DEADLINE_S = 3.0
UINT32_MAX = 2**32 - 1
# A period withheld for low coverage is measured again each round (an import may fill its hole); the log repeats
# at most this often.
REMEASURE_S = 600
# A period's counts not (fully) in Prometheus yet are asked for again this often, not every poll round.
PROMETHEUS_RETRY_S = 30.0
# Blocks of factory logs read again each discovery round: a reorg of the chain's last blocks may replace them.
DISCOVERY_MARGIN = 12
# Periods settled in one settleBatch transaction at most: 50 steady items are about 4.7 M gas, well inside a block.
BATCH_SIZE = 50
PROMETHEUS_TIMEOUT_S = 10.0


def _uint32(value: object) -> int:
    """A reported value as the contract takes it: a JSON integer of uint32 (no floats, no strings, no bools)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT32_MAX:
        raise ValueError(f"{value!r} is not a uint32")
    return value


@dataclass
class Watched:
    agreement: Agreement
    terms: Terms
    settled: set[int] = field(default_factory=set)

    @property
    def start(self) -> int:
        return int(self.agreement.terms.start)


class ChainChanged(Exception):
    """The chain is not the one this oracle's store was written for: a reset chain reuses addresses, so carrying
    samples, intents or signatures over would sign the old chain's values. The message names both and the fix."""


class NoFactory(Exception):
    """The configured factory has no code on the chain: every round would fail on it."""


class OracleDaemon:
    def __init__(self, config: OracleConfig, account: LocalAccount):
        self.config = config
        self.account = account
        self.metrics = Metrics()
        self.watched: dict[str, Watched] = {}
        self._unmatched: set[str] = set()  # agreements naming this oracle whose terms file it lacks
        self.terms_by_hash: dict[bytes, Terms] = {}
        for path in config.terms:
            terms = load_terms(path)
            self.terms_by_hash[terms.document_hash()] = terms
        self._stop = threading.Event()
        # The probes to run, each once however many agreements use it, and who uses it: the probe loop makes its
        # schedule match ``_probes`` whenever ``_probes_changed`` counts up (a spec is dropped with its last user).
        self._probes: dict[str, ProbeSpec] = {}
        self._probe_users: dict[str, set[str]] = {}
        self._probes_changed = 0
        self._closed: set[str] = set()     # closed agreements: never watched again
        self._bad_peers_logged: set[tuple] = set()  # (peer, agreement, period, reason) already logged
        self._withheld: dict[tuple, float] = {}     # (agreement, period, reason) -> when it was logged
        self._prometheus_asked: dict[tuple, float] = {}   # (sample key, period) -> when its counts were read
        self._discovered_to: int | None = None   # the last block whose AgreementCreated logs were read
        self._closed_checked_to: int | None = None   # ... and whose Closed logs of the watched agreements were
        self._not_ours: set[str] = set()          # agreements seen that do not name this oracle
        self.last_discovery: dict[str, int] = {}
        self._skewed = False                        # the clocks disagree by more than max_clock_skew now
        self.problem: str | None = None     # why this oracle cannot sign now (a corrupt store); /healthz says it
        self._unreachable = False           # the node did not answer at start: connect from the work loop
        self._losing_since: float | None = None  # the first sample the store could not write, in this outage
        self._lost = 0
        self.chain_id: int | None = None
        # This machine's clock, the one the samples carry: signing waits for it as well as for the chain's.
        self.clock = time.time
        self._lock = threading.Lock()
        self._local = threading.local()
        self._stores: list[Store] = []
        self.writer: GroupWriter | None = None   # while the daemon runs: the probes' samples, a group a second
        self._sealed_before = 0     # unix hour up to which seal_hours has run (this process)
        self._ready: list | None = None   # in a round: the quorums gathered, settled together at its end
        self._batching: dict[str, bool] = {}   # factory address -> whether it has settleBatch
        self.exit_code = 0

    @property
    def store(self) -> Store:
        """This thread's connection: the probe loop, the chain worker and the HTTP server each have one
        (SQLite connections are not shared between threads; WAL lets them work side by side)."""
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = Store(self.config.store)
            with self._lock:
                self._stores.append(store)
        return store

    # ------------------------------------------------------------ running

    def run(self) -> int:
        try:
            asyncio.run(self._main())
        except KeyboardInterrupt:
            pass
        log("stopped")
        return self.exit_code

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        self.store  # noqa: B018 - open (and check) the database before anything else starts
        try:
            self.connect()
        except Unreachable as exc:
            # Measuring must not wait for the chain: the samples of the node's downtime are evidence too. The
            # agreements this store watched are probed from their terms; the chain part retries every poll.
            self._unreachable = True
            log("chain-unreachable", error=str(exc), retry_every_s=self.config.poll,
                probing=self.restore_probes())
        self.server = ReportServer(self._lookup, self.metrics, self.config.listen_host, self.config.listen_port,
                                   problem=self.health_problem).start()
        log("started", oracle=self.account.address, url=self.server.url, chain_id=self.chain_id,
            factory=self.config.factory)
        try:
            self.writer = GroupWriter(self._store_samples).start()
            async with Prober(control=self.config.control) as prober:
                scheduler = Scheduler(self._probe_with(prober), self._on_sample)
                probes = asyncio.create_task(scheduler.run())
                worker = loop.run_in_executor(None, self._work_loop)
                scheduled: dict[str, ProbeSpec] = {}
                seen_change = 0
                while not self._stop.is_set():
                    if seen_change != self._probes_changed:
                        with self._lock:
                            wanted, seen_change = dict(self._probes), self._probes_changed
                        for key in scheduled.keys() - wanted.keys():
                            scheduler.remove(key)
                        for key in wanted.keys() - scheduled.keys():
                            scheduler.add(wanted[key])
                        scheduled = wanted
                    await asyncio.sleep(0.2)
                scheduler.stop()
                await asyncio.wait_for(probes, timeout=10)
                await worker
        finally:
            if self.writer is not None:
                self.writer.close()     # the samples queued so far are stored before the daemon stops
                self.writer = None
            self.server.stop()
            for store in self._stores:
                try:
                    store.close()
                except Exception:  # noqa: BLE001 - a connection of a thread that has gone; the OS closes it
                    pass

    def _probe_with(self, prober: Prober):
        async def probe(spec: ProbeSpec) -> Sample:
            sample = await prober.probe(spec)
            labels = (spec.service, spec.target)
            self.metrics.probes.labels(*labels).inc()
            if sample.status == Status.DOWN:
                self.metrics.failures.labels(*labels).inc()
            if sample.latency_ms is not None:
                self.metrics.latency.labels(*labels).observe(sample.latency_ms / 1000)
            return sample
        return probe

    def _on_sample(self, sample: Sample) -> None:
        """A probe's sample: queued for the group writer while the daemon runs (one transaction a second, on its
        own thread: a crash loses at most the last second's samples), else stored at once."""
        if self.writer is not None:
            self.writer.put(sample)
        else:
            self._store_samples([sample])

    def _store_samples(self, samples: list[Sample]) -> None:
        try:
            self.store.append(samples)
        except (StoreError, sqlite3.OperationalError, OSError) as exc:  # a full disk, an I/O error: they are lost
            self.metrics.samples_lost.inc(len(samples))
            self.metrics.last_error.set_to_current_time()
            self._lost += len(samples)
            if self._losing_since is None:
                self._losing_since = samples[0].time
                log("samples-lost", error=str(exc), service=samples[0].service, samples=len(samples),
                    hint="free space for the store; the oracle stores samples again as soon as it can")
            return
        sample = samples[0]
        if self._losing_since is not None:
            # Said and kept: the hole is evidence an auditor (and `sla-oracle status`) must see.
            hole = {"from": self._losing_since, "to": sample.time, "samples": self._lost}
            log("samples-stored-again", lost=self._lost, since=self._losing_since)
            try:
                self.store.set_state("lost_samples", (self.store.get_state("lost_samples") or []) + [hole])
            except (StoreError, sqlite3.OperationalError, OSError):
                return  # still no room for the record of the hole: try again with the next sample
            self._losing_since, self._lost = None, 0

    def health_problem(self) -> str | None:
        """What /healthz reports: a corrupt store, or samples being lost now."""
        if self.problem:
            return self.problem
        if self._losing_since is not None:
            return f"losing samples since {self._losing_since:.0f} ({self._lost} so far): the store cannot write"
        return None

    def connect(self) -> None:
        """The chain part: connect, then refuse another chain or a factory without code (ChainChanged, NoFactory)."""
        chain = Chain.connect("oracle", url=self.config.rpc_url, expect_chain_id=self.config.chain_id)
        self.chain, self.chain_id = chain, chain.w3.eth.chain_id
        self.contracts = Contracts(chain)
        self.factory = self.contracts.factory_at(self.config.factory)
        self.check_chain()
        self.check_factory()

    def restore_probes(self) -> int:
        """Schedule the probes of the agreements this store watched (recorded as they were discovered), from their
        terms files, without the chain. Returns how many agreements."""
        restored = 0
        for address, doc_hash in (self.store.get_state("watching") or {}).items():
            terms = self.terms_by_hash.get(bytes.fromhex(doc_hash.removeprefix("0x")))
            if terms is None or address in self._closed:
                continue
            self.start_probes(address, terms)
            restored += 1
        return restored

    def start_probes(self, address: str, terms: Terms) -> int:
        """Probe the agreement's services: a probe another agreement already uses gains a user, not a schedule. An
        agreement probed from the store before the chain answered and discovered again is one user. Returns how
        many probes the agreement uses."""
        specs = probed_services(terms).values()
        with self._lock:
            for spec in specs:
                users = self._probe_users.setdefault(spec.service, set())
                if not users:
                    self._probes[spec.service] = spec
                    self._probes_changed += 1
                users.add(address)
        return len({spec.service for spec in specs})

    def stop_probes(self, address: str) -> tuple[int, int]:
        """The agreement no longer uses its probes; a probe nobody uses any more stops. Returns (probes stopped,
        probes still run for other agreements)."""
        stopped = kept = 0
        with self._lock:
            for key in [k for k, users in self._probe_users.items() if address in users]:
                users = self._probe_users[key]
                users.discard(address)
                if users:
                    kept += 1
                    continue
                del self._probe_users[key], self._probes[key]
                self._probes_changed += 1
                stopped += 1
        return stopped, kept

    def probing(self) -> dict[str, set[str]]:
        """{probe key: the agreements it serves}: what the probe loop runs."""
        with self._lock:
            return {key: set(users) for key, users in self._probe_users.items()}

    def _work_loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self._unreachable:
                    try:
                        self.connect()  # another chain or no factory: handled below as in any round
                    except Unreachable:
                        self._stop.wait(self.config.poll)
                        continue
                    self._unreachable = False
                    log("chain-reachable", chain_id=self.chain_id)
                self.tick()
            except ChainChanged as exc:
                # not a bad round: every further one would sign for the wrong chain
                log("chain-changed", error=str(exc))
                self.exit_code = 2
                self._stop.set()
            except NoFactory as exc:
                # the chain is the same but the factory's code is gone: nothing it serves can be read any more
                log("no-factory", error=str(exc))
                self.exit_code = 2
                self._stop.set()
            except Exception as exc:  # noqa: BLE001 - one bad round must not stop the oracle
                self.metrics.last_error.set_to_current_time()
                if is_corruption(exc):
                    # Nothing read from this store may be signed. Probing goes on (new samples are still
                    # evidence once the store is restored); /healthz and the log say why no report comes.
                    if self.problem is None:
                        log("store-corrupt", error=str(exc))
                    self.problem = f"store corrupt, signing stopped: {exc}"
                else:
                    log("error", error=f"{exc.__class__.__name__}: {exc}")
            self._stop.wait(self.config.poll)

    # ------------------------------------------------------------ one round

    def check_chain(self) -> None:
        """The store belongs to the first chain it served, named by chain id and genesis block hash; any other
        chain, a reset one above all (same chain id, same addresses again), is refused, at start and every round."""
        identity = {"chain_id": int(self.chain_id), "genesis": to_hex(self.chain.w3.eth.get_block(0)["hash"])}
        known = self.store.get_state("chain")
        if known is None:
            self.store.set_state("chain", identity)
            return
        if known != identity:
            raise ChainChanged(
                f"the chain at {self.config.rpc_url} (chain id {identity['chain_id']}, genesis "
                f"{identity['genesis']}) is not the one {self.config.store} was written for (chain id "
                f"{known.get('chain_id')}, genesis {known.get('genesis')}): the chain was reset or replaced. "
                f"Its samples, report journal and signatures belong to the old chain; run this oracle with a new "
                f"store (move {self.config.store} aside, or set `store` to a new file)")

    def check_factory(self) -> None:
        if not self.chain.w3.eth.get_code(self.factory.address):
            raise NoFactory(f"the factory {self.factory.address} has no code on the chain at {self.config.rpc_url} "
                            f"(chain id {self.chain_id}): check `factory` in the configuration, or deploy one "
                            "with `smartsla factory deploy`")

    def tick(self) -> None:
        self.check_chain()
        self.check_factory()  # else every call to it fails as BadFunctionCallOutput, round after round
        self.seal()
        self.discover()
        self.metrics.pending.set(len(self.store.pending_reports()))
        # The contract judges "period over" by the block time, so that is the clock to follow (a dev node
        # needs a block time set, or it mines no block to move it).
        self.retire_closed()
        now = self.chain.now()
        self.check_clock(now)
        self._ready = []
        try:
            self._settle_round(now)
        finally:
            ready, self._ready = self._ready, None
        self.submit_ready(ready)

    def _settle_round(self, now: int) -> None:
        for watched in list(self.watched.values()):
            try:
                self.settle_due(watched, now)
            except (ChainChanged, NoFactory):
                raise
            except Exception as exc:  # noqa: BLE001 - one agreement's failure must not delay another's
                if is_corruption(exc):
                    raise  # not this agreement's: the store itself
                self.metrics.last_error.set_to_current_time()
                self.metrics.agreement_errors.labels(watched.agreement.address).inc()
                log("error", agreement=watched.agreement.address, error=f"{exc.__class__.__name__}: {exc}")

    def check_clock(self, chain_now: int) -> None:
        """Say loudly, once per episode, when this machine's clock and the chain's disagree by more than
        ``max_clock_skew``: samples carry this machine's time and periods end by the chain's, so a skew moves
        samples into the wrong period. Signing waits for both clocks (``report_and_settle``)."""
        skew = chain_now - self.clock()
        self.metrics.clock_skew.set(skew)
        off = abs(skew) > self.config.max_clock_skew
        if off and not self._skewed:
            log("clock-skew", chain_minus_local_s=round(skew, 1), bound_s=self.config.max_clock_skew,
                hint="check this machine's time sync (timedatectl; chrony or ntp); a period is signed only when "
                     "both clocks have passed its end. A dev node without a block time mines no block while idle, "
                     "so its latest block falls behind")
        elif self._skewed and not off:
            log("clock-agrees", chain_minus_local_s=round(skew, 1), bound_s=self.config.max_clock_skew)
        self._skewed = off

    def retire_closed(self) -> None:
        """A closed agreement has nothing left to measure or settle: stop watching it and stop its probes. Found
        from the watched agreements' ``Closed`` logs since the last round (one query for all of them, the last
        ``DISCOVERY_MARGIN`` blocks again for a reorg), all of their history on the first round and whenever the
        chain went back."""
        if not self.watched:
            return      # (the range is not moved on: an agreement watched later is checked from where it was)
        latest = self.chain.w3.eth.block_number
        if self._closed_checked_to is None or latest < self._closed_checked_to:
            first = 0
        else:
            first = max(0, self._closed_checked_to - DISCOVERY_MARGIN + 1)
        closed = self.contracts.closed_among(list(self.watched), first, latest)
        self._closed_checked_to = latest
        for address in [a for a in self.watched if a in closed]:
            self._closed.add(address)
            self._stop_watching(address, "closed")

    def _stop_watching(self, address: str, why: str) -> None:
        """Forget an agreement (closed, or gone with a chain that went back) and stop its probes."""
        self.watched.pop(address)
        stopped, kept = self.stop_probes(address)
        self._remember_watching({address: None})
        log(why, agreement=address, probes_stopped=stopped, probes_still_shared=kept)

    def seal(self) -> None:
        """Once per hour (and at start, which also seals whatever an older version left as rows): pack the
        complete hours into blocks, so that a period is read from ~720 blobs per service instead of its rows.
        The samples' own clock (this machine's) decides which hours are complete, not the chain's."""
        hour = sealable_hour(time.time())
        if hour <= self._sealed_before:
            return
        started = time.monotonic()
        blocks = self.store.seal_hours(hour * 3600)
        self._sealed_before = hour
        if blocks:
            log("sealed", blocks=blocks, before=hour * 3600, seconds=round(time.monotonic() - started, 3))

    def discover(self) -> None:
        """New agreements naming this oracle, from the factory's logs since the last round: O(new logs) a round.
        The last ``DISCOVERY_MARGIN`` blocks are read again (a reorg may have replaced them), and everything from
        block 0 on the first round and whenever the chain's head is behind the last block read (a node reset to an
        earlier state). An agreement already seen is not decoded again."""
        latest = self.chain.w3.eth.block_number
        went_back = self._discovered_to is not None and latest < self._discovered_to
        if self._discovered_to is None or went_back:
            first = 0
        else:
            first = max(0, self._discovered_to - DISCOVERY_MARGIN + 1)
        events = self.factory.created_events(first, latest)
        self._discovered_to = latest
        self.metrics_discovery(first, latest, len(events))
        if went_back:
            # the node went back to an earlier state: an agreement created after it no longer exists
            present = {e["args"]["agreement"] for e in events}
            for address in [a for a in self.watched if a not in present]:
                self._stop_watching(address, "vanished")
            self._not_ours &= present
        found: dict[str, bytes | None] = {}
        for event in events:
            address = event["args"]["agreement"]
            if address in self.watched or address in self._closed or address in self._not_ours:
                continue
            agreement = self.factory.from_event(event)
            if "oracle" not in agreement.roles(self.account.address):
                self._not_ours.add(address)
                continue
            doc_hash = self._document_hash(agreement)
            terms = self.terms_by_hash.get(doc_hash)
            if terms is None:
                if agreement.address not in self._unmatched:  # once, not on every poll
                    self._unmatched.add(agreement.address)
                    log("unmatched", agreement=agreement.address, document_hash=to_hex(doc_hash),
                        hint="add the agreement's terms file to `terms` in the oracle's configuration")
                continue
            self.watched[agreement.address] = Watched(agreement, terms)
            probes = self.start_probes(agreement.address, terms)
            found[agreement.address] = doc_hash
            log("watching", agreement=agreement.address, terms=terms.agreement, probes=probes)
        if found:
            self._remember_watching(found)     # one write a round, however many agreements it found

    def metrics_discovery(self, first: int, latest: int, events: int) -> None:
        """What the last discovery round read (tests and /metrics look at it)."""
        self.last_discovery = {"from_block": first, "to_block": latest, "events": events}

    def _remember_watching(self, changes: dict[str, bytes | None]) -> None:
        """The store keeps what it watches (``{address: document hash, or None for no longer}``), so a restart while
        the node is down probes them all the same; and which probes serve which agreements, for
        `sla-oracle status`."""
        watching = dict(self.store.get_state("watching") or {})
        for address, doc_hash in changes.items():
            if doc_hash is None:
                watching.pop(address, None)
            else:
                watching[address] = to_hex(doc_hash)
        self.store.set_state("watching", watching)
        with self._lock:
            probes = {key: {"target": self._probes[key].target, "serves": sorted(users)}
                      for key, users in self._probe_users.items()}
        self.store.set_state("probes", probes)

    def _document_hash(self, agreement: Agreement) -> bytes:
        return bytes(agreement.terms.document_hash)

    def settle_due(self, watched: Watched, now: int) -> None:
        agreement = watched.agreement
        for index in range(agreement.active_periods()):
            if index in watched.settled:
                continue
            if agreement.period_end(index) + self.config.grace > now:
                break
            record = agreement.period(index)
            if not record.state.is_open:
                watched.settled.add(index)
                self._settled_elsewhere(agreement, index, record.state)
                continue
            self.report_and_settle(watched, index)

    def _settled_elsewhere(self, agreement: Agreement, index: int, state: PeriodState) -> None:
        """Peers (or the fallback) settled a period this oracle signed: the chain is the truth, so the journal,
        `sla-oracle status` and the log say so (settled or already-settled, for every period signed)."""
        intent = self.store.report(self.chain_id, agreement.address, index)
        if intent is None:
            return
        bundle = self.bundle_dir(agreement, index)
        unsigned = bundle.is_dir() and not (bundle.parent / f"{bundle.name}.report.json").exists()
        if intent.coverage is not None and unsigned:
            # Killed between writing the bundle and signing (or writing the signature beside it), then the peers
            # settled: sign the persisted values now, so the bundle this oracle wrote is vouched for to auditors.
            own = sign_once(self.store, agreement, self.account, index, list(intent.values), list(intent.coverage),
                            intent.evidence_root)
            self.write_signed_report(agreement, index, own)
        if intent.status in FINAL_STATUSES:
            return
        self.store.record_submission(self.chain_id, agreement.address, index, None, "already-settled")
        self.metrics.settlements.labels("already-settled").inc()
        log("already-settled", agreement=agreement.address, period=index, state=state.name.lower())

    def period_columns(self, watched: Watched, index: int) -> EvidenceColumns:
        """The samples the period's values depend on, as columns straight from the store (service index =
        position in the terms, canonical order): the period itself and, per service, the end of the previous
        period from its last ``up`` sample on, so that an outage running across the boundary counts from its
        first failed sample (only an ``up`` breaks a run, so nothing before it matters)."""
        agreement = watched.agreement
        start, end = agreement.period_start(index), agreement.period_end(index)
        previous = agreement.period_start(max(0, index - 1))
        # only the services with samples of their own: one measured from another's (samples_from) or from counts
        # has none, whatever was imported under its name
        # Each such service reads its shared probe's samples and those under its own key (imports, and what versions
        # before shared probes stored): the same rows one key held before, so the values are those of one key.
        own = [i for i, s in enumerate(watched.terms.services) if s.samples_from is None and not s.from_events]
        probed = probed_services(watched.terms)
        keys, position = [], []
        for i in own:
            service = watched.terms.services[i]
            for key in ([probed[service.id].service] if service.id in probed else []) + \
                    [sample_key(agreement.address, service.id)]:
                keys.append(key)
                position.append(i)
        # one start per service: its last up sample before the period, whichever of its keys holds it
        last_up: dict[int, float] = {}
        for i, key in zip(position, keys):
            t = self.store.last_up_before(key, start, previous) if start > previous else None
            if t is not None:
                last_up[i] = max(t, last_up.get(i, t))
        starts = [last_up.get(i, previous) for i in position]
        columns = self.store.columns(keys, starts, end)
        index = np.asarray(position, dtype=np.int64)
        merged = replace(columns, service_ids=watched.terms.service_ids,
                         service=index[columns.service] if len(columns) else columns.service)
        return merged.canonical() if len(keys) > len(own) else merged

    def report_and_settle(self, watched: Watched, index: int) -> None:
        agreement = watched.agreement
        persisted = self.store.report(self.chain_id, agreement.address, index)
        if persisted is None:
            if not self._over_here(agreement, index):
                return
            if self.writer is not None:
                self.writer.flush()     # the period's last samples may still be queued
            measured = self.measure(watched, index)
            if measured is None:
                return
            values, coverage, root = measured
        elif persisted.coverage is None:
            self._withhold(agreement, index, "old-intent", "persisted by an sla-oracle from before reports carried "
                           "coverage: it cannot be signed in today's form; the peers or the fallback settle it")
            return
        else:
            # Signed (or about to be) before a restart: those values and that bundle are final, even if
            # samples arrived since. Never compute a second opinion for the same period.
            values, coverage, root = list(persisted.values), list(persisted.coverage), persisted.evidence_root
        own = sign_once(self.store, agreement, self.account, index, values, coverage, root)
        self.write_signed_report(agreement, index, own)
        if persisted is None:
            self.metrics.reports.inc()
            log("signed", agreement=agreement.address, period=index, values=list(own.values),
                coverage=list(own.coverage), evidence_root=to_hex(own.evidence_root))
        reports = {own.signer: own}
        for peer in self.config.peers:
            report = self.peer_report(peer, agreement, index)
            if report is not None and report.signer not in reports:
                reports[report.signer] = report
        quorum = int(agreement.terms.quorum)
        if len(reports) < quorum:
            log("waiting", agreement=agreement.address, period=index, reports=len(reports), quorum=quorum)
            return
        missing = agreement.missing_consents()
        if missing:
            # the contract settles nothing before both parties consented; the signed report keeps until they do
            key = (agreement.address, index, "not-binding")
            if key not in self._withheld:
                self._withheld[key] = time.time()
                log("not-binding", agreement=agreement.address, period=index, missing=missing,
                    detail="the agreement does not bind both parties yet; the report is signed and is submitted "
                           "once they have consented")
            return
        chosen = most_complete(reports.values(), quorum)
        if self._ready is not None:
            self._ready.append((watched, index, chosen))     # a round's settlements go in batches at its end
            return
        self.submit_one(watched, index, chosen)

    def submit_one(self, watched: Watched, index: int, chosen: list[SignedReport]) -> None:
        agreement = watched.agreement
        try:
            outcome = submit(agreement, self.account, index, chosen, store=self.store)
        except SubmitError as exc:
            self.metrics.last_error.set_to_current_time()
            log("submit-failed", agreement=agreement.address, period=index, error=str(exc))
            return
        self.metrics.settlements.labels(outcome.status).inc()
        watched.settled.add(index)
        log(outcome.status, agreement=agreement.address, period=index, tx=outcome.tx_hash, reports=len(chosen),
            coverage=[list(r.coverage) for r in chosen])

    def submit_ready(self, ready: list[tuple[Watched, int, list[SignedReport]]]) -> None:
        """The round's quorums, settled in ``settleBatch`` transactions of at most ``BATCH_SIZE`` per factory
        (one transaction and its base cost for many periods), or one by one where there is only one or the
        factory predates batches."""
        by_factory: dict[str | None, list[tuple[Watched, int, list[SignedReport]]]] = {}
        for item in ready:
            factory = item[0].agreement.factory
            by_factory.setdefault(None if factory is None else factory.address, []).append(item)
        for address, items in by_factory.items():
            factory = items[0][0].agreement.factory
            if address is None or len(items) == 1 or not self._batches_supported(factory):
                for item in items:
                    self.submit_one(*item)
                continue
            for first in range(0, len(items), BATCH_SIZE):
                chunk = items[first:first + BATCH_SIZE]
                watched_of = {(w.agreement.address, i): w for w, i, _ in chunk}
                reports_of = {(w.agreement.address, i): r for w, i, r in chunk}
                outcomes = submit_batch(factory, self.account, [(w.agreement, i, r) for w, i, r in chunk],
                                        store=self.store)
                for o in outcomes:
                    key = (o.agreement.address, o.period)
                    if o.status in ("failed", "retry"):
                        self.metrics.last_error.set_to_current_time()
                        log("submit-failed", agreement=o.agreement.address, period=o.period, error=o.detail,
                            batch=len(chunk), retry=o.status == "retry")
                        continue
                    self.metrics.settlements.labels(o.status).inc()
                    watched_of[key].settled.add(o.period)
                    chosen = reports_of[key]
                    log(o.status, agreement=o.agreement.address, period=o.period, tx=o.tx_hash,
                        reports=len(chosen), coverage=[list(r.coverage) for r in chosen], batch=len(chunk))

    def _batches_supported(self, factory) -> bool:
        known = self._batching.get(factory.address)
        if known is None:
            known = self._batching[factory.address] = factory.supports_batch()
        return known

    def _over_here(self, agreement: Agreement, index: int) -> bool:
        """Whether the period (and the grace for its last samples) is over by this machine's clock too, the one its
        samples carry: a chain whose time runs ahead must not make this oracle sign a period it is still measuring."""
        end = agreement.period_end(index) + self.config.grace
        left = end - self.clock()
        if left <= 0:
            return True
        self._withhold(agreement, index, "not-over-here", f"the chain says period {index} is over; this machine's "
                       f"clock says it ends (with grace) in {left:.0f} s: signing waits for both")
        return False

    def _withhold(self, agreement: Agreement, index: int, reason: str, detail: str, **fields: Any) -> None:
        """A period this oracle does not sign: counted and logged once per agreement, period and reason."""
        key = (agreement.address, index, reason)
        if key in self._withheld:
            return
        self._withheld[key] = time.time()
        self.metrics.withheld.labels(reason).inc()
        log("not-signed", agreement=agreement.address, period=index, reason=reason, detail=detail, **fields)

    def bundle_dir(self, agreement: Agreement, index: int) -> Path:
        """Where this oracle writes the evidence bundle of a period (its signed report lies beside it)."""
        return Path(self.config.evidence_dir) / agreement.address / f"period-{index}"

    def write_signed_report(self, agreement: Agreement, index: int, report: SignedReport) -> None:
        """``period-N.report.json`` beside the bundle ``period-N``: the signature over its root, so that an auditor
        can hold this oracle to the bundle even when the contract settled without its report. Beside, not inside:
        the bundle is exactly what was signed. Written whole or not at all, the same bytes on every call."""
        bundle = self.bundle_dir(agreement, index)
        if not bundle.is_dir():
            return
        body = json.dumps({"agreement": agreement.address, "chain_id": self.chain_id, "period": index,
                           "oracle": report.signer, "values": list(report.values),
                           "coverage": list(report.coverage), "evidence_root": to_hex(report.evidence_root),
                           "signature": to_hex(report.signature)}, indent=1)
        target = bundle.parent / f"{bundle.name}.report.json"
        if target.exists() and target.read_text() == body:
            return
        tmp = bundle.parent / f".{bundle.name}.report.json.tmp"
        tmp.write_text(body)
        os.replace(tmp, target)

    def peer_report(self, peer: str, agreement: Agreement, index: int) -> SignedReport | None:
        """A peer's report, only if it is a valid signature of an oracle of this agreement. A peer is untrusted
        input: whatever it answers (garbage, values outside uint32, a body trickled past the deadline) is refused
        here, counted, logged once per peer, period and reason, and never stops this round or another agreement's."""
        try:
            found = fetch_report(peer, self.chain_id, agreement.address, index, deadline_s=PEER_DEADLINE_S)
        except PeerError as exc:
            return self._bad_peer(peer, agreement, index, exc.reason, str(exc))
        if not found:
            return None
        try:
            values = tuple(_uint32(v) for v in found["values"])
            coverage = tuple(_uint32(c) for c in found["coverage"])
            root = bytes.fromhex(str(found["evidenceRoot"]).removeprefix("0x"))
            signature = bytes.fromhex(str(found["signature"]).removeprefix("0x"))
        except (KeyError, TypeError, ValueError, AttributeError):
            return self._bad_peer(peer, agreement, index, "malformed",
                                  "not a report of values, coverage, root and signature")
        n = len(agreement.terms.services)
        if len(root) != 32 or len(values) != n or len(coverage) != n or max(coverage, default=0) > PPM:
            return self._bad_peer(peer, agreement, index, "malformed",
                                  "wrong root length, number of values or coverages, or a coverage above 100%")
        try:
            signer = agreement.report_signer(index, values, coverage, root, signature)
        except Exception:  # noqa: BLE001 - whatever the encoder makes of hostile bytes, it is not a report
            signer = None
        if signer is None or signer not in agreement.terms.oracles:
            return self._bad_peer(peer, agreement, index, "bad-signature", "not signed by an oracle of this agreement")
        if min(coverage, default=0) < agreement.terms.min_coverage:
            # signed, but the contract would refuse it, and the whole settlement with it
            return self._bad_peer(peer, agreement, index, "low-coverage",
                                  f"coverage {list(coverage)} below the terms' {agreement.terms.min_coverage} ppm")
        return SignedReport(values, coverage, root, signature, signer)

    def _bad_peer(self, peer: str, agreement: Agreement, index: int, reason: str, detail: str) -> None:
        self.metrics.bad_peer_reports.labels(peer, reason).inc()
        key = (peer, agreement.address, index, reason)
        if key not in self._bad_peers_logged:
            self._bad_peers_logged.add(key)
            log("bad-peer-report", peer=peer, agreement=agreement.address, period=index, reason=reason,
                detail=detail)
        return None

    def measure(self, watched: Watched, index: int) -> tuple[list[int], list[int], bytes] | None:
        """The period's values and coverage from this oracle's samples, and the root of the evidence bundle it
        writes; None, and nothing written, when it measured less of a service than the terms' ``min_coverage``.

        Columns all the way (store -> compute_periods -> evidence): no Python object per sample."""
        agreement = watched.agreement
        start, end = agreement.period_start(index), agreement.period_end(index)
        context = self.period_columns(watched, index)
        events = self.period_events(watched, index)
        results = compute_periods(watched.terms, context.sample_columns(), agreement.maintenance_windows(),
                                  start=watched.start, events=events)
        ids = watched.terms.service_ids
        values = [results[index].values[sid] for sid in ids]
        coverage = [results[index].coverage[sid] for sid in ids]
        minimum = int(agreement.terms.min_coverage)
        short = {sid: c for sid, c in zip(ids, coverage) if c < minimum}
        if short:
            # An oracle that saw little of the period must not outvote those that saw it: values measured from a
            # few slices (or none, which read as 100%) are not signed. Samples imported later can still lift it.
            key = (agreement.address, index, "low-coverage")
            if self._withheld.get(key, 0) and time.time() - self._withheld[key] > REMEASURE_S:
                del self._withheld[key]   # re-measured after an import, still short: say so again
            self._withhold(agreement, index, "low-coverage",
                           f"measured {', '.join(f'{sid} {c / 10_000:g}%' for sid, c in short.items())} of the "
                           f"period, below the terms' min_coverage {minimum / 10_000:g}%",
                           coverage=dict(zip(ids, coverage)), min_coverage=minimum)
            return None
        bundle = self.bundle_dir(agreement, index)
        root = build_bundle_columns(bundle, agreement.address, self.chain_id, index, start, end,
                                    context.between(start, end), dict(zip(ids, values)),
                                    coverage=dict(zip(ids, coverage)), events=events.between(start, end))
        return values, coverage, root

    def period_events(self, watched: Watched, index: int) -> EventColumns:
        """The counts of the period's services measured from events, as columns from the store (index = position
        in the terms), after reading what the terms' Prometheus sources hold for the period into it."""
        agreement, terms = watched.agreement, watched.terms
        start, end = agreement.period_start(index), agreement.period_end(index)
        for service in terms.services:
            if service.events is not None:
                self._read_prometheus_counts(watched, index, service)
        keys = [sample_key(agreement.address, s.id) for s in terms.services]
        return self.store.event_columns(keys, start, end).with_service_ids(terms.service_ids)

    def _read_prometheus_counts(self, watched: Watched, index: int, service) -> None:
        """One service's counts of one period from Prometheus into the store: one range query per expression at
        the service's slice step, each point the count of the slice that ends there. At most every
        ``PROMETHEUS_RETRY_S`` per period, and not at all once every slice of the period is stored."""
        agreement, terms = watched.agreement, watched.terms
        slice_seconds = service.slice or terms.measurement.slice
        start, end = agreement.period_start(index), agreement.period_end(index)
        key = sample_key(agreement.address, service.id)
        if self.store.event_count_between(key, start, end) >= (end - start) // slice_seconds:
            return
        asked = self._prometheus_asked.get((key, index))
        if asked is not None and time.time() - asked < PROMETHEUS_RETRY_S:
            return
        self._prometheus_asked[(key, index)] = time.time()
        url = service.events.url or self.config.prometheus
        if url is None:
            self._withhold(agreement, index, "no-prometheus", f"{service.id} reads its counts from Prometheus but "
                           "neither its terms (events.prometheus.url) nor this oracle's config (prometheus) name "
                           "a server; set prometheus: in oracle.yaml, or import the counts with sla-oracle import "
                           "--events")
            return
        expressions = {"good": service.events.good, "total": service.events.total}
        if service.events.tolerating is not None:
            expressions["tolerating"] = service.events.tolerating
        try:
            answers = {name: query_range_counts(url, expr, start + slice_seconds, end, slice_seconds,
                                                timeout=PROMETHEUS_TIMEOUT_S)
                       for name, expr in expressions.items()}
        except (PrometheusError, ValueError) as exc:
            self._withhold(agreement, index, "prometheus-unreadable", f"{service.id}: {exc}; retried every "
                           f"{PROMETHEUS_RETRY_S:g} s while the period is unsigned")
            return
        rows, refused = [], []
        for t, total in sorted(answers["total"].items()):
            if t not in answers["good"] or ("tolerating" in answers and t not in answers["tolerating"]):
                continue    # an expression without a value at this step: a gap, not a zero
            good, tolerating = answers["good"][t], answers.get("tolerating", {}).get(t, 0)
            if good + tolerating > total:
                refused.append(t)
                continue
            rows.append(EventRow(key, (t - slice_seconds) * 1_000_000, slice_seconds, good, tolerating, total,
                                 f"prometheus {url}"))
        if refused:
            self._withhold(agreement, index, "prometheus-counts-refused",
                           f"{service.id}: {len(refused)} slice(s) where good exceeds total (first ending at "
                           f"{refused[0]}); they are left out as gaps")
        try:
            self.store.append_events(rows)
        except EventConflict as exc:
            # what the store holds was read first (or imported); it stays the record
            self._withhold(agreement, index, "prometheus-disagrees", str(exc))

    # ------------------------------------------------------------ serving

    def _lookup(self, chain_id: int, agreement: str, period: int) -> dict[str, Any] | None:
        intent = self.store.report(chain_id, agreement, period)
        if intent is None:
            return None
        signature = intent.signatures.get(self.account.address) or next(iter(intent.signatures.values()), None)
        if signature is None:
            return None
        if intent.coverage is None:
            return None  # persisted before reports carried coverage: no report a peer could submit
        return {"values": list(intent.values), "coverage": list(intent.coverage),
                "evidenceRoot": to_hex(intent.evidence_root), "signature": to_hex(bytes(signature)),
                "signer": self.account.address}
