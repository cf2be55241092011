"""Fixtures: every contract test runs on the embedded chain and on a real anvil, each test on a fresh chain."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from smartsla.agreement import Contracts  # noqa: E402
from smartsla.build import compile_contracts  # noqa: E402
from smartsla.chain import Chain  # noqa: E402
from support import World, make_world  # noqa: E402

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
