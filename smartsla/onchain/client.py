"""Typed client for the agreement contracts: deploy the factory, create, fund, report, settle, withdraw, read.

Agreements keep only a hash of their terms; this client carries the encoded terms (recovered from the
factory's ``AgreementCreated`` event when attaching to an existing agreement) and passes them on each call.
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple, Sequence

from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3.logs import DISCARD

from smartsla.chain.build import Artifact, compile_contracts
from smartsla.chain.chain import Chain
from smartsla.constants import ETH_DECIMALS
from smartsla.encoding import abi_type
from smartsla.onchain import eip712
from smartsla.onchain.types import OnChainTerms, PeriodRecord, PeriodState, SignedReport, python_name


def _function_abi(abi: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(item for item in abi if item.get("type") == "function" and item["name"] == name)


class TokenInfo(NamedTuple):
    """How to show amounts of a token to people. ERC-20 metadata is optional: a token without ``symbol()`` or
    ``decimals()`` is shown in base units (``decimals`` 0) under a name made from its address, never under a
    guessed number of decimals."""

    symbol: str
    decimals: int
    has_metadata: bool


class Contracts:
    """The compiled contracts bound to one chain."""

    def __init__(self, chain: Chain, artifacts: dict[str, Artifact] | None = None):
        self.chain = chain
        self.artifacts = artifacts or compile_contracts()
        for art in self.artifacts.values():
            chain.register_errors(art.abi)
        terms_input = _function_abi(self.artifacts["SlaFactory"].abi, "encodeTerms")["inputs"][0]
        self.terms_type = abi_type(terms_input)
        # OnChainTerms is the struct in Python names; a build whose struct differs must not be read by position
        members = [python_name(c["name"]) for c in terms_input["components"]]
        if tuple(members) != OnChainTerms._fields:
            raise ValueError(f"SlaTerms.Terms has members {members}, OnChainTerms expects {OnChainTerms._fields}")

    @property
    def w3(self):
        return self.chain.w3

    def encode_terms(self, terms: tuple) -> bytes:
        return self.w3.codec.encode([self.terms_type], [terms])

    def decode_terms(self, encoded: bytes) -> OnChainTerms:
        return OnChainTerms.from_abi(self.w3.codec.decode([self.terms_type], encoded)[0])

    def deploy(self, name: str, sender: LocalAccount, *args: Any) -> tuple[Any, dict[str, Any]]:
        art = self.artifacts[name]
        return self.chain.deploy(sender, art.abi, art.bytecode, *args)

    def deploy_factory(self, sender: LocalAccount) -> "Factory":
        contract, receipt = self.deploy("SlaFactory", sender)
        return Factory(self, contract.address, receipt)

    def factory_at(self, address: str) -> "Factory":
        return Factory(self, to_checksum_address(address))

    def closed_among(self, addresses: Sequence[str], from_block: int, to_block: int) -> set[str]:
        """Which of these agreements logged ``Closed`` in blocks ``from_block..to_block``: one log query for all of
        them, however many, instead of a ``closed()`` call each."""
        if not addresses or to_block < from_block:
            return set()
        event = self.w3.eth.contract(abi=self.artifacts["SlaAgreement"].abi).events.Closed()
        logs = self.w3.eth.get_logs({"address": [to_checksum_address(a) for a in addresses],
                                     "topics": [event.topic], "fromBlock": from_block, "toBlock": to_block})
        return {to_checksum_address(log["address"]) for log in logs}

    def token(self, address: str) -> Any:
        return self.w3.eth.contract(address=to_checksum_address(address), abi=self.artifacts["TestUSD"].abi)

    def token_info(self, address: str) -> TokenInfo:
        if int(address, 16) == 0:
            return TokenInfo("ETH", ETH_DECIMALS, True)
        token = self.token(address)
        try:
            return TokenInfo(str(token.functions.symbol().call()), int(token.functions.decimals().call()), True)
        except Exception:  # noqa: BLE001 - no (or broken) metadata: the fallback stated in TokenInfo
            return TokenInfo(f"base units of {to_checksum_address(address)[:10]}…", 0, False)

    def deploy_test_usd(self, sender: LocalAccount) -> Any:
        contract, _ = self.deploy("TestUSD", sender)
        return contract


class BatchOutcome(NamedTuple):
    """What one ``settleBatch`` transaction did: the (agreement, period) items it settled, and those that reverted
    as (agreement, period, revert data): a peer settled it first, a report was refused, ..."""

    receipt: dict[str, Any]
    settled: list[tuple[str, int]]
    failed: list[tuple[str, int, bytes]]


class Factory:
    def __init__(self, contracts: Contracts, address: str, receipt: dict[str, Any] | None = None):
        self.contracts = contracts
        self.address = address
        self.deploy_receipt = receipt
        self.contract = contracts.w3.eth.contract(address=address, abi=contracts.artifacts["SlaFactory"].abi)

    def create(self, sender: LocalAccount, terms: tuple) -> "Agreement":
        encoded = self.contracts.encode_terms(terms)
        receipt = self.contracts.chain.transact(sender, self.contract.functions.create(encoded))
        event = self.contract.events.AgreementCreated().process_receipt(receipt, errors=DISCARD)[0]
        agreement = self.from_event(event)
        agreement.create_receipt = receipt
        return agreement

    def supports_batch(self) -> bool:
        """Whether this factory has ``settleBatch`` (factories deployed before it do not): an empty batch is
        called, not sent."""
        try:
            return int(self.contract.functions.settleBatch([]).call()) == 0
        except Exception:  # noqa: BLE001 - no such function (a revert, or no answer to decode): settle one by one
            return False

    def settle_batch(self, sender: LocalAccount,
                     items: Sequence[tuple["Agreement", int, Iterable[SignedReport]]]) -> BatchOutcome:
        """Settle several agreements' periods in one transaction (``settleBatch``): each item is settled exactly as
        its own ``settle`` would, and one that reverts is skipped (``BatchItemFailed``), not the batch."""
        args = [(a.address, a.encoded_terms, period, [r.as_arg() for r in reports]) for a, period, reports in items]
        receipt = self.contracts.chain.transact(sender, self.contract.functions.settleBatch(args))
        failed_at = {int(e["args"]["position"]): bytes(e["args"]["reason"])
                     for e in self.contract.events.BatchItemFailed().process_receipt(receipt, errors=DISCARD)}
        settled, failed = [], []
        for position, (agreement, period, _) in enumerate(items):
            if position in failed_at:
                failed.append((agreement.address, period, failed_at[position]))
            else:
                settled.append((agreement.address, period))
        return BatchOutcome(receipt, settled, failed)

    def created_events(self, from_block: int = 0, to_block: int | None = None) -> list[Any]:
        """``AgreementCreated`` logs of blocks ``from_block..to_block`` (both included; default: to the latest)."""
        if to_block is None:
            return list(self.contract.events.AgreementCreated().get_logs(from_block=from_block))
        if to_block < from_block:
            return []
        return list(self.contract.events.AgreementCreated().get_logs(from_block=from_block, to_block=to_block))

    def created_event(self, address: str) -> Any | None:
        """The ``AgreementCreated`` log of one agreement, found by its indexed address (a topic filter: the node
        matches it, nothing else is decoded), or None."""
        found = self.contract.events.AgreementCreated().get_logs(
            from_block=0, argument_filters={"agreement": to_checksum_address(address)})
        return found[0] if found else None

    def agreements_for(self, account: str, from_block: int = 0) -> list["Agreement"]:
        """Agreements created by this factory that name ``account`` as provider, customer or oracle, each decoded
        once (oracles are not an indexed field, so every log of the range is read)."""
        account = to_checksum_address(account)
        found = []
        for event in self.created_events(from_block):
            agreement = self.from_event(event)
            if agreement.roles(account):
                found.append(agreement)
        return found

    def from_event(self, event: Any) -> "Agreement":
        """The agreement an ``AgreementCreated`` log announces, decoded from the terms it carries (no call)."""
        agreement = Agreement(self.contracts, event["args"]["agreement"], bytes(event["args"]["terms"]), self)
        agreement.created_by = event["args"]["creator"]  # read here, so creator() needs no second scan of the logs
        return agreement

    def agreement(self, address: str) -> "Agreement":
        address = to_checksum_address(address)
        event = self.created_event(address)
        if event is None:
            raise LookupError(f"no agreement {address} was created by factory {self.address}")
        return self.from_event(event)


class Agreement:
    """One deployed agreement. Amounts are in the token's base units; values are uint32 (ppm or µs)."""

    create_receipt: dict[str, Any] | None = None
    created_by: str | None = None

    def __init__(self, contracts: Contracts, address: str, encoded_terms: bytes, factory: Factory | None = None):
        self.contracts = contracts
        self.chain = contracts.chain
        self.address = to_checksum_address(address)
        self.encoded_terms = encoded_terms
        self.terms = contracts.decode_terms(encoded_terms)
        self.factory = factory
        self.contract = contracts.w3.eth.contract(address=self.address, abi=contracts.artifacts["SlaAgreement"].abi)
        self.fn = self.contract.functions

    # ------------------------------------------------------------ facts

    @property
    def token(self) -> str:
        return self.terms.token

    @property
    def is_eth(self) -> bool:
        return int(self.token, 16) == 0

    def period_start(self, index: int) -> int:
        return self.terms.period_start(index)

    def period_end(self, index: int) -> int:
        return self.period_start(index + 1)

    def period(self, index: int) -> PeriodRecord:
        state, credit, maint, comp, payout = self.fn.period(index).call()
        return PeriodRecord(PeriodState(state), credit, maint, comp, payout)

    def owed(self, account: str) -> int:
        return self.fn.owed(to_checksum_address(account)).call()

    def bond_balance(self) -> int:
        return self.fn.bondBalance().call()

    def active_periods(self) -> int:
        return self.fn.activePeriods().call()

    def consents(self) -> dict[str, bool]:
        """Which parties have agreed to the terms on-chain: until both have, nothing is funded or settled."""
        return {"provider": bool(self.fn.providerConsented().call()),
                "customer": bool(self.fn.customerConsented().call())}

    def missing_consents(self) -> list[str]:
        """The parties ("provider", "customer") that have not agreed to the terms on-chain yet."""
        return [role for role, ok in self.consents().items() if not ok]

    def is_binding(self) -> bool:
        return not self.missing_consents()

    def bond_posted(self) -> bool:
        """Whether the bond has reached the terms' bond at some point (true when they ask for none): periods can be
        funded only then."""
        return bool(self.fn.bondPosted().call())

    def creator(self) -> str | None:
        """Who called the factory's ``create`` (its ``creator``, whose consent creating was), from the factory's log;
        None without a factory."""
        if self.created_by is not None:
            return self.created_by
        if self.factory is None:
            return None
        event = self.factory.created_event(self.address)
        return None if event is None else event["args"]["creator"]

    def balance(self) -> int:
        """What the agreement holds, in its token."""
        if self.is_eth:
            return self.chain.w3.eth.get_balance(self.address)
        return self.contracts.token(self.token).functions.balanceOf(self.address).call()

    def balance_of(self, account: str) -> int:
        if self.is_eth:
            return self.chain.w3.eth.get_balance(to_checksum_address(account))
        return self.contracts.token(self.token).functions.balanceOf(to_checksum_address(account)).call()

    def roles(self, account: str) -> list[str]:
        """The roles ``account`` holds in this agreement: provider, customer, oracle (possibly none)."""
        account = to_checksum_address(account)
        roles = [role for role in ("provider", "customer") if getattr(self.terms, role) == account]
        if account in self.terms.oracles:
            roles.append("oracle")
        return roles

    def maintenance_windows(self, from_block: int = 0) -> list[tuple[int, int]]:
        """Announced maintenance windows ``(start, end)``, half-open, in announcement order, read from the chain."""
        return [(int(e["args"]["start"]), int(e["args"]["end"])) for e in self.events("MaintenanceAnnounced", from_block)]

    # ------------------------------------------------------------ money in

    def _pay_in(self, sender: LocalAccount, amount: int, call: Any) -> dict[str, Any]:
        if self.is_eth:
            return self.chain.transact(sender, call, value=amount)
        token = self.contracts.token(self.token)
        if token.functions.allowance(sender.address, self.address).call() < amount:
            self.chain.transact(sender, token.functions.approve(self.address, amount))
        return self.chain.transact(sender, call)

    def first_fundable(self, now: int | None = None) -> int:
        """The first period a deposit funds at ``now`` (default: the latest block's time): the first not begun, or
        after the last funded, whichever is later."""
        now = self.chain.now() if now is None else now
        start = int(self.terms.start)
        unstarted = 0 if now < start else (now - start) // int(self.terms.period_length) + 1
        return max(unstarted, int(self.fn.nextFundable().call()))

    def fund(self, customer: LocalAccount, periods: int = 1, first_period: int | None = None) -> dict[str, Any]:
        """Escrow ``periods`` fees from ``first_period`` on (default: :meth:`first_fundable` now); the contract
        refuses the deposit (FundingMoved) if that is no longer the first fundable period when it lands."""
        amount = self.terms.fee * periods
        first = self.first_fundable() if first_period is None else first_period
        return self._pay_in(customer, amount, self.fn.fund(self.encoded_terms, first, periods))

    def post_bond(self, provider: LocalAccount, amount: int) -> dict[str, Any]:
        return self._pay_in(provider, amount, self.fn.postBond(self.encoded_terms, amount))

    def accept(self, party: LocalAccount) -> dict[str, Any]:
        """``party`` (provider or customer) agrees to the terms on-chain."""
        return self.chain.transact(party, self.fn.accept(self.encoded_terms))

    def consent_message(self) -> dict[str, Any]:
        return eip712.consent_message(self.chain.w3.eth.chain_id, self.address, keccak(self.encoded_terms))

    def sign_consent(self, party: LocalAccount) -> bytes:
        """``party``'s signed consent to these terms, for anyone to submit (:meth:`accept_for`)."""
        return eip712.sign(party, self.consent_message())

    def accept_for(self, sender: LocalAccount, party: str, signature: bytes) -> dict[str, Any]:
        """Submit ``party``'s signed consent (an ECDSA signature, or one its ERC-1271 wallet accepts)."""
        return self.chain.transact(sender, self.fn.acceptFor(self.encoded_terms, to_checksum_address(party),
                                                             signature))

    # ------------------------------------------------------------ reports

    def report_message(self, period: int, values: Sequence[int], coverage: Sequence[int], evidence_root: bytes,
                       chain_id: int | None = None) -> dict[str, Any]:
        return eip712.report_message(self.chain.w3.eth.chain_id if chain_id is None else chain_id, self.address,
                                     period, values, coverage, evidence_root)

    def sign_report(self, oracle: LocalAccount, period: int, values: Sequence[int], coverage: Sequence[int],
                    evidence_root: bytes = b"\0" * 32, chain_id: int | None = None) -> SignedReport:
        """``coverage``: per service, the ppm of its eligible slices the values are measured from (no default: a
        signer states it)."""
        signature = eip712.sign(oracle, self.report_message(period, values, coverage, evidence_root, chain_id))
        return SignedReport(tuple(values), tuple(coverage), evidence_root, signature, oracle.address)

    def report_signer(self, period: int, values: Sequence[int], coverage: Sequence[int], evidence_root: bytes,
                      signature: bytes) -> str | None:
        """Who signed this report for this agreement and period (None for a signature that does not recover)."""
        return eip712.recover(self.report_message(period, values, coverage, evidence_root), signature)

    def settle(self, sender: LocalAccount, period: int, reports: Iterable[SignedReport]) -> dict[str, Any]:
        args = [r.as_arg() for r in reports]
        return self.chain.transact(sender, self.fn.settle(self.encoded_terms, period, args))

    def settle_by_fallback(self, sender: LocalAccount, period: int) -> dict[str, Any]:
        return self.chain.transact(sender, self.fn.settleByFallback(self.encoded_terms, period))

    # ------------------------------------------------------------ money out and endings

    def withdraw(self, account: LocalAccount, to: str | None = None) -> dict[str, Any]:
        return self.chain.transact(account, self.fn.withdraw(self.encoded_terms, to or account.address))

    def pay_owed(self, sender: LocalAccount, owner: str) -> dict[str, Any]:
        """Have what is owed to ``owner`` paid to ``owner`` itself (anyone may)."""
        return self.chain.transact(sender, self.fn.payOwed(self.encoded_terms, to_checksum_address(owner)))

    def termination_nonce(self) -> int:
        """The nonce a termination consent must name now: it moves on with each termination and revocation."""
        return int(self.fn.terminationNonce().call())

    def sign_termination(self, party: LocalAccount, active_periods: int, deadline: int,
                         nonce: int | None = None) -> bytes:
        nonce = self.termination_nonce() if nonce is None else nonce
        return eip712.sign(party, eip712.termination_message(self.chain.w3.eth.chain_id, self.address,
                                                             active_periods, deadline, nonce))

    def termination_signer(self, active_periods: int, deadline: int, signature: bytes,
                           nonce: int | None = None) -> str | None:
        """Who signed consent to this termination at ``nonce`` (default: the current one); None for a signature
        that does not recover."""
        nonce = self.termination_nonce() if nonce is None else nonce
        return eip712.recover(eip712.termination_message(self.chain.w3.eth.chain_id, self.address, active_periods,
                                                         deadline, nonce), signature)

    def revoke_termination_consents(self, party: LocalAccount) -> dict[str, Any]:
        return self.chain.transact(party, self.fn.revokeTerminationConsents(self.encoded_terms))

    def terminate(self, sender: LocalAccount, active_periods: int, deadline: int,
                  provider_signature: bytes, customer_signature: bytes) -> dict[str, Any]:
        call = self.fn.terminate(self.encoded_terms, active_periods, deadline, provider_signature, customer_signature)
        return self.chain.transact(sender, call)

    def close(self, sender: LocalAccount) -> dict[str, Any]:
        return self.chain.transact(sender, self.fn.close(self.encoded_terms))

    def announce_maintenance(self, provider: LocalAccount, start: int, duration: int) -> dict[str, Any]:
        return self.chain.transact(provider, self.fn.announceMaintenance(self.encoded_terms, start, duration))

    # ------------------------------------------------------------ history

    def events(self, name: str, from_block: int = 0) -> list[Any]:
        return list(getattr(self.contract.events, name)().get_logs(from_block=from_block))

    def settlement(self, receipt: dict[str, Any]) -> dict[str, Any]:
        """The PeriodSettled event of a settling transaction's receipt."""
        return dict(self.contract.events.PeriodSettled().process_receipt(receipt, errors=DISCARD)[0]["args"])


def terms_hash(encoded: bytes) -> bytes:
    return keccak(encoded)
