"""``SlaFactory.settleBatch``: several agreements' periods settled in one transaction, each exactly as its own
``settle`` would settle it (the same checks, the same payouts), an item that reverts skipped and logged without
stopping the others, and nothing but this factory's agreements called. On the embedded chain and on anvil."""

from __future__ import annotations

from smartsla.onchain.types import PeriodState
from tests.helpers.agreement import (  # noqa: F401 - the fixtures override conftest's for speed
    chain,
    reverts,
    shared_chain,
    shared_worlds,
    shifted,
    snapshot,
    world,
)
from tests.helpers.world import service

FEE = 1_000 * 10**6


def test_a_batch_settles_each_item_as_settle_would_and_skips_the_ones_that_revert(world, chain):
    w = world
    good, settled_first, short, perfect = (w.create() for _ in range(4))
    for agreement in (good, settled_first, short, perfect):
        agreement.fund(w.customer, 1)
    w.over(perfect, 0)
    # what a lone settle pays for good's reports: measured on a snapshot, then undone
    reports = w.reports(good, 0, [[995_000], [995_000]])
    before = snapshot(good, w)
    mark = chain.snapshot()
    good.settle(w.stranger, 0, reports)
    alone = snapshot(good, w), good.period(0)
    chain.revert_to(mark)

    settled_first.settle(w.oracles[0], 0, w.reports(settled_first, 0, [[1_000_000], [1_000_000]]))
    outcome = w.factory.settle_batch(w.stranger, [
        (good, 0, reports),
        (settled_first, 0, w.reports(settled_first, 0, [[990_000], [990_000]])),   # a peer was first
        (short, 0, w.reports(short, 0, [[990_000]])),                                # one report of a quorum of 2
        (perfect, 0, w.reports(perfect, 0, [[1_000_000], [999_990]])),
    ])
    assert outcome.settled == [(good.address, 0), (perfect.address, 0)]
    assert [(a, p, chain.decode_revert(r).error) for a, p, r in outcome.failed] == [
        (settled_first.address, 0, "PeriodAlreadySettled"), (short.address, 0, "QuorumNotReached")]
    # the batch paid good exactly what its own settle pays; the same provider also had the whole fee of
    # settled_first (its peer's settlement) and of perfect
    after = snapshot(good, w)
    assert good.period(0) == alone[1]
    assert after == shifted(alone[0], provider=2 * FEE)
    assert alone[0] == shifted(before, customer=FEE // 10, provider=FEE - FEE // 10, contract=-FEE)
    assert perfect.period(0).state == PeriodState.SETTLED and perfect.period(0).compensation == 0
    assert short.period(0).state == PeriodState.FUNDED
    assert settled_first.period(0).compensation == 0            # the peer's settlement stands


def test_a_batch_calls_nothing_but_this_factorys_agreements(world, chain):
    w = world
    agreement = w.create()
    agreement.fund(w.customer, 1)
    w.over(agreement, 0)
    reports = w.reports(agreement, 0, [[995_000], [995_000]])
    call = w.factory.contract.functions.settleBatch
    item = (agreement.address, agreement.encoded_terms, 0, [r.as_arg() for r in reports])
    for target in (w.token.address, w.stranger.address, w.factory.contract.functions.implementation().call()):
        err = reverts("NotAnAgreement", chain.transact, w.stranger, call([item, (target, *item[1:])]))
        assert err.error_args == (target,)
    assert agreement.period(0).state == PeriodState.FUNDED      # the whole batch reverted
    outcome = w.factory.settle_batch(w.stranger, [(agreement, 0, reports)])
    assert outcome.settled == [(agreement.address, 0)] and outcome.failed == []


def test_a_batch_with_too_little_gas_fails_whole_instead_of_settling_nothing(world, chain):
    """An item that runs out of gas fails with no revert data. Were it skipped like a refused item, a batch sent with
    too little gas would "succeed" having settled less, and a gas estimate could settle on such a limit. (Under
    EIP-150's 63/64 rule only an item that needs more than ~190,000 gas, here one of 20 services, can run out while
    the batch goes on.) So at every gas limit the batch either settles every item or reverts."""
    w = world
    agreements = [w.create(), w.create(), w.create(services=[service(f"svc-{i}") for i in range(20)])]
    for agreement in agreements:
        agreement.fund(w.customer, 1)
    w.over(agreements[-1], 0)
    reports = [w.reports(a, 0, [[995_000] * len(a.terms.services)] * 2) for a in agreements]
    call = w.factory.contract.functions.settleBatch(
        [(a.address, a.encoded_terms, 0, [r.as_arg() for r in rs]) for a, rs in zip(agreements, reports)])
    outcomes = set()
    for gas in range(200_000, 1_200_001, 25_000):
        try:
            outcomes.add(call.call({"from": w.stranger.address, "gas": gas}))
        except Exception:  # noqa: BLE001 - reverted (the batch, or out of gas outright): nothing settled
            outcomes.add("reverted")
    assert outcomes == {"reverted", 3}, outcomes
    # estimated, the batch settles every item
    outcome = w.factory.settle_batch(w.stranger, list(zip(agreements, [0] * 3, reports)))
    assert len(outcome.settled) == 3 and outcome.failed == []
