"""An agreement binds its provider and its customer only once each has agreed to its terms on-chain, and no period is
funded before the terms' bond is posted (issue 11, items 4 and 8, and ERC-1271 wallets as parties).

Before: anyone could create an agreement naming any provider, with the creator's own oracle keys, and the chain then
recorded "PeriodSettled: 0%, credit 100%" against a provider who never signed anything; and a bond in the terms was
never enforced, so a cap above 100% could have nothing behind it.
"""

from __future__ import annotations

from smartsla.onchain.types import PeriodState
from tests.helpers.agreement import (  # noqa: F401 - the fixtures override conftest's for speed
    any_world,
    chain,
    eth_world,
    events,
    reverts,
    shared_chain,
    shared_worlds,
    shifted,
    snapshot,
    world,
)
from tests.helpers.world import make_terms, service

FEE = 1_000 * 10**6
ZERO = "0x" + "00" * 20


def stranger_made(w, **over):
    """An agreement a stranger created in the world's provider's and customer's names."""
    return w.factory.create(w.stranger, make_terms(w, **over))


def test_an_agreement_a_stranger_made_binds_no_one_and_records_nothing_against_them(world):
    w = world
    agreement = stranger_made(w)
    assert agreement.creator() == w.stranger.address
    assert agreement.consents() == {"provider": False, "customer": False}
    # Its oracles may be the stranger's own: their reports of 0% must not stand against the provider.
    w.over(agreement, 0)
    err = reverts("NotYetBinding", agreement.settle, w.stranger, 0, w.reports(agreement, 0, [[0], [0]]))
    assert err.error_args == (False, False)
    err = reverts("NotYetBinding", agreement.settle_by_fallback, w.stranger, 0)
    assert agreement.period(0).state == PeriodState.UNFUNDED
    err = reverts("NotYetBinding", agreement.fund, w.customer, 1)
    assert err.error_args == (False, False)
    # A stranger's consent is no one's, and the customer's alone does not bind the provider.
    reverts("NotAParty", agreement.accept, w.stranger)
    agreement.accept(w.customer)
    reverts("AlreadyConsented", agreement.accept, w.customer)
    err = reverts("NotYetBinding", agreement.settle, w.stranger, 1, w.reports(agreement, 1, [[0], [0]]))
    assert err.error_args == (False, True)
    reverts("NotYetBinding", agreement.fund, w.customer, 1)
    receipt = agreement.accept(w.provider)
    assert events(agreement, receipt, "Consented") == [{"party": w.provider.address}]
    assert agreement.is_binding()
    funded = agreement.first_fundable()
    agreement.fund(w.customer, 1)
    w.over(agreement, funded)
    settled = agreement.settle(w.stranger, funded, w.reports(agreement, funded, [[999_950]] * 2))
    assert agreement.settlement(settled)["state"] == PeriodState.SETTLED


def test_creating_is_the_creators_consent_and_funding_the_customers(world):
    w = world
    agreement = w.create(accepted=False)
    assert agreement.creator() == w.provider.address
    assert agreement.consents() == {"provider": True, "customer": False}
    w.over(agreement, 0)
    reverts("NotYetBinding", agreement.settle, w.stranger, 0, w.reports(agreement, 0, [[999_950]] * 2))
    receipt = agreement.fund(w.customer, 1)
    assert events(agreement, receipt, "Consented") == [{"party": w.customer.address}]
    assert agreement.is_binding()
    agreement.settle(w.stranger, 0, w.reports(agreement, 0, [[999_950]] * 2))  # period 0 began unfunded
    assert agreement.period(0).state == PeriodState.SETTLED_UNFUNDED
    # The customer made it: its consent, and the provider's still to come.
    mine = w.factory.create(w.customer, make_terms(w))
    assert mine.consents() == {"provider": False, "customer": True}
    err = reverts("NotYetBinding", mine.fund, w.customer, 1)
    assert err.error_args == (False, True)


def test_a_signed_consent_anyone_submits_binds_only_its_signer_and_only_this_agreement(world):
    w = world
    start = w.chain.now() + 600
    agreement = stranger_made(w, start=start)
    twin = stranger_made(w, start=start)  # the very same terms, another agreement
    assert twin.encoded_terms == agreement.encoded_terms
    provider_consent = agreement.sign_consent(w.provider)
    err = reverts("BadConsent", agreement.accept_for, w.stranger, w.customer.address, provider_consent)
    assert err.error_args == (w.customer.address, w.provider.address)
    err = reverts("BadConsent", twin.accept_for, w.stranger, w.provider.address, provider_consent)
    assert err.error_args[0] == w.provider.address and err.error_args[1] != w.provider.address
    reverts("BadConsent", agreement.accept_for, w.stranger, w.provider.address, b"")
    reverts("NotAParty", agreement.accept_for, w.stranger, w.stranger.address, agreement.sign_consent(w.stranger))
    agreement.accept_for(w.stranger, w.provider.address, provider_consent)
    reverts("AlreadyConsented", agreement.accept_for, w.stranger, w.provider.address, provider_consent)
    agreement.accept_for(w.stranger, w.customer.address, agreement.sign_consent(w.customer))
    assert agreement.is_binding()
    assert twin.consents() == {"provider": False, "customer": False}


def test_a_contract_wallet_consents_and_terminates_through_erc1271(eth_world):
    w = eth_world
    owner = w.chain.account("wallet-owner")
    wallet, _ = w.contracts.deploy("RefusingWallet", owner)
    agreement = w.factory.create(w.provider, make_terms(w, customer=wallet.address, periodCount=6))
    # The owner's own signature is the wallet's only while the wallet says so.
    w.chain.transact(owner, wallet.functions.setAcceptsSignatures(False))
    err = reverts("BadConsent", agreement.accept_for, w.stranger, wallet.address, agreement.sign_consent(owner))
    assert err.error_args == (wallet.address, owner.address)
    w.chain.transact(owner, wallet.functions.setAcceptsSignatures(True))
    reverts("BadConsent", agreement.accept_for, w.stranger, wallet.address, agreement.sign_consent(w.stranger))
    agreement.accept_for(w.stranger, wallet.address, agreement.sign_consent(owner))
    assert agreement.is_binding()
    fund = agreement.fn.fund(agreement.encoded_terms, 0, 4)
    w.chain.transact(w.deployer, to=wallet.address, value=10 * FEE)
    w.chain.transact(owner, wallet.functions.execute(agreement.address, 4 * FEE, fund._encode_transaction_data()))
    # An early termination: the provider's key and the wallet's ERC-1271 signature.
    deadline = w.chain.now() + 86_400
    before = snapshot(agreement, w)
    provider_sig = agreement.sign_termination(w.provider, 1, deadline)
    reverts("BadConsent", agreement.terminate, w.stranger, 1, deadline, provider_sig,
            agreement.sign_termination(w.stranger, 1, deadline))
    receipt = agreement.terminate(w.stranger, 1, deadline, provider_sig, agreement.sign_termination(owner, 1, deadline))
    assert events(agreement, receipt, "Terminated") == [{"activePeriods": 1, "refundedPeriods": 3, "refund": 3 * FEE}]
    assert snapshot(agreement, w) == shifted(before, customer=3 * FEE, contract=-3 * FEE)


def test_no_period_is_funded_before_the_terms_bond_is_posted(any_world):
    w = any_world
    bond = 700 * 10**6
    agreement = w.create(bond=bond, capBps=20_000, periodCount=4,
                         services=[service(tiers=[(999_900, 1_000), (950_000, 15_000)])])
    err = reverts("BondNotPosted", agreement.fund, w.customer, 1)
    assert err.error_args == (bond, 0)
    agreement.post_bond(w.provider, bond - 1)
    err = reverts("BondNotPosted", agreement.fund, w.customer, 1)
    assert err.error_args == (bond, bond - 1)
    assert not agreement.bond_posted()
    agreement.post_bond(w.provider, 1)
    assert agreement.bond_posted()
    agreement.fund(w.customer, 1)
    # A credit above 100% draws on the bond; later periods can still be funded (the bond was posted in full).
    w.over(agreement, 0)
    before = snapshot(agreement, w)
    receipt = agreement.settle(w.stranger, 0, w.reports(agreement, 0, [[0], [0]]))
    drawn = agreement.settlement(receipt)["compensationFromBond"]
    assert drawn > 0 and agreement.bond_balance() == bond - drawn
    assert snapshot(agreement, w)["contract"] == before["contract"] - FEE - drawn
    later = agreement.first_fundable()
    agreement.fund(w.customer, 1)
    assert agreement.period(later).state == PeriodState.FUNDED


def test_a_party_withdraws_an_offer_not_yet_taken_up_and_gets_its_bond_back(any_world):
    w = any_world
    agreement = w.create(accepted=False, bond=500, periodCount=4)
    agreement.post_bond(w.provider, 500)
    reverts("NotYetClosable", agreement.close, w.stranger)  # a stranger cannot withdraw it for them
    before = snapshot(agreement, w)
    receipt = agreement.close(w.provider)
    assert events(agreement, receipt, "Closed") == [{"bondReturned": 500}]
    assert snapshot(agreement, w)["contract"] == before["contract"] - 500
    reverts("AgreementClosed", agreement.fund, w.customer, 1)
    reverts("AgreementClosed", agreement.accept, w.customer)
    # Once it binds both, it runs its term.
    other = w.create(accepted=False, periodCount=4)
    other.accept(w.customer)
    reverts("NotYetClosable", other.close, w.provider)
    reverts("NotYetClosable", other.close, w.customer)
