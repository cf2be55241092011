"""anvil, the local node from npm's @foundry-rs/anvil: started on 127.0.0.1 on a free port, stopped by PID."""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from smartsla.chain.config import network, project_root
from smartsla.chain.reverts import ChainError

ANVIL_HINT = ("anvil comes with a checkout (`make setup` runs npm ci), from npm (`npm install -g @foundry-rs/anvil`) "
              "or with Foundry (foundryup); put it on PATH")


def anvil_binary(configured: str | None = None) -> str:
    """The anvil to run: ``configured`` (relative to the project root, as in brownie-config.yaml) when it is there,
    else the one on PATH. ChainError says how to get one."""
    configured = configured or network("anvil").get("binary")
    if configured:
        path = Path(configured) if Path(configured).is_absolute() else project_root() / configured
        if path.exists():
            return str(path)
    found = shutil.which("anvil")
    if found:
        return found
    raise ChainError(f"anvil not found ({configured or 'no binary configured'} is missing and none is on PATH): "
                     f"{ANVIL_HINT}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the caller binds it, or retries if it was taken)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class AnvilProcess:
    """An anvil started by us on 127.0.0.1 and stopped by PID."""

    process: subprocess.Popen
    url: str

    @classmethod
    def start(cls, binary: str | None = None, hardfork: str = "cancun", chain_id: int = 31337,
              port: int | None = None, state_file: str | Path | None = None,
              block_time: float | None = None, fork_url: str | None = None, fork_block: int | None = None,
              extra_args: tuple[str, ...] = ()) -> "AnvilProcess":
        """Start anvil on 127.0.0.1 (on ``port``, or a free one). With ``state_file`` the chain is loaded from it
        if it exists and written back to it when anvil stops, so a node can be stopped and brought back. With
        ``fork_url`` it forks that chain at ``fork_block`` (the audit's replay); ``extra_args`` go to anvil as
        they are."""
        binary = binary if binary and (Path(binary).exists() or shutil.which(binary)) else anvil_binary(binary)
        extra: list[str] = []
        if block_time:
            # a block every `block_time` seconds, so block time follows the wall clock without traffic
            extra += ["--block-time", str(block_time)]
        if state_file is not None:
            extra += ["--dump-state", str(state_file)]
            if Path(state_file).exists():
                extra += ["--load-state", str(state_file)]
        if fork_url is not None:
            extra += ["--fork-url", fork_url]
            if fork_block is not None:
                extra += ["--fork-block-number", str(int(fork_block))]
        extra += list(extra_args)
        last_error: Exception | None = None
        for _ in range(1 if port else 5):  # a free port can be taken between our probe and anvil's bind
            chosen = port or free_port()
            proc = subprocess.Popen(
                [binary, "--host", "127.0.0.1", "--port", str(chosen), "--hardfork", hardfork,
                 "--chain-id", str(chain_id), "--silent", "--accounts", "2", *extra],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
            url = f"http://127.0.0.1:{chosen}"
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    last_error = ChainError(f"anvil exited: {proc.stderr.read().decode(errors='replace')[-400:]}")
                    break
                try:
                    with socket.create_connection(("127.0.0.1", chosen), timeout=0.2):
                        node = cls(proc, url)
                        # Whoever started it may forget to stop it, or fail first: the process stops it on exit.
                        atexit.register(node.stop)
                        return node
                except OSError:
                    time.sleep(0.02)
            else:
                proc.kill()
                last_error = ChainError("anvil did not open its port within 10 s")
        raise last_error or ChainError("could not start anvil")

    def stop(self) -> None:
        """Stop it (idempotent: also run at exit)."""
        atexit.unregister(self.stop)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
