"""One list of limits for the terms, held by both sides: the contract refuses exactly what the Python validator
refuses. It once took a report deadline of 0 (with a no-credit fallback the provider could settle at 0% one second
after a period ended, before any oracle could report), one of 2^64-1 (funds locked for ever), any maintenance
notice and an allowance longer than a period."""

from __future__ import annotations

import pytest

from smartsla import constants
from smartsla.chain.reverts import Reverted
from smartsla.terms.errors import TermsError
from smartsla.terms.parse import load_terms

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
