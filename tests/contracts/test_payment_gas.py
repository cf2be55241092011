"""Nobody can starve a contract party's ETH payment with a tight gas limit, and withdrawals need a recipient.

For every gas limit around the settle's needs, the transaction either fails as a whole or pays the contract
party in full: it never succeeds with the party's payment deferred.
"""

from __future__ import annotations

import pytest

from smartsla.chain.reverts import Reverted
from tests.helpers.world import make_terms


@pytest.mark.anvil
@pytest.mark.parametrize("chain", ["anvil"], indirect=True)
def test_tight_gas_limit_cannot_defer_a_contract_partys_payment(eth_world):
    w = eth_world
    receiver, _ = w.contracts.deploy("GasHungryReceiver", w.deployer)
    agreement = w.factory.create(w.provider, make_terms(w, provider=receiver.address))
    w.chain.transact(w.deployer, receiver.functions.consentTo(agreement.address, agreement.encoded_terms))
    agreement.fund(w.customer, 1)
    w.over(agreement, 0)
    reports = [r.as_arg() for r in w.reports(agreement, 0, [[999_500], [999_500]])]
    call = agreement.fn.settle(agreement.encoded_terms, 0, reports)
    estimate = w.chain.w3.eth.estimate_gas(call.build_transaction({"from": w.stranger.address}))
    outcomes = set()
    for limit in range(estimate - 60_000, estimate + 1, 1_000):
        snap = w.chain.snapshot()
        try:
            w.chain.transact(w.stranger, call, gas=limit)
        except Reverted:
            outcomes.add("failed")
        else:
            outcomes.add("settled")
            assert agreement.owed(receiver.address) == 0, f"payment deferred at gas limit {limit}"
            assert receiver.functions.payments().call() == 1
        w.chain.revert_to(snap)
    assert outcomes == {"failed", "settled"}


def test_withdraw_to_zero_address_is_refused(world):
    w = world
    token, _ = w.contracts.deploy("HostileToken", w.deployer)
    w.token = token
    w.mint(w.customer, 10**12)
    agreement = w.create()
    agreement.fund(w.customer, 1)
    w.chain.transact(w.deployer, token.functions.setBlocked(w.customer.address, True))
    w.over(agreement, 0)
    agreement.settle(w.stranger, 0, w.reports(agreement, 0, [[999_500], [999_500]]))
    owed = agreement.owed(w.customer.address)
    assert owed == agreement.terms.fee // 10
    with pytest.raises(Reverted) as err:
        agreement.withdraw(w.customer, "0x" + "00" * 20)
    assert err.value.error == "ZeroRecipient"
    assert agreement.owed(w.customer.address) == owed
    agreement.withdraw(w.customer, w.stranger.address)
    assert token.functions.balanceOf(w.stranger.address).call() == owed
    assert agreement.owed(w.customer.address) == 0


def test_bond_that_would_overflow_the_record_is_refused(world):
    w = world
    fee = 10**6
    agreement = w.create(fee=fee)
    big = 2**96 - fee
    w.mint(w.provider, big)
    with pytest.raises(Reverted) as err:
        agreement.post_bond(w.provider, big)
    assert err.value.error == "BondTooLarge"
    assert agreement.bond_balance() == 0
    agreement.post_bond(w.provider, big - 1)
    assert agreement.bond_balance() == big - 1
