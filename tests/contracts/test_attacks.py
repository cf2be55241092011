"""Attacks on an agreement: each must fail with its named error and leave money and period state as they were.

The hostile contracts are in contracts/test/: HostileToken (an ERC-20 that calls back into the agreement
while being transferred) and HostileReceiver (a contract party whose receive() re-enters, burns gas or
reverts).
"""

from __future__ import annotations

import dataclasses

from eth_utils import keccak
from web3.logs import DISCARD

from smartsla.constants import PPM
from tests.helpers.world import make_terms
from smartsla.onchain.types import PeriodState
from tests.helpers.agreement import (  # noqa: F401 - the fixtures override conftest's for speed
    RECEIVER_ACCEPT,
    accept_as_receiver,
    RECEIVER_BURN,
    RECEIVER_REENTER_RECORD,
    RECEIVER_REENTER_REFUSE,
    RECEIVER_REFUSE,
    any_world,
    as_receiver,
    chain,
    deploy_hostile_token,
    deploy_receiver,
    eth_world,
    events,
    reverts,
    shared_chain,
    shared_worlds,
    shifted,
    snapshot,
    world,
)

FEE = 1_000 * 10**6
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ZERO = "0x" + "00" * 20
REENTRANT = keccak(text="ReentrancyGuardReentrantCall()")[:4]


def state_of(agreement, world, periods=3):
    """Everything an attack must not change: balances, period records, owed amounts, bond, counters."""
    return {
        "balances": snapshot(agreement, world, stranger=world.stranger.address),
        "periods": [agreement.period(i) for i in range(periods)],
        "owed": [agreement.owed(a) for a in (agreement.terms.customer, agreement.terms.provider,
                                             world.stranger.address)],
        "bond": agreement.bond_balance(),
        "counters": (agreement.active_periods(), agreement.fn.nextFundable().call(),
                     agreement.fn.openFundedPeriods().call(), agreement.fn.closed().call()),
    }


def rejected(world, agreement, error, fn, *args, **kwargs):
    """Run an attack that must revert with `error` and change nothing."""
    before = state_of(agreement, world)
    err = reverts(error, fn, *args, **kwargs)
    assert state_of(agreement, world) == before
    return err


def funded(world, periods=2, **terms):
    agreement = world.create(**terms)
    agreement.fund(world.customer, periods)
    return agreement


# ---------------------------------------------------------------- reentrancy


def hostile_token_agreement(world):
    token = deploy_hostile_token(world, [world.customer.address, world.provider.address])
    agreement = world.create(token=token.address)
    agreement.fund(world.customer, 2)
    world.over(agreement, 1)
    return token, agreement


def test_one_set_of_terms_has_one_terms_hash(world):
    """Bytes that decode to the same terms but are not their canonical encoding (trailing bytes, a struct moved
    behind a longer head) once created agreements with other termsHash values for the same terms."""
    encoded = world.contracts.encode_terms(make_terms(world))
    moved = (64).to_bytes(32, "big") + bytes(32) + encoded[32:]     # the struct's offset 0x40, a padding word
    for variant in (encoded + bytes(32), moved):
        reverts("NonCanonicalTerms", world.chain.transact, world.provider,
                world.factory.contract.functions.create(variant))
    world.chain.transact(world.provider, world.factory.contract.functions.create(encoded))


def test_a_fee_on_transfer_token_is_refused_at_funding(world):
    """A token that delivers less than it was asked to move (1% kept on every transfer) once had the agreement
    record the amount asked for: after close 980,000,000 base units were stuck, the last payee's share unpayable.
    Now what arrives must be what was sent, or the deposit (fee or bond) is refused and nothing is recorded."""
    token, _ = world.contracts.deploy("FeeToken", world.deployer, 100)
    for who in (world.customer, world.provider):
        world.chain.transact(world.deployer, token.functions.mint(who.address, 10**15))
    agreement = world.create(token=token.address)
    err = rejected(world, agreement, "TokenNotExact", agreement.fund, world.customer, 2)
    assert err.error_args == (token.address, 2 * FEE, 2 * FEE - 2 * FEE // 100)
    assert agreement.fn.nextFundable().call() == 0 and token.functions.balanceOf(agreement.address).call() == 0
    rejected(world, agreement, "TokenNotExact", agreement.post_bond, world.provider, 10**6)
    assert agreement.bond_balance() == 0
    # the same token without its fee is an ordinary ERC-20: the funding goes through and is recorded exactly
    exact, _ = world.contracts.deploy("FeeToken", world.deployer, 0)
    world.chain.transact(world.deployer, exact.functions.mint(world.customer.address, 10**15))
    plain = world.create(token=exact.address)
    plain.fund(world.customer, 2)
    assert exact.functions.balanceOf(plain.address).call() == 2 * FEE == plain.balance()


def test_reentrancy_through_token_during_settle(world):
    token, agreement = hostile_token_agreement(world)
    next_settle = agreement.fn.settle(agreement.encoded_terms, 1,
                                      [r.as_arg() for r in world.reports(agreement, 1, [[940_000]] * 2)])
    world.chain.transact(world.deployer, token.functions.arm(agreement.address, next_settle._encode_transaction_data(),
                                                             False))
    before = snapshot(agreement, world)
    agreement.settle(world.stranger, 0, world.reports(agreement, 0, [[985_000]] * 2))
    assert token.functions.hookCalls().call() == 1
    assert token.functions.lastHookSucceeded().call() is False
    assert bytes(token.functions.lastHookResult().call()) == REENTRANT
    # Only period 0 moved money; the nested settlement of period 1 did not happen.
    compensation = FEE * 3_000 // 10_000
    assert snapshot(agreement, world) == shifted(before, customer=compensation, provider=FEE - compensation,
                                                 contract=-FEE)
    assert agreement.period(1).state == PeriodState.FUNDED
    # The nested call was valid in itself: made on its own it goes through.
    world.chain.transact(world.stranger, next_settle)
    assert agreement.period(1).state == PeriodState.SETTLED
    assert agreement.balance() == 0


def test_reentrancy_through_token_bubbling_during_settle_defers_payments(world):
    token, agreement = hostile_token_agreement(world)
    next_settle = agreement.fn.settle(agreement.encoded_terms, 1,
                                      [r.as_arg() for r in world.reports(agreement, 1, [[940_000]] * 2)])
    world.chain.transact(world.deployer, token.functions.arm(agreement.address, next_settle._encode_transaction_data(),
                                                             True))
    before = snapshot(agreement, world)
    receipt = agreement.settle(world.stranger, 0, world.reports(agreement, 0, [[985_000]] * 2))
    # The failed transfer's revert also undoes the token's disarming, so it attacks both transfers: the
    # settlement still completes and keeps both shares.
    compensation = FEE * 3_000 // 10_000
    assert events(agreement, receipt, "PaymentDeferred") == [
        {"to": world.customer.address, "amount": compensation},
        {"to": world.provider.address, "amount": FEE - compensation}]
    assert agreement.settlement(receipt)["compensation"] == compensation
    assert snapshot(agreement, world) == before
    assert (agreement.owed(world.customer.address), agreement.owed(world.provider.address)) == (
        compensation, FEE - compensation)
    assert agreement.period(0).state == PeriodState.SETTLED
    assert agreement.period(1).state == PeriodState.FUNDED
    world.chain.transact(world.deployer, token.functions.arm(ZERO, b"", False))
    agreement.withdraw(world.customer)
    agreement.withdraw(world.provider)
    assert snapshot(agreement, world) == shifted(before, customer=compensation, provider=FEE - compensation,
                                                 contract=-FEE)


def test_reentrancy_through_token_during_withdraw(world):
    token, agreement = hostile_token_agreement(world)
    world.chain.transact(world.deployer, token.functions.setBlocked(world.customer.address, True))
    agreement.settle(world.stranger, 0, world.reports(agreement, 0, [[985_000]] * 2))
    world.chain.transact(world.deployer, token.functions.setBlocked(world.customer.address, False))
    owed = FEE * 3_000 // 10_000
    assert agreement.owed(world.customer.address) == owed
    # The callback tries both a second withdrawal and a settlement; the guard stops it before either.
    for nested in (agreement.fn.withdraw(agreement.encoded_terms, world.customer.address),
                   agreement.fn.settle(agreement.encoded_terms, 1,
                                       [r.as_arg() for r in world.reports(agreement, 1, [[940_000]] * 2)])):
        world.chain.transact(world.deployer, token.functions.arm(agreement.address,
                                                                 nested._encode_transaction_data(), True))
        rejected(world, agreement, "ReentrancyGuardReentrantCall", agreement.withdraw, world.customer)
    assert agreement.owed(world.customer.address) == owed


def receiver_provider_agreement(w, mode, periods=3):
    receiver = deploy_receiver(w)
    agreement = w.create(provider=receiver.address)
    accept_as_receiver(w, receiver, agreement)
    agreement.fund(w.customer, periods)
    w.chain.transact(w.deployer, receiver.functions.setMode(mode))
    w.over(agreement, periods - 1)
    return receiver, agreement


def test_reentrant_eth_receiver_share_kept_in_owed(eth_world):
    w = eth_world
    receiver, agreement = receiver_provider_agreement(w, RECEIVER_REENTER_REFUSE)
    nested = agreement.fn.settle(agreement.encoded_terms, 1,
                                 [r.as_arg() for r in w.reports(agreement, 1, [[940_000]] * 2)])
    w.chain.transact(w.deployer, receiver.functions.setReentry(agreement.address, nested._encode_transaction_data()))
    before = snapshot(agreement, w)
    receipt = agreement.settle(w.stranger, 0, w.reports(agreement, 0, [[985_000]] * 2))
    compensation = FEE * 3_000 // 10_000
    assert events(agreement, receipt, "PaymentDeferred") == [{"to": receiver.address, "amount": FEE - compensation}]
    assert snapshot(agreement, w) == shifted(before, customer=compensation, contract=-compensation)
    assert agreement.owed(receiver.address) == FEE - compensation
    assert agreement.period(1).state == PeriodState.FUNDED

    # Accepting this time, it records what its nested call got: the guard's error.
    w.chain.transact(w.deployer, receiver.functions.setMode(RECEIVER_REENTER_RECORD))
    nested = agreement.fn.settle(agreement.encoded_terms, 2,
                                 [r.as_arg() for r in w.reports(agreement, 2, [[940_000]] * 2)])
    w.chain.transact(w.deployer, receiver.functions.setReentry(agreement.address, nested._encode_transaction_data()))
    receipt = agreement.settle(w.stranger, 1, w.reports(agreement, 1, [[999_950]] * 2))
    assert events(agreement, receipt, "PaymentDeferred") == []
    assert agreement.owed(receiver.address) == FEE - compensation  # unchanged: this time the push went through
    assert bytes(receiver.functions.lastReentryError().call()) == REENTRANT
    assert receiver.functions.reentrySucceeded().call() is False
    assert agreement.period(2).state == PeriodState.FUNDED

    w.chain.transact(w.deployer, receiver.functions.setMode(RECEIVER_ACCEPT))
    as_receiver(w, receiver, agreement.fn.withdraw(agreement.encoded_terms, receiver.address))
    assert agreement.owed(receiver.address) == 0
    assert snapshot(agreement, w) == shifted(before, customer=compensation, provider=2 * FEE - compensation,
                                             contract=-compensation - FEE - (FEE - compensation))


def test_reentrant_eth_receiver_during_withdraw(eth_world):
    w = eth_world
    receiver, agreement = receiver_provider_agreement(w, RECEIVER_REFUSE)
    agreement.settle(w.stranger, 0, w.reports(agreement, 0, [[999_950]] * 2))
    assert agreement.owed(receiver.address) == FEE
    nested = agreement.fn.withdraw(agreement.encoded_terms, receiver.address)
    w.chain.transact(w.deployer, receiver.functions.setReentry(agreement.address, nested._encode_transaction_data()))
    w.chain.transact(w.deployer, receiver.functions.setMode(RECEIVER_REENTER_REFUSE))
    # withdraw sends with all gas and reverts if the recipient refuses, so the guard's error arrives wrapped.
    err = rejected(w, agreement, "TransferFailed", as_receiver, w, receiver,
                   agreement.fn.withdraw(agreement.encoded_terms, receiver.address))
    assert err.error_args == (receiver.address, FEE)
    assert agreement.owed(receiver.address) == FEE


def test_gas_burning_customer_cannot_block_settlement(eth_world):
    w = eth_world
    receiver = deploy_receiver(w)
    agreement = w.create(customer=receiver.address)
    as_receiver(w, receiver, agreement.fn.fund(agreement.encoded_terms, 0, 1), value=FEE)  # funding is consent
    assert agreement.period(0).state == PeriodState.FUNDED
    w.chain.transact(w.deployer, receiver.functions.setMode(RECEIVER_BURN))
    w.over(agreement, 0)
    before = snapshot(agreement, w)
    receipt = agreement.settle(w.stranger, 0, w.reports(agreement, 0, [[940_000]] * 2))
    # 100% credit: all to the customer, whose receive() burns the 30,000 gas it is given and no more.
    assert events(agreement, receipt, "PaymentDeferred") == [{"to": receiver.address, "amount": FEE}]
    assert receipt["gasUsed"] < 250_000
    assert snapshot(agreement, w) == before
    assert agreement.owed(receiver.address) == FEE
    assert agreement.period(0).state == PeriodState.SETTLED
    w.chain.transact(w.deployer, receiver.functions.setMode(RECEIVER_ACCEPT))
    as_receiver(w, receiver, agreement.fn.withdraw(agreement.encoded_terms, receiver.address))
    assert snapshot(agreement, w) == shifted(before, customer=FEE, contract=-FEE)


def test_reverting_provider_cannot_block_close(eth_world):
    w = eth_world
    receiver = deploy_receiver(w)
    agreement = w.create(provider=receiver.address, periodCount=1)
    as_receiver(w, receiver, agreement.fn.postBond(agreement.encoded_terms, 700), value=700)  # posting bond is consent
    agreement.fund(w.customer, 1)
    w.chain.transact(w.deployer, receiver.functions.setMode(RECEIVER_REFUSE))
    w.over(agreement, 0)
    before = snapshot(agreement, w)
    agreement.settle(w.stranger, 0, w.reports(agreement, 0, [[985_000]] * 2))
    receipt = agreement.close(w.stranger)
    assert events(agreement, receipt, "PaymentDeferred") == [{"to": receiver.address, "amount": 700}]
    compensation = FEE * 3_000 // 10_000
    assert agreement.owed(receiver.address) == FEE - compensation + 700
    assert snapshot(agreement, w) == shifted(before, customer=compensation, contract=-compensation)
    w.chain.transact(w.deployer, receiver.functions.setMode(RECEIVER_ACCEPT))
    as_receiver(w, receiver, agreement.fn.withdraw(agreement.encoded_terms, receiver.address))
    assert snapshot(agreement, w) == shifted(before, customer=compensation, provider=FEE - compensation + 700,
                                             contract=-FEE - 700)


# ---------------------------------------------------------------- signatures and reports


def test_replay_across_periods(world):
    agreement = funded(world)
    world.over(agreement, 1)
    old = world.reports(agreement, 0, [[940_000]] * 2)
    agreement.settle(world.stranger, 0, old)
    err = rejected(world, agreement, "NotAnOracle", agreement.settle, world.stranger, 1, old)
    assert err.error_args[0] not in {o.address for o in world.oracles}


def test_replay_across_agreements(world):
    a = funded(world)
    b = funded(world)
    world.over(a, 0, extra=100)
    reports = world.reports(a, 0, [[940_000]] * 2)
    err = rejected(world, b, "NotAnOracle", b.settle, world.stranger, 0, reports)
    assert err.error_args[0] not in {o.address for o in world.oracles}


def test_replay_across_chain_ids(world):
    agreement = funded(world)
    world.over(agreement, 0)
    other_chain = world.chain.w3.eth.chain_id + 1
    reports = [agreement.sign_report(o, 0, [940_000], [PPM], chain_id=other_chain) for o in world.oracles[:2]]
    err = rejected(world, agreement, "NotAnOracle", agreement.settle, world.stranger, 0, reports)
    assert err.error_args[0] not in {o.address for o in world.oracles}


def test_duplicate_signer(world):
    agreement = funded(world)
    world.over(agreement, 0)
    one = agreement.sign_report(world.oracles[0], 0, [940_000], [PPM])
    also = agreement.sign_report(world.oracles[0], 0, [930_000], [PPM])
    err = rejected(world, agreement, "DuplicateSigner", agreement.settle, world.stranger, 0, [one, also])
    assert err.error_args == (world.oracles[0].address,)


def test_signer_outside_oracle_set(world):
    agreement = funded(world)
    world.over(agreement, 0)
    reports = [agreement.sign_report(world.oracles[0], 0, [940_000], [PPM]),
               agreement.sign_report(world.customer, 0, [940_000], [PPM])]
    err = rejected(world, agreement, "NotAnOracle", agreement.settle, world.stranger, 0, reports)
    assert err.error_args == (world.customer.address,)


def test_a_report_that_measured_too_little_does_not_count(world):
    """An oracle that saw little of the period (or nothing: its values read 100%) cannot settle it, even signed: the
    contract holds each service's coverage to the terms' min_coverage (90% here), and the report's signature covers
    the coverage, so a submitter can neither lower a value's weight nor raise a coverage."""
    agreement = funded(world)
    world.over(agreement, 0)
    least = agreement.terms.min_coverage
    blind = world.reports(agreement, 0, [[1_000_000], [1_000_000]], coverage=[[PPM], [least - 1]])
    err = rejected(world, agreement, "CoverageTooLow", agreement.settle, world.stranger, 0, blind)
    assert err.error_args == (world.oracles[1].address, 0, least - 1, least)
    nothing = world.reports(agreement, 0, [[1_000_000], [1_000_000]], coverage=[[0], [0]])
    rejected(world, agreement, "CoverageTooLow", agreement.settle, world.stranger, 0, nothing)
    # a coverage above 100% is not a measurement either
    rejected(world, agreement, "CoverageOutOfRange", agreement.settle, world.stranger, 0,
             world.reports(agreement, 0, [[940_000], [940_000]], coverage=[[PPM], [PPM + 1]]))
    # raising the coverage after signing breaks the signature: the recovered signer is nobody in the set
    raised = [dataclasses.replace(r, coverage=(PPM,)) for r in blind]
    rejected(world, agreement, "NotAnOracle", agreement.settle, world.stranger, 0, raised)
    # one coverage per service, no more and no fewer
    short = [dataclasses.replace(r, coverage=()) for r in world.reports(agreement, 0, [[940_000]] * 2)]
    rejected(world, agreement, "WrongValueCount", agreement.settle, world.stranger, 0, short)
    # exactly the minimum counts, and the median is over what counted
    fair = world.reports(agreement, 0, [[940_000], [960_000]], coverage=[[least], [PPM]])
    receipt = agreement.settle(world.stranger, 0, fair)
    accepted = agreement.contract.events.ReportAccepted().process_receipt(receipt, errors=DISCARD)
    assert [tuple(e["args"]["coverage"]) for e in accepted] == [(least,), (PPM,)]
    assert agreement.period(0).state == PeriodState.SETTLED


def test_min_coverage_zero_counts_every_report(world):
    """Terms may opt out (min_coverage 0%): then even a report with no data counts, as before coverage existed."""
    agreement = funded(world, minCoverage=0)
    world.over(agreement, 0)
    agreement.settle(world.stranger, 0, world.reports(agreement, 0, [[940_000]] * 2, coverage=[[0], [0]]))
    assert agreement.period(0).state == PeriodState.SETTLED


def test_terms_above_full_coverage_are_refused(world):
    reverts("InvalidTerms", world.create, minCoverage=PPM + 1)


def test_under_quorum(world):
    agreement = funded(world)
    world.over(agreement, 0)
    err = rejected(world, agreement, "QuorumNotReached", agreement.settle, world.stranger, 0,
                   world.reports(agreement, 0, [[940_000]]))
    assert err.error_args == (1, 2)
    rejected(world, agreement, "QuorumNotReached", agreement.settle, world.stranger, 0, [])


def test_settling_twice(world):
    agreement = funded(world)
    world.over(agreement, 0)
    agreement.settle(world.stranger, 0, world.reports(agreement, 0, [[999_950]] * 2))
    err = rejected(world, agreement, "PeriodAlreadySettled", agreement.settle, world.stranger, 0,
                   world.reports(agreement, 0, [[940_000]] * 3))
    assert err.error_args == (0,)
    world.chain.travel_to(agreement.period_end(0) + agreement.terms.report_deadline + 1)
    rejected(world, agreement, "PeriodAlreadySettled", agreement.settle_by_fallback, world.stranger, 0)


def test_settling_before_period_ends(world):
    agreement = funded(world)
    world.chain.travel_to(agreement.period_end(0) - 600)
    err = rejected(world, agreement, "PeriodNotOver", agreement.settle, world.stranger, 0,
                   world.reports(agreement, 0, [[940_000]] * 2))
    assert err.error_args == (0, agreement.period_end(0))


def test_value_above_100_percent(world):
    agreement = funded(world)
    world.over(agreement, 0)
    err = rejected(world, agreement, "ValueOutOfRange", agreement.settle, world.stranger, 0,
                   world.reports(agreement, 0, [[999_950], [1_000_001]]))
    assert err.error_args == (0, 1_000_001)


def test_wrong_value_count(world):
    agreement = funded(world)
    world.over(agreement, 0)
    err = rejected(world, agreement, "WrongValueCount", agreement.settle, world.stranger, 0,
                   world.reports(agreement, 0, [[999_950, 999_950]] * 2))
    assert err.error_args == (1, 2)


def test_malleable_and_garbage_signatures(world):
    agreement = funded(world)
    world.over(agreement, 0)
    good = world.reports(agreement, 0, [[940_000]] * 2)
    sig = good[1].signature
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    flipped = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28

    def with_signature(signature):
        return [good[0], dataclasses.replace(good[1], signature=signature)]

    err = rejected(world, agreement, "ECDSAInvalidSignatureS", agreement.settle, world.stranger, 0,
                   with_signature(flipped))
    assert int.from_bytes(err.error_args[0], "big") == SECP256K1_N - s
    err = rejected(world, agreement, "ECDSAInvalidSignatureLength", agreement.settle, world.stranger, 0,
                   with_signature(sig[:64]))
    assert err.error_args == (64,)
    rejected(world, agreement, "ECDSAInvalidSignature", agreement.settle, world.stranger, 0,
             with_signature(sig[:64] + bytes([30])))
    rejected(world, agreement, "ECDSAInvalidSignature", agreement.settle, world.stranger, 0,
             with_signature(bytes(64) + bytes([27])))
    # The untampered reports still settle.
    agreement.settle(world.stranger, 0, good)
    assert agreement.period(0).state == PeriodState.SETTLED


# ---------------------------------------------------------------- parties and terms


def test_maintenance_without_notice(world):
    agreement = world.create()
    start = agreement.period_start(0) + 3_600  # 61 minutes from now: the terms ask for 48 hours
    err = rejected(world, agreement, "InsufficientNotice", agreement.announce_maintenance, world.provider, start, 600)
    assert err.error_args[0] == start
    assert err.error_args[1] >= world.chain.now() + agreement.terms.maintenance_notice
    assert agreement.period(0).maintenance_seconds == 0


def test_maintenance_over_allowance(world):
    agreement = world.create()
    allowance = agreement.terms.maintenance_allowance
    start = agreement.period_start(1) + 100
    err = rejected(world, agreement, "AllowanceExceeded", agreement.announce_maintenance, world.provider, start,
                   allowance + 1)
    assert err.error_args == (1, allowance + 1, allowance)
    assert agreement.period(1).maintenance_seconds == 0


def test_only_the_parties(world):
    agreement = world.create()
    err = rejected(world, agreement, "NotCustomer", agreement.fund, world.stranger, 1)
    assert err.error_args == (world.stranger.address,)
    rejected(world, agreement, "NotCustomer", agreement.fund, world.provider, 1)
    rejected(world, agreement, "NotProvider", agreement.post_bond, world.stranger, 10)
    rejected(world, agreement, "NotProvider", agreement.announce_maintenance, world.stranger,
             agreement.period_start(1), 60)


def test_termination_needs_both_parties(world):
    agreement = funded(world, periods=4, periodCount=6)
    deadline = world.chain.now() + 86_400
    provider_sig = agreement.sign_termination(world.provider, 1, deadline)
    customer_sig = agreement.sign_termination(world.customer, 1, deadline)
    forged = agreement.sign_termination(world.provider, 1, deadline)
    err = rejected(world, agreement, "BadConsent", agreement.terminate, world.provider, 1, deadline,
                   provider_sig, forged)
    assert err.error_args == (world.customer.address, world.provider.address)
    err = rejected(world, agreement, "BadConsent", agreement.terminate, world.customer, 1, deadline,
                   customer_sig, customer_sig)
    assert err.error_args == (world.provider.address, world.customer.address)
    # Signed slots swapped, and a customer signature over other terms of termination.
    rejected(world, agreement, "BadConsent", agreement.terminate, world.stranger, 1, deadline,
             customer_sig, provider_sig)
    other = agreement.sign_termination(world.customer, 2, deadline)
    err = rejected(world, agreement, "BadConsent", agreement.terminate, world.stranger, 1, deadline,
                   provider_sig, other)
    assert err.error_args[0] == world.customer.address and err.error_args[1] != world.customer.address
    # A signature of no length recovers to no one (SignatureChecker's verdict, then named in the error).
    err = rejected(world, agreement, "BadConsent", agreement.terminate, world.provider, 1,
                   deadline, provider_sig, b"")
    assert err.error_args == (world.customer.address, "0x" + "00" * 20)
    # With both signatures it goes through.
    agreement.terminate(world.stranger, 1, deadline, provider_sig, customer_sig)
    assert agreement.active_periods() == 1


def test_wrong_terms_bytes(any_world):
    w = any_world
    agreement = funded(w)
    real = agreement.encoded_terms
    cheaper = w.contracts.encode_terms(agreement.terms._replace(fee=1))
    w.over(agreement, 0, extra=agreement.terms.report_deadline + 100)
    before = state_of(agreement, w)
    reports = [r.as_arg() for r in w.reports(agreement, 0, [[940_000]] * 2)]
    for bad in (cheaper, real[:-32], real + bytes(32), b""):
        assert bad != real
        value = FEE if agreement.is_eth else 0
        reverts("TermsMismatch", w.chain.transact, w.customer, agreement.fn.fund(bad, 0, 1), value=value)
        for call in (agreement.fn.settleByFallback(bad, 0), agreement.fn.close(bad),
                     agreement.fn.withdraw(bad, w.customer.address), agreement.fn.settle(bad, 0, reports),
                     agreement.fn.announceMaintenance(bad, w.chain.now() + 3 * 86_400, 60)):
            reverts("TermsMismatch", w.chain.transact, w.provider, call)
    assert state_of(agreement, w) == before
    # The real terms still work.
    agreement.settle_by_fallback(w.stranger, 0)
