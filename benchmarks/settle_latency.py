"""Settlement latency: from a period's end to the compensation in the customer's balance, with three oracles.

    python -m benchmarks.settle_latency [--periods 5] [--length 10] [--outage 2] [--grace 1] [--poll 1]

Real time, real processes: anvil mining a block every second (``--block-time 1``), three ``sla-oracle run``
processes (quorum 2) probing a local HTTP target every 0.5 s, and one ERC-20 agreement with ``--periods``
short periods, all funded. The target answers 503 for ``--outage`` seconds in the middle of every period, so
every period owes the customer compensation. This process polls the customer's ``balanceOf`` every 0.1 s.

For each period: **wall** = when the poll first saw the balance rise, minus the period's end (unix time);
**block** = the timestamp of the block holding the settle transaction, minus the period's end (anvil's
block timestamps are whole seconds). The oracles' own log lines split the wall time into: end -> the first
oracle signs (grace, waiting for a block past end + grace, the poll interval, computing and writing the
evidence), -> the settle transaction is sent and mined (gathering a quorum from peers that poll on their
own clocks, plus one block).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.common import load_average, machine, make_console
from oracle.devnet.localnet import LocalNet
from oracle.devnet.targets import HttpTarget
from smartsla.onchain.types import PeriodState

ROOT = Path(__file__).resolve().parent.parent

ORACLES = (1, 2, 3)


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), without numpy."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class PeriodLatency:
    index: int
    end: int
    wall: float | None          # balance rise seen - period end
    block: int | None           # settle block timestamp - period end
    signed: float | None        # first oracle's "signed" log line - period end
    sent: float | None          # the "settled" log line (after the receipt) - period end
    credit_bps: int | None
    paid: int


class Setup(LocalNet):
    """The local network, a local HTTP target, and one agreement funded for every period, its periods starting
    ``lead`` seconds from now."""

    def __init__(self, tmp: Path, periods: int, length: int, grace: int, poll: int, lead: int):
        super().__init__(tmp)
        self.periods, self.length, self.grace, self.poll = periods, length, grace, poll
        self.target = HttpTarget().start()
        self.start = int(time.time()) + lead
        _, self.chain_terms, self.agreement = self.create_agreement(self.terms_yaml(), fund_periods=periods)

    def terms_yaml(self) -> str:
        return self.one_service_terms("bench-settle-latency", self.target.url, self.start, self.length, self.periods)

    def start_oracle(self, i: int) -> None:
        super().start_oracle(i, grace=f"{self.grace}s", poll=f"{self.poll}s")

    def all_events(self, kind: str) -> list[dict]:
        return [dict(event, oracle=i) for i in ORACLES for event in self.events(i, kind)]

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.target.stop()


def run(periods: int, length: int, outage: float, grace: int, poll: int, lead: int, console: Console
        ) -> tuple[list[PeriodLatency], str]:
    with tempfile.TemporaryDirectory(prefix="settle-latency-") as tmp:
        s = Setup(Path(tmp), periods, length, grace, poll, lead)
        try:
            for i in ORACLES:
                s.start_oracle(i)
            customer = s.accounts["customer"].address
            ends = [s.agreement.period_end(k) for k in range(periods)]
            # the outage sits in the middle of each period, clear of slice edges at both ends
            down = [(s.start + k * length + (length - outage) / 2, s.start + k * length + (length + outage) / 2)
                    for k in range(periods)]
            seen: dict[int, float] = {}
            balance = s.agreement.balance_of(customer)
            mode = None
            give_up = ends[-1] + 60
            with console.status("waiting for the periods to end and settle") as status:
                while len(seen) < periods and time.time() < give_up:
                    now = time.time()
                    want = "down-503" if any(a <= now < b for a, b in down) else None
                    if want != mode:
                        s.target.set_mode(want)
                        mode = want
                    current = s.agreement.balance_of(customer)
                    if current > balance:
                        # Settlement is in order, so a rise belongs to the earliest period not yet seen.
                        seen[len(seen)] = now
                        balance = current
                        status.update(f"{len(seen)}/{periods} periods paid")
                    time.sleep(max(0.0, 0.1 - (time.time() - now)))
            s.target.set_mode(None)
            settled = {e["args"]["period"]: e for e in s.agreement.events("PeriodSettled")}
            signed = s.all_events("signed")
            sent = s.all_events("settled")
            rows = []
            for k in range(periods):
                event = settled.get(k)
                block = None
                if event is not None:
                    block = s.chain.w3.eth.get_block(event["blockNumber"])["timestamp"] - ends[k]
                first_signed = min((e["ts"] for e in signed if e["period"] == k), default=None)
                first_sent = min((e["ts"] for e in sent if e["period"] == k), default=None)
                record = s.agreement.period(k)
                rows.append(PeriodLatency(
                    k, ends[k], seen[k] - ends[k] if k in seen else None, block,
                    None if first_signed is None else first_signed - ends[k],
                    None if first_sent is None else first_sent - ends[k],
                    record.credit_bps if record.state == PeriodState.SETTLED else None,
                    record.compensation if record.state == PeriodState.SETTLED else 0))
            if any(r.wall is None for r in rows):
                console.print(f"[red]not every period was paid[/]\n{s.logs()}")
            return rows, s.chain.w3.client_version
        finally:
            s.close()


def summarize(rows: list[PeriodLatency]) -> dict[str, float | None]:
    def stat(values, fn):
        values = [v for v in values if v is not None]
        return fn(values) if values else None
    walls = [r.wall for r in rows]
    return {"median": stat(walls, statistics.median), "p90": stat(walls, lambda v: percentile(v, 0.9)),
            "block_median": stat([r.block for r in rows], statistics.median),
            "signed_median": stat([r.signed for r in rows], statistics.median),
            "sent_median": stat([r.sent for r in rows], statistics.median),
            "paid": sum(r.wall is not None for r in rows)}


def _s(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f} s"


def table(rows: list[PeriodLatency]) -> Table:
    t = Table(title="Period end -> compensation in the customer's balance (3 oracles, quorum 2, anvil 1 s blocks)")
    for col in ("period", "end -> first signed", "end -> settle tx mined (log)", "end -> settle block time",
                "end -> balance seen", "credit", "paid"):
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(str(r.index), _s(r.signed), _s(r.sent), "—" if r.block is None else f"{r.block} s",
                  f"[bold]{_s(r.wall)}[/]", "—" if r.credit_bps is None else f"{r.credit_bps / 100:g}%",
                  f"{r.paid / 10**6:,.2f} tUSD")
    return t


def markdown(rows: list[PeriodLatency], args, env: list[tuple[str, str]]) -> str:
    summary = summarize(rows)
    lines = [
        "## Settlement latency",
        "",
        "Generated by `python -m benchmarks.settle_latency`: the time from a period's end to the compensation "
        "appearing in the customer's ERC-20 balance, with three real `sla-oracle run` processes on anvil.",
        "",
        "| | |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in env),
        f"| conditions | {len(rows)} periods of {args.length} s, 3 oracles (quorum 2), grace {args.grace} s, poll "
        f"{args.poll} s, anvil `--block-time 1`, HTTP probe every 0.5 s, 1 s slices, target down {args.outage:g} s "
        "in each period; balance polled every 0.1 s |",
        "",
        "| period | end -> first signed | end -> settle tx mined (log) | end -> settle block time | "
        "end -> balance seen | credit |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| {r.index} | {_s(r.signed)} | {_s(r.sent)} | {'—' if r.block is None else f'{r.block} s'} | "
                     f"**{_s(r.wall)}** | {'—' if r.credit_bps is None else f'{r.credit_bps / 100:g}%'} |")
    lines += [
        "",
        f"**Median {_s(summary['median'])}, p90 {_s(summary['p90'])}** (period end to the balance rise, "
        f"{summary['paid']} of {len(rows)} periods paid).",
        "",
        "What it is made of: the daemon judges a period over by the *block* timestamp, so it waits for a block "
        f"stamped at or after end + grace ({args.grace} s; up to one block, 1 s, more), then for its next poll "
        f"(up to {args.poll} s), computes the values and writes the evidence bundle, signs, and asks its peers; a "
        "peer that has not yet signed is asked again on the next poll, so reaching a quorum of 2 costs up to "
        f"another poll. The settle transaction then waits for the next block (up to 1 s), and the balance poll "
        "adds up to 0.1 s. On a public chain replace the 1 s block by the chain's block time and inclusion delay.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.settle_latency", description=__doc__.split("\n")[0])
    parser.add_argument("--periods", type=int, default=5)
    parser.add_argument("--length", type=int, default=10, help="period length in seconds")
    parser.add_argument("--outage", type=float, default=2, help="seconds the target is down in each period")
    parser.add_argument("--grace", type=int, default=1)
    parser.add_argument("--poll", type=int, default=1)
    parser.add_argument("--lead", type=int, default=12, help="seconds from setup to the first period's start")
    parser.add_argument("--markdown", metavar="PATH", help="append the results as a markdown section to PATH")
    args = parser.parse_args(argv)

    console = make_console()
    console.print(f"[bold]Machine:[/] {machine()}")
    load = load_average()
    rows, client = run(args.periods, args.length, args.outage, args.grace, args.poll, args.lead, console)
    console.print(table(rows))
    summary = summarize(rows)
    console.print(f"median {_s(summary['median'])}, p90 {_s(summary['p90'])}, "
                  f"settle block median {summary['block_median']} s after the end; "
                  f"first signature median {_s(summary['signed_median'])}")
    if args.markdown:
        env = [("machine", machine()), ("chain", f"anvil {client}"),
               ("load average before the run", load)]
        with open(args.markdown, "a") as f:
            f.write("\n" + markdown(rows, args, env))
    return 0 if summary["paid"] == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
