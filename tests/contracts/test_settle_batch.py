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
