"""The agreement's storage, pinned from the compiler's storageLayout: one slot per period record and every scalar
state variable packed into one slot beside the terms hash. A change that unpacks them costs every settlement a
storage slot (~2,100-20,000 gas), so it must show up here, not only in the gas table."""

from __future__ import annotations

import re

from smartsla.chain.build import compile_contracts

# (label, slot, offset in bytes, type without solc's AST ids)
AGREEMENT_LAYOUT = [
    ("_nameFallback", 0, 0, "t_string_storage"),       # OpenZeppelin EIP712's fallbacks (unused: short strings)
    ("_versionFallback", 1, 0, "t_string_storage"),
    ("termsHash", 2, 0, "t_bytes32"),
    ("activePeriods", 3, 0, "t_uint32"),
    ("nextFundable", 3, 4, "t_uint32"),
    ("openFundedPeriods", 3, 8, "t_uint32"),
    ("closed", 3, 12, "t_bool"),
    ("bondBalance", 3, 13, "t_uint96"),
    ("terminationNonce", 3, 25, "t_uint32"),
    ("_consents", 3, 29, "t_uint8"),
    ("bondPosted", 3, 30, "t_bool"),
    ("_periods", 4, 0, "t_mapping(t_uint256,t_struct(PeriodRecord)_storage)"),
    ("owed", 5, 0, "t_mapping(t_address,t_uint256)"),
]


def _strip_ids(type_name: str) -> str:
    return re.sub(r"\)\d+_", ")_", type_name)


def test_agreement_storage_is_packed_as_designed():
    layout = compile_contracts()["SlaAgreement"].storage_layout
    got = [(v["label"], int(v["slot"]), int(v["offset"]), _strip_ids(v["type"])) for v in layout["storage"]]
    assert got == AGREEMENT_LAYOUT


def test_a_period_record_is_one_slot():
    layout = compile_contracts()["SlaAgreement"].storage_layout
    record = next(t for name, t in layout["types"].items() if name.startswith("t_struct(PeriodRecord)"))
    assert record["numberOfBytes"] == "32"
    members = [(m["label"], int(m["slot"]), int(m["offset"])) for m in record["members"]]
    assert members == [("state", 0, 0), ("creditBps", 0, 1), ("maintenanceSeconds", 0, 4), ("compensation", 0, 8),
                       ("providerPayout", 0, 20)]


def test_the_factory_and_libraries_hold_no_storage():
    artifacts = compile_contracts()
    for name in ("SlaFactory", "SlaTerms", "PenaltyMath"):
        assert artifacts[name].storage_layout.get("storage", []) == [], name
