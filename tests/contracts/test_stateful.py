"""Random sequences of everything the parties and strangers can do to three live agreements, against a
Python model of where every token and wei should be.

A: ERC-20 (a token whose owner can block recipients), EOA customer.
B: ETH, the customer is a contract wallet that can be switched to refuse ETH; it signs consents through ERC-1271.
C: the same ERC-20, another EOA customer.
The provider is shared. An agreement is created by the provider (its consent) or by someone else; each party
consents by accepting or by a signed consent anyone submits, the provider also by posting bond and the customer by
funding; each agreement may ask for a bond, which must be posted before funding.
Blocking and refusing drive the deferred-payment (`owed`) paths.

Time is moved only to the middle of quarter-periods, and any check whose outcome would differ between
"now" and a little later is skipped, so block-timestamp drift can never make the model guess wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from web3.logs import DISCARD

from smartsla import penalty
from smartsla.chain.chain import Chain
from smartsla.chain.reverts import Reverted
from smartsla.constants import ETH
from smartsla.onchain.client import Agreement, Contracts
from smartsla.onchain.types import PeriodState
from tests.helpers.strategies import U96, schedules, value_vectors
from tests.helpers.world import World, make_terms, make_world

LENGTH = 8_000
QUARTER = LENGTH // 4
SLACK = 120  # seconds of block-time drift a decision must survive
NOTICE = 1_000
ALLOWANCE = 1_500
MINT = 2**120
# Fees right up to the 2**96 limit reach the uint96 fields of the period record.
token_fees = st.one_of(st.integers(1, 10**12), st.sampled_from([1, 9_999, 10_001]), st.integers(2**94, U96 - 1))


class _ShortRepr:
    # Hypothesis prints a failing example's arguments field by field; the chain's error table runs to pages.
    def _repr_pretty_(self, p, cycle):
        p.text(f"{type(self).__name__}({self.chain.kind})")


@dataclass
class Env(_ShortRepr):
    chain: Chain
    contracts: Contracts
    world: World
    probe: Any
    sink: Any  # an EOA that only ever receives: withdrawals "to" somewhere else
    wallet_owner: Any


def _env(name: str, artifacts) -> tuple[Chain, Env]:
    chain = Chain.connect(name)
    contracts = Contracts(chain, artifacts)
    world = make_world(chain, contracts, with_token=False)
    probe, _ = contracts.deploy("SlaProbe", world.deployer)
    return chain, Env(chain, contracts, world, probe, chain.account("sink"), chain.account("wallet-owner"))


@pytest.fixture(scope="module")
def env(artifacts):
    chain, e = _env("embedded", artifacts)
    yield e
    chain.close()


@pytest.fixture(scope="module")
def anvil_env(artifacts):
    chain, e = _env("anvil", artifacts)
    yield e
    chain.close()


@dataclass
class Period:
    state: PeriodState = PeriodState.UNFUNDED
    credit: int = 0
    maintenance: int = 0
    compensation: int = 0
    payout: int = 0


@dataclass
class Model:
    """What one agreement should hold and record."""

    agreement: Agreement
    customer: str
    fee: int
    start: int
    count: int
    active: int
    periods: list[Period]
    next_fundable: int = 0
    open_funded: int = 0
    closed: bool = False
    bond: int = 0
    bond_required: int = 0
    bond_met: bool = True
    provider_ok: bool = True
    customer_ok: bool = False
    owed: dict[str, int] = field(default_factory=dict)
    paid_in: int = 0
    paid_out: int = 0

    @property
    def eth(self) -> bool:
        return self.agreement.is_eth

    @property
    def binding(self) -> bool:
        return self.provider_ok and self.customer_ok

    def end(self, p: int) -> int:
        return self.start + (p + 1) * LENGTH

    def first_unstarted(self, t: int) -> int:
        return 0 if t < self.start else (t - self.start) // LENGTH + 1


class Machine(RuleBasedStateMachine):
    env: Env  # set by the test function

    # ------------------------------------------------------------ set-up

    @initialize(
        scheds=st.tuples(schedules(), schedules(), schedules()),
        fees=st.tuples(
            token_fees,
            # The wallet holds 1000 ETH; fees stay well inside it.
            st.one_of(st.integers(1, 10**17), st.sampled_from([1, 9_999, 10_001])),
            token_fees,
        ),
        counts=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
        prefund=st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4)),
        blocked=st.lists(st.sampled_from(["provider", "customer", "stranger"]), min_size=1, max_size=3),
        refusing=st.booleans(),
        # Mostly agreements that can run at once, so that the money paths stay common.
        bonds=st.tuples(*(st.sampled_from([0, 0, 0, 1, 5 * 10**6]) for _ in range(3))),
        by_provider=st.tuples(*(st.sampled_from([True, True, True, False]) for _ in range(3))),
        bond_first=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    )
    def setup(self, scheds, fees, counts, prefund, blocked, refusing, bonds, by_provider, bond_first):
        e = self.env
        c, w = e.chain, e.world
        self.chain = c
        self.w = w
        self.provider = w.provider
        self.customers = [w.customer, None, w.stranger]  # B's customer is the wallet, below
        self.settler = w.oracles[0]  # anyone may settle; an account with no money at stake
        self.token, _ = e.contracts.deploy("BlockingToken", w.deployer)
        self.wallet, _ = e.contracts.deploy("RefusingWallet", e.wallet_owner)
        c.transact(w.deployer, to=self.wallet.address, value=10**21)
        for acct in (w.provider, w.customer, w.stranger):
            c.transact(w.deployer, self.token.functions.mint(acct.address, MINT))
        now = c.now()
        start = now + 3 * QUARTER // 2
        customers = [w.customer.address, self.wallet.address, w.stranger.address]
        tokens = [self.token.address, ETH, self.token.address]
        self.models: list[Model] = []
        # fee + bond must stay below the 2**96 limit (InvalidTerms otherwise): the largest fees give way to the bond
        fees = tuple(min(fee, U96 - 1 - bond) for fee, bond in zip(fees, bonds))
        for i in range(3):
            terms = make_terms(
                w, **scheds[i], customer=customers[i], token=tokens[i], fee=fees[i], start=start,
                periodLength=LENGTH, periodCount=counts[i], reportDeadline=LENGTH // 2,
                maintenanceAllowance=ALLOWANCE, maintenanceNotice=NOTICE, bond=bonds[i],
            )
            # made by the provider (its consent) or by someone else (no one's)
            a = w.factory.create(w.provider if by_provider[i] else self.settler, terms)
            self.models.append(Model(a, customers[i], fees[i], start, counts[i], counts[i],
                                     [Period() for _ in range(counts[i])], bond_required=bonds[i],
                                     bond_met=bonds[i] == 0, provider_ok=by_provider[i]))
            if not a.is_eth:
                # Unlimited approvals up front: the client then sends no approve transactions mid-run.
                for payer in (w.provider, self.customers[i]):
                    c.transact(payer, self.token.functions.approve(a.address, 2**256 - 1))
        self.blocked: set[str] = set()
        self.refusing = False
        # Everyone whose balances the model predicts exactly; ETH for EOAs after gas from receipts.
        self.accounts = [w.provider.address, w.customer.address, w.stranger.address, self.wallet.address,
                         e.sink.address, *(m.agreement.address for m in self.models)]
        self.parties = [w.provider.address, w.customer.address, self.wallet.address, w.stranger.address]
        _, tok, eth, self.supply = self._snapshot()
        self.tok = dict(zip(self.accounts, tok))
        self.eth = dict(zip(self.accounts, eth))
        self.stats: dict[str, int] = {}
        # Starting part-way into a life (funded, someone blocked) makes the rare paths common.
        for i, periods in enumerate(prefund):
            if bonds[i] and bond_first[i]:
                self.post_bond(i, bonds[i])
            self._fund(i, min(periods, counts[i]))
        for who in blocked:
            self.obstruct(who, True)
        self.obstruct("wallet", refusing)

    # ------------------------------------------------------------ helpers

    def _snapshot(self):
        probe = self.env.probe.functions
        per = probe.agreements([m.agreement.address for m in self.models],
                               [to_checksum_address(m.agreement.token) for m in self.models], self.parties).call()
        return (per, *probe.balances(self.token.address, self.accounts).call())

    def note(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    def decide(self, predicate) -> bool | None:
        """predicate(t) if it holds the same for every plausible block time, else None (skip the step)."""
        now = self.chain.now()
        first = predicate(now)
        return first if all(predicate(now + d) == first for d in (1, SLACK // 2, SLACK)) else None

    def send(self, sender, call=None, *, value: int = 0, expect: str | None = None, **kw) -> dict | None:
        """Send, expecting success or exactly the custom error `expect`; charge the gas to the sender."""
        if expect is not None:
            with pytest.raises(Reverted) as info:
                self.chain.transact(sender, call, value=value, **kw)
            assert info.value.error == expect, info.value
            self.note(f"revert {expect}")
            return None
        receipt = self.chain.transact(sender, call, value=value, **kw)
        if sender.address in self.eth:
            self.eth[sender.address] -= receipt["gasUsed"] * receipt["effectiveGasPrice"]
        return receipt

    def as_customer(self, m: Model, fn_call, *, value: int = 0, expect: str | None = None):
        """The customer's own call; the wallet customer makes it through the wallet."""
        if m.customer == self.wallet.address:
            data = fn_call._encode_transaction_data()
            call = self.wallet.functions.execute(m.agreement.address, value, data)
            return self.send(self.env.wallet_owner, call, expect=expect)
        sender = self.customers[self.models.index(m)]
        return self.send(sender, fn_call, value=value, expect=expect)

    def move(self, m: Model, to: str, amount: int) -> None:
        """Money leaving agreement m to `to`, as the contract's _pay does."""
        if amount == 0:
            return
        refuses = (to == self.wallet.address and self.refusing) if m.eth else to in self.blocked
        if refuses:
            m.owed[to] = m.owed.get(to, 0) + amount
            self.note("deferred")
        else:
            self.credit(m, to, amount)

    def credit(self, m: Model, to: str, amount: int) -> None:
        m.paid_out += amount
        ledger = self.eth if m.eth else self.tok
        ledger[m.agreement.address] -= amount
        ledger[to] = ledger.get(to, 0) + amount

    def debit(self, m: Model, payer: str, amount: int) -> None:
        m.paid_in += amount
        ledger = self.eth if m.eth else self.tok
        ledger[payer] -= amount
        ledger[m.agreement.address] += amount

    def check_period(self, m: Model, p: int) -> None:
        want = m.periods[p]
        got = m.agreement.period(p)
        assert got.state == want.state, (p, got, want)
        assert got.maintenance_seconds == want.maintenance, (p, got, want)
        assert got.credit_bps == want.credit, (p, got, want)
        assert got.compensation == want.compensation, (p, got, want)
        assert got.provider_payout == want.payout, (p, got, want)

    # ------------------------------------------------------------ money in

    @rule(i=st.integers(0, 2), periods=st.sampled_from([0, 1, 1, 2, 3]), off=st.sampled_from([0, 0, 0, -1, 1]))
    def fund(self, i, periods, off):
        self._fund(i, periods, off)

    def _fund(self, i, periods, off=0):
        """``off``: the caller names another first period than the fundable one (a period began, or another
        deposit landed, while its transaction waited): refused, nothing taken."""
        m = self.models[i]
        first = self.decide(m.first_unstarted)
        if first is None:
            return
        first = max(first, m.next_fundable)
        a = m.agreement
        amount = m.fee * periods
        if off and first + off >= 0:
            named = first + off
            call = a.fn.fund(a.encoded_terms, named, periods)
            value = amount if m.eth else 0
            expect = ("AgreementClosed" if m.closed else "NothingToFund" if periods == 0 else
                      "NotYetBinding" if not m.provider_ok else "BondNotPosted" if not m.bond_met else "FundingMoved")
            return self.as_customer(m, call, value=value, expect=expect)
        call = a.fn.fund(a.encoded_terms, first, periods)
        value = amount if m.eth else 0
        if m.closed:
            return self.as_customer(m, call, value=value, expect="AgreementClosed")
        if periods == 0:
            return self.as_customer(m, call, value=value, expect="NothingToFund")
        if not m.provider_ok:
            return self.as_customer(m, call, value=value, expect="NotYetBinding")
        if not m.bond_met:
            return self.as_customer(m, call, value=value, expect="BondNotPosted")
        if first + periods > m.active:
            return self.as_customer(m, call, value=value, expect="FundingBeyondTerm")
        self.as_customer(m, call, value=value)
        m.customer_ok = True  # funding is the customer's consent
        self.debit(m, m.customer, amount)
        for p in range(first, first + periods):
            m.periods[p].state = PeriodState.FUNDED
        m.next_fundable = first + periods
        m.open_funded += periods
        self.note("fund")
        for p in range(first, first + periods):
            self.check_period(m, p)

    @rule(i=st.integers(0, 2), amount=st.one_of(st.just(0), st.integers(1, 10**12), st.integers(1, 2**95)))
    def post_bond(self, i, amount):
        m = self.models[i]
        if m.eth:
            amount %= 10**19  # the provider has 100,000 ETH for gas and bonds
        a = m.agreement
        call = a.fn.postBond(a.encoded_terms, amount)
        value = amount if m.eth else 0
        if m.closed:
            return self.send(self.provider, call, value=value, expect="AgreementClosed")
        if amount == 0:
            return self.send(self.provider, call, value=value, expect="NothingToFund")
        if m.bond + amount + m.fee >= 2**96:
            # A period's compensation (fee plus bond) must fit its uint96 record.
            return self.send(self.provider, call, value=value, expect="BondTooLarge")
        self.send(self.provider, call, value=value)
        self.debit(m, self.provider.address, amount)
        m.bond += amount
        m.bond_met = m.bond_met or m.bond >= m.bond_required
        m.provider_ok = True  # posting bond is the provider's consent
        self.note("bond")

    # ------------------------------------------------------------ consent

    @rule(i=st.integers(0, 2), who=st.sampled_from(["provider", "customer", "stranger"]), signed=st.booleans())
    def accept(self, i, who, signed):
        """A party consents by calling accept, or anyone submits its signed consent (the wallet's through
        ERC-1271); a stranger's is refused, and so is a second one."""
        m = self.models[i]
        a = m.agreement
        account = {"provider": self.provider.address, "customer": m.customer, "stranger": self.env.sink.address}[who]
        if m.closed:
            expect = "AgreementClosed"
        elif who == "stranger":
            expect = "NotAParty"
        elif (m.provider_ok if who == "provider" else m.customer_ok):
            expect = "AlreadyConsented"
        else:
            expect = None
        if signed:
            signer = {"provider": self.provider, "stranger": self.env.sink}.get(who)
            if signer is None:
                signer = self.env.wallet_owner if m.customer == self.wallet.address else self.customers[i]
            call = a.fn.acceptFor(a.encoded_terms, account, a.sign_consent(signer))
            self.send(self.settler, call, expect=expect)
            # a consent is only ever the signer's own: another's signature is refused
            if who != "stranger" and expect is None:
                forged = a.fn.acceptFor(a.encoded_terms, account, a.sign_consent(self.env.sink))
                self.send(self.settler, forged, expect="BadConsent")
        elif who == "customer":
            self.as_customer(m, a.fn.accept(a.encoded_terms), expect=expect)
        else:
            self.send(self.provider if who == "provider" else self.env.sink, a.fn.accept(a.encoded_terms),
                      expect=expect)
        if expect is None:
            if who == "provider":
                m.provider_ok = True
            else:
                m.customer_ok = True
            self.note("accept")
            if signed:
                self.note("accept signed")
        assert a.consents() == {"provider": m.provider_ok, "customer": m.customer_ok}

    @rule(i=st.integers(0, 2), signed=st.booleans())
    def accept_pending(self, i, signed):
        """A party yet to consent does: the rule above mostly meets parties that have."""
        m = self.models[i]
        pending = [who for who, ok in (("provider", m.provider_ok), ("customer", m.customer_ok)) if not ok]
        if pending and not m.closed:
            self.accept(i, pending[0], signed)

    # ------------------------------------------------------------ maintenance

    @rule(i=st.integers(0, 2), offset=st.integers(-LENGTH, 5 * LENGTH), duration=st.integers(0, ALLOWANCE + 200))
    def announce_maintenance(self, i, offset, duration):
        m = self.models[i]
        a = m.agreement
        start = m.start + offset
        call = a.fn.announceMaintenance(a.encoded_terms, start, duration)
        if m.closed:
            return self.send(self.provider, call, expect="AgreementClosed")
        if duration == 0:
            return self.send(self.provider, call, expect="EmptyWindow")
        early = self.decide(lambda t: start < t + NOTICE)
        if early is None or start < 0:
            return
        if early:
            return self.send(self.provider, call, expect="InsufficientNotice")
        end = start + duration
        if start < m.start or end > m.start + m.active * LENGTH:
            return self.send(self.provider, call, expect="WindowOutsideTerm")
        use = {}
        p = (start - m.start) // LENGTH
        while m.start + p * LENGTH < end:
            p_start = m.start + p * LENGTH
            use[p] = min(end, p_start + LENGTH) - max(start, p_start)
            p += 1
        if any(m.periods[p].maintenance + s > ALLOWANCE for p, s in use.items()):
            return self.send(self.provider, call, expect="AllowanceExceeded")
        self.send(self.provider, call)
        for p, s in use.items():
            m.periods[p].maintenance += s
            self.check_period(m, p)
        self.note("maintenance")

    # ------------------------------------------------------------ settlement

    def _settleable(self, m: Model, p: int, fallback: bool) -> str | None | bool:
        """The error settling p must raise, None if it must succeed, False if time is too close to call."""
        if not m.binding:
            return "NotYetBinding"
        if p >= m.active:
            return "PeriodNotActive"
        over = self.decide(lambda t: t >= m.end(p))
        if over is None:
            return False
        if not over:
            return "PeriodNotOver"
        if m.periods[p].state not in (PeriodState.FUNDED, PeriodState.UNFUNDED):
            return "PeriodAlreadySettled"
        if fallback:
            due = self.decide(lambda t: t >= m.end(p) + LENGTH // 2)
            if due is None:
                return False
            if not due:
                return "DeadlineNotReached"
        return None

    def _apply_settlement(self, m: Model, p: int, values, receipt, how: PeriodState) -> None:
        rec = m.periods[p]
        terms = m.agreement.terms
        funded = rec.state == PeriodState.FUNDED
        want = penalty.settle_period(terms, m.fee, m.bond, values, funded=funded)
        event = m.agreement.settlement(receipt)
        assert event["creditBps"] == want.credit_bps
        compensation = want.to_customer_from_fee + want.to_customer_from_bond
        if funded:
            assert event["state"] == how
            assert (event["compensation"], event["compensationFromBond"], event["providerPayout"]) == (
                compensation, want.to_customer_from_bond, want.to_provider)
            m.bond -= want.to_customer_from_bond
            m.open_funded -= 1
            rec.state, rec.credit, rec.compensation, rec.payout = how, want.credit_bps, compensation, want.to_provider
            self.move(m, m.customer, compensation)
            self.move(m, self.provider.address, want.to_provider)
            self.note("settle funded" if how == PeriodState.SETTLED else "fallback funded")
        else:
            assert event["state"] == PeriodState.SETTLED_UNFUNDED
            assert (event["compensation"], event["compensationFromBond"], event["providerPayout"]) == (0, 0, 0)
            rec.state, rec.credit = PeriodState.SETTLED_UNFUNDED, want.credit_bps
            self.note("settle unfunded")
        self.check_period(m, p)

    @rule(i=st.integers(0, 2), p=st.integers(0, 4), k=st.sampled_from([1, 2, 2, 3, 3]), data=st.data())
    def report_and_settle(self, i, p, k, data):
        m = self.models[i]
        p %= m.count + 1  # one past the end still checks PeriodNotActive
        a = m.agreement
        vectors = data.draw(value_vectors({"services": [list(s) for s in a.terms.services],
                                           "basis": a.terms.basis, "combined": a.terms.combined},
                                          min_size=k, max_size=k))
        reports = self.w.reports(a, p, vectors)
        call = a.fn.settle(a.encoded_terms, p, [r.as_arg() for r in reports])
        outcome = self._settleable(m, p, fallback=False)
        if outcome is False:
            return
        if outcome is None and k < 2:
            outcome = "QuorumNotReached"
        if outcome is not None:
            return self.send(self.settler, call, expect=outcome)
        receipt = self.send(self.settler, call)
        values = penalty.aggregate_reports(a.terms, vectors)
        assert list(a.settlement(receipt)["values"]) == values
        self._apply_settlement(m, p, values, receipt, PeriodState.SETTLED)
        # At most once, by either route.
        self.send(self.settler, call, expect="PeriodAlreadySettled")
        self.send(self.settler, a.fn.settleByFallback(a.encoded_terms, p), expect="PeriodAlreadySettled")

    @rule(i=st.integers(0, 2), k=st.sampled_from([2, 3]), data=st.data())
    def settle_next(self, i, k, data):
        """Travel (if need be) past the end of the oldest open period and settle it: random choice alone
        rarely lands on a period that is both over and open."""
        m = self.models[i]
        open_ = [p for p in range(m.active) if m.periods[p].state in (PeriodState.FUNDED, PeriodState.UNFUNDED)]
        if not open_:
            return
        p = open_[0]
        if self.chain.now() < m.end(p) + SLACK:
            self.chain.travel_to(m.end(p) + QUARTER // 2)
        self.report_and_settle(i, p, k, data)

    @rule(i=st.integers(0, 2), p=st.integers(0, 4))
    def settle_by_fallback(self, i, p):
        m = self.models[i]
        p %= m.count + 1
        a = m.agreement
        call = a.fn.settleByFallback(a.encoded_terms, p)
        outcome = self._settleable(m, p, fallback=True)
        if outcome is False:
            return
        if outcome is not None:
            return self.send(self.settler, call, expect=outcome)
        receipt = self.send(self.settler, call)
        self._apply_settlement(m, p, None, receipt, PeriodState.SETTLED_BY_FALLBACK)
        self.send(self.settler, call, expect="PeriodAlreadySettled")

    # ------------------------------------------------------------ money out

    @rule(i=st.integers(0, 2), who=st.sampled_from(["provider", "customer"]), elsewhere=st.booleans())
    def withdraw(self, i, who, elsewhere):
        m = self.models[i]
        a = m.agreement
        account = self.provider.address if who == "provider" else m.customer
        to = self.env.sink.address if elsewhere else account
        call = a.fn.withdraw(a.encoded_terms, to)
        amount = m.owed.get(account, 0)
        refuses = (to == self.wallet.address and self.refusing) if m.eth else to in self.blocked
        expect = "NothingToWithdraw" if amount == 0 else ("TransferFailed" if m.eth else "RecipientBlocked")
        if amount and not refuses:
            expect = None
        if who == "provider":
            self.send(self.provider, call, expect=expect)
        else:
            self.as_customer(m, call, expect=expect)
        if expect is None:
            m.owed[account] = 0
            self.credit(m, to, amount)
            self.note("withdraw")

    @rule(k=st.integers(0, 5), to_self=st.booleans())
    def withdraw_owed(self, k, to_self):
        """Someone actually owed takes it: the general rule above mostly finds nothing to withdraw."""
        creditors = [(i, who) for i, m in enumerate(self.models)
                     for who, acct in (("provider", self.provider.address), ("customer", m.customer))
                     if m.owed.get(acct)]
        if creditors:
            i, who = creditors[k % len(creditors)]
            self.withdraw(i, who, elsewhere=not to_self)

    @rule(k=st.integers(0, 5))
    def pay_owed(self, k):
        """A stranger has an owner paid what it is owed, to the owner itself (payOwed): the same money, the same
        refusals as the owner's own withdrawal to itself."""
        creditors = [(i, acct) for i, m in enumerate(self.models)
                     for acct in (self.provider.address, m.customer) if m.owed.get(acct)]
        if not creditors:
            return
        i, account = creditors[k % len(creditors)]
        m = self.models[i]
        a = m.agreement
        amount = m.owed[account]
        refuses = (account == self.wallet.address and self.refusing) if m.eth else account in self.blocked
        expect = ("TransferFailed" if m.eth else "RecipientBlocked") if refuses else None
        self.send(self.settler, a.fn.payOwed(a.encoded_terms, account), expect=expect)
        if expect is None:
            m.owed[account] = 0
            self.credit(m, account, amount)
            self.note("pay-owed")

    def _termination_consents(self, i: int, new_active: int, deadline: int) -> tuple[bytes, bytes]:
        """Both parties' signatures over a termination at the current nonce; the wallet customer signs through
        ERC-1271 (its owner's signature is the wallet's)."""
        m = self.models[i]
        signer = self.env.wallet_owner if m.customer == self.wallet.address else self.customers[i]
        return (m.agreement.sign_termination(self.provider, new_active, deadline),
                m.agreement.sign_termination(signer, new_active, deadline))

    @rule(i=st.integers(0, 2), delta=st.integers(-2, 4), expired=st.booleans())
    def terminate(self, i, delta, expired):
        m = self.models[i]
        a = m.agreement
        first = self.decide(m.first_unstarted)
        if first is None:
            return
        new_active = max(0, first + delta)
        deadline = self.chain.now() + (-SLACK if expired else 10 * LENGTH)
        provider_sig, customer_sig = self._termination_consents(i, new_active, deadline)
        call = a.fn.terminate(a.encoded_terms, new_active, deadline, provider_sig, customer_sig)
        if m.closed:
            expect = "AgreementClosed"
        elif expired:
            expect = "TerminationExpired"
        elif new_active < first or new_active >= m.active:
            expect = "InvalidTermination"
        else:
            expect = None
        receipt = self.send(self.provider, call, expect=expect)
        if expect is not None:
            return
        refunded = [p for p in range(new_active, m.active) if m.periods[p].state == PeriodState.FUNDED]
        event = a.contract.events.Terminated().process_receipt(receipt, errors=DISCARD)[0]["args"]
        assert (event["activePeriods"], event["refundedPeriods"], event["refund"]) == (
            new_active, len(refunded), len(refunded) * m.fee)
        for p in refunded:
            m.periods[p].state = PeriodState.REFUNDED
        m.active = new_active
        m.next_fundable = min(m.next_fundable, new_active)
        m.open_funded -= len(refunded)
        self.move(m, m.customer, len(refunded) * m.fee)
        for p in range(new_active, m.count):
            self.check_period(m, p)
        self.note("terminate")

    @rule(i=st.integers(0, 2), by_provider=st.booleans(), delta=st.integers(0, 2))
    def revoke_termination_consents(self, i, by_provider, delta):
        """A party revokes: consents both signed before can no longer be executed."""
        m = self.models[i]
        a = m.agreement
        first = self.decide(m.first_unstarted)
        if first is None:
            return
        new_active = first + delta
        deadline = self.chain.now() + 10 * LENGTH
        provider_sig, customer_sig = self._termination_consents(i, new_active, deadline)
        revoke = a.fn.revokeTerminationConsents(a.encoded_terms)
        if m.closed:
            return self.send(self.provider, revoke, expect="AgreementClosed")
        if by_provider:
            self.send(self.provider, revoke)
        else:
            self.as_customer(m, revoke)
        self.note("revoke")
        if new_active < m.active:
            stale = a.fn.terminate(a.encoded_terms, new_active, deadline, provider_sig, customer_sig)
            self.send(self.settler, stale, expect="BadConsent")

    @rule(i=st.integers(0, 2), by_provider=st.booleans())
    def close(self, i, by_provider):
        m = self.models[i]
        a = m.agreement
        call = a.fn.close(a.encoded_terms)
        sender = self.provider if by_provider else self.settler  # anyone may close
        if m.closed:
            return self.send(sender, call, expect="AgreementClosed")
        # Terminated before its first period, an agreement has nothing left to run.
        ends_at = 0 if m.active == 0 else m.start + m.active * LENGTH
        ended = self.decide(lambda t: t >= ends_at)
        if ended is None:
            return
        # Before both consented, a party withdraws the offer at any time (nothing can be funded then).
        withdrawn_offer = not m.binding and by_provider
        if not withdrawn_offer and (not ended or m.open_funded):
            return self.send(sender, call, expect="NotYetClosable")
        self.send(sender, call)
        m.closed = True
        bond, m.bond = m.bond, 0
        self.move(m, self.provider.address, bond)
        self.note("close")

    # ------------------------------------------------------------ the world around

    # Rule order matters to Hypothesis (it favours the first rule of the fewest arguments), so the
    # single-argument rules are the time travels, the most useful ones to repeat.
    @rule(who=st.sampled_from(["provider", "customer", "stranger", "wallet"]), on=st.booleans())
    def obstruct(self, who, on):
        """Block a token recipient, or switch the wallet customer to refusing ETH."""
        if who == "wallet":
            self.send(self.env.wallet_owner, self.wallet.functions.setRefusing(on))
            self.refusing = on
            return
        account = {"provider": self.provider, "customer": self.w.customer, "stranger": self.w.stranger}[who].address
        self.send(self.w.deployer, self.token.functions.setBlocked(account, on))
        (self.blocked.add if on else self.blocked.discard)(account)

    @rule(quarters=st.integers(1, 8))
    def travel(self, quarters):
        self._travel(quarters)

    @rule(quarters=st.integers(2, 12))
    def travel_far(self, quarters):
        self._travel(quarters)

    def _travel(self, quarters: int) -> None:
        # To the middle of a quarter-period: far from period ends and from report deadlines (half a period).
        start = self.models[0].start
        q = (self.chain.now() - start) // QUARTER + quarters
        self.chain.travel_to(start + q * QUARTER + QUARTER // 2)

    # ------------------------------------------------------------ invariants

    @invariant()
    def books_balance(self):
        if not hasattr(self, "models"):
            return
        # Chain state changes only with a new block, and the model only with our bookkeeping: when neither
        # moved since the last full check, that check still holds. The full read is most of the run time.
        key = (self.chain.w3.eth.block_number, repr(self.models), repr(sorted(self.tok.items())),
               repr(sorted(self.eth.items())))
        if key == getattr(self, "_checked", None):
            return
        self._checked = key
        per, tok, eth, supply = self._snapshot()
        width = 6 + len(self.parties)
        for i, m in enumerate(self.models):
            row = per[i * width:(i + 1) * width]
            owed = dict(zip(self.parties, row[6:]))
            assert row[:5] == [m.bond, m.open_funded, m.active, m.next_fundable, int(m.closed)], (i, row, m)
            assert owed == {p: m.owed.get(p, 0) for p in self.parties}, (i, owed, m.owed)
            # The contract holds exactly what came in minus what went out...
            assert row[5] == m.paid_in - m.paid_out, (i, row[5], m.paid_in, m.paid_out)
            # ...and that is exactly the escrow of open periods, the bond and what it owes.
            assert row[5] == m.fee * m.open_funded + m.bond + sum(m.owed.values()), (i, row[5], m)
        # No token unit created or lost: the tracked accounts hold the whole supply, each what the model says.
        assert supply == self.supply
        assert sum(tok) == supply
        assert dict(zip(self.accounts, tok)) == self.tok
        # ETH: exact for every tracked account, gas included.
        assert dict(zip(self.accounts, eth)) == self.eth

    def teardown(self):
        if hasattr(self, "stats"):
            for m in self.models:
                for p in range(m.count):
                    self.check_period(m, p)
            for what, n in self.stats.items():
                type(self).seen[what] = type(self).seen.get(what, 0) + n

    seen: dict[str, int] = {}


def _run(env: Env, examples: int, steps: int) -> dict[str, int]:
    machine = type("AgreementMachine", (Machine,), {"env": env, "seen": {}})
    # The settle strategy draws whole report sets; the generated data is bigger than the default budget. Derandomized:
    # the same examples every run, so the check that they reached the deferred-payment path cannot fail by chance
    # (18 random examples once reached it 0 times).
    run_state_machine_as_test(machine, settings=settings(
        max_examples=examples, stateful_step_count=steps, deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    ))
    return machine.seen


def test_agreements_keep_their_books_embedded(env):
    seen = _run(env, 18, 25)
    # A run that never reached the interesting paths would pass vacuously.
    # (consent and bond refusals are drawn too, but rarer; tests/contracts/test_consent.py covers each for certain)
    for path in ("fund", "settle funded", "deferred"):
        assert seen.get(path, 0) > 0, (path, sorted(seen.items()))


@pytest.mark.anvil
def test_agreements_keep_their_books_anvil(anvil_env):
    _run(anvil_env, 8, 25)
