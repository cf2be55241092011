"""Samples into the store in groups: one transaction (one fsync) a second for all of the probes' samples, written
by a thread of its own, instead of one transaction per sample on the probe loop.

What a crash can lose: the samples handed to :meth:`GroupWriter.put` since the last group was committed, that is
those of the last ``every`` seconds (1 s), plus a group whose transaction was in flight. Nothing committed is ever
lost, and nothing is written twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from smartsla.measure.samples import Sample

log = logging.getLogger(__name__)


class GroupWriter:
    """``put`` queues a sample (cheap, any thread); a thread of its own hands the queue to ``write`` every
    ``every`` seconds, or sooner at ``most`` samples; ``flush`` waits until everything queued before it is
    written (the daemon calls it before it measures a period). ``write`` runs on the writer's thread (so it opens
    its own SQLite connection there) and says itself what a failure lost; an exception it lets out is logged
    and the writer goes on."""

    def __init__(self, write: Callable[[list[Sample]], None], *, every: float = 1.0, most: int = 20_000) -> None:
        self._write = write
        self.every = every
        self.most = most
        self._queue: list[Sample] = []
        self._queued = 0        # samples ever queued
        self._done = 0          # samples ever handed to write (written, or counted lost by it)
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="sample-writer", daemon=True)

    def start(self) -> GroupWriter:
        self._thread.start()
        return self

    def put(self, sample: Sample) -> None:
        with self._cond:
            self._queue.append(sample)
            self._queued += 1
            if len(self._queue) >= self.most:
                self._wake.set()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every sample queued before this call is written; False if that took over ``timeout``."""
        with self._cond:
            target = self._queued
            if self._done >= target:
                return True
            self._wake.set()
            return self._cond.wait_for(lambda: self._done >= target, timeout)

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        with self._cond:
            self._stopping = True
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.every)
            self._wake.clear()
            with self._cond:
                batch, self._queue = self._queue, []
                stopping = self._stopping
            if batch:
                try:
                    self._write(batch)
                except Exception:  # noqa: BLE001 - the writer must outlive any one group; write counts its losses
                    log.exception("writing %d samples failed", len(batch))
                finally:
                    with self._cond:
                        self._done += len(batch)
                        self._cond.notify_all()
            if stopping:
                with self._cond:
                    if not self._queue:
                        return
