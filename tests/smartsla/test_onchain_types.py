"""The typed on-chain terms: decoded once from the ABI, read by name, encoded as they are."""

from __future__ import annotations

import eth_abi
import pytest
from eth_utils import to_checksum_address

from smartsla.constants import BASIS_COMBINED, COMBINED_ID
from smartsla.encoding import service_bytes32
from smartsla.onchain.types import (
    NO_COMBINED,
    TERMS_ABI_TYPE,
    OnChainService,
    OnChainTerms,
    OnChainTier,
    PeriodState,
    python_name,
    solidity_name,
)

A, B, C = ("0x" + d * 40 for d in "abc")


def sample_terms(**over) -> OnChainTerms:
    values = dict(provider=A, customer=B, token="0x" + "00" * 20, fee=10**9, bond=5, start=1_800_000_000,
                  period_length=3600, period_count=3,
                  services=(OnChainService(service_bytes32("api"), 999_000, 1, False, (OnChainTier(990_000, 500),)),),
                  basis=BASIS_COMBINED, combine=1,
                  combined=OnChainService(COMBINED_ID, 999_000, 0, False, ()), cap_bps=10_000, oracles=(A, C),
                  quorum=1, min_coverage=900_000, report_deadline=60, fallback_full_credit=True, maintenance_allowance=0,
                  maintenance_notice=0, document_hash=b"\x07" * 32)
    values.update(over)
    return OnChainTerms(**values)


def test_decoding_the_abi_gives_the_same_typed_terms():
    terms = sample_terms()
    raw = eth_abi.decode([TERMS_ABI_TYPE], eth_abi.encode([TERMS_ABI_TYPE], [terms]))[0]
    assert isinstance(raw[8], tuple) and raw[0] == A.lower()  # what web3 hands back: lower case, nested tuples
    decoded = OnChainTerms.from_abi(raw)
    assert decoded == terms.from_abi(terms)
    assert decoded.provider == to_checksum_address(A) != A  # checksummed, as people and comparisons expect
    assert decoded.services[0].name == "api" and decoded.services[0].tiers[0].credit_bps == 500
    assert decoded.is_combined and decoded.service_names == ("api",)
    assert decoded.period_end(0) == decoded.period_start(1) == 1_800_003_600


def test_a_struct_of_another_length_is_refused():
    with pytest.raises(ValueError, match="21 fields"):
        OnChainTerms.from_abi(tuple(sample_terms())[:19])


def test_differences_name_the_solidity_members():
    a, b = sample_terms(), sample_terms(fee=1, period_count=4)
    assert [name for name, _, _ in a.differences(b)] == ["fee", "periodCount"]


@pytest.mark.parametrize(("python", "solidity"), [("period_count", "periodCount"), ("fee", "fee"),
                                                  ("fallback_full_credit", "fallbackFullCredit")])
def test_member_names_both_ways(python, solidity):
    assert solidity_name(python) == solidity and python_name(solidity) == python


def test_a_service_id_that_is_not_utf8_is_shown_escaped():
    assert OnChainService(b"\xff" + b"\0" * 31, 0, 1, False, ()).name == "\\xff"
    assert NO_COMBINED.name == ""


def test_open_periods_are_those_not_settled():
    assert {s for s in PeriodState if s.is_open} == {PeriodState.UNFUNDED, PeriodState.FUNDED}
