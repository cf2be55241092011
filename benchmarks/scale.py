"""One oracle set, many agreements: how soon after its end every period of every agreement is settled, and what
the oracles cost in CPU and memory meanwhile.

    python -m benchmarks.scale [--agreements 10,100] [--periods 5] [--length 60] [--markdown PATH]

Real time, real processes: anvil mining a block a second, three ``sla-oracle run`` processes (quorum 2), and
``--agreements`` ERC-20 agreements of one provider, each with three services on the same three local HTTP
endpoints (so the oracles probe 3 targets, however many agreements), ``--periods`` periods of ``--length``
seconds, every period funded. Each period of each agreement is judged by the block that settled it: its
timestamp minus the period's end (whole seconds, anvil's blocks). Per oracle: CPU seconds (user + system) over
the run from /proc, and the peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from rich.table import Table

from benchmarks.common import load_average, machine, make_console
from benchmarks.settle_latency import percentile
from oracle.devnet.localnet import LocalNet
from oracle.devnet.targets import HttpTarget
from smartsla.terms.parse import load_terms

ORACLES = (1, 2, 3)
CLOCK_TICKS = 100   # /proc/<pid>/stat counts CPU time in ticks of 1/100 s on Linux


class Fleet(LocalNet):
    """The network, three endpoints, and ``count`` identical agreements funded for every period."""

    def __init__(self, tmp: Path, count: int, periods: int, length: int, console):
        super().__init__(tmp)
        self.targets = [HttpTarget().start() for _ in range(3)]
        self.count, self.periods, self.length = count, periods, length
        # creating takes 3 transactions an agreement, mined at once (automine) while the fleet is built, then a block
        # a second again; the first period starts once they all exist
        self.start = int(time.time()) + 30 + count // 2
        path = self.work / "terms.yaml"
        path.write_text(self.terms_yaml())
        terms = load_terms(path)
        self.chain_terms = terms.to_chain(lambda name, _p: self.chain.resolve(name), self.usd.address, 6)
        fee = terms.payment.fee_units(6)
        deployer, provider, customer = (self.accounts[r] for r in ("deployer", "provider", "customer"))
        self.chain.transact(deployer, self.usd.functions.mint(customer.address, fee * periods * count))
        self.agreements = []
        self.chain.w3.provider.make_request("evm_setAutomine", [True])
        with console.status("creating agreements") as status:
            for i in range(count):
                agreement = self.factory.create(provider, self.chain_terms)
                agreement.fund(customer, periods)
                self.agreements.append(agreement)
                status.update(f"created and funded {i + 1}/{count} agreements")
        self.chain.w3.provider.make_request("evm_setIntervalMining", [1])
        if time.time() > self.start - 5:
            raise SystemExit(f"creating {count} agreements took too long: the first period began before the end")

    def terms_yaml(self) -> str:
        a = self.addresses
        services = "\n".join(
            f"""  - id: s{i}
    objective: availability
    target: "99.9%"
    probe: {{type: http, url: "{t.url}", expect_status: [200], timeout: 1s, interval: 2s}}"""
            for i, t in enumerate(self.targets))
        return f"""\
agreement: bench-scale
provider: "{a['provider']}"
customer: "{a['customer']}"
payment: {{token: test-usd, fee: "10"}}
periods: {{start: {self.start}, length: {self.length}s, count: {self.periods}}}
services:
{services}
compensation:
  basis: per-service
  schedule:
    - {{below: "99.9%", credit: "10%"}}
measurement: {{slice: 10s, down_after: 1, gaps: exclude}}
oracles: {{members: ["{a['oracle-1']}", "{a['oracle-2']}", "{a['oracle-3']}"], quorum: 2, deadline: 1h, fallback: no-credit}}
"""

    def close(self) -> None:
        try:
            super().close()
        finally:
            for t in self.targets:
                t.stop()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS     # utime, stime


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_one(count: int, periods: int, length: int, console) -> dict:
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        fleet = Fleet(Path(tmp), count, periods, length, console)
        try:
            for i in ORACLES:
                fleet.start_oracle(i)
            cpu0 = {i: cpu_seconds(fleet.procs[i].pid) for i in ORACLES}
            t0 = time.time()
            last_end = fleet.start + periods * length
            give_up = last_end + 120
            delays: dict[int, list[int]] = {k: [] for k in range(periods)}
            with console.status("waiting for every period to settle") as status:
                while time.time() < give_up:
                    settled = sum(1 for a in fleet.agreements if not a.period(periods - 1).state.is_open) \
                        if time.time() > last_end else 0
                    status.update(f"{settled}/{count} agreements' last period settled")
                    if settled == count:
                        break
                    time.sleep(2)
            elapsed = time.time() - t0
            cpu = {i: cpu_seconds(fleet.procs[i].pid) - cpu0[i] for i in ORACLES}
            rss = {i: peak_rss_mib(fleet.procs[i].pid) for i in ORACLES}
            unsettled = 0
            blocks: dict[int, int] = {}
            for agreement in fleet.agreements:
                events = {e["args"]["period"]: e for e in agreement.events("PeriodSettled")}
                for k in range(periods):
                    event = events.get(k)
                    if event is None:
                        unsettled += 1
                        continue
                    block = event["blockNumber"]
                    if block not in blocks:
                        blocks[block] = fleet.chain.w3.eth.get_block(block)["timestamp"]
                    delays[k].append(blocks[block] - agreement.period_end(k))
            transactions = len({e["transactionHash"] for a in fleet.agreements for e in a.events("PeriodSettled")})
        finally:
            fleet.close()
    return {"agreements": count, "delays": delays, "unsettled": unsettled, "cpu": cpu, "rss": rss,
            "elapsed": elapsed, "transactions": transactions}


def row_cells(result: dict, periods: int) -> list[str]:
    per_period = []
    for k in range(periods):
        d = result["delays"][k]
        per_period.append(f"{percentile(d, 0.5):.0f} / {percentile(d, 0.99):.0f} / {max(d)}" if d else "none")
    cpu = max(result["cpu"].values()) / result["elapsed"]
    rss = max(result["rss"].values())
    return [f"{result['agreements']:,}", *per_period, str(result["unsettled"]), f"{result['transactions']:,}",
            f"{cpu:.1%}", f"{rss:.0f} MiB"]


def headers(periods: int) -> list[str]:
    return ["agreements", *(f"period {k}: s after end p50 / p99 / max" for k in range(periods)), "unsettled",
            "settle transactions", "busiest oracle's CPU", "peak RSS"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--agreements", default="10,100", help="comma-separated fleet sizes (default 10,100)")
    parser.add_argument("--periods", type=int, default=5)
    parser.add_argument("--length", type=int, default=60, help="seconds per period (default 60)")
    parser.add_argument("--markdown", metavar="PATH", help="append the results as a markdown section to PATH")
    args = parser.parse_args(argv)
    console = make_console()
    console.print(f"[bold]Machine:[/] {machine()}; load {load_average()}")
    results, failures = [], []
    for n in args.agreements.split(","):
        try:
            results.append(run_one(int(n), args.periods, args.length, console))
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - one size failing keeps the others' rows, and says why
            failures.append(f"{n} agreements: {exc}")
            console.print(f"[red]{n} agreements failed:[/] {exc}")
            continue
        console.print(f"{n} agreements: " + " | ".join(row_cells(results[-1], args.periods)))
    table = Table(*headers(args.periods), title="every period of every agreement, judged by its settling block")
    for r in results:
        table.add_row(*row_cells(r, args.periods))
    console.print(table)
    if args.markdown:
        lines = ["", "## One oracle set, many agreements", "",
                 "Generated by `python -m benchmarks.scale`: three real `sla-oracle run` processes on anvil (a block "
                 "a second), each agreement 3 services on the same 3 local endpoints (probed every 2 s, 10 s "
                 f"slices), {args.periods} periods of {args.length} s, quorum 2. Delays are the settling block's "
                 "timestamp minus the period's end, in whole seconds. CPU is the busiest oracle's user + system "
                 "time over the run's wall time (100% = one core).", "",
                 f"Machine: {machine()}; load before the run {load_average()}.", "",
                 "| " + " | ".join(headers(args.periods)) + " |", "|" + "---|" * len(headers(args.periods)),
                 *("| " + " | ".join(row_cells(r, args.periods)) + " |" for r in results), "",
                 *(f"Not measured: {f}" for f in failures), ""]
        with open(args.markdown, "a") as f:
            f.write("\n".join(lines))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
