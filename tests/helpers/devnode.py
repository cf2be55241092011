"""A ``development`` node of our own for the end-to-end tests, and the ``smartsla`` command run against it as a
separate process, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from smartsla.chain.anvil import free_port

ROOT = Path(__file__).resolve().parents[2]


class DevNode:
    """A `development` node of our own (`smartsla node start`) in a private SMARTSLA_HOME on a free port, and a way
    to run the `smartsla` command against it as a separate process, as a user would."""

    def __init__(self, home: Path):
        self.home = home
        self.port = free_port()
        self.env = {**os.environ, "SMARTSLA_HOME": str(home), "SMARTSLA_NODE_PORT": str(self.port),
                    "SMARTSLA_NETWORK": "development"}
        self.env.pop("SMARTSLA_ACCOUNT", None)
        self.url = f"http://127.0.0.1:{self.port}"

    def run(self, *args: str, check: bool = True, json_out: bool = False, timeout: float = 120):
        proc = subprocess.run([sys.executable, "-m", "smartsla.cli", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, cwd=ROOT)
        if check and proc.returncode != 0:
            raise AssertionError(f"smartsla {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return json.loads(proc.stdout) if json_out else proc
