"""Shared test helpers: terms tuples built directly (the contract tests don't go through YAML) and a
deployed world of factory, token and dev accounts on one chain."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount

from smartsla.chain.chain import Chain
from smartsla.constants import ETH
from smartsla.encoding import service_bytes32
from smartsla.onchain.client import Agreement, Contracts, Factory
from smartsla.onchain.types import OnChainTerms, solidity_name

PPM = 1_000_000
AWS_TIERS = [(999_900, 1_000), (990_000, 3_000), (950_000, 10_000)]


def service(name: str = "api", target: int = 999_900, weight: int = 1, lower: bool = False,
            tiers: list[tuple[int, int]] | None = None) -> tuple:
    return (service_bytes32(name), target, weight, lower, list(AWS_TIERS if tiers is None else tiers))


NO_COMBINED = (b"\0" * 32, 0, 0, False, [])


def make_terms(world: "World", **over: Any) -> tuple:
    """A Terms tuple in the Solidity field order, with sensible defaults and keyword overrides."""
    values: dict[str, Any] = {
        "provider": world.provider.address,
        "customer": world.customer.address,
        "token": world.token_address,
        "fee": 1_000 * 10**6,
        "bond": 0,
        "start": world.chain.now() + 60,
        "periodLength": 30 * 86_400,
        "periodCount": 12,
        "services": [service()],
        "basis": 0,
        "combine": 0,
        "combined": NO_COMBINED,
        "capBps": 10_000,
        "oracles": [o.address for o in world.oracles],
        "quorum": 2,
        "minCoverage": 900_000,
        "reportDeadline": 2 * 86_400,
        "fallbackFullCredit": True,
        "maintenanceAllowance": 4 * 3_600,
        "maintenanceNotice": 48 * 3_600,
        "documentHash": b"\x11" * 32,
    }
    unknown = set(over) - set(values)
    assert not unknown, f"unknown terms fields {unknown}"
    values.update(over)
    return OnChainTerms(*(values[solidity_name(name)] for name in OnChainTerms._fields))


@dataclass
class World:
    chain: Chain
    contracts: Contracts
    factory: Factory
    deployer: LocalAccount
    provider: LocalAccount
    customer: LocalAccount
    oracles: list[LocalAccount]
    stranger: LocalAccount
    token: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def token_address(self) -> str:
        return self.token.address if self.token is not None else ETH

    def create(self, *, accepted: bool = True, **over: Any) -> Agreement:
        """An agreement the provider account creates; with ``accepted`` each of the world's own accounts named as a
        party consents, so that it binds both (most tests are about what happens then)."""
        agreement = self.factory.create(self.provider, make_terms(self, **over))
        if accepted:
            consents = agreement.consents()
            for role, account in (("provider", self.provider), ("customer", self.customer)):
                # a contract party (a test receiver or wallet) accepts through its own helper
                if not consents[role] and getattr(agreement.terms, role) == account.address:
                    agreement.accept(account)
        return agreement

    def mint(self, account: LocalAccount, amount: int) -> None:
        if self.token is not None:
            self.chain.transact(account, self.token.functions.mint(account.address, amount))

    def reports(self, agreement: Agreement, period: int, values_by_oracle: list[list[int]],
                root: bytes = b"\x22" * 32, coverage: list[list[int]] | None = None) -> list:
        """Reports of the first oracles; each measured the whole period unless ``coverage`` says otherwise."""
        coverage = coverage or [[PPM] * len(v) for v in values_by_oracle]
        return [agreement.sign_report(o, period, v, c, root)
                for o, v, c in zip(self.oracles, values_by_oracle, coverage)]

    def over(self, agreement: Agreement, period: int, extra: int = 1) -> None:
        """Travel to just after ``period`` ends."""
        self.chain.travel_to(agreement.period_end(period) + extra)


def make_world(chain: Chain, contracts: Contracts, with_token: bool = True, oracles: int = 3) -> World:
    deployer = chain.account("deployer")
    world = World(
        chain=chain,
        contracts=contracts,
        factory=contracts.deploy_factory(deployer),
        deployer=deployer,
        provider=chain.account("provider"),
        customer=chain.account("customer"),
        oracles=[chain.account(f"oracle-{i + 1}") for i in range(oracles)],
        stranger=chain.account("stranger"),
    )
    if with_token:
        world.token = contracts.deploy_test_usd(deployer)
        for acct in (world.provider, world.customer, world.stranger):
            world.mint(acct, 10**18)
    return world
