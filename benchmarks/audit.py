"""Audit speed: an agreement with 36 periods, 3 services and 3 oracles, audited from chain data on anvil.

    python -m benchmarks.audit [--periods 36] [--runs 3] [--markdown PATH]

Setup (not timed): a fresh anvil, the factory and an ERC-20 agreement of ``--periods`` 30-day periods, funded in
deposits of 6 periods, a bond, two maintenance windows; every period settled by three signed reports except
every 12th, which settles by the fallback; then closed. Timed: ``smartsla.audit.audit`` without replay (the
history from logs, calldata and views, then every check; median of ``--runs``), then once with ``--replay``: the
whole history re-executed on an anvil fork taken before the creation block, every log and the final state
compared. The target is 5 s for the audit without replay.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from rich.console import Console
from rich.table import Table

from benchmarks.common import load_average, machine, make_console
from smartsla.constants import PPM
from smartsla.audit.checks import audit
from smartsla.chain.chain import Chain
from smartsla.encoding import service_bytes32
from smartsla.onchain.client import Contracts
from smartsla.onchain.types import OnChainTerms, solidity_name

DAY = 86_400
TIERS = [(999_000, 1_000), (990_000, 2_500), (950_000, 10_000)]


def setup(chain: Chain, periods: int, console: Console) -> tuple[Contracts, str, int]:
    contracts = Contracts(chain)
    deployer, provider, customer = (chain.account(n) for n in ("deployer", "provider", "customer"))
    oracles = [chain.account(f"oracle-{i}") for i in (1, 2, 3)]
    factory = contracts.deploy_factory(deployer)
    token = contracts.deploy_test_usd(deployer)
    for who in (provider, customer):
        chain.transact(deployer, token.functions.mint(who.address, 10**18))
    fee = 1_000 * 10**6
    values = {"provider": provider.address, "customer": customer.address, "token": token.address, "fee": fee,
              "bond": 500 * 10**6, "start": chain.now() + 3 * DAY, "periodLength": 30 * DAY, "periodCount": periods,
              "services": [(service_bytes32(s), 999_000, w, False, TIERS) for s, w in (("api", 2), ("db", 1), ("queue", 1))],
              "basis": 0, "combine": 0, "combined": (b"\0" * 32, 0, 0, False, []), "capBps": 15_000,
              "oracles": [o.address for o in oracles], "quorum": 2, "minCoverage": 900_000,
              "reportDeadline": 2 * DAY,
              "fallbackFullCredit": True, "maintenanceAllowance": 4 * 3_600, "maintenanceNotice": 2 * DAY,
              "documentHash": b"\x42" * 32}
    agreement = factory.create(provider, OnChainTerms(*(values[solidity_name(k)] for k in OnChainTerms._fields)))
    agreement.post_bond(provider, 500 * 10**6)
    agreement.announce_maintenance(provider, agreement.period_start(0) + 5 * DAY, 3_600)
    agreement.announce_maintenance(provider, agreement.period_start(1) + 9 * DAY, 7_200)
    t0 = time.perf_counter()
    agreement.fund(customer, min(6, periods))
    for p in range(periods):
        if p % 6 == 5 and p + 1 < periods:  # while period p runs, fund the next six
            agreement.fund(customer, min(6, periods - p - 1))
        if p % 12 == 11:
            chain.travel_to(agreement.period_end(p) + 2 * DAY + 1)
            agreement.settle_by_fallback(deployer, p)
            continue
        chain.travel_to(agreement.period_end(p) + 60)
        base = [1_000_000, 999_500, 998_000, 985_000, 940_000][p % 5]
        reports = [agreement.sign_report(o, p, [max(0, base - 100 * k - 50 * i) for i in range(3)],
                                         [PPM] * 3, bytes([p, k]) * 16)
                   for k, o in enumerate(oracles)]
        agreement.settle(deployer, p, reports)
    agreement.close(deployer)
    console.print(f"setup: {periods} periods settled in {time.perf_counter() - t0:.1f} s, agreement "
                  f"{agreement.address}")
    return contracts, agreement.address, factory.address


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.audit", description=__doc__.split("\n")[0])
    parser.add_argument("--periods", type=int, default=36)
    parser.add_argument("--runs", type=int, default=3, help="audits without replay; the median is reported")
    parser.add_argument("--markdown", metavar="PATH", help="append the results as a markdown section to PATH")
    args = parser.parse_args(argv)
    console = make_console()
    console.print(f"[bold]Machine:[/] {machine()}")
    load = load_average()
    with Chain.connect("anvil") as chain:
        client = chain.w3.client_version
        contracts, address, factory = setup(chain, args.periods, console)
        runs = []
        for _ in range(args.runs):
            report = audit(contracts, address, factory)
            runs.append(report)
            assert report.ok, [f for f in report.findings if f.failed]
        totals = [r.timings["total"] for r in runs]
        median = statistics.median(totals)
        typical = runs[totals.index(sorted(totals)[len(totals) // 2])]
        with_replay = audit(contracts, address, factory, replay=True)
    ok = with_replay.ok
    r = with_replay.replay
    h = typical.history
    table = Table(title=f"audit of {args.periods} periods, 3 services, 3 oracles on anvil")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    rows = [(f"audit without replay (median of {args.runs})", f"{median:.3f}")]
    rows += [(f"  {name}", f"{sec:.3f}") for name, sec in typical.timings.items() if name != "total"]
    rows += [("replay: fork start", f"{r['fork_start_seconds']:.3f}"),
             (f"replay: {r['transactions']} transactions re-executed and compared", f"{r['replay_seconds']:.3f}"),
             ("replay: transactions per second", f"{r['transactions_per_second']}"),
             ("audit with replay, total", f"{with_replay.timings['total']:.3f}")]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(f"{len(h.events)} events, {len(h.transactions)} agreement transactions, "
                  f"{sum(len(s.reports) for s in h.settlements.values())} reports; findings: {typical.counts()}; "
                  f"replay {'PASS' if ok else 'FAIL'}; target <= 5 s without replay: "
                  f"{'met' if median <= 5 else 'MISSED'}")
    if args.markdown:
        intro = (f"`python -m benchmarks.audit --periods {args.periods}`: one ERC-20 agreement with {args.periods} "
                 f"30-day periods, 3 services, 3 oracles (3 reports per period, every 12th period by the fallback), "
                 f"closed; {len(h.events)} events, {len(h.transactions)} agreement transactions. Audited from chain "
                 "data on anvil; the replay re-executes the history on an anvil fork.")
        lines = ["## Audit", "", intro, "", f"- machine: {machine()}", f"- chain: anvil {client}",
                 f"- load average before the run: {load}", "",
                 "| step | seconds |", "| --- | ---: |"]
        lines += [f"| {a.strip()} | {b} |" for a, b in rows]
        with open(args.markdown, "a") as f:
            f.write("\n" + "\n".join(lines) + "\n")
    return 0 if ok and median <= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
