"""What a chain answers when something goes wrong: :class:`Reverted` (a revert, with the contract's custom error
decoded from the ABIs registered) and :class:`ChainError` (the chain cannot be reached or started).

The three kinds of chain report reverts in three shapes (web3's exceptions from a node, eth-tester's own from the
embedded chain, raw data in either); :class:`RevertDecoding` turns all of them into one :class:`Reverted`.
"""

from __future__ import annotations

import ast
from typing import Any

from eth_utils import keccak
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError

from smartsla.encoding import abi_type, to_hex

try:  # the embedded chain's provider reports reverts as eth-tester's own exception, not web3's
    from eth_tester.exceptions import TransactionFailed as _TesterReverted
except ImportError:  # pragma: no cover - eth-tester is only needed for the embedded chain
    class _TesterReverted(Exception):
        pass

REVERT_ERRORS = (ContractCustomError, ContractLogicError, ContractPanicError, _TesterReverted)


class ChainError(Exception):
    """The chain could not be reached or started; the message says what to do."""


class Unreachable(ChainError):
    """Nothing answers at the node's URL (now): worth retrying, unlike a wrong chain."""


class Reverted(Exception):
    """A transaction or call reverted. ``error`` is the custom error's name when it could be decoded."""

    def __init__(self, error: str, args: tuple = (), raw: str = ""):
        self.error = error
        self.error_args = tuple(args)
        self.raw = raw
        shown = f"{error}({', '.join(map(str, args))})" if args else error
        super().__init__(f"reverted: {shown}")


class RevertDecoding:
    """Revert decoding for :class:`~smartsla.chain.chain.Chain`: the custom errors of registered ABIs by
    selector, and the chain-specific shapes of a revert."""

    w3: Any
    _error_abis: dict[bytes, tuple[str, list[str]]]

    def register_errors(self, abi: list[dict[str, Any]]) -> None:
        for item in abi:
            if item.get("type") == "error":
                types = [abi_type(i) for i in item["inputs"]]
                selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
                self._error_abis[selector] = (item["name"], types)

    def decode_revert(self, data: Any) -> Reverted:
        raw = data if isinstance(data, str) else (data.hex() if isinstance(data, (bytes, bytearray)) else str(data))
        raw = to_hex(raw)
        try:
            payload = bytes.fromhex(raw[2:])
        except ValueError:
            return Reverted(str(data), raw=raw)
        if len(payload) >= 4 and payload[:4] in self._error_abis:
            name, types = self._error_abis[payload[:4]]
            try:
                args = self.w3.codec.decode(types, payload[4:])
            except Exception:  # noqa: BLE001 - undecodable arguments still name the error
                args = ()
            return Reverted(name, tuple(args), raw)
        return Reverted(f"unknown revert {raw[:10]}", raw=raw)

    def _revert_from(self, exc: Exception, tx: dict[str, Any] | None = None) -> Reverted:
        if isinstance(exc, _TesterReverted):
            return self._revert_from_tester(exc, tx)
        data = getattr(exc, "data", None)
        if isinstance(exc, ContractPanicError):
            return Reverted("Panic", (str(exc),), str(data))
        if isinstance(exc, ContractCustomError) and data:
            return self.decode_revert(data)
        if isinstance(exc, ContractLogicError):
            if data and isinstance(data, str) and data.startswith("0x") and len(data) >= 10 and not data.startswith("0x08c379a0"):
                return self.decode_revert(data)
            return Reverted(str(exc.message if hasattr(exc, "message") else exc).removeprefix("execution reverted: "))
        return Reverted(str(exc))

    def _revert_from_tester(self, exc: Exception, tx: dict[str, Any] | None) -> Reverted:
        # The embedded chain's provider reports a revert as "execution reverted: " plus either the revert
        # data's bytes repr or, when the data happens to decode as one string (which custom errors whose
        # first argument is a string do), that string with the selector lost. Re-running the call on
        # eth-tester itself gives the raw data.
        raw = _tester_revert_bytes(exc)
        if raw is None and tx is not None:
            tester = getattr(self.w3.provider, "ethereum_tester", None)
            params = {k: tx[k] for k in ("from", "to", "data", "value") if tx.get(k) is not None}
            try:
                tester.call(params, "latest")
            except _TesterReverted as again:
                raw = _tester_revert_bytes(again)
            except Exception:  # noqa: BLE001 - fall back to the provider's message
                pass
        if raw is None:
            first = exc.args[0] if exc.args else ""
            return Reverted(str(first).removeprefix("execution reverted: "))
        if raw[:4] == bytes.fromhex("08c379a0"):  # Error(string): the reason, as on the other chains
            try:
                return Reverted(self.w3.codec.decode(["string"], raw[4:])[0])
            except Exception:  # noqa: BLE001 - malformed reason: show the raw data
                pass
        if raw[:4] == bytes.fromhex("4e487b71") and len(raw) >= 36:
            return Reverted("Panic", (int.from_bytes(raw[4:36], "big"),), to_hex(raw))
        return self.decode_revert(raw) if raw else Reverted("execution reverted")


def _tester_revert_bytes(exc: Exception) -> bytes | None:
    """The raw revert data in an eth-tester exception, if it is there rather than a decoded reason."""
    first: Any = exc.args[0] if exc.args else None
    while isinstance(first, Exception):
        first = first.args[0] if first.args else None
    if isinstance(first, (bytes, bytearray)):
        return bytes(first)
    if not isinstance(first, str):
        return None
    text = first.removeprefix("execution reverted: ")
    if text[:2] not in ("b'", 'b"'):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, bytes) else None
