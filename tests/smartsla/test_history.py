"""smartsla.history: an agreement and its whole history rebuilt from chain data alone (embedded and anvil)."""

from __future__ import annotations

import pytest

from smartsla.onchain.history import HistoryError, load_history
from smartsla.onchain.types import PeriodState
from tests.helpers.agreement import deploy_hostile_token
from tests.helpers.world import AWS_TIERS, service

FEE = 1_000 * 10**6
DAY = 86_400


def conserved(history) -> dict[str, int]:
    t = history.totals()
    assert t["escrowed"] == t["transferred_out"] + t["held_expected"]
    assert t["held_expected"] == t["held_now"] == history.balance
    assert t["bond_left"] == history.bond_balance
    assert t["owed"] == sum(history.owed.values())
    return t


def test_full_history(world):
    """Fund, bond, maintenance, a settlement from three reports that reaches into the bond, a deferred payment
    and its withdrawal, a fallback, an agreed termination with a refund, a last settlement and the close."""
    w = world
    token = deploy_hostile_token(w, [w.customer.address, w.provider.address])
    agreement = w.create(token=token.address, periodCount=4, capBps=15_000,
                         services=[service(tiers=AWS_TIERS + [(900_000, 15_000)])])
    agreement.post_bond(w.provider, 800 * 10**6)  # the terms' bond, before any funding
    agreement.fund(w.customer, 4)
    window = (agreement.period_start(1) + 3 * DAY, agreement.period_start(1) + 3 * DAY + 3_600)
    agreement.announce_maintenance(w.provider, window[0], 3_600)

    w.over(agreement, 0)
    reports = w.reports(agreement, 0, [[850_000], [850_000], [999_999]])
    agreement.settle(w.stranger, 0, reports)

    w.chain.transact(w.deployer, token.functions.setBlocked(w.customer.address, True))
    w.over(agreement, 1, agreement.terms.report_deadline)
    agreement.settle_by_fallback(w.deployer, 1)
    w.chain.transact(w.deployer, token.functions.setBlocked(w.customer.address, False))
    agreement.withdraw(w.customer)

    deadline = w.chain.now() + DAY
    agreement.terminate(w.stranger, 3, deadline, agreement.sign_termination(w.provider, 3, deadline),
                        agreement.sign_termination(w.customer, 3, deadline))
    w.over(agreement, 2)
    agreement.settle(w.stranger, 2, w.reports(agreement, 2, [[1_000_000], [999_950]])[:2])
    agreement.close(w.stranger)

    h = load_history(w.contracts, agreement.address)
    assert h.factory == w.factory.address
    assert h.created_tx == "0x" + bytes(agreement.create_receipt["transactionHash"]).hex()
    assert h.created_by == w.provider.address
    assert h.encoded_terms == agreement.encoded_terms
    assert h.terms_hash == h.views["termsHash"]
    assert h.document_hash == b"\x11" * 32
    assert [f.args["periods"] for f in h.fundings] == [4]
    assert [b.args["amount"] for b in h.bonds] == [800 * 10**6]
    assert h.maintenance == [window]

    s0 = h.settlements[0]
    assert s0.state == PeriodState.SETTLED and not s0.by_fallback and s0.values == (850_000,)
    assert (s0.credit_bps, s0.compensation, s0.compensation_from_bond, s0.provider_payout) == (
        15_000, 1_500 * 10**6, 500 * 10**6, 0)
    assert s0.settled_by == w.stranger.address
    assert [(r.oracle, r.values, r.signature) for r in s0.reports] == [
        (r.signer, r.values, r.signature) for r in reports]
    s1 = h.settlements[1]
    assert s1.by_fallback and s1.state == PeriodState.SETTLED_BY_FALLBACK and s1.reports == [] and s1.values == ()
    assert s1.settled_by == w.deployer.address
    assert (s1.compensation, s1.compensation_from_bond) == (FEE, 0)
    assert [d.args for d in h.deferred] == [{"to": w.customer.address, "amount": FEE}]
    assert [x.args["amount"] for x in h.withdrawals] == [FEE]
    assert h.terminated.args == {"activePeriods": 3, "refundedPeriods": 1, "refund": FEE}
    assert h.settlements[2].credit_bps == 0 and len(h.settlements[2].reports) == 2
    assert h.closed.args == {"bondReturned": 300 * 10**6}
    assert h.views["closed"] and h.views["openFundedPeriods"] == 0
    assert [p.state for p in h.periods] == [PeriodState.SETTLED, PeriodState.SETTLED_BY_FALLBACK,
                                            PeriodState.SETTLED, PeriodState.REFUNDED]

    names = [e.name for e in h.events]
    assert names[:5] == ["AgreementCreated", "Consented", "BondPosted", "Funded", "MaintenanceAnnounced"]
    assert names.count("ReportAccepted") == 5 and names[-1] == "Closed"
    assert [(e.block, e.log_index) for e in h.events] == sorted((e.block, e.log_index) for e in h.events)
    assert all(e.timestamp > 0 for e in h.events)
    assert h.transactions[0] == h.created_tx and len(h.transactions) == len(set(h.transactions)) == 11

    t = conserved(h)
    assert t["escrowed"] == 4 * FEE + 800 * 10**6
    assert t["paid_to_customer"] == 1_500 * 10**6 + FEE + FEE  # period 0, fallback, refund
    assert t["paid_to_provider"] == FEE + 300 * 10**6           # period 2, bond returned
    assert t["held_now"] == 0 and t["owed"] == 0
    assert h.to_json()["totals"] == t


def test_history_mid_term_eth_with_unfunded_period(eth_world):
    """An ETH agreement read mid-term: an unfunded period settled by reports moves no money; what is held is
    the open fees plus the bond."""
    w = eth_world
    agreement = w.create(periodCount=5, fee=10**15)
    w.over(agreement, 0)
    agreement.fund(w.customer, 2)  # funds periods 2 and 3: period 1 has begun
    agreement.post_bond(w.provider, 5 * 10**14)
    agreement.settle(w.stranger, 0, w.reports(agreement, 0, [[900_000], [900_000]]))
    h = load_history(w.contracts, agreement.address, w.factory.address)
    s = h.settlements[0]
    assert s.state == PeriodState.SETTLED_UNFUNDED and not s.funded
    assert (s.credit_bps, s.compensation, s.provider_payout) == (10_000, 0, 0)
    assert h.fundings[0].args["firstPeriod"] == 2
    t = conserved(h)
    assert t["open_fees"] == 2 * 10**15 and t["held_now"] == 25 * 10**14


def test_history_refuses_what_the_factory_did_not_create(world):
    agreement = world.create()
    with pytest.raises(HistoryError, match="no contract"):
        load_history(world.contracts, world.stranger.address)
    with pytest.raises(HistoryError, match="not an SlaAgreement"):
        load_history(world.contracts, world.token.address)
    other = world.contracts.deploy_factory(world.deployer)
    with pytest.raises(HistoryError, match="did not create"):
        load_history(world.contracts, agreement.address, other.address)
