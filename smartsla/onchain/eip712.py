"""The EIP-712 messages the agreement verifies: an oracle's report, a party's consent to the terms and to terminate.

One definition of each message for every signer and verifier (the client, the oracle, the audit), so that the
domain and the types cannot drift apart between who signs and who checks. The contract's side is
``SlaAgreement``'s ``REPORT_TYPEHASH``, ``CONSENT_TYPEHASH`` and ``TERMINATION_TYPEHASH``.
"""

from __future__ import annotations

from typing import Any, Sequence

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

DOMAIN_NAME = "SmartSLA"
DOMAIN_VERSION = "1"
EIP712_DOMAIN_TYPES = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
REPORT_TYPES = [
    {"name": "period", "type": "uint256"},
    {"name": "values", "type": "uint32[]"},
    {"name": "coverage", "type": "uint32[]"},
    {"name": "evidenceRoot", "type": "bytes32"},
]
CONSENT_TYPES = [{"name": "termsHash", "type": "bytes32"}]
TERMINATION_TYPES = [
    {"name": "activePeriods", "type": "uint32"},
    {"name": "deadline", "type": "uint64"},
    {"name": "nonce", "type": "uint32"},
]


def domain(chain_id: int, agreement: str) -> dict[str, Any]:
    return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": int(chain_id),
            "verifyingContract": to_checksum_address(agreement)}


def report_message(chain_id: int, agreement: str, period: int, values: Sequence[int], coverage: Sequence[int],
                   evidence_root: bytes) -> dict[str, Any]:
    return {"types": {"EIP712Domain": EIP712_DOMAIN_TYPES, "Report": REPORT_TYPES}, "primaryType": "Report",
            "domain": domain(chain_id, agreement),
            "message": {"period": period, "values": list(values), "coverage": list(coverage),
                        "evidenceRoot": evidence_root}}


def consent_message(chain_id: int, agreement: str, terms_hash: bytes) -> dict[str, Any]:
    return {"types": {"EIP712Domain": EIP712_DOMAIN_TYPES, "Consent": CONSENT_TYPES}, "primaryType": "Consent",
            "domain": domain(chain_id, agreement), "message": {"termsHash": terms_hash}}


def termination_message(chain_id: int, agreement: str, active_periods: int, deadline: int,
                        nonce: int) -> dict[str, Any]:
    return {"types": {"EIP712Domain": EIP712_DOMAIN_TYPES, "Termination": TERMINATION_TYPES},
            "primaryType": "Termination", "domain": domain(chain_id, agreement),
            "message": {"activePeriods": active_periods, "deadline": deadline, "nonce": nonce}}


def sign(account: LocalAccount, message: dict[str, Any]) -> bytes:
    return bytes(account.sign_message(encode_typed_data(full_message=message)).signature)


def signable(message: dict[str, Any]) -> SignableMessage:
    return encode_typed_data(full_message=message)


def recover(message: dict[str, Any], signature: bytes) -> str | None:
    """Who signed ``message``; None for a signature (or message) that does not recover, which is untrusted input
    to be refused rather than an error."""
    try:
        return to_checksum_address(Account.recover_message(encode_typed_data(full_message=message),
                                                           signature=signature))
    except Exception:  # noqa: BLE001 - malformed signature bytes or values outside the types
        return None
