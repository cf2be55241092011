"""The probes' samples reach the store in groups, one transaction a second on a thread of its own. A crash (kill -9)
loses at most the samples of the last second and a group in flight, never a committed one; flush waits for what
was queued; close writes what is left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from oracle.store.store import Store
from oracle.store.writer import GroupWriter
from smartsla.measure.samples import Sample, Status

ROOT = Path(__file__).resolve().parents[2]
KEY = "0x5FbDB2315678afecb367f032d93F642f64180aa3:api"


def sample(i: int) -> Sample:
    return Sample(1_800_000_000 + i / 100, KEY, Status.UP, 1.0, "200")


def test_flush_waits_for_what_was_queued_and_close_writes_the_rest(tmp_path):
    batches: list[int] = []

    def write(samples):       # on the writer's thread, with a connection of its own
        batches.append(len(samples))
        _append(tmp_path, samples)

    writer = GroupWriter(write, every=60, most=1000).start()    # only flush, size and close write here
    for i in range(5):
        writer.put(sample(i))
    assert writer.flush(timeout=10)
    assert _count(tmp_path) == 5 and batches == [5]
    writer.most = 3
    for i in range(5, 8):
        writer.put(sample(i))
    deadline = time.monotonic() + 10
    while _count(tmp_path) < 8 and time.monotonic() < deadline:   # the size bound woke the writer
        time.sleep(0.02)
    assert _count(tmp_path) == 8 and batches == [5, 3]
    writer.put(sample(8))
    writer.close()
    assert _count(tmp_path) == 9 and writer.flush(timeout=1)


def test_a_failing_group_does_not_stop_the_writer(tmp_path):
    calls = []

    def write(samples):
        calls.append(len(samples))
        if len(calls) == 1:
            raise RuntimeError("a bug in the write path")
        _append(tmp_path, samples)

    writer = GroupWriter(write, every=60).start()
    writer.put(sample(0))
    assert writer.flush(timeout=10)
    writer.put(sample(1))
    assert writer.flush(timeout=10)
    writer.close()
    assert calls == [1, 1] and _count(tmp_path) == 1


def _append(tmp_path, samples):
    with Store(tmp_path / "o.db") as s:
        s.append(samples)


def _count(tmp_path) -> int:
    with Store(tmp_path / "o.db") as s:
        return s.count(KEY)


CHILD = """
import sys, time
from oracle.store.store import Store
from oracle.store.writer import GroupWriter
from smartsla.measure.samples import Sample, Status
def write(samples):   # on the writer's thread: a connection of its own, as the daemon's thread-local store
    with Store(sys.argv[1]) as store:
        store.append(samples)
writer = GroupWriter(write).start()
i = 0
while True:
    writer.put(Sample(1_800_000_000 + i / 100, %r, Status.UP, 1.0, "200"))
    print(i, flush=True)
    i += 1
    time.sleep(0.005)
""" % KEY


def test_kill_9_loses_at_most_the_last_second(tmp_path):
    db = tmp_path / "o.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    queued_at: dict[int, float] = {}
    try:
        started = time.monotonic()
        while time.monotonic() - started < 2.6:     # a group interval of 3 s would have stored nothing yet
            line = child.stdout.readline()
            queued_at[int(line)] = time.monotonic()
        killed_at = time.monotonic()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    with Store(db) as store:
        assert store.integrity_check() == "ok"
        stored = {round((s.time - 1_800_000_000) * 100) for s in store.samples(KEY)}
    # everything queued more than a second (the group interval) and a commit's time before the kill is stored
    old = {i for i, at in queued_at.items() if at < killed_at - 1.0 - 0.5}
    assert old and old <= stored, sorted(old - stored)[:10]
    assert stored <= set(queued_at) | {max(queued_at) + 1}     # nothing that was never queued
    lost = set(queued_at) - stored
    assert lost and max(queued_at[i] for i in lost) - min(queued_at[i] for i in lost) <= 1.5, \
        "only the last second's samples may be lost"
