"""Run every benchmark and write docs/benchmarks.md: gas, the period report, the objectives' report, probes,
settlement latency, audit (and the cost on public chains in docs/deploying.md).

    python -m benchmarks [--write docs/benchmarks.md] [--only gas,cost,report,objectives,probes,settle,scale,audit] [--full]

``benchmarks.gas --write`` rewrites the file; every other benchmark appends its own section (with its
machine and conditions) after it. Each runs in its own process: the probe benchmark pins its process to one
CPU, and each benchmark's maximum RSS should be its own.

Without ``--full`` the run is kept shorter: the probe scheduler runs 20 s instead of its full length, and the
scale benchmark stops at 100 agreements.
The period report always runs at full size (8.64 million samples).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from rich.console import Console

ORDER = ("gas", "cost", "report", "objectives", "probes", "settle", "scale", "audit")


def commands(path: str | None, full: bool) -> dict[str, list[str]]:
    def md(*args: str) -> list[str]:
        return [*args, "--markdown", path] if path else list(args)

    return {
        "gas": ["benchmarks.gas", *(["--write", path] if path else [])],
        # the cost on public chains goes to docs/deploying.md, beside what the contracts need from a chain
        "cost": ["benchmarks.chain_cost", *(["--write", "docs/deploying.md"] if path else [])],
        "report": md("benchmarks.period_report"),
        "objectives": md("benchmarks.objectives"),
        "probes": md("benchmarks.probes", *([] if full else ["--duration", "20"])),
        "settle": md("benchmarks.settle_latency"),
        # 10 and 100 agreements of 5 one-minute periods (about 13 minutes); --full adds 1,000 (about 12 more)
        "scale": md("benchmarks.scale", "--agreements", "10,100,1000" if full else "10,100"),
        "audit": md("benchmarks.audit"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--write", metavar="PATH", help="write the markdown report to PATH (gas first, then the rest)")
    parser.add_argument("--only", default=",".join(ORDER), help=f"comma-separated subset of {','.join(ORDER)}")
    parser.add_argument("--full", action="store_true", help="the probe scheduler's full-length run (much longer)")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(ORDER)
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}; choose from {', '.join(ORDER)}")
    if args.write and "gas" not in chosen:
        # Appending to a file gas did not just rewrite would stack old sections on top of each other.
        parser.error("--write needs gas: it starts the file, the others append to it")

    console = Console()
    cmds = commands(args.write, args.full)
    failed, took = [], {}
    for name in (n for n in ORDER if n in chosen):
        console.rule(f"[bold]{name}")
        t0 = time.monotonic()
        code = subprocess.call([sys.executable, "-m", *cmds[name]])
        took[name] = time.monotonic() - t0
        if code:
            failed.append(f"{name} (exit {code})")
    console.rule()
    console.print("  ".join(f"{n} {s:.0f} s" for n, s in took.items()) + f"  total {sum(took.values()):.0f} s")
    if args.write:
        console.print(f"wrote {args.write}")
    if failed:
        console.print(f"[red]failed:[/] {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
