"""The persistent local node behind the ``development`` network: ``smartsla node start|stop|status``.

It is anvil from npm, bound to 127.0.0.1, started detached so that it outlives the command that started it.
Its chain (blocks, logs and state) is written to a file in the node's folder every second and when it stops,
so stopping it, or a crash of the machine, loses at most the last second: the next start carries on from there.
The node's folder is ``$SMARTSLA_HOME/nodes/NETWORK`` (``~/.smartsla`` by default): ``node.json`` (pid, url),
``state.json`` (the chain) and ``anvil.log``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from smartsla.chain.anvil import anvil_binary
from smartsla.chain.config import ConfigError, network, state_home
from smartsla.chain.reverts import ChainError


class NodeError(Exception):
    """The node could not be started, stopped or found; the message says what to do."""


@dataclass
class NodeInfo:
    network: str
    pid: int
    url: str
    port: int
    chain_id: int
    state_file: str
    log_file: str
    started: float


def node_dir(network_name: str) -> Path:
    return state_home() / "nodes" / network_name


def node_settings(network_name: str) -> dict:
    try:
        cfg = network(network_name)
    except ConfigError as exc:
        raise NodeError(str(exc)) from None
    if cfg.get("kind") != "node":
        raise NodeError(f"network {network_name!r} is not a local node (kind {cfg.get('kind')!r}); "
                        "`smartsla node` manages networks of kind `node`, such as `development`")
    return cfg


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (our own child not yet reaped) counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


def status(network_name: str = "development") -> NodeInfo | None:
    """The running node's record, or None. A record left by a node that died is removed."""
    node_settings(network_name)
    record = node_dir(network_name) / "node.json"
    if not record.exists():
        return None
    try:
        info = NodeInfo(**json.loads(record.read_text()))
    except (ValueError, TypeError):
        record.unlink(missing_ok=True)
        return None
    if not _alive(info.pid):
        record.unlink(missing_ok=True)
        return None
    return info


def start(network_name: str = "development", fresh: bool = False,
          block_time: float | None = None) -> tuple[NodeInfo, bool]:
    """Start the node unless it runs already. Returns (info, started_now). ``fresh`` forgets the saved chain.
    ``block_time`` mines a block every so many seconds, so that chain time follows the clock without traffic
    (oracle daemons decide from chain time when a period is over); by default blocks are mined per transaction."""
    cfg = node_settings(network_name)
    running = status(network_name)
    if running:
        if fresh:
            raise NodeError(f"the {network_name} node is running (pid {running.pid}); stop it before --fresh")
        return running, False
    port = int(cfg.get("port", 8545))
    if _port_open(port):
        raise NodeError(f"127.0.0.1:{port} is taken by another program; stop it, or set networks.{network_name}.port "
                        "in brownie-config.yaml")
    try:
        binary = anvil_binary(cfg.get("binary"))
    except ChainError as exc:
        raise NodeError(str(exc)) from None
    folder = node_dir(network_name)
    folder.mkdir(parents=True, exist_ok=True)
    state_file = folder / "state.json"
    if fresh:
        state_file.unlink(missing_ok=True)
    log_file = folder / "anvil.log"
    chain_id = int(cfg.get("chain_id", 31337))
    args = [str(binary), "--host", "127.0.0.1", "--port", str(port), "--hardfork", cfg.get("hardfork", "cancun"),
            "--chain-id", str(chain_id), "--accounts", "2", "--state", str(state_file),
            "--state-interval", str(cfg.get("state_interval", 1)), "--preserve-historical-states"]
    block_time = block_time if block_time is not None else cfg.get("block_time")
    if block_time:
        args += ["--block-time", str(block_time)]
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # its own session: it outlives this command
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_file.read_text(errors="replace")[-600:]
            raise NodeError(f"anvil exited at start (code {proc.returncode}); its log says:\n{tail}")
        if _port_open(port):
            break
        time.sleep(0.03)
    else:
        proc.kill()
        raise NodeError(f"anvil did not open 127.0.0.1:{port} within 15 s; see {log_file}")
    info = NodeInfo(network_name, proc.pid, f"http://127.0.0.1:{port}", port, chain_id, str(state_file),
                    str(log_file), time.time())
    tmp = folder / "node.json.tmp"
    tmp.write_text(json.dumps(asdict(info), indent=2))
    tmp.replace(folder / "node.json")
    return info, True


def stop(network_name: str = "development", timeout: float = 15.0) -> NodeInfo | None:
    """Stop the node (SIGTERM: anvil writes its chain to the state file as it exits). None if none ran."""
    info = status(network_name)
    if info is None:
        return None
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(info.pid):
        time.sleep(0.05)
    if _alive(info.pid):
        os.kill(info.pid, signal.SIGKILL)
    (node_dir(network_name) / "node.json").unlink(missing_ok=True)
    return info
