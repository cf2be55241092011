"""What-if runs of an agreement on the embedded chain: the real contracts, dev accounts and dev oracle keys.

For each requested period: travel past its end, have a quorum of oracles sign the given values, submit,
and read what the contract paid from the settling transaction. Never the Python model alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

from eth_utils import is_address

from smartsla.chain.chain import Chain
from smartsla.constants import ETH, PPM
from smartsla.onchain.client import Contracts
from smartsla.terms.errors import TermsError
from smartsla.penalty import combined_value
from smartsla.terms.model import Terms, format_value
from smartsla.units import format_bps, format_token_amount

Progress = Callable[[str], None]


class SimulationError(ValueError):
    """The simulation's own inputs (not the terms) are wrong; the message names the argument."""


@dataclass
class PeriodOutcome:
    index: int
    values: dict[str, str]
    credit_bps: int
    compensation: int
    provider_payout: int
    gas_used: int
    tx_hash: str
    # the combined value in the objective's unit: what decided the credit with basis combined, shown only with
    # basis per-service; None when the services' objectives differ
    combined: str | None = None


@dataclass
class SimulationResult:
    terms: Terms
    agreement: str
    token_symbol: str
    decimals: int
    gas: dict[str, int]
    periods: list[PeriodOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def amount(self, units: int) -> str:
        return format_token_amount(units, self.decimals)

    def as_json(self) -> dict:
        comp = self.terms.compensation
        return {
            "agreement": self.agreement,
            "token": self.token_symbol,
            "gas": dict(self.gas),
            "basis": comp.basis,
            # how the combined value is formed, and whether it decides the credit (basis combined) or is shown
            "combined": {"how": comp.combined, "decides_credit": comp.basis == "combined"}
            if self.terms.combined_objective() is not None else None,
            "periods": [
                {
                    "index": p.index,
                    "values": p.values,
                    "combined": p.combined,
                    "credit_bps": p.credit_bps,
                    "compensation": self.amount(p.compensation),
                    "provider_payout": self.amount(p.provider_payout),
                    "gas_used": p.gas_used,
                }
                for p in self.periods
            ],
            "totals": {
                "compensation": self.amount(sum(p.compensation for p in self.periods)),
                "provider_payout": self.amount(sum(p.provider_payout for p in self.periods)),
            },
        }


_PAIR_RE = re.compile(r"^\s*([^=,\s]+)\s*=\s*([^,]+?)\s*$")


def parse_period_arg(terms: Terms, text: str, position: int) -> dict[str, int]:
    """``"api=99.95%,db=100%"`` (or ``"99.95%"`` for a single-service agreement) -> ppm/µs per service."""
    where = f"--period #{position + 1} ({text!r})"
    ids = terms.service_ids
    given: dict[str, str] = {}
    if "=" not in text:
        if len(ids) != 1:
            raise SimulationError(f"{where}: this agreement has services {', '.join(ids)}; write them as "
                                  f"{','.join(f'{i}=99.9%' for i in ids)}")
        given[ids[0]] = text.strip()
    else:
        for part in text.split(","):
            match = _PAIR_RE.match(part)
            if not match:
                raise SimulationError(f"{where}: {part!r} is not SERVICE=VALUE, e.g. {ids[0]}=99.95%")
            sid, value = match.groups()
            if sid not in ids:
                raise SimulationError(f"{where}: unknown service {sid!r}; the services are {', '.join(ids)}")
            if sid in given:
                raise SimulationError(f"{where}: service {sid!r} is given twice")
            given[sid] = value
    missing = [i for i in ids if i not in given]
    if missing:
        raise SimulationError(f"{where}: no value for {', '.join(missing)}; give every service a value")
    values = {}
    for sid, value in given.items():
        try:
            values[sid] = terms.parse_value(sid, value)
        except ValueError as exc:
            raise SimulationError(f"{where}: {sid}: {exc}") from None
    return values


def simulate(terms: Terms, periods: Sequence[dict[str, int]], progress: Progress | None = None,
             chain: Chain | None = None) -> SimulationResult:
    say = progress or (lambda _msg: None)
    if not periods:
        raise SimulationError("give at least one --period")
    if len(periods) > terms.periods.count:
        raise SimulationError(f"{len(periods)} --period values, but the terms have only {terms.periods.count} periods")
    own_chain = chain is None
    chain = chain or Chain.connect("embedded")
    try:
        return _run(terms, periods, say, chain)
    finally:
        if own_chain:
            chain.close()


def _stand_in(chain: Chain, value: str, role: str, notes: list[str]):
    """Dev account acting for a party or oracle. A real address in the terms cannot sign here, so a dev
    account of the same role stands in for it."""
    if is_address(value):
        notes.append(f"{role} {value} is a real address; dev account {role!r} stands in for it")
        return chain.account(role)
    return chain.account(value)


def _run(terms: Terms, periods: Sequence[dict[str, int]], say: Progress, chain: Chain) -> SimulationResult:
    notes: list[str] = []
    say("compiling contracts (cached after the first run)")
    contracts = Contracts(chain)
    deployer = chain.account("deployer")
    provider = _stand_in(chain, terms.provider, "provider", notes)
    customer = _stand_in(chain, terms.customer, "customer", notes)
    oracles = [_stand_in(chain, m, f"oracle-{i + 1}", notes) for i, m in enumerate(terms.oracles.members)]
    accounts = {"provider": provider.address, "customer": customer.address}
    accounts.update({f"oracles.members[{i}]": o.address for i, o in enumerate(oracles)})

    gas: dict[str, int] = {}
    say("deploying the factory")
    factory = contracts.deploy_factory(deployer)
    token = terms.payment.token
    if token == "ETH":
        token_address, decimals, symbol = ETH, 18, "ETH"
    elif token == "test-usd":
        usd = contracts.deploy_test_usd(deployer)
        token_address, decimals, symbol = usd.address, 6, "tUSD"
    else:
        raise SimulationError(
            f"payment.token {token} is an ERC-20 address; simulate runs on a fresh embedded chain where that token "
            "does not exist. Simulate with token: test-usd or ETH (the maths is the same)")

    start = terms.periods.start
    now = chain.now()
    if start is None or start <= now + 60:
        if start is not None:
            notes.append("periods.start is in the past on the embedded chain; the simulation starts now")
        start = now + 120

    def resolve(_value: str, path: str) -> str:
        return accounts[path]

    chain_terms = terms.to_chain(resolve, token_address, decimals, start=start)
    fee = terms.payment.fee_units(decimals)
    bond = terms.payment.bond_units(decimals)
    if token_address != ETH:
        mint = contracts.token(token_address).functions.mint
        chain.transact(deployer, mint(customer.address, fee * len(periods)))
        if bond:
            chain.transact(deployer, mint(provider.address, bond))

    say(f"creating agreement {terms.agreement!r}")
    agreement = factory.create(provider, chain_terms)
    gas["create"] = agreement.create_receipt["gasUsed"]
    if bond:
        say("provider posts the bond (before any period can be funded)")
        gas["bond"] = agreement.post_bond(provider, bond)["gasUsed"]
    say(f"customer escrows {len(periods)} period fee(s), its consent to the terms")
    gas["fund"] = agreement.fund(customer, len(periods))["gasUsed"]

    result = SimulationResult(terms, agreement.address, symbol, decimals, gas, notes=notes)
    signers = oracles[: terms.oracles.quorum]
    for index, values in enumerate(periods):
        chain.travel_to(agreement.period_end(index) + 1)
        ordered = [values[sid] for sid in terms.service_ids]
        # a simulated oracle measured the whole period
        reports = [agreement.sign_report(o, index, ordered, [PPM] * len(ordered)) for o in signers]
        receipt = agreement.settle(customer, index, reports)
        event = agreement.settlement(receipt)
        objective = terms.combined_objective()
        outcome = PeriodOutcome(
            index=index,
            values={sid: terms.format_value(sid, values[sid]) for sid in terms.service_ids},
            combined=None if objective is None else format_value(
                objective, combined_value(terms.credit_rules(), ordered)),
            credit_bps=int(event["creditBps"]),
            compensation=int(event["compensation"]),
            provider_payout=int(event["providerPayout"]),
            gas_used=int(receipt["gasUsed"]),
            tx_hash=receipt["transactionHash"].hex(),
        )
        result.periods.append(outcome)
        say(f"period {index} settled: credit {format_bps(outcome.credit_bps)}")
    return result


__all__ = ["SimulationError", "SimulationResult", "PeriodOutcome", "parse_period_arg", "simulate", "TermsError"]
