"""A whole SLA network on this machine, for the demo, the end-to-end tests and the latency benchmark.

anvil with a block a second, the factory and a test dollar, dev accounts for the provider, the customer and three
oracles, and `sla-oracle run` daemons with their own configuration, store, evidence and log under one work
directory. Everything binds 127.0.0.1 and :meth:`LocalNet.close` stops all of it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from smartsla.chain.anvil import AnvilProcess, free_port
from smartsla.chain.chain import Chain, dev_key
from smartsla.encoding import to_hex
from smartsla.onchain.client import Agreement, Contracts
from smartsla.onchain.types import PeriodState
from smartsla.terms.model import Terms
from smartsla.terms.parse import load_terms

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("deployer", "provider", "customer", "oracle-1", "oracle-2", "oracle-3")


class LocalNet:
    def __init__(self, workdir: Path, artifacts: Any = None, block_time: float = 1):
        self.work = Path(workdir)
        self.work.mkdir(parents=True, exist_ok=True)
        self.node = AnvilProcess.start(block_time=block_time)
        self.procs: dict[int, subprocess.Popen] = {}
        self.exit_codes: dict[int, Any] = {}
        self.ports = [free_port() for _ in range(3)]
        try:
            self.chain = Chain.connect("localnet", url=self.node.url)
            self.chain.kind = "anvil"  # our own dev node: dev accounts may be funded, time may travel
            self.contracts = Contracts(self.chain, artifacts)
            self.accounts = {name: self.chain.account(name) for name in ROLES}
            self.factory = self.contracts.deploy_factory(self.accounts["deployer"])
            self.usd = self.contracts.deploy_test_usd(self.accounts["deployer"])
        except BaseException:
            self.node.stop()
            raise

    @property
    def addresses(self) -> dict[str, str]:
        return {name: acct.address for name, acct in self.accounts.items()}

    # ------------------------------------------------------------ the agreement

    def one_service_terms(self, name: str, url: str, start: int, length: int, count: int, *,
                          schedule: tuple[tuple[str, str], ...] = (("99.9%", "10%"), ("99.0%", "30%"),
                                                                   ("95.0%", "100%")),
                          down_after: int = 1, keyword: str | None = None) -> str:
        """Terms of one HTTP service `api` at 99.9%, probed twice a second and measured in 1 s slices, paid in
        test dollars, with this network's dev accounts and oracles (quorum 2)."""
        a = self.addresses
        tiers = "\n".join(f'    - {{below: "{below}", credit: "{credit}"}}' for below, credit in schedule)
        probe_keyword = f", keyword: {keyword}" if keyword else ""
        return f"""\
agreement: {name}
provider: "{a['provider']}"
customer: "{a['customer']}"
payment: {{token: test-usd, fee: "1000"}}
periods: {{start: {start}, length: {length}s, count: {count}}}
services:
  - id: api
    objective: availability
    target: "99.9%"
    probe: {{type: http, url: "{url}", expect_status: [200]{probe_keyword}, timeout: 400ms, interval: 500ms}}
compensation:
  basis: per-service
  schedule:
{tiers}
measurement: {{slice: 1s, down_after: {down_after}, gaps: exclude}}
oracles: {{members: ["{a['oracle-1']}", "{a['oracle-2']}", "{a['oracle-3']}"], quorum: 2, deadline: 1h, fallback: no-credit}}
"""

    def create_agreement(self, terms_text: str, fund_periods: int = 1) -> tuple[Terms, tuple, Agreement]:
        """Write ``terms.yaml``, create the agreement as the provider and fund it as the customer (test dollars)."""
        path = self.work / "terms.yaml"
        path.write_text(terms_text)
        terms = load_terms(path)
        chain_terms = terms.to_chain(lambda name, _path: self.chain.resolve(name), self.usd.address, 6)
        agreement = self.factory.create(self.accounts["provider"], chain_terms)
        if chain_terms.bond:
            # no period can be funded before the terms' bond is posted
            self.chain.transact(self.accounts["deployer"],
                                self.usd.functions.mint(self.accounts["provider"].address, chain_terms.bond))
            agreement.post_bond(self.accounts["provider"], chain_terms.bond)
        if fund_periods:
            fee = terms.payment.fee_units(6)
            self.chain.transact(self.accounts["deployer"],
                                self.usd.functions.mint(self.accounts["customer"].address, fee * fund_periods))
            agreement.fund(self.accounts["customer"], fund_periods)
        return terms, chain_terms, agreement

    def wait_settled(self, agreement: Agreement, period: int = 0, extra: float = 60) -> bool:
        deadline = agreement.period_end(period) + extra
        while time.time() < deadline and agreement.period(period).state == PeriodState.FUNDED:
            time.sleep(0.5)
        return agreement.period(period).state != PeriodState.FUNDED

    # ------------------------------------------------------------ the oracles

    def peer_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i - 1]}"

    def start_oracle(self, i: int, peers: list[str] | None = None, grace: str = "1s", poll: str = "1s",
                     prometheus: str | None = None) -> None:
        peers = peers if peers is not None else [self.peer_url(j) for j in (1, 2, 3) if j != i]
        self.procs[i] = spawn_oracle(self.work, i, self.node.url, self.factory.address, self.ports[i - 1], peers,
                                     ["terms.yaml"], grace=grace, poll=poll, prometheus=prometheus)

    def kill_oracle(self, i: int, sig: int = signal.SIGKILL) -> None:
        self.procs[i].send_signal(sig)
        self.procs[i].wait()

    def events(self, i: int, kind: str) -> list[dict]:
        return oracle_events(self.work, i, kind)

    def wait_for(self, i: int, kind: str, timeout: float) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = self.events(i, kind)
            if found:
                return found[0]
            time.sleep(0.2)
        raise TimeoutError(f"oracle-{i} logged no {kind!r} in {timeout:.0f} s:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(p.read_text()[-1500:] for p in sorted(self.work.glob("oracle-*.log")))

    def close(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for i, p in self.procs.items():
            try:
                self.exit_codes[i] = p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                self.exit_codes[i] = "hung"
        self.node.stop()

    def __enter__(self) -> "LocalNet":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def spawn_oracle(work: Path, i: int, rpc_url: str, factory: str, port: int, peers: list[str], terms_files: list[str],
                 *, grace: str = "1s", poll: str = "1s", key: str | None = None,
                 prometheus: str | None = None) -> subprocess.Popen:
    """Write ``oracle-i.yaml`` in ``work`` and start ``sla-oracle run`` on it, logging to ``oracle-i.log``.
    The key (default: the dev account ``oracle-i``) reaches the daemon through its environment only;
    ``prometheus`` is the server the terms' count expressions are read from."""
    config = work / f"oracle-{i}.yaml"
    config.write_text(
        f"rpc_url: {rpc_url}\nfactory: '{factory}'\nkey: {{env: ORACLE_KEY}}\n"
        f"store: oracle-{i}.db\nevidence_dir: evidence-{i}\nlisten: 127.0.0.1:{port}\n"
        f"peers: {json.dumps(peers)}\nterms: {json.dumps([str(t) for t in terms_files])}\n"
        f"grace: {grace}\npoll: {poll}\n" + (f"prometheus: {prometheus}\n" if prometheus else ""))
    env = dict(os.environ, ORACLE_KEY=key or to_hex(dev_key(f"oracle-{i}")),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open(work / f"oracle-{i}.log", "a") as log:
        return subprocess.Popen([sys.executable, "-m", "oracle.cli", "run", "--config", str(config)],
                                cwd=work, env=env, stderr=log)


def oracle_events(work: Path, i: int, kind: str) -> list[dict]:
    """Oracle ``i``'s log records of one kind (its log is one JSON object per line)."""
    path = work / f"oracle-{i}.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return [e for e in (json.loads(line) for line in lines if line.startswith("{")) if e["event"] == kind]
