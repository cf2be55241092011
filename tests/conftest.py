"""Fixtures for every folder: the build, and a fresh chain per test, embedded and a real anvil (tests/helpers/chains.py).

The folders mirror the source: contracts/ (the Solidity, through the client), smartsla/ and oracle/ (each room of the
library and the oracle), e2e/ (the commands as separate processes against a node, as users run them).
"""

from __future__ import annotations

import pytest

from smartsla.chain.build import compile_contracts
from smartsla.chain.chain import Chain
from smartsla.onchain.client import Contracts
from tests.helpers.chains import CHAINS
from tests.helpers.world import World, make_world


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


# The folders of the long real-time tests (real daemons, real periods, whole doc pages) and the state machines run
# first: with two workers, a long test collected last keeps one worker busy after the other has run out of work;
# collected first, the short tests fill in around it. The sort is stable, so each module's tests stay together.
LONG_FIRST = ("tests/docs/", "tests/e2e/", "tests/faults/", "tests/contracts/test_stateful.py")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: not item.nodeid.startswith(LONG_FIRST))
