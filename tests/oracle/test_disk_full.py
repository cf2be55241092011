"""A full disk under the store: samples were lost with only a traceback on stderr each time (no event, no metric,
`status` normal). Now the loss is logged once, counted, shown by /healthz while it lasts and by `sla-oracle
status` afterwards, and storing resumes by itself when space returns.

The store sits on a real 1 MB tmpfs that the test mounts and fills: a real ENOSPC, not an injected error. Mounting
needs root (or password-less sudo), as `make test`'s package installs do; without either the test fails and says
why, rather than skip."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from eth_account import Account

from oracle.cli import main as oracle_main
from oracle.config import load_config
from oracle.daemon import OracleDaemon
from oracle.store.store import Store
from smartsla.measure.samples import Sample, Status

KEY = "0x" + "ab" * 20 + ":api"


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    mounted = subprocess.run([*sudo, "mount", "-t", "tmpfs", "-o", "size=1m,mode=1777", "tmpfs", str(mount)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"the test mounts a small tmpfs, which needs root or password-less sudo: {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run([*sudo, "umount", "-l", str(mount)], check=False)


def fill(directory, name="filler") -> None:
    with open(directory / name, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:  # ENOSPC: the disk is full now
            pass


def test_lost_samples_are_said_counted_and_recorded_and_storing_resumes(small_disk, tmp_path, capsys):
    config = tmp_path / "oracle.yaml"
    config.write_text(f"rpc_url: http://127.0.0.1:1\nfactory: '0x{'11' * 20}'\nkey: {{env: K}}\n"
                      f"store: {small_disk / 'oracle.db'}\n")
    daemon = OracleDaemon(load_config(config), Account.create())
    t0 = 1_800_000_000
    daemon._on_sample(Sample(t0, KEY, Status.UP))
    assert daemon.health_problem() is None
    fill(small_disk)
    for i in range(1, 200):  # the WAL takes a while to run out of pages: write until the disk refuses
        daemon._on_sample(Sample(t0 + i, KEY, Status.DOWN, None, "x" * 200))
        if daemon._lost >= 5:
            break
    assert daemon._lost >= 5
    lost = daemon._lost
    assert daemon.health_problem().startswith("losing samples since")
    assert daemon.metrics.samples_lost._value.get() == lost
    (small_disk / "filler").unlink()  # space returns
    daemon._on_sample(Sample(t0 + 500, KEY, Status.UP))
    assert daemon.health_problem() is None
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    names = [e["event"] for e in events]
    assert names.count("samples-lost") == 1 and names.count("samples-stored-again") == 1
    assert next(e for e in events if e["event"] == "samples-stored-again")["lost"] == lost
    for store in daemon._stores:
        store.close()
    with Store(small_disk / "oracle.db", read_only=True) as store:
        assert store.count(KEY) >= 2  # before and after the outage
        [hole] = store.get_state("lost_samples")
        assert hole["samples"] == lost and hole["to"] == t0 + 500
    assert oracle_main(["status", "--config", str(config)]) == 0
    assert f"lost samples: {lost} between" in capsys.readouterr().out
