"""One list of limits for the terms, held by both sides: the contract refuses exactly what the Python validator
refuses. It once took a report deadline of 0 (with a no-credit fallback the provider could settle at 0% one second
after a period ended, before any oracle could report), one of 2^64-1 (funds locked for ever), any maintenance
notice and an allowance longer than a period."""

from __future__ import annotations

import pytest

from smartsla import constants
from smartsla.chain.chain import dev_account
from smartsla.chain.reverts import Reverted
from smartsla.terms.errors import TermsError
from smartsla.onchain.types import PeriodState
from smartsla.terms.parse import load_terms
from tests.helpers.world import service

TERMS = """\
agreement: limits
provider: provider
customer: customer
payment: {{token: test-usd, fee: "1000"}}
periods: {{start: 1900000000, length: {length}s, count: 3}}
services: [{{id: api, objective: availability, target: "99.9%"}}]
compensation: {{basis: per-service, schedule: [{{below: "99.9%", credit: "10%"}}]}}
oracles: {{members: [oracle-1, oracle-2, oracle-3], quorum: 2, deadline: {deadline}s, fallback: no-credit}}
maintenance: {{allowance: {allowance}s, notice: {notice}s}}
"""
DAY = 86_400
EDGES = {
    "deadline": [0, 1, constants.MIN_REPORT_DEADLINE - 1, constants.MIN_REPORT_DEADLINE,
                 constants.MAX_REPORT_DEADLINE, constants.MAX_REPORT_DEADLINE + 1, 2**64 - 1],
    "allowance": [0, DAY, DAY + 1, 2**64 - 1],
    "notice": [0, constants.MAX_MAINTENANCE_NOTICE, constants.MAX_MAINTENANCE_NOTICE + 1, 2**64 - 1],
}
SOLIDITY = {"deadline": "reportDeadline", "allowance": "maintenanceAllowance", "notice": "maintenanceNotice"}


LONG = 2**33 * 60  # a period longer than 32 bits of seconds (whole minutes): the allowance's own limit bites
CASES = [(f, v, DAY) for f, values in EDGES.items() for v in values] + [
    ("allowance", constants.MAX_MAINTENANCE_ALLOWANCE, LONG), ("allowance", constants.MAX_MAINTENANCE_ALLOWANCE + 1, LONG)]


@pytest.mark.parametrize("field,value,length", CASES)
def test_the_contract_refuses_exactly_what_python_refuses(world, field, value, length):
    values = {"deadline": 2 * DAY, "allowance": 3600, "notice": DAY, field: value}
    try:
        load_terms(TERMS.format(length=length, **values))
        python_ok = True
    except TermsError:
        python_ok = False
    try:
        world.create(periodLength=length, **{SOLIDITY[k]: v for k, v in values.items()})
        contract_ok = True
    except Reverted as exc:
        assert exc.error == "InvalidTerms" and exc.error_args[0] == SOLIDITY[field], exc
        contract_ok = False
    assert python_ok == contract_ok, (field, value, python_ok, contract_ok)


BLOCK_GAS_LIMIT = 30_000_000
TX_SIZE_LIMIT = 128 * 1024  # geth's and most nodes' largest transaction accepted into the pool


def test_terms_at_every_limit_at_once_settle_by_reports_within_a_block_and_a_transaction(world):
    """The worst settlement the validator allows: every service a lower-is-better one with the most tiers, every
    oracle reporting, values of four non-zero bytes arriving in descending order (the median's sort moves each one
    the furthest). Once, at 64 services and 64 oracles, this took 38.8M gas and 280 kB: only the fallback could
    settle such terms."""

    oracles = [dev_account(f"limits-oracle-{i}") for i in range(constants.MAX_ORACLES)]
    worst_tiers = [(4_000_000_000 + i, 100 * (i + 1)) for i in range(constants.MAX_TIERS)]
    services = [service(f"s{i}", target=3_999_999_999, lower=True, tiers=worst_tiers)
                for i in range(constants.MAX_SERVICES)]
    agreement = world.create(services=services, oracles=[o.address for o in oracles], quorum=len(oracles),
                             periodCount=constants.MAX_PERIODS, capBps=constants.MAX_CAP_BPS)
    agreement.fund(world.customer, 1)
    world.over(agreement, 0)
    reports = [agreement.sign_report(o, 0, [4_294_967_295 - 1_000 * r - s for s in range(len(services))],
                                     [constants.PPM - r] * len(services), bytes([r + 1]) * 32)
               for r, o in enumerate(oracles)]
    call = agreement.fn.settle(agreement.encoded_terms, 0, [r.as_arg() for r in reports])
    size = len(call._encode_transaction_data()) // 2 - 1
    receipt = world.chain.transact(world.stranger, call, gas=BLOCK_GAS_LIMIT)
    print(f"settle at the limits: {receipt['gasUsed']:,} gas, {size:,} bytes of calldata")
    assert receipt["gasUsed"] < BLOCK_GAS_LIMIT, receipt["gasUsed"]
    assert size < TX_SIZE_LIMIT - 1_024, size  # a kilobyte for the signature, nonce, fees and the rest
    assert agreement.period(0).state == PeriodState.SETTLED
