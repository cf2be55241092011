"""Chains the tools run on: the embedded one (eth-tester + py-evm, in-process), a fresh anvil, or any RPC URL.

Every transaction is signed locally (eth-account) and sent raw, so the same code path runs on all three.
Reverts are turned into :class:`Reverted` carrying the contract's custom error name and arguments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import HTTPProvider, Web3

from smartsla.chain.anvil import AnvilProcess, anvil_binary
from smartsla.chain.config import ConfigError, network
from smartsla.chain.reverts import REVERT_ERRORS, ChainError, RevertDecoding, Reverted, Unreachable
from smartsla.encoding import BadAddress, checked_address

DEV_ETHER = 10**23  # 100,000 ETH: plenty for gas and ETH-denominated fees on a dev chain


def dev_key(name: str) -> bytes:
    """A deterministic key for a named dev account ("provider", "oracle-1", ...). Dev chains only: the key
    is public knowledge, derived from the name."""
    return keccak(text=f"smart-sla dev account: {name}")


def dev_account(name: str) -> LocalAccount:
    return Account.from_key(dev_key(name))


@dataclass
class Chain(RevertDecoding):
    w3: Web3
    kind: str  # embedded | anvil | rpc
    name: str
    anvil: AnvilProcess | None = None
    _error_abis: dict[bytes, tuple[str, list[str]]] = field(default_factory=dict)
    _funded: set[str] = field(default_factory=set)

    # ------------------------------------------------------------ connecting

    @classmethod
    def connect(cls, name: str = "embedded", url: str | None = None, expect_chain_id: int | None = None) -> "Chain":
        if url:
            return cls._rpc(url, name, expect_chain_id)
        try:
            cfg = network(name)
        except ConfigError as exc:
            raise ChainError(str(exc)) from None
        kind = cfg.get("kind")
        if kind == "embedded":
            # deferred on purpose: eth-tester and py-evm add ~0.2 s to every command, and only this chain needs them
            from web3 import EthereumTesterProvider

            provider = EthereumTesterProvider()
            provider.ethereum_tester.backend.chain.gas_estimator = _single_run_gas_estimate
            return cls(Web3(provider), "embedded", name)
        if kind == "anvil":
            anvil = AnvilProcess.start(
                anvil_binary(cfg.get("binary")), cfg.get("hardfork", "cancun"), int(cfg.get("chain_id", 31337))
            )
            chain = cls(Web3(HTTPProvider(anvil.url, request_kwargs={"timeout": 30})), "anvil", name, anvil)
            return chain
        if kind == "node":
            # the persistent local node: never started implicitly, so a command cannot quietly run on a new,
            # empty chain when the user's node is down
            node_url = f"{cfg.get('host', 'http://127.0.0.1')}:{int(cfg.get('port', 8545))}"
            try:
                chain = cls._rpc(node_url, name, cfg.get("chain_id"))
            except ChainError:
                raise ChainError(f"the {name} node is not running at {node_url}: start it with "
                                 f"`smartsla node start --network {name}`") from None
            chain.kind = "anvil"
            return chain
        if kind == "rpc":
            env = cfg.get("url_env", "SMARTSLA_RPC_URL")
            rpc_url = os.environ.get(env)
            if not rpc_url:
                raise ChainError(f"network {name!r} takes its URL from ${env}; set it")
            return cls._rpc(rpc_url, name, cfg.get("chain_id"))
        raise ChainError(f"network {name!r}: unknown kind {kind!r} (embedded, anvil or rpc)")

    @classmethod
    def _rpc(cls, url: str, name: str, expect_chain_id: int | None) -> "Chain":
        w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 30}))
        try:
            chain_id = w3.eth.chain_id
        except Exception as exc:  # noqa: BLE001 - any transport failure means the same to the user
            raise Unreachable(f"cannot reach {url}: {exc}. Is the node running?") from None
        if expect_chain_id is not None and int(expect_chain_id) != chain_id:
            raise ChainError(f"{url} is chain {chain_id}, but network {name!r} expects {expect_chain_id}")
        return cls(w3, "rpc", name)

    def close(self) -> None:
        if self.anvil:
            self.anvil.stop()
            self.anvil = None

    def __enter__(self) -> "Chain":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def is_dev(self) -> bool:
        return self.kind in ("embedded", "anvil")

    # ------------------------------------------------------------ time

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def travel_to(self, timestamp: int) -> None:
        """Mine a block at ``timestamp`` (dev chains only), so views and the next transaction see that time."""
        if self.kind == "embedded":
            if timestamp > self.now():
                tester = self.w3.provider.ethereum_tester
                # eth-tester mines the travelling block one second early; one more block lands on the target.
                tester.time_travel(int(timestamp))
                tester.mine_blocks(1)
        elif self.kind == "anvil":
            if timestamp > self.now():
                self.w3.provider.make_request("evm_setNextBlockTimestamp", [int(timestamp)])
            self.w3.provider.make_request("evm_mine", [])
        else:
            raise ChainError("time travel works on dev chains only")

    def snapshot(self) -> Any:
        """Remember the chain's state (dev chains only); :meth:`revert_to` returns to it, time included."""
        if self.kind == "anvil":
            return self.w3.provider.make_request("evm_snapshot", [])["result"]
        if self.kind == "embedded":
            return self.w3.provider.ethereum_tester.take_snapshot()
        raise ChainError("snapshots work on dev chains only")

    def revert_to(self, snapshot_id: Any) -> None:
        if self.kind == "anvil":
            if self.w3.provider.make_request("evm_revert", [snapshot_id]).get("result") is not True:
                raise ChainError(f"anvil could not revert to snapshot {snapshot_id}")
        elif self.kind == "embedded":
            self.w3.provider.ethereum_tester.revert_to_snapshot(snapshot_id)
        else:
            raise ChainError("snapshots work on dev chains only")
        # accounts first funded after the snapshot lost that ether
        self._funded.clear()

    def travel(self, seconds: int) -> None:
        self.travel_to(self.now() + int(seconds))

    # ------------------------------------------------------------ accounts

    def account(self, name_or_key: str) -> LocalAccount:
        """A dev account by name on dev chains, or an account from a 0x private key."""
        if name_or_key.startswith("0x") and len(name_or_key) == 66:
            return Account.from_key(name_or_key)
        if not self.is_dev:
            raise ChainError(f"dev account {name_or_key!r} exists only on dev chains; give a key instead")
        acct = dev_account(name_or_key)
        self.ensure_ether(acct.address)
        return acct

    def ensure_ether(self, address: str, amount: int = DEV_ETHER) -> None:
        if address in self._funded or not self.is_dev:
            return
        if self.w3.eth.get_balance(address) < amount // 2:
            if self.kind == "anvil":
                self.w3.provider.make_request("anvil_setBalance", [address, hex(amount)])
            else:
                # eth-tester's ten accounts hold 1,000,000 ETH each: take from the richest so that any
                # number of dev accounts up to their total can be funded.
                rich = max(self.w3.eth.accounts, key=self.w3.eth.get_balance)
                tx = self.w3.eth.send_transaction({"from": rich, "to": address, "value": amount})
                self.w3.eth.wait_for_transaction_receipt(tx)
        self._funded.add(address)

    def resolve(self, name_or_address: str) -> str:
        if isinstance(name_or_address, str) and name_or_address.startswith("0x"):
            try:
                return checked_address(name_or_address, "address")
            except BadAddress as exc:
                raise ChainError(str(exc)) from None
        if not self.is_dev:
            raise ChainError(f"{name_or_address!r} is a dev-account name; on {self.name} give an address")
        return dev_account(name_or_address).address

    # ------------------------------------------------------------ transactions

    def transact(self, sender: LocalAccount, call: Any = None, *, to: str | None = None,
                 value: int = 0, data: bytes | None = None, gas: int | None = None) -> dict[str, Any]:
        """Sign and send one transaction; return its receipt. A revert raises :class:`Reverted` and sends nothing.

        ``gas`` sets the gas limit and skips the estimate (and with it the revert check before sending): a
        transaction that then fails on-chain raises :class:`Reverted` with its hash.
        """
        tx: dict[str, Any] = {"from": sender.address, "value": value, "chainId": self.w3.eth.chain_id}
        if call is not None:
            try:
                tx = call.build_transaction({**tx, "gas": 1})  # placeholder gas: we estimate below
            except REVERT_ERRORS as exc:
                raise self._revert_from(exc, tx) from None
            tx.pop("gas", None)
        else:
            if to:
                tx["to"] = to
            if data:
                tx["data"] = data
        if gas is None:
            try:
                estimate = self.w3.eth.estimate_gas(tx)
            except REVERT_ERRORS as exc:
                raise self._revert_from(exc, tx) from None
            except Exception as exc:  # noqa: BLE001 - a node's refusal comes as one of several RPC error types
                if "insufficient funds" not in str(exc).lower():
                    raise
                raise self._short_of_ether(sender.address, tx) from None
            gas = min(int(estimate * 1.25) + 20_000, 30_000_000)
        tx["gas"] = gas
        tx["nonce"] = self.w3.eth.get_transaction_count(sender.address, "pending")
        if "maxFeePerGas" not in tx and "gasPrice" not in tx:
            base = self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0
            tx["maxPriorityFeePerGas"] = 1
            tx["maxFeePerGas"] = 2 * base + 1
        signed = sender.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
        if receipt["status"] != 1:
            raise Reverted("transaction failed on-chain", (tx_hash.hex(),))
        return receipt

    def _short_of_ether(self, sender: str, tx: dict[str, Any]) -> Exception:
        """The node refuses to estimate a transaction its sender cannot pay for, which would hide the contract's
        own refusal (an agreement refusing to be funded that far, say). So the call is run again as if the sender
        were rich: if the contract refuses it, that refusal is the answer; if not, the balance is."""
        rich = {sender: {"balance": hex(int(tx.get("value", 0)) + 10**30)}}
        try:
            self.w3.eth.call({k: v for k, v in tx.items() if k != "gas"}, "latest", rich)
        except REVERT_ERRORS as exc:
            return self._revert_from(exc, tx)
        except Exception:  # noqa: BLE001 - a node without state overrides: the balance is all we can say
            pass
        balance = self.w3.eth.get_balance(sender)
        needs = f"sends {int(tx.get('value', 0)) / 10**18:g} ETH plus gas" if tx.get("value") else "needs ether for gas"
        value = int(tx.get("value", 0))
        top_up = f" --ether {-(-(value + 10**18) // 10**18)}" if value else ""  # whole ether, one more for gas
        fix = f"`smartsla node fund {sender}{top_up}`" if self.is_dev else "send it ether"
        return ChainError(f"{sender} holds {balance / 10**18:g} ETH and this transaction {needs}: {fix}")

    def deploy(self, sender: LocalAccount, abi: list, bytecode: str, *args: Any) -> tuple[Any, dict[str, Any]]:
        factory = self.w3.eth.contract(abi=abi, bytecode=bytecode)
        receipt = self.transact(sender, factory.constructor(*args))
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=abi), receipt


def _single_run_gas_estimate(state: Any, transaction: Any) -> int:
    """Gas estimate for the embedded chain from one execution at the block gas limit.

    py-evm's own estimator is a binary search that executes each transaction about a dozen times, most of the
    embedded chain's run time. One execution finds reverts just the same; the margin covers the 63/64 rule and
    refunds, and an estimate that were too low would fail on-chain loudly, never silently. Receipts report the
    gas actually used either way.
    """
    from eth.vm.spoof import SpoofTransaction  # py-evm: loaded with the embedded chain only (see connect)

    snapshot = state.snapshot()
    try:
        computation = state.apply_transaction(SpoofTransaction(transaction, gas=state.gas_limit, gas_price=0))
        if computation.is_error:
            raise computation.error
        used = transaction.intrinsic_gas + computation.get_gas_used()
    finally:
        state.revert(snapshot)
    return min(state.gas_limit, used * 3 // 2 + 50_000)


def connect(name: str = "embedded", url: str | None = None) -> Chain:
    return Chain.connect(name, url)


