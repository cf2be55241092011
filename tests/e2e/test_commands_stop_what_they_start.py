"""Every command stops what it starts, errors included: `--network anvil` starts a throwaway anvil, which must be
gone when the command ends, whether it succeeded or refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.anvil


def _anvils_started_by(pid: int) -> list[int]:
    """anvil processes whose parent was ``pid`` (orphans are re-parented, so read the environment marker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"anvil") and f"SMARTSLA_TEST_MARK={pid}".encode() in env:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("args", [
    ("list",),                                           # succeeds: nothing on a fresh chain
    ("status", "0x" + "12" * 20),                        # refused: no contract there (exit 2)
    ("fund", "0x" + "12" * 20, "--periods", "1"),        # refused before any transaction
])
def test_network_anvil_leaves_no_anvil_behind(args, tmp_path):
    mark = os.getpid()
    env = {**os.environ, "SMARTSLA_HOME": str(tmp_path), "SMARTSLA_TEST_MARK": str(mark)}
    env.pop("SMARTSLA_NETWORK", None)
    proc = subprocess.run([sys.executable, "-m", "smartsla.cli", args[0], "--network", "anvil", *args[1:]],
                          env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode in (0, 2, 3), proc.stderr
    assert _anvils_started_by(mark) == [], f"smartsla {' '.join(args)} left anvil running"
