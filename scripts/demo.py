"""The demo: a provider, a customer, three oracles and an auditor, each using the real commands.

    .venv/bin/python scripts/demo.py [--period 30] [--down 6]

It starts a local node that keeps its chain (`smartsla node start`, in a private $SMARTSLA_HOME under build/demo),
three local services (two HTTP, one TCP), deploys the factory, creates a three-service agreement judged on a
weighted combined number with a penalty schedule, funds it, and runs three `sla-oracle run` daemons that probe the
services. The database goes down for part of the first (short) period; the oracles measure it, sign, gather a
quorum and the contract pays. Then the customer reads the payouts, the auditor checks everything (PASS), one byte
of an oracle's evidence is changed and the audit catches it (FAIL). Everything started is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from oracle.devnet.localnet import oracle_events, spawn_oracle  # noqa: E402
from oracle.devnet.targets import HttpTarget, TcpTarget  # noqa: E402
from smartsla.chain.anvil import free_port

console = Console(highlight=False)
WORK = ROOT / "build" / "demo"


class Shell:
    """Runs the `smartsla` command as a user would, against the demo's own node and home."""

    def __init__(self, env: dict[str, str]):
        self.env = env

    def __call__(self, *args: str, show: bool = True, expect: int = 0) -> subprocess.CompletedProcess:
        if show:
            console.print(f"[dim]$ smartsla {' '.join(args)}[/]")
        proc = subprocess.run([sys.executable, "-m", "smartsla.cli", *args], env=self.env, cwd=WORK,
                              capture_output=True, text=True)
        if show and proc.stdout.strip() and "--json" not in args:
            sys.stdout.write(proc.stdout)
            sys.stdout.flush()
        if proc.returncode != expect:
            console.print(proc.stdout[-3000:], proc.stderr[-3000:], markup=False)
            raise SystemExit(f"smartsla {args[0]} exited {proc.returncode}, expected {expect}")
        return proc

    def json(self, *args: str) -> dict:
        return json.loads(self(*args, "--json", show=False).stdout)


def terms_text(start: int, period: int, api: str, queue: str, db_port: int) -> str:
    return f"""\
# The demo agreement: three services judged as one weighted number (the api counts twice).
agreement: demo-shop
provider: provider
customer: customer
payment: {{token: test-usd, fee: "1000", bond: "500"}}
periods: {{start: {start}, length: {period}s, count: 3}}
services:
  - id: api
    objective: availability
    target: "99.9%"
    weight: 2
    probe: {{type: http, url: "{api}", expect_status: [200], keyword: ok, timeout: 400ms, interval: 500ms}}
  - id: db
    objective: availability
    target: "99.9%"
    probe: {{type: tcp, host: 127.0.0.1, port: {db_port}, timeout: 400ms, interval: 500ms}}
  - id: queue
    objective: availability
    target: "99.5%"
    probe: {{type: http, url: "{queue}", expect_status: [200], timeout: 400ms, interval: 500ms}}
compensation:
  basis: combined
  combined: weighted
  target: "99.9%"
  schedule:
    - {{below: "99.9%", credit: "10%"}}
    - {{below: "97%", credit: "25%"}}
    - {{below: "90%", credit: "60%"}}
    - {{below: "75%", credit: "100%"}}
  cap: "100%"
measurement: {{slice: 1s, down_after: 2, gaps: exclude}}
oracles: {{members: [oracle-1, oracle-2, oracle-3], quorum: 2, deadline: 1h, fallback: no-credit}}
"""


def step(n: int, text: str) -> None:
    console.print(f"\n[bold cyan]{n}.[/] [bold]{text}[/]")


def main(period: int = 30, down: int = 6) -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    env = {**os.environ, "SMARTSLA_HOME": str(WORK / "home"), "SMARTSLA_NODE_PORT": str(free_port()),
           "SMARTSLA_NETWORK": "development", "PYTHONPATH": str(ROOT), "COLUMNS": str(max(console.width, 100))}
    env.pop("SMARTSLA_ACCOUNT", None)
    smartsla = Shell(env)
    api, queue, db = HttpTarget().start(), HttpTarget().start(), TcpTarget().start()
    daemons: list[subprocess.Popen] = []
    try:
        step(1, "A local chain that keeps its state, and the provider's three services")
        smartsla("node", "start", "--block-time", "1")
        console.print(f"services: api {api.url}, queue {queue.url}, db tcp 127.0.0.1:{db.port}")

        step(2, "The provider deploys the factory (once per network)")
        factory = smartsla.json("factory", "deploy")["factory"]
        console.print(f"factory {factory}")

        step(3, "Three independent oracle operators start their daemons; they watch the factory")
        start = int(time.time()) + 25
        (WORK / "terms.yaml").write_text(terms_text(start, period, api.url, queue.url, db.port))
        smartsla("node", "fund", "oracle-1", "oracle-2", "oracle-3", show=False)
        node_url = f"http://127.0.0.1:{env['SMARTSLA_NODE_PORT']}"
        ports = [free_port() for _ in range(3)]
        for i in (1, 2, 3):
            peers = [f"http://127.0.0.1:{ports[j - 1]}" for j in (1, 2, 3) if j != i]
            daemons.append(spawn_oracle(WORK, i, node_url, factory, ports[i - 1], peers, ["terms.yaml"]))
        console.print("sla-oracle run --config oracle-N.yaml  (x3; logs in build/demo/oracle-N.log)")

        step(4, f"The provider creates the agreement: three services, {period}-second periods for the demo")
        created = smartsla("create", "terms.yaml", "--yes")
        address = next(line.split()[1] for line in created.stdout.splitlines() if line.startswith("agreement 0x"))

        step(5, "The provider posts the bond the terms ask for; the customer escrows one period's fee (its consent)")
        smartsla("bond", address, "500")
        smartsla("fund", address, "--periods", "1")

        with console.status("waiting for the oracles to find the agreement") as status:
            deadline = time.time() + 60
            while time.time() < deadline and not all(oracle_events(WORK, i, "watching") for i in (1, 2, 3)):
                time.sleep(0.2)
            while time.time() < start:
                status.update(f"period 0 begins in {start - time.time():.0f} s; the oracles probe twice a second")
                time.sleep(0.2)
            step(6, f"Period 0 runs. The database goes down {period // 3} s in, for {down} s")
            while time.time() < start + period // 3:
                status.update("all services up")
                time.sleep(0.2)
            db.set_mode("refuse")
            until = time.time() + down
            while time.time() < until:
                status.update(f"[red]db is DOWN[/] ({until - time.time():.0f} s left)")
                time.sleep(0.2)
            db.set_mode(None)
            end = start + period
            while time.time() < end:
                status.update(f"db is back; period 0 ends in {end - time.time():.0f} s")
                time.sleep(0.2)
            settled = False
            while time.time() < end + 90 and not settled:
                status.update("the oracles compute the period, sign, exchange reports and settle")
                settled = "settled" in smartsla.json("status", address)["periods_state"]
                time.sleep(1)
        if not settled:
            console.print("[red]period 0 was not settled in time; the oracle logs are in build/demo/[/]")
            return 1
        for i in (1, 2, 3):  # the third oracle may sign after two have settled
            deadline = time.time() + 20
            while time.time() < deadline and not any(e["period"] == 0 for e in oracle_events(WORK, i, "signed")):
                time.sleep(0.2)

        step(7, "The customer reads what the contract paid, period by period and service by service")
        smartsla("payouts", address)

        step(8, "An auditor checks everything from the chain, the terms file and the oracles' evidence")
        evidence = [arg for i in (1, 2, 3) for arg in ("--evidence", f"evidence-{i}/{address}")]
        audited = smartsla("audit", address, "--terms", "terms.yaml", *evidence, "--html", "audit.html")
        console.print(f"a report for people: {WORK / 'audit.html'}")

        step(9, "Someone changes one byte of oracle-1's evidence; the audit must catch it")
        victim = next(p for p in sorted((WORK / f"evidence-1/{address}").rglob("*"))
                      if p.is_file() and p.suffix != ".json")
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0x01
        victim.write_bytes(bytes(data))
        console.print(f"flipped one bit in {victim.relative_to(WORK)}")
        smartsla("audit", address, "--terms", "terms.yaml", "--evidence", f"evidence-1/{address}", expect=1)
        console.print("\n[bold green]done:[/] measured by three oracles, paid by the contract, checked by an "
                      "auditor, tampering caught.")
        return 0 if audited.returncode == 0 else 1
    finally:
        for d in daemons:
            d.terminate()
        for d in daemons:
            try:
                d.wait(timeout=20)
            except subprocess.TimeoutExpired:
                d.kill()
        subprocess.run([sys.executable, "-m", "smartsla.cli", "node", "stop"], env=env, capture_output=True)
        for target in (api, queue, db):
            target.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--period", type=int, default=30, help="period length in seconds (default 30)")
    parser.add_argument("--down", type=int, default=6, help="seconds the database is down (default 6)")
    args = parser.parse_args()
    sys.exit(main(args.period, args.down))
