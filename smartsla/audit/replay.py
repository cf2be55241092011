"""Replay an agreement's whole transaction history on a fork of its chain and compare (``smartsla audit --replay``).

An anvil is started forking the original chain at the block before the agreement's creation. Every transaction of
the history is sent again, in order, from its original sender (anvil impersonates it: nobody's key is needed),
with the original calldata, value and gas limit, in a block with the original timestamp; every log of every
receipt is compared with the original's, and at the end the agreement's balance, views and period records.

Besides the agreement's own transactions (from its history), the replay includes the ones that set up its
money: the factory's transactions earlier in the creation block (so the clone gets the same address), and on an
ERC-20 agreement every token transaction after the fork point that moved or approved the parties' or the
agreement's tokens.

The original chain must serve historical state over JSON-RPC (anvil and archive nodes do). The embedded chain
lives in this process: it is served to anvil by a small JSON-RPC bridge on 127.0.0.1 for the duration of the
replay.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3

from smartsla.audit.findings import FAIL, PASS, Finding
from smartsla.chain.anvil import AnvilProcess
from smartsla.chain.config import network, project_root
from smartsla.chain.reverts import ChainError
from smartsla.encoding import to_hex
from smartsla.onchain.client import Contracts
from smartsla.onchain.history import History, _address_topic, _get_logs

TRANSFER = keccak(text="Transfer(address,address,uint256)")
APPROVAL = keccak(text="Approval(address,address,uint256)")


def replay(contracts: Contracts, history: History, progress: Callable[[str], None] | None = None,
           binary: str | None = None) -> tuple[list, dict[str, Any]]:
    say = progress or (lambda _m: None)
    chain = contracts.chain
    w3 = chain.w3
    findings: list[Finding] = []
    t0 = time.perf_counter()
    say("collecting the transactions to replay")
    txs = _transactions(w3, history)
    bridge = None
    if chain.kind == "embedded":
        bridge = _Bridge(w3)
        url = bridge.url
    else:
        url = getattr(w3.provider, "endpoint_uri", None)
        if not url:
            raise ChainError("the replay forks the original chain over JSON-RPC, and this chain has no URL")
    cfg = network("anvil")
    anvil = None
    try:
        say("starting an anvil fork before the creation block")
        t_fork = time.perf_counter()
        anvil = AnvilProcess.start(binary or str(project_root() / cfg["binary"]), cfg.get("hardfork", "cancun"),
                                   history.chain_id, fork_url=url, fork_block=history.created_block - 1,
                                   extra_args=("--auto-impersonate", "--base-fee", "0", "--no-storage-caching"))
        fork = Web3(HTTPProvider(anvil.url, request_kwargs={"timeout": 60}))
        request = fork.provider.make_request
        fork_started = time.perf_counter() - t_fork
        t_run = time.perf_counter()
        mismatches: list[str] = []
        last_ts = 0
        gas_original = gas_replayed = 0
        for i, (tx, receipt, ts) in enumerate(txs):
            if i % 10 == 0:
                say(f"replaying transaction {i + 1} of {len(txs)}")
            request("evm_setNextBlockTimestamp", [max(ts, last_ts)])
            last_ts = max(ts, last_ts)
            send = {"from": tx["from"], "data": to_hex(tx["input"]), "value": hex(int(tx["value"])),
                    "gas": hex(int(tx["gas"])), "gasPrice": "0x0"}
            if tx.get("to"):
                send["to"] = tx["to"]
            answer = request("eth_sendTransaction", [send])
            if "error" in answer:
                mismatches.append(f"tx {to_hex(tx['hash'])} (block {tx['blockNumber']}): the fork refused it: "
                                  f"{answer['error'].get('message')}")
                continue
            got = fork.eth.wait_for_transaction_receipt(answer["result"], timeout=60)
            gas_original += int(receipt["gasUsed"])
            gas_replayed += int(got["gasUsed"])
            problem = _compare_receipts(receipt, got)
            if problem:
                mismatches.append(f"tx {to_hex(tx['hash'])} (block {tx['blockNumber']}): {problem}")
        run_seconds = time.perf_counter() - t_run
        agreement_txs = sum(1 for tx, _, _ in txs if to_hex(tx["hash"]) in set(history.transactions))
        findings.append(Finding("replay.transactions", history.address, FAIL if mismatches else PASS,
                                "; ".join(mismatches[:10]) + (f"; ... {len(mismatches) - 10} more"
                                                               if len(mismatches) > 10 else "") if mismatches else
                                f"{len(txs)} transactions ({agreement_txs} of the agreement) re-executed in order "
                                f"from their senders at their timestamps: every status and log as the original"))
        state_problems = _compare_state(contracts, history, fork)
        findings.append(Finding("replay.state", history.address, FAIL if state_problems else PASS,
                                "; ".join(state_problems) if state_problems else
                                "after the replay: the agreement's balance, bond, owed amounts, views and every "
                                "period record as on the original chain"))
        stats = {"transactions": len(txs), "agreement_transactions": agreement_txs,
                 "fork_start_seconds": round(fork_started, 3), "replay_seconds": round(run_seconds, 3),
                 "transactions_per_second": round(len(txs) / run_seconds, 1) if run_seconds else None,
                 "total_seconds": round(time.perf_counter() - t0, 3), "gas_original": gas_original,
                 "gas_replayed": gas_replayed, "fork_block": history.created_block - 1,
                 "bridge": bridge is not None}
        return findings, stats
    finally:
        if anvil is not None:
            anvil.stop()
        if bridge is not None:
            bridge.close()


def _transactions(w3: Any, history: History) -> list[tuple[Any, Any, int]]:
    """(transaction, original receipt, block timestamp) in chain order."""
    hashes = set(history.transactions)
    created = w3.eth.get_block(history.created_block, full_transactions=True)
    for t in created["transactions"]:  # in block order
        if to_hex(t["hash"]) == history.created_tx:
            break
        if t.get("to") and to_checksum_address(t["to"]) == history.factory:
            hashes.add(to_hex(t["hash"]))
    if not history.agreement.is_eth:
        token = history.agreement.token
        watched = [history.address, history.terms.customer, history.terms.provider]
        topics = [_address_topic(a) for a in watched]
        for topic0 in (TRANSFER, APPROVAL):
            for position in (1, 2):
                query_topics: list[Any] = [topic0, None, None]
                query_topics[position] = topics
                for log in _get_logs(w3, {"address": token, "topics": query_topics}, history.created_block,
                                     history.to_block):
                    hashes.add(to_hex(log["transactionHash"]))
    rows = []
    times: dict[int, int] = {}
    for h in hashes:
        tx = w3.eth.get_transaction(h)
        receipt = w3.eth.get_transaction_receipt(h)
        if receipt["status"] != 1:
            continue
        block = int(tx["blockNumber"])
        if block not in times:
            times[block] = int(w3.eth.get_block(block)["timestamp"])
        rows.append((tx, receipt, times[block]))
    rows.sort(key=lambda row: (int(row[0]["blockNumber"]), int(row[1]["transactionIndex"])))
    return rows


def _log_key(log: Any) -> tuple[str, tuple[str, ...], str]:
    return (to_checksum_address(log["address"]), tuple(to_hex(t) for t in log["topics"]), to_hex(log["data"]))


def _compare_receipts(original: Any, replayed: Any) -> str | None:
    if int(replayed["status"]) != int(original["status"]):
        return f"status {replayed['status']} on the fork, {original['status']} originally"
    a = [_log_key(x) for x in original["logs"]]
    b = [_log_key(x) for x in replayed["logs"]]
    if a == b:
        return None
    if len(a) != len(b):
        return f"{len(b)} logs on the fork, {len(a)} originally"
    i = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    return f"log {i} differs: original {a[i]}, fork {b[i]}"


def _compare_state(contracts: Contracts, history: History, fork: Any) -> list[str]:
    agreement = fork.eth.contract(address=history.address, abi=contracts.artifacts["SlaAgreement"].abi)
    fn = agreement.functions
    problems = []
    if history.agreement.is_eth:
        balance = fork.eth.get_balance(history.address)
    else:
        token = fork.eth.contract(address=history.agreement.token, abi=contracts.artifacts["TestUSD"].abi)
        balance = token.functions.balanceOf(history.address).call()
    pairs = [("balance", balance, history.balance), ("bondBalance", fn.bondBalance().call(), history.bond_balance)]
    for name in ("activePeriods", "nextFundable", "openFundedPeriods", "closed"):
        pairs.append((name, getattr(fn, name)().call(), history.views[name]))
    pairs.append(("termsHash", bytes(fn.termsHash().call()), history.views["termsHash"]))
    for who, owed in history.owed.items():
        pairs.append((f"owed({who})", fn.owed(who).call(), owed))
    for i, rec in enumerate(history.periods):
        got = tuple(fn.period(i).call())
        pairs.append((f"period({i})", got, (int(rec.state), rec.credit_bps, rec.maintenance_seconds,
                                             rec.compensation, rec.provider_payout)))
    for name, got, want in pairs:
        if got != want:
            problems.append(f"{name}: {got} after the replay, {want} on the original chain")
    return problems


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a client that hung up mid-request: nothing to report


class _Bridge:
    """The embedded chain served over JSON-RPC on 127.0.0.1, so that anvil can fork it."""

    def __init__(self, w3: Any):
        lock = threading.Lock()
        provider = w3.provider

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                calls = body if isinstance(body, list) else [body]
                answers = []
                for call in calls:
                    with lock:
                        try:
                            method = call["method"]
                            params = _tester_params(method, call.get("params", []))
                            answer = dict(provider.make_request(method, params))
                            if "result" in answer:
                                answer["result"] = _rpc_format(answer["result"])
                        except Exception as exc:  # noqa: BLE001 - reported to the client as a JSON-RPC error
                            answer = {"error": {"code": -32000, "message": str(exc)}}
                    answer["id"] = call.get("id")
                    answer["jsonrpc"] = "2.0"
                    answers.append(answer)
                data = json.dumps(answers if isinstance(body, list) else answers[0], default=_json_default).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # anvil hung up (it is being stopped)
                    pass

            def log_message(self, *args: Any) -> None:
                return None

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="replay-bridge", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


_KEY_NAMES = {"coinbase": "miner", "data": "input"}


def _camel(key: str) -> str:
    if key in _KEY_NAMES:
        return _KEY_NAMES[key]
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _rpc_format(value: Any, key: str = "") -> Any:
    """eth-tester's Python values (snake_case keys, ints) as JSON-RPC values (camelCase keys, hex quantities)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return to_hex(value.to_bytes(256, "big")) if key == "logs_bloom" else hex(value)
    if isinstance(value, (bytes, bytearray, HexBytes)):
        return to_hex(bytes(value))
    if hasattr(value, "items"):
        return {_camel(k): _rpc_format(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rpc_format(v) for v in value]
    return value


_BLOCK_PARAM = {"eth_getBlockByNumber": 0, "eth_getBalance": 1, "eth_getCode": 1, "eth_getTransactionCount": 1,
                "eth_call": 1, "eth_getStorageAt": 2}


def _tester_params(method: str, params: list[Any]) -> list[Any]:
    """A JSON-RPC block number (hex) as eth-tester wants it (an int); everything else as it is."""
    out = list(params)
    i = _BLOCK_PARAM.get(method)
    if i is not None and i < len(out) and isinstance(out[i], str) and out[i].startswith("0x"):
        out[i] = int(out[i], 16)
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, HexBytes)):
        return to_hex(bytes(value))
    if isinstance(value, int):
        return hex(value)
    if hasattr(value, "items"):
        return dict(value)
    if isinstance(value, (list, tuple)):
        return list(value)
    return str(value)
