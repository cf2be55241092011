"""Helpers shared by test_agreement.py and test_attacks.py: exact balance bookkeeping (ETH gas included),
revert expectations, event decoding and the hostile test contracts."""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils import to_checksum_address
from web3.logs import DISCARD

from smartsla.chain.chain import Chain
from smartsla.chain.reverts import Reverted
from smartsla.onchain.client import Agreement, Contracts
from tests.helpers.chains import CHAINS
from tests.helpers.world import World, make_world

# The conftest fixtures start a chain and deploy a world for every test. On the embedded chain that
# costs about a second per test, so these modules override them: one chain and one pair of worlds per
# module, and every test runs from a snapshot taken after deployment and reverted afterwards, which
# gives each test the same fresh state (timestamps included) at a fraction of the cost.


@pytest.fixture(scope="module", params=CHAINS)
def shared_chain(request):
    with Chain.connect(request.param) as c:
        yield c


@pytest.fixture(scope="module")
def shared_worlds(shared_chain, artifacts) -> tuple[World, World]:
    contracts = Contracts(shared_chain, artifacts)
    return (make_world(shared_chain, contracts, with_token=True),
            make_world(shared_chain, contracts, with_token=False))


@pytest.fixture
def chain(shared_chain, shared_worlds):
    snapshot_id = shared_chain.snapshot()
    yield shared_chain
    shared_chain.revert_to(snapshot_id)


@pytest.fixture
def world(chain, shared_worlds) -> World:
    return shared_worlds[0]


@pytest.fixture
def eth_world(chain, shared_worlds) -> World:
    return shared_worlds[1]


@pytest.fixture(params=["token", "eth"])
def any_world(request, chain, shared_worlds) -> World:
    """The world paid in the ERC-20 test token, then in ETH."""
    return shared_worlds[0 if request.param == "token" else 1]


def reverts(error: str, fn, *args: Any, **kwargs: Any) -> Reverted:
    with pytest.raises(Reverted) as info:
        fn(*args, **kwargs)
    assert info.value.error == error, f"expected {error}, got {info.value}"
    # The ABI codec gives lower-case addresses; compare them as checksummed like everything else.
    info.value.error_args = tuple(
        to_checksum_address(a) if isinstance(a, str) and len(a) == 42 and a.startswith("0x") else a
        for a in info.value.error_args)
    return info.value


def gas_paid(agreement: Agreement, receipt: dict[str, Any]) -> int:
    """What the sender paid in the agreement's currency for gas: nothing when it pays in a token."""
    if not agreement.is_eth:
        return 0
    return receipt["gasUsed"] * receipt["effectiveGasPrice"]


def snapshot(agreement: Agreement, world: World, **others: str) -> dict[str, int]:
    accounts = {"customer": agreement.terms.customer, "provider": agreement.terms.provider, **others}
    snap = {name: agreement.balance_of(addr) for name, addr in accounts.items()}
    snap["contract"] = agreement.balance()
    return snap


def shifted(before: dict[str, int], **delta: int) -> dict[str, int]:
    assert set(delta) <= set(before), f"unknown accounts {set(delta) - set(before)}"
    return {name: value + delta.get(name, 0) for name, value in before.items()}


def events(agreement: Agreement, receipt: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [dict(e["args"]) for e in getattr(agreement.contract.events, name)().process_receipt(receipt, errors=DISCARD)]


def period_states(agreement: Agreement, count: int) -> list:
    return [agreement.period(i) for i in range(count)]


def deploy_hostile_token(world: World, holders: list[str], amount: int = 10**18) -> Any:
    token, _ = world.contracts.deploy("HostileToken", world.deployer)
    for holder in holders:
        world.chain.transact(world.deployer, token.functions.mint(holder, amount))
    return token


def deploy_receiver(world: World) -> Any:
    receiver, _ = world.contracts.deploy("HostileReceiver", world.deployer)
    return receiver


def as_receiver(world: World, receiver: Any, call: Any, value: int = 0, sender=None) -> dict[str, Any]:
    """Send `call` (a bound contract function) from the receiver contract, forwarding `value`."""
    data = call._encode_transaction_data()
    return world.chain.transact(sender or world.deployer, receiver.functions.exec(call.address, data), value=value)


def accept_as_receiver(world: World, receiver: Any, agreement: Any) -> dict[str, Any]:
    """The receiver contract, a party, consents to the agreement's terms."""
    return as_receiver(world, receiver, agreement.fn.accept(agreement.encoded_terms))


RECEIVER_ACCEPT, RECEIVER_REENTER_RECORD, RECEIVER_REENTER_REFUSE, RECEIVER_BURN, RECEIVER_REFUSE = range(5)


def view(chain, fn) -> Any:
    """Call a view, turning a revert into :class:`Reverted` like ``Chain.transact`` does."""
    from smartsla.chain.reverts import REVERT_ERRORS

    try:
        return fn.call()
    except REVERT_ERRORS as exc:
        raise chain._revert_from(exc, {"to": fn.address, "data": fn._encode_transaction_data()}) from None
