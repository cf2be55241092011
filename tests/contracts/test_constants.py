"""smartsla.constants mirrors SlaTerms.sol's limits and codes under the same names: read both and compare, so a
limit changed on one side of the ABI fails here instead of surfacing as a revert the Python side did not expect."""

from __future__ import annotations

import re
from pathlib import Path

from smartsla import constants

ROOT = Path(__file__).resolve().parents[2]
DECLARATION = re.compile(r"^\s*uint\d+\s+internal\s+constant\s+([A-Z_0-9]+)\s*=\s*([^;]+);", re.MULTILINE)


def _literal(text: str) -> int:
    """The literals there: integers with underscores, and BASE ** EXPONENT."""
    text = text.replace("_", "").strip()
    if "**" in text:
        base, exponent = text.split("**")
        return int(base) ** int(exponent)
    return int(text)


def solidity_constants() -> dict[str, int]:
    text = (ROOT / "contracts" / "libraries" / "SlaTerms.sol").read_text()
    return {name: _literal(value) for name, value in DECLARATION.findall(text)}


def test_every_slaterms_constant_has_the_same_name_and_value_in_python():
    found = solidity_constants()
    assert {"PPM", "BPS", "MAX_PERIODS", "MAX_SERVICES", "MAX_ORACLES", "MAX_TIERS", "MAX_CAP_BPS", "AMOUNT_LIMIT",
            "BASIS_PER_SERVICE", "BASIS_COMBINED", "COMBINE_WORST", "COMBINE_WEIGHTED"} <= set(found)
    assert {name: getattr(constants, name, None) for name in found} == found


def test_the_agreement_uses_the_library_limit():
    """2 ** 96 is written once, in SlaTerms; the agreement refers to it."""
    agreement = (ROOT / "contracts" / "SlaAgreement.sol").read_text()
    assert "2 ** 96" not in agreement and "SlaTerms.AMOUNT_LIMIT" in agreement


def test_the_terms_schema_states_the_same_limits():
    """The YAML's first gate, the JSON schema, refuses exactly beyond the contract's limits (it once allowed 64
    services and 64 oracles after the contract's limits were lowered to fit a block)."""
    import json

    schema = json.loads((ROOT / "smartsla" / "terms" / "terms.schema.json").read_text())
    props = schema["properties"]
    oracles = props["oracles"]["properties"]
    assert props["services"]["maxItems"] == constants.MAX_SERVICES
    assert oracles["members"]["maxItems"] == constants.MAX_ORACLES
    assert oracles["quorum"]["maximum"] == constants.MAX_ORACLES
    assert schema["$defs"]["schedule"]["maxItems"] == constants.MAX_TIERS
    assert props["periods"]["properties"]["count"]["maximum"] == constants.MAX_PERIODS
