"""Fixtures: every contract test runs on the embedded chain and on a real anvil, each test on a fresh chain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support import World, make_world  # noqa: E402

from smartsla.chain.build import compile_contracts  # noqa: E402
from smartsla.chain.chain import Chain  # noqa: E402
from smartsla.onchain.client import Contracts  # noqa: E402

CHAINS = ["embedded", pytest.param("anvil", marks=pytest.mark.anvil)]


@pytest.fixture(scope="session")
def artifacts():
    return compile_contracts()


@pytest.fixture(params=CHAINS)
def chain(request):
    with Chain.connect(request.param) as c:
        yield c


@pytest.fixture
def contracts(chain, artifacts) -> Contracts:
    return Contracts(chain, artifacts)


@pytest.fixture
def world(chain, contracts) -> World:
    """Factory, a 6-decimal test token, provider, customer, three oracles and a stranger."""
    return make_world(chain, contracts, with_token=True)


@pytest.fixture
def eth_world(chain, contracts) -> World:
    """The same with ETH as the payment token."""
    return make_world(chain, contracts, with_token=False)


class DevNode:
    """A `development` node of our own (`smartsla node start`) in a private SMARTSLA_HOME on a free port, and a way
    to run the `smartsla` command against it as a separate process, as a user would."""

    def __init__(self, home: Path):
        from smartsla.chain.anvil import free_port

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


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def devnode(tmp_path):
    node = DevNode(tmp_path / "home")
    node.run("node", "start", "--block-time", "1")
    try:
        yield node
    finally:
        node.run("node", "stop", check=False)
