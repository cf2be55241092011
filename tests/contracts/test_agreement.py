"""Unit tests of every SlaAgreement / SlaFactory path, on the embedded chain and on anvil.

Amounts are derived here from the terms (fee, tiers, bond), never read back from the contract under test.
"""

from __future__ import annotations

from eth_utils import keccak

from smartsla.encoding import service_bytes32
from smartsla.onchain.types import PeriodState
from tests.helpers.agreement import (  # noqa: F401 - the fixtures override conftest's for speed
    RECEIVER_REFUSE,
    accept_as_receiver,
    any_world,
    as_receiver,
    chain,
    deploy_hostile_token,
    deploy_receiver,
    eth_world,
    events,
    gas_paid,
    reverts,
    shared_chain,
    shared_worlds,
    shifted,
    snapshot,
    view,
    world,
)
from tests.helpers.world import AWS_TIERS, make_terms, service

FEE = 1_000 * 10**6
DAY = 86_400


def credit_of(fee: int, bps: int) -> int:
    return fee * bps // 10_000


# ---------------------------------------------------------------- factory


def test_create_event_carries_full_terms(world):
    doc = keccak(text="the signed terms document")
    terms = make_terms(world, documentHash=doc, periodCount=5)
    encoded = world.contracts.encode_terms(terms)
    agreement = world.factory.create(world.stranger, terms)
    [event] = events_of_factory(world, agreement.create_receipt)
    assert event["agreement"] == agreement.address
    assert event["provider"] == world.provider.address
    assert event["customer"] == world.customer.address
    assert event["termsHash"] == keccak(encoded)
    assert event["documentHash"] == doc
    assert bytes(event["terms"]) == encoded
    assert world.contracts.encode_terms(world.contracts.decode_terms(bytes(event["terms"]))) == encoded
    assert agreement.terms.document_hash == doc and agreement.terms.period_count == 5
    assert agreement.fn.termsHash().call() == keccak(encoded)
    assert agreement.active_periods() == 5
    assert agreement.fn.factory().call() == world.factory.address
    assert world.factory.contract.functions.validateTerms(encoded).call() == keccak(encoded)
    # Same terms again: a distinct agreement, found again from logs alone.
    other = world.factory.create(world.stranger, terms)
    assert other.address != agreement.address
    assert world.factory.agreement(agreement.address).encoded_terms == encoded


def events_of_factory(world, receipt):
    from web3.logs import DISCARD

    return [dict(e["args"]) for e in world.factory.contract.events.AgreementCreated().process_receipt(receipt, errors=DISCARD)]


def test_invalid_terms_rejected_naming_the_field(world):
    o = [acct.address for acct in world.oracles]
    cases = [
        ({"quorum": 0}, "quorum"),
        ({"quorum": 4}, "quorum"),
        ({"oracles": [o[0], o[1], o[0]]}, "oracles"),
        ({"services": [service(tiers=[(990_000, 3_000), (999_900, 1_000)])]}, "tiers"),
        # Same thresholds order but credits not rising is just as out of order.
        ({"services": [service(tiers=[(999_900, 3_000), (990_000, 3_000)])]}, "tiers"),
        ({"capBps": 5_000}, "tiers.creditBps"),
        ({"services": [service(target=1_000_001)]}, "target"),
        ({"customer": world.provider.address}, "customer"),
        ({"fee": 0}, "fee"),
    ]
    for overrides, field in cases:
        terms = make_terms(world, **overrides)
        err = reverts("InvalidTerms", world.factory.create, world.provider, terms)
        assert err.error_args[0] == field, (overrides, err.error_args)
        err = reverts("InvalidTerms", view, world.chain,
                      world.factory.contract.functions.validateTerms(world.contracts.encode_terms(terms)))
        assert err.error_args[0] == field
    # The boundaries themselves are valid: quorum == oracles, a latency target above 10^6 µs.
    world.create(quorum=3)
    world.create(services=[service(target=2_000_000, lower=True, tiers=[(3_000_000, 1_000)])])
    assert len(world.factory.created_events()) == 2


def test_initialize_only_by_factory_and_only_once(world):
    agreement = world.create()
    original = agreement.fn.termsHash().call()
    reverts("NotFactory", world.chain.transact, world.stranger, agreement.fn.initialize(b"\x01" * 32, 1, True, True, True))
    assert agreement.fn.termsHash().call() == original
    assert agreement.active_periods() == 12

    impl_address = world.factory.contract.functions.implementation().call()
    impl = world.chain.w3.eth.contract(address=impl_address, abi=world.contracts.artifacts["SlaAgreement"].abi)
    reverts("NotFactory", world.chain.transact, world.stranger, impl.functions.initialize(b"\x01" * 32, 1, True, True, True))
    assert impl.functions.termsHash().call() == (1).to_bytes(32, "big")
    # An implementation whose factory is an EOA shows that even its own factory cannot initialize it.
    standalone, _ = world.contracts.deploy("SlaAgreement", world.deployer, world.stranger.address)
    reverts("AlreadyInitialized", world.chain.transact, world.stranger,
            standalone.functions.initialize(b"\x01" * 32, 1, True, True, True))


# ---------------------------------------------------------------- fund and bond


def test_fund_eth_needs_exact_value(eth_world):
    agreement = eth_world.create()
    call = agreement.fn.fund(agreement.encoded_terms, 0, 3)
    for wrong in (3 * FEE - 1, 3 * FEE + 1, 0):
        err = reverts("WrongPaymentAmount", eth_world.chain.transact, eth_world.customer, call, value=wrong)
        assert err.error_args == (3 * FEE, wrong)
    before = snapshot(agreement, eth_world)
    receipt = eth_world.chain.transact(eth_world.customer, call, value=3 * FEE)
    assert snapshot(agreement, eth_world) == shifted(
        before, customer=-3 * FEE - gas_paid(agreement, receipt), contract=3 * FEE)
    assert events(agreement, receipt, "Funded") == [
        {"customer": eth_world.customer.address, "firstPeriod": 0, "periods": 3, "amount": 3 * FEE}]
    assert [agreement.period(i).state for i in range(4)] == [PeriodState.FUNDED] * 3 + [PeriodState.UNFUNDED]
    assert agreement.fn.nextFundable().call() == 3
    assert agreement.fn.openFundedPeriods().call() == 3


def test_fund_erc20_via_approve_several_periods_ahead(world):
    agreement = world.create()
    call = agreement.fn.fund(agreement.encoded_terms, 0, 2)
    reverts("ERC20InsufficientAllowance", world.chain.transact, world.customer, call)
    world.chain.transact(world.customer, world.token.functions.approve(agreement.address, 2 * FEE))
    reverts("UnexpectedEther", world.chain.transact, world.customer, call, value=1)
    before = snapshot(agreement, world)
    receipt = world.chain.transact(world.customer, call)
    assert snapshot(agreement, world) == shifted(before, customer=-2 * FEE, contract=2 * FEE)
    assert events(agreement, receipt, "Funded")[0]["firstPeriod"] == 0
    # A later deposit continues after the periods already paid for.
    receipt = agreement.fund(world.customer, 3)
    assert events(agreement, receipt, "Funded") == [
        {"customer": world.customer.address, "firstPeriod": 2, "periods": 3, "amount": 3 * FEE}]
    assert snapshot(agreement, world) == shifted(before, customer=-5 * FEE, contract=5 * FEE)
    assert [agreement.period(i).state for i in range(6)] == [PeriodState.FUNDED] * 5 + [PeriodState.UNFUNDED]


def test_funding_after_period_began_skips_it(any_world):
    w = any_world
    agreement = w.create(periodCount=4)
    w.chain.travel_to(agreement.period_start(1) + 10)
    before = snapshot(agreement, w)
    receipt = agreement.fund(w.customer, 2)
    assert events(agreement, receipt, "Funded")[0]["firstPeriod"] == 2
    assert snapshot(agreement, w) == shifted(before, customer=-2 * FEE - gas_paid(agreement, receipt),
                                             contract=2 * FEE)
    assert [agreement.period(i).state for i in range(4)] == [
        PeriodState.UNFUNDED, PeriodState.UNFUNDED, PeriodState.FUNDED, PeriodState.FUNDED]
    reverts("FundingBeyondTerm", agreement.fund, w.customer, 1)

    w.over(agreement, 1)
    before = snapshot(agreement, w)
    receipt = agreement.settle(w.stranger, 1, w.reports(agreement, 1, [[940_000], [940_000]]))
    assert events(agreement, receipt, "PaymentDeferred") == []
    settled = agreement.settlement(receipt)
    assert (settled["state"], settled["creditBps"], settled["compensation"], settled["providerPayout"]) == (
        PeriodState.SETTLED_UNFUNDED, 10_000, 0, 0)
    record = agreement.period(1)
    assert (record.state, record.credit_bps, record.compensation, record.provider_payout) == (
        PeriodState.SETTLED_UNFUNDED, 10_000, 0, 0)
    w.chain.travel_to(agreement.period_end(0) + agreement.terms.report_deadline + 1)
    agreement.settle_by_fallback(w.stranger, 0)
    assert agreement.period(0).state == PeriodState.SETTLED_UNFUNDED
    assert snapshot(agreement, w) == before
    assert agreement.fn.openFundedPeriods().call() == 2


def test_a_deposit_that_lands_after_a_period_began_is_refused_not_moved(any_world):
    """A customer funding period 1 whose transaction lands after period 1 began once had periods 2 and 3 funded
    instead. The deposit names its first period, and a mismatch is refused with nothing taken."""
    w = any_world
    agreement = w.create(periodCount=4)
    w.chain.travel_to(agreement.period_start(0) + 10)
    meant = agreement.first_fundable()
    assert meant == 1
    w.chain.travel_to(agreement.period_start(1) + 10)         # the transaction waited past period 1's start
    before = snapshot(agreement, w)
    err = reverts("FundingMoved", agreement.fund, w.customer, 1, meant)
    assert err.error_args == (1, 2)
    assert snapshot(agreement, w) == before and agreement.period(2).state == PeriodState.UNFUNDED
    # what the contract says now is fundable goes through
    receipt = agreement.fund(w.customer, 1, agreement.first_fundable())
    assert events(agreement, receipt, "Funded")[0]["firstPeriod"] == 2


def test_funding_limits(world):
    agreement = world.create(periodCount=3)
    err = reverts("FundingBeyondTerm", agreement.fund, world.customer, 4)
    assert err.error_args == (0, 4, 3)
    reverts("NothingToFund", agreement.fund, world.customer, 0)
    agreement.fund(world.customer, 3)
    err = reverts("FundingBeyondTerm", agreement.fund, world.customer, 1)
    assert err.error_args == (3, 1, 3)
    assert agreement.balance() == 3 * FEE


def test_post_bond(any_world):
    w = any_world
    agreement = w.create()
    reverts("NotProvider", agreement.post_bond, w.customer, 5)
    reverts("NothingToFund", agreement.post_bond, w.provider, 0)
    if agreement.is_eth:
        err = reverts("WrongPaymentAmount", w.chain.transact, w.provider,
                      agreement.fn.postBond(agreement.encoded_terms, 500), value=499)
        assert err.error_args == (500, 499)
    before = snapshot(agreement, w)
    r1 = agreement.post_bond(w.provider, 500 * 10**6)
    r2 = agreement.post_bond(w.provider, 250 * 10**6)
    assert events(agreement, r2, "BondPosted") == [
        {"provider": w.provider.address, "amount": 250 * 10**6, "bondBalance": 750 * 10**6}]
    assert agreement.bond_balance() == 750 * 10**6
    assert snapshot(agreement, w) == shifted(
        before, provider=-750 * 10**6 - gas_paid(agreement, r1) - gas_paid(agreement, r2), contract=750 * 10**6)


# ---------------------------------------------------------------- settle


def settle_and_check(w, agreement, period, reports, credit_bps, bond_used=0):
    """Settle from a stranger and check the exact money flow for a credit computed by the test."""
    fee = agreement.terms.fee
    compensation = min(credit_of(fee, credit_bps), fee) + bond_used
    before = snapshot(agreement, w)
    receipt = agreement.settle(w.stranger, period, reports)
    payout = fee - min(credit_of(fee, credit_bps), fee)
    assert snapshot(agreement, w) == shifted(
        before, customer=compensation, provider=payout, contract=-compensation - payout)
    record = agreement.period(period)
    assert (record.state, record.credit_bps, record.compensation, record.provider_payout) == (
        PeriodState.SETTLED, credit_bps, compensation, payout)
    settled = agreement.settlement(receipt)
    assert (settled["period"], settled["creditBps"], settled["compensation"], settled["compensationFromBond"],
            settled["providerPayout"]) == (period, credit_bps, compensation, bond_used, payout)
    # both pushes went through: nothing deferred, and the balances above moved by exactly these amounts
    assert events(agreement, receipt, "PaymentDeferred") == []
    settled["receipt"] = receipt
    return settled


def test_settle_median_of_three(any_world):
    w = any_world
    agreement = w.create()
    agreement.fund(w.customer, 1)
    w.over(agreement, 0)
    # Sorted: 940000 (10000 bps), 985000 (3000 bps), 999950 (0): only the middle one gives 3000.
    reports = w.reports(agreement, 0, [[999_950], [940_000], [985_000]])
    settled = settle_and_check(w, agreement, 0, reports, 3_000)
    assert list(settled["values"]) == [985_000]
    accepted = events(agreement, settled["receipt"], "ReportAccepted")
    assert [(e["period"], e["oracle"], list(e["values"]), e["evidenceRoot"]) for e in accepted] == [
        (0, o.address, list(r.values), b"\x22" * 32) for o, r in zip(w.oracles, reports)]


def test_even_count_takes_value_less_favourable_to_provider(world):
    availability = world.create()
    latency = world.create(services=[service("p99", target=200_000, lower=True,
                                             tiers=[(300_000, 1_000), (500_000, 5_000)])])
    for agreement in (availability, latency):
        agreement.fund(world.customer, 1)
    world.over(availability, 0, extra=100)
    settled = settle_and_check(world, availability, 0,
                               world.reports(availability, 0, [[999_950], [985_000]]), 3_000)
    assert list(settled["values"]) == [985_000]
    settled = settle_and_check(world, latency, 0, world.reports(latency, 0, [[250_000], [600_000]]), 5_000)
    assert list(settled["values"]) == [600_000]


def test_per_service_weights_round_down(world):
    agreement = world.create(services=[service("api", weight=1), service("db", weight=2)])
    agreement.fund(world.customer, 2)
    world.over(agreement, 1)
    # api 985000 -> 3000 bps, db 999899 -> 1000 bps: (1*3000 + 2*1000) / 3 = 1666.67 -> 1666.
    settle_and_check(world, agreement, 0, world.reports(agreement, 0, [[985_000, 999_899]] * 2), 1_666)
    # Weights decide: the heavy service meeting its target leaves only a third of the light one's credit.
    settle_and_check(world, agreement, 1, world.reports(agreement, 1, [[940_000, 999_900]] * 2), 3_333)


def test_combined_basis_worst_and_weighted(world):
    combined = (service_bytes32("all"), 999_900, 1, False, list(AWS_TIERS))
    services = [service("api", weight=3), service("db", weight=1)]
    worst = world.create(services=services, basis=1, combine=0, combined=combined)
    weighted = world.create(services=services, basis=1, combine=1, combined=combined)
    for agreement in (worst, weighted):
        agreement.fund(world.customer, 1)
    world.over(worst, 0, extra=100)
    values = [[1_000_000, 980_000]] * 3
    # worst: 980000 -> 3000 bps; weighted: (3*1000000 + 980000) / 4 = 995000 -> 1000 bps.
    settled = settle_and_check(world, worst, 0, world.reports(worst, 0, values), 3_000)
    assert list(settled["values"]) == [1_000_000, 980_000]
    settle_and_check(world, weighted, 0, world.reports(weighted, 0, values), 1_000)


def test_latency_objective_tiers(world):
    tiers = [(300_000, 1_000), (500_000, 2_500), (1_000_000, 5_000)]
    agreement = world.create(services=[service("p99", target=200_000, lower=True, tiers=tiers)])
    expected = [(150_000, 0), (200_000, 0), (250_000, 0), (300_000, 0), (300_001, 1_000), (600_000, 2_500),
                (5_000_000, 5_000)]
    agreement.fund(world.customer, len(expected))
    world.over(agreement, len(expected) - 1)
    for period, (value, credit) in enumerate(expected):
        settle_and_check(world, agreement, period, world.reports(agreement, period, [[value]] * 2), credit)


def test_credit_above_fee_comes_from_what_is_left_of_the_bond(any_world):
    w = any_world
    tiers = [(999_900, 1_000), (990_000, 5_000), (950_000, 20_000)]
    agreement = w.create(capBps=20_000, services=[service(tiers=tiers)])
    agreement.post_bond(w.provider, 1_500 * 10**6)
    agreement.fund(w.customer, 4)
    w.over(agreement, 3)
    bad = [[900_000]] * 2
    # 200% of the fee: the fee, then 1000 from the bond, then the last 500 of it, then nothing more.
    settle_and_check(w, agreement, 0, w.reports(agreement, 0, bad), 20_000, bond_used=1_000 * 10**6)
    assert agreement.bond_balance() == 500 * 10**6
    settle_and_check(w, agreement, 1, w.reports(agreement, 1, bad), 20_000, bond_used=500 * 10**6)
    assert agreement.bond_balance() == 0
    settle_and_check(w, agreement, 2, w.reports(agreement, 2, bad), 20_000, bond_used=0)
    settle_and_check(w, agreement, 3, w.reports(agreement, 3, [[999_950]] * 2), 0)
    assert agreement.balance() == 0


# ---------------------------------------------------------------- fallback


def test_settle_by_fallback(any_world):
    w = any_world
    full = w.create(periodCount=2)
    capped = w.create(periodCount=2, capBps=2_500, services=[service(tiers=[(999_900, 1_000), (990_000, 2_500)])])
    over_cap = w.create(periodCount=2, capBps=15_000, bond=0)
    none = w.create(periodCount=2, fallbackFullCredit=False)
    agreements = [(full, 10_000), (capped, 2_500), (over_cap, 10_000), (none, 0)]
    for agreement, _ in agreements:
        agreement.fund(w.customer, 1)
    over_cap.post_bond(w.provider, 700 * 10**6)
    fallback_from = full.period_end(0) + full.terms.report_deadline
    reverts("PeriodNotOver", full.settle_by_fallback, w.stranger, 0)
    w.chain.travel_to(fallback_from - 3_600)
    err = reverts("DeadlineNotReached", full.settle_by_fallback, w.stranger, 0)
    assert err.error_args == (0, fallback_from)
    w.chain.travel_to(fallback_from + 100)
    for agreement, credit in agreements:
        before = snapshot(agreement, w)
        receipt = agreement.settle_by_fallback(w.stranger, 0)
        compensation = credit_of(FEE, credit)
        assert snapshot(agreement, w) == shifted(before, customer=compensation, provider=FEE - compensation,
                                                 contract=-FEE)
        record = agreement.period(0)
        assert (record.state, record.credit_bps, record.compensation) == (
            PeriodState.SETTLED_BY_FALLBACK, credit, compensation)
        settled = agreement.settlement(receipt)
        assert (settled["state"], list(settled["values"]), settled["compensationFromBond"]) == (
            PeriodState.SETTLED_BY_FALLBACK, [], 0)
        reverts("PeriodAlreadySettled", agreement.settle_by_fallback, w.stranger, 0)
    assert over_cap.bond_balance() == 700 * 10**6
    reverts("PeriodNotActive", full.settle_by_fallback, w.stranger, 2)


# ---------------------------------------------------------------- withdraw


def test_withdraw_nothing(world):
    agreement = world.create()
    err = reverts("NothingToWithdraw", agreement.withdraw, world.customer)
    assert err.error_args == (world.customer.address,)


def test_withdraw_deferred_token_payment_to_another_address(world):
    token = deploy_hostile_token(world, [world.customer.address, world.provider.address])
    agreement = world.create(token=token.address)
    agreement.fund(world.customer, 1)
    world.chain.transact(world.deployer, token.functions.setBlocked(world.customer.address, True))
    world.over(agreement, 0)
    before = snapshot(agreement, world, stranger=world.stranger.address)
    receipt = agreement.settle(world.stranger, 0, world.reports(agreement, 0, [[985_000]] * 2))
    compensation = credit_of(FEE, 3_000)
    assert events(agreement, receipt, "PaymentDeferred") == [{"to": world.customer.address, "amount": compensation}]
    assert snapshot(agreement, world, stranger=world.stranger.address) == shifted(
        before, provider=FEE - compensation, contract=-(FEE - compensation))
    assert agreement.owed(world.customer.address) == compensation
    reverts("NothingToWithdraw", agreement.withdraw, world.stranger)
    # Still blocked, so it takes the money to an address it controls.
    receipt = agreement.withdraw(world.customer, world.stranger.address)
    assert events(agreement, receipt, "Withdrawn") == [
        {"account": world.customer.address, "to": world.stranger.address, "amount": compensation}]
    assert agreement.owed(world.customer.address) == 0
    assert snapshot(agreement, world, stranger=world.stranger.address) == shifted(
        before, provider=FEE - compensation, contract=-FEE, stranger=compensation)
    reverts("NothingToWithdraw", agreement.withdraw, world.customer)


def test_withdraw_deferred_eth_payment_to_another_address(eth_world):
    w = eth_world
    receiver = deploy_receiver(w)
    agreement = w.create(provider=receiver.address)
    accept_as_receiver(w, receiver, agreement)
    agreement.fund(w.customer, 1)
    w.chain.transact(w.deployer, receiver.functions.setMode(RECEIVER_REFUSE))
    w.over(agreement, 0)
    before = snapshot(agreement, w, stranger=w.stranger.address)
    receipt = agreement.settle(w.deployer, 0, w.reports(agreement, 0, [[985_000]] * 2))
    compensation = credit_of(FEE, 3_000)
    assert events(agreement, receipt, "PaymentDeferred") == [{"to": receiver.address, "amount": FEE - compensation}]
    assert agreement.owed(receiver.address) == FEE - compensation
    assert snapshot(agreement, w, stranger=w.stranger.address) == shifted(
        before, customer=compensation, contract=-compensation)
    as_receiver(w, receiver, agreement.fn.withdraw(agreement.encoded_terms, w.stranger.address))
    assert agreement.owed(receiver.address) == 0
    assert snapshot(agreement, w, stranger=w.stranger.address) == shifted(
        before, customer=compensation, contract=-FEE, stranger=FEE - compensation)


def test_anyone_pays_an_owner_what_it_is_owed_and_only_to_it(world):
    """A contract party that cannot call the agreement (a simple treasury) once lost what was owed to it: now anyone
    can have it paid, to the owner itself; only the owner can send it elsewhere, and never to the agreement."""
    token = deploy_hostile_token(world, [world.customer.address, world.provider.address])
    agreement = world.create(token=token.address)
    agreement.fund(world.customer, 1)
    world.chain.transact(world.deployer, token.functions.setBlocked(world.customer.address, True))
    world.over(agreement, 0)
    agreement.settle(world.stranger, 0, world.reports(agreement, 0, [[985_000]] * 2))
    compensation = credit_of(FEE, 3_000)
    assert agreement.owed(world.customer.address) == compensation
    reverts("RecipientIsAgreement", agreement.withdraw, world.customer, agreement.address)
    # still blocked: the payment fails and the money stays owed
    reverts("Blocked", agreement.pay_owed, world.stranger, world.customer.address)
    assert agreement.owed(world.customer.address) == compensation
    world.chain.transact(world.deployer, token.functions.setBlocked(world.customer.address, False))
    before = snapshot(agreement, world, stranger=world.stranger.address)
    receipt = agreement.pay_owed(world.stranger, world.customer.address)
    assert events(agreement, receipt, "Withdrawn") == [
        {"account": world.customer.address, "to": world.customer.address, "amount": compensation}]
    assert snapshot(agreement, world, stranger=world.stranger.address) == shifted(
        before, customer=compensation, contract=-compensation)
    reverts("NothingToWithdraw", agreement.pay_owed, world.stranger, world.customer.address)


def test_a_token_that_burns_the_settlers_gas_costs_it_a_bounded_amount(world):
    """A token whose transfer to the provider burns all the gas it gets once made a settlement cost ~63/64 of the
    settler's gas limit (27.7M of 29M): the push now gets TOKEN_PUSH_GAS, and the provider's share is kept owed."""
    token = deploy_hostile_token(world, [world.customer.address, world.provider.address])
    agreement = world.create(token=token.address)
    agreement.fund(world.customer, 1)
    world.chain.transact(world.deployer, token.functions.setBurning(world.provider.address, True))
    world.over(agreement, 0)
    call = agreement.fn.settle(agreement.encoded_terms, 0,
                               [r.as_arg() for r in world.reports(agreement, 0, [[985_000]] * 2)])
    snap = world.chain.snapshot()
    modest = world.chain.transact(world.stranger, call, gas=1_000_000)["gasUsed"]
    world.chain.revert_to(snap)
    receipt = world.chain.transact(world.stranger, call, gas=10_000_000)
    compensation = credit_of(FEE, 3_000)
    cap = agreement.fn.TOKEN_PUSH_GAS().call()
    # the same cost whatever gas the settler offers, and no more than the cap over an ordinary settlement
    assert receipt["gasUsed"] == modest < cap + 200_000, (receipt["gasUsed"], modest)
    assert events(agreement, receipt, "PaymentDeferred") == [{"to": world.provider.address, "amount": FEE - compensation}]
    assert agreement.owed(world.provider.address) == FEE - compensation
    assert token.functions.balanceOf(agreement.address).call() == FEE - compensation


# ---------------------------------------------------------------- terminate and close


def signed_termination(w, agreement, active, deadline):
    return (agreement.sign_termination(w.provider, active, deadline),
            agreement.sign_termination(w.customer, active, deadline))


def test_terminate_refunds_unstarted_periods(any_world):
    w = any_world
    agreement = w.create(periodCount=6)
    agreement.post_bond(w.provider, 300 * 10**6)
    agreement.fund(w.customer, 4)
    w.chain.travel_to(agreement.period_start(1) + 100)
    deadline = w.chain.now() + DAY
    before = snapshot(agreement, w)
    receipt = agreement.terminate(w.stranger, 2, deadline, *signed_termination(w, agreement, 2, deadline))
    assert events(agreement, receipt, "Terminated") == [{"activePeriods": 2, "refundedPeriods": 2, "refund": 2 * FEE}]
    assert snapshot(agreement, w) == shifted(before, customer=2 * FEE, contract=-2 * FEE)
    assert [agreement.period(i).state for i in range(6)] == [PeriodState.FUNDED] * 2 + [PeriodState.REFUNDED] * 2 + [
        PeriodState.UNFUNDED] * 2
    assert agreement.active_periods() == 2
    assert agreement.fn.openFundedPeriods().call() == 2
    reverts("FundingBeyondTerm", agreement.fund, w.customer, 1)
    # The same consent cannot be used again: the term is already that short.
    reverts("InvalidTermination", agreement.terminate, w.stranger, 2, deadline,
            *signed_termination(w, agreement, 2, deadline))
    reverts("NotYetClosable", agreement.close, w.stranger)

    w.over(agreement, 1)
    settle_and_check(w, agreement, 0, w.reports(agreement, 0, [[999_950]] * 2), 0)
    settle_and_check(w, agreement, 1, w.reports(agreement, 1, [[985_000]] * 2), 3_000)
    reverts("PeriodNotActive", agreement.settle, w.stranger, 2, w.reports(agreement, 2, [[985_000]] * 2))
    before = snapshot(agreement, w)
    agreement.close(w.stranger)
    assert snapshot(agreement, w) == shifted(before, provider=300 * 10**6, contract=-300 * 10**6)
    assert agreement.balance() == 0


def test_a_superseded_or_revoked_termination_consent_cannot_be_executed(world):
    """The parties terminated to 8 periods; two days later the provider combined the customer's earlier offer (3
    periods) with its own signature and had 5 more refunded. Each consent now names the agreement's termination
    nonce, which every termination and every revocation moves on."""
    agreement = world.create(periodCount=12)
    agreement.fund(world.customer, 12)
    deadline = world.chain.now() + 7 * 86_400
    early_offer = agreement.sign_termination(world.customer, 3, deadline)
    agreed = signed_termination(world, agreement, 8, deadline)
    agreement.terminate(world.customer, 8, deadline, *agreed)
    assert agreement.active_periods() == 8 and agreement.termination_nonce() == 1
    provider_now = agreement.sign_termination(world.provider, 3, deadline)
    err = reverts("BadConsent", agreement.terminate, world.provider, 3, deadline, provider_now, early_offer)
    assert err.error_args[0] == world.customer.address
    assert agreement.active_periods() == 8
    # a party withdraws an offer it no longer stands by; strangers cannot
    offer = agreement.sign_termination(world.customer, 5, deadline)
    reverts("NotAParty", agreement.revoke_termination_consents, world.stranger)
    receipt = agreement.revoke_termination_consents(world.customer)
    assert events(agreement, receipt, "TerminationConsentsRevoked") == [{"by": world.customer.address, "nonce": 2}]
    provider_now = agreement.sign_termination(world.provider, 5, deadline)
    reverts("BadConsent", agreement.terminate, world.provider, 5, deadline, provider_now, offer)
    assert agreement.active_periods() == 8
    # consents for the current nonce still work
    agreement.terminate(world.provider, 5, deadline, *signed_termination(world, agreement, 5, deadline))
    assert agreement.active_periods() == 5


def test_terminate_rejects_bad_requests(world):
    agreement = world.create(periodCount=6)
    agreement.fund(world.customer, 3)
    world.chain.travel_to(agreement.period_start(1) + 100)
    deadline = world.chain.now() + DAY
    for active in (1, 6, 7):
        err = reverts("InvalidTermination", agreement.terminate, world.stranger, active, deadline,
                      *signed_termination(world, agreement, active, deadline))
        assert err.error_args == (active, 2, 6)
    signatures = signed_termination(world, agreement, 3, deadline)
    world.chain.travel_to(deadline + 1)
    err = reverts("TerminationExpired", agreement.terminate, world.stranger, 3, deadline, *signatures)
    assert err.error_args == (deadline,)
    assert agreement.active_periods() == 6
    assert agreement.balance() == 3 * FEE


def test_close_returns_bond_then_agreement_is_closed(any_world):
    w = any_world
    agreement = w.create(periodCount=2)
    agreement.post_bond(w.provider, 400 * 10**6)
    agreement.fund(w.customer, 2)
    ends_at = agreement.period_end(1)
    err = reverts("NotYetClosable", agreement.close, w.stranger)
    assert err.error_args == (ends_at, 2)
    w.over(agreement, 1)
    assert reverts("NotYetClosable", agreement.close, w.stranger).error_args == (ends_at, 2)
    agreement.settle(w.stranger, 0, w.reports(agreement, 0, [[999_950]] * 2))
    assert reverts("NotYetClosable", agreement.close, w.stranger).error_args == (ends_at, 1)
    agreement.settle(w.stranger, 1, w.reports(agreement, 1, [[999_950]] * 2))
    before = snapshot(agreement, w)
    assert before["contract"] == 400 * 10**6
    receipt = agreement.close(w.stranger)
    assert events(agreement, receipt, "Closed") == [{"bondReturned": 400 * 10**6}]
    assert events(agreement, receipt, "PaymentDeferred") == []
    assert snapshot(agreement, w) == shifted(before, provider=400 * 10**6, contract=-400 * 10**6)
    assert agreement.fn.closed().call() is True
    assert agreement.bond_balance() == 0
    reverts("AgreementClosed", agreement.close, w.stranger)
    reverts("AgreementClosed", agreement.fund, w.customer, 1)
    reverts("AgreementClosed", agreement.post_bond, w.provider, 1)
    reverts("AgreementClosed", agreement.announce_maintenance, w.provider, w.chain.now() + 3 * DAY, 60)
    deadline = w.chain.now() + DAY
    reverts("AgreementClosed", agreement.terminate, w.stranger, 1, deadline,
            *signed_termination(w, agreement, 1, deadline))
    assert snapshot(agreement, w) == shifted(before, provider=400 * 10**6, contract=-400 * 10**6)


def test_close_with_unfunded_periods_left_open(world):
    agreement = world.create(periodCount=2)
    agreement.post_bond(world.provider, 10)
    world.over(agreement, 1)
    # Nothing was funded, so nothing needs settling before the bond goes back.
    agreement.close(world.stranger)
    assert agreement.balance() == 0
    # An unfunded period can still be recorded after closing, moving no money.
    agreement.settle(world.stranger, 0, world.reports(agreement, 0, [[999_950]] * 2))
    assert agreement.period(0).state == PeriodState.SETTLED_UNFUNDED


# ---------------------------------------------------------------- maintenance


def test_announce_maintenance(world):
    agreement = world.create(start=world.chain.now() + 10 * DAY, periodCount=4)
    terms = agreement.terms
    allowance = terms.maintenance_allowance
    assert allowance == 4 * 3_600
    reverts("NotProvider", agreement.announce_maintenance, world.customer, agreement.period_start(1), 60)
    reverts("EmptyWindow", agreement.announce_maintenance, world.provider, agreement.period_start(1), 0)
    err = reverts("WindowOutsideTerm", agreement.announce_maintenance, world.provider, terms.start - 100, 200)
    assert err.error_args == (terms.start - 100, terms.start + 100)
    last_end = agreement.period_end(3)
    reverts("WindowOutsideTerm", agreement.announce_maintenance, world.provider, last_end - 100, 101)
    agreement.announce_maintenance(world.provider, last_end - 100, 100)

    start = agreement.period_start(1) + 1_000
    receipt = agreement.announce_maintenance(world.provider, start, 3_600)
    assert events(agreement, receipt, "MaintenanceAnnounced") == [{"start": start, "end": start + 3_600}]
    agreement.announce_maintenance(world.provider, start + 10_000, 3_600)
    assert agreement.period(1).maintenance_seconds == 7_200
    err = reverts("AllowanceExceeded", agreement.announce_maintenance, world.provider, start + 20_000,
                  allowance - 7_200 + 1)
    assert err.error_args == (1, allowance + 1, allowance)
    agreement.announce_maintenance(world.provider, start + 20_000, allowance - 7_200)
    assert agreement.period(1).maintenance_seconds == allowance

    # A window across a period boundary counts against both periods.
    boundary = agreement.period_end(2) - 3_000
    agreement.announce_maintenance(world.provider, boundary, 5_000)
    assert (agreement.period(2).maintenance_seconds, agreement.period(3).maintenance_seconds) == (3_000, 2_100)
    # Too much in the second period rejects the whole window: the first one is not charged either.
    err = reverts("AllowanceExceeded", agreement.announce_maintenance, world.provider,
                  agreement.period_end(2) - 1_000, 1_000 + allowance - 2_100 + 1)
    assert err.error_args == (3, allowance + 1, allowance)
    assert (agreement.period(2).maintenance_seconds, agreement.period(3).maintenance_seconds) == (3_000, 2_100)
    # Maintenance never touches funding state or money.
    assert [agreement.period(i).state for i in range(4)] == [PeriodState.UNFUNDED] * 4
    assert agreement.balance() == 0


# ---------------------------------------------------------------- odds and ends


def test_ether_sent_directly_reverts(any_world):
    w = any_world
    agreement = w.create()
    err = reverts("UnexpectedEther", w.chain.transact, w.stranger, to=agreement.address, value=1)
    assert err.error_args == ()
    assert w.chain.w3.eth.get_balance(agreement.address) == 0


def test_period_view_defaults_and_unknown_terms(world):
    agreement = world.create()
    record = agreement.period(11)
    assert (record.state, record.credit_bps, record.maintenance_seconds, record.compensation,
            record.provider_payout) == (PeriodState.UNFUNDED, 0, 0, 0, 0)
    assert agreement.owed(world.customer.address) == 0
    assert agreement.fn.ETH_PUSH_GAS().call() == 30_000
