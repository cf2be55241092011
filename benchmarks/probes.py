"""Probe throughput on one core, and the scheduler's punctuality and CPU cost at 10,000 targets.

    python -m benchmarks.probes [--duration 30] [--targets 10000] [--interval 60] [--quick]

The oracle (this process) is pinned to CPU 0 and the local target (``python -m oracle.devnet.targets`` in a subprocess) to
CPU 1, so "per core" means one core for the prober alone, and the target's CPU is reported separately.
Everything is on loopback: a real network adds latency, not CPU, so these are CPU-bound ceilings.

The scheduling scenario is the real :class:`~oracle.probes.Scheduler` with the real :class:`~oracle.probes.Prober`
(fresh connection per probe, the default) over 10,000 services at a 60 s interval, phases spread over the
interval as in production, so the offered load from the first second is the production one (10,000 / 60 =
167 probes/s); a ``--duration`` shorter than the interval just means each service is probed at most once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from rich.table import Table

from benchmarks.common import load_average, machine, make_console
from oracle.devnet.targets import SubprocessTarget
from oracle.probes import Prober, ProbeSpec, Scheduler
from smartsla.measure.samples import Sample, Status

TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (the target runs in another process)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def pin(pid: int, cpu: int) -> bool:
    try:
        os.sched_setaffinity(pid, {cpu})
        return True
    except (AttributeError, OSError):
        return False


@dataclass
class Run:
    name: str
    probes: int
    wall: float
    cpu: float
    target_cpu: float
    up: int

    @property
    def rate(self) -> float:
        return self.probes / self.wall


async def throughput(name: str, spec: ProbeSpec, target: SubprocessTarget, seconds: float, *,
                     keep_alive: bool, workers: int = 64) -> Run:
    count = up = 0
    async with Prober(keep_alive=keep_alive) as prober:
        for _ in range(50):  # warm up: imports, first connections
            await prober.probe(spec)
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal count, up
            while time.perf_counter() < stop_at:
                sample = await prober.probe(spec)
                count += 1
                up += sample.status is Status.UP

        cpu0, tcpu0, t0 = time.process_time(), cpu_of(target.process.pid), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        wall = time.perf_counter() - t0
        return Run(name, count, wall, time.process_time() - cpu0, cpu_of(target.process.pid) - tcpu0, up)


@dataclass
class SchedRun:
    name: str
    offered: float
    seconds: float
    samples: int
    up: int
    p50: float
    p99: float
    max: float
    skipped: int
    cpu: float
    target_cpu: float


async def scheduled(name: str, target: SubprocessTarget, services: int, interval: float, seconds: float) -> SchedRun:
    samples: list[Sample] = []
    async with Prober() as prober:
        scheduler = Scheduler(prober.probe, samples.append)
        for i in range(services):
            scheduler.add(ProbeSpec.http(f"svc-{i:05d}", target.url, keyword="ok", interval=interval, timeout=5))
        cpu0, tcpu0, t0 = time.process_time(), cpu_of(target.process.pid), time.perf_counter()
        await scheduler.run(duration=seconds)
        wall = time.perf_counter() - t0
        stats = scheduler.stats
        return SchedRun(name, services / interval, wall, len(samples), sum(s.status is Status.UP for s in samples),
                        stats.percentile(50), stats.percentile(99), stats.max_lateness, stats.skipped,
                        time.process_time() - cpu0, cpu_of(target.process.pid) - tcpu0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=30, help="seconds of the 10,000-target run")
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=60)
    parser.add_argument("--throughput-seconds", type=float, default=5)
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    parser.add_argument("--markdown", metavar="PATH", help="append the results as a markdown section to PATH")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.throughput_seconds = 5, 1.5
    console = make_console()
    console.print(f"[bold]Machine:[/] {machine('aiohttp ' + metadata.version('aiohttp'))}")
    # The machine may be shared: CPU/wall below 100% with neither side saturated means other processes had
    # the core, which is why throughput is also given per CPU-second of the prober.
    load = load_average()
    console.print(f"Load average before the run: {load}")

    with SubprocessTarget("--http") as http, SubprocessTarget("--tcp") as tcp:
        pinned = pin(0, 0) and pin(http.process.pid, 1) and pin(tcp.process.pid, 1)
        console.print("Oracle pinned to CPU 0, targets to CPU 1." if pinned else
                      "[yellow]Could not pin to separate CPUs: prober and target share the machine's cores.[/]")

        runs = [
            asyncio.run(throughput("HTTP GET, new connection (default)",
                                   ProbeSpec.http("api", http.url, keyword="ok"), http, args.throughput_seconds,
                                   keep_alive=False)),
            asyncio.run(throughput("HTTP GET, keep-alive",
                                   ProbeSpec.http("api", http.url, keyword="ok"), http, args.throughput_seconds,
                                   keep_alive=True)),
            asyncio.run(throughput("TCP connect",
                                   ProbeSpec.tcp("db", "127.0.0.1", tcp.port), tcp, args.throughput_seconds,
                                   keep_alive=False)),
        ]
        table = Table(title="Probe throughput, one core (64 concurrent probes, local target)")
        for column in ("probe", "probes", "wall s", "probes/s", "probes/CPU-s", "oracle CPU/wall",
                       "target CPU/wall", "UP"):
            table.add_column(column, justify="left" if column == "probe" else "right")
        for r in runs:
            table.add_row(r.name, f"{r.probes:,}", f"{r.wall:.2f}", f"[bold]{r.rate:,.0f}[/]",
                          f"{r.probes / r.cpu:,.0f}", f"{r.cpu / r.wall:.0%}", f"{r.target_cpu / r.wall:.0%}",
                          f"{r.up / r.probes:.1%}")
        console.print(table)

        scenarios = [(f"{args.targets:,} targets @ {args.interval:g} s", args.targets, args.interval, args.duration)]
        if not args.quick:
            # The same scheduler at six times the production rate, for headroom.
            scenarios.append((f"{args.targets:,} targets @ {args.interval / 6:g} s (stress)",
                              args.targets, args.interval / 6, min(args.duration, 15)))
        sched = [asyncio.run(scheduled(n, http, s, i, d)) for n, s, i, d in scenarios]
        table = Table(title="Scheduler: lateness = probe start - deadline (real probes, new connection each)")
        for column in ("scenario", "offered/s", "run s", "probes", "done/s", "UP", "lateness p50", "p99", "max",
                       "skipped", "oracle CPU/wall", "target CPU/wall"):
            table.add_column(column, justify="left" if column == "scenario" else "right")
        for r in sched:
            table.add_row(r.name, f"{r.offered:,.0f}", f"{r.seconds:.1f}", f"{r.samples:,}",
                          f"{r.samples / r.seconds:,.0f}", f"{r.up / max(r.samples, 1):.1%}",
                          f"{r.p50 * 1000:.2f} ms", f"[bold]{r.p99 * 1000:.2f} ms[/]", f"{r.max * 1000:.1f} ms",
                          f"{r.skipped:,}", f"[bold]{r.cpu / r.seconds:.1%}[/]", f"{r.target_cpu / r.seconds:.1%}")
        console.print(table)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(f"Oracle peak RSS {rss:.0f} MiB (all runs, {args.targets:,} specs scheduled).")
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write("\n" + markdown(runs, sched, pinned, load, rss, args))
    return 0


def markdown(runs: list[Run], sched: list[SchedRun], pinned: bool, load: str, rss: float, args) -> str:
    lines = [
        "## Probes",
        "",
        "Generated by `python -m benchmarks.probes`: probe throughput on one core and the scheduler's "
        "punctuality and CPU cost, against a local target (loopback, so these are CPU-bound ceilings).",
        "",
        "| | |",
        "| --- | --- |",
        f"| machine | {machine('aiohttp ' + metadata.version('aiohttp'))} |",
        f"| load average before the run | {load} |",
        f"| conditions | {'oracle pinned to CPU 0, targets to CPU 1' if pinned else 'not pinned: prober and target share the cores'}; "
        f"throughput runs {args.throughput_seconds:g} s with 64 concurrent probes; scheduler runs up to "
        f"{args.duration:g} s |",
        "",
        "| probe | probes | wall s | probes/s | probes/CPU-s | oracle CPU/wall | target CPU/wall | UP |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in runs:
        lines.append(f"| {r.name} | {r.probes:,} | {r.wall:.2f} | **{r.rate:,.0f}** | {r.probes / r.cpu:,.0f} | "
                     f"{r.cpu / r.wall:.0%} | {r.target_cpu / r.wall:.0%} | {r.up / r.probes:.1%} |")
    lines += [
        "",
        "| scheduler scenario | offered/s | run s | probes | done/s | UP | lateness p50 | p99 | max | skipped | "
        "oracle CPU/wall | target CPU/wall |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in sched:
        lines.append(f"| {r.name} | {r.offered:,.0f} | {r.seconds:.1f} | {r.samples:,} | {r.samples / r.seconds:,.0f} | "
                     f"{r.up / max(r.samples, 1):.1%} | {r.p50 * 1000:.2f} ms | **{r.p99 * 1000:.2f} ms** | "
                     f"{r.max * 1000:.1f} ms | {r.skipped:,} | **{r.cpu / r.seconds:.1%}** | "
                     f"{r.target_cpu / r.seconds:.1%} |")
    lines += ["", f"Lateness = probe start - its deadline. Oracle peak RSS {rss:.0f} MiB.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
