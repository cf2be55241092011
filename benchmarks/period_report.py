"""A whole period report at full size: the period maths plus the evidence bundle and its root.

    python -m benchmarks.period_report [--services 100] [--days 30] [--every 30] [--evidence-services N]

The requirement: "Period report for 100 services x 30 days x 30 s samples (8.64 million samples), evidence
root included: <= 5 s, with peak memory stated." The samples are those of ``benchmarks.periods`` (~1% failing
in bursts, some unknown, probes drifting by up to a second) with a latency and a reason on every sample as
the prober writes them ("200 in 12 ms", "HTTP 503", "control check failed").

Steps, each timed on its own (wall clock, one run):

* ``compute_periods`` from columns, as in ``benchmarks.periods``;
* the evidence root alone with ``oracle.evidence``'s pieces (``chunk_bytes``, ``chunk_leaf``, ``tree_levels``),
  in memory, nothing written: grouping by (service, hour), the canonical chunks, hashing, the tree;
* ``build_bundle`` into a temporary directory on the same file system as the working directory: the same
  work plus the manifest, tree.json and one file per service and hour, each fsynced (72,000 chunk files for
  100 services x 720 hours).

The evidence functions take :class:`oracle.samples.Sample` objects, so the objects are created first (not
timed; its time and memory are printed). Peak memory is the process's resident set size sampled every 5 ms
while a step runs, minus the resident set before it ("added"), and the process's maximum RSS overall.

``--evidence-services N`` runs the evidence steps on the first N services only (``make bench`` uses it to
keep its run short; the work is per (service, hour) chunk, so the time scales linearly, and the table says
what was measured and what is extrapolated).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from benchmarks.common import machine
from rich.console import Console
from rich.table import Table

from benchmarks.periods import START, make_columns, make_terms
from oracle import evidence
from oracle.periods import compute_periods
from oracle.samples import Sample, Status

PAGE = os.sysconf("SC_PAGE_SIZE")
REQUIRED_SECONDS = 5.0


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


@dataclass
class Step:
    name: str
    samples: int
    seconds: float
    peak_added: int          # bytes above the RSS at the step's start
    note: str = ""
    scale: float = 1.0       # full-size samples / measured samples

    @property
    def full_seconds(self) -> float:
        return self.seconds * self.scale


@contextmanager
def measured(steps: list[Step], name: str, samples: int, scale: float = 1.0, note: str = ""):
    base = peak = rss()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.005):
            peak = max(peak, rss())

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - t0
        done.set()
        watcher.join()
        steps.append(Step(name, samples, seconds, max(peak, rss()) - base, note, scale))


def make_samples(cols, services: int, seed: int = 2) -> list[Sample]:
    """Sample objects for the first ``services`` services, with the prober's latency and reason."""
    rng = np.random.default_rng(seed)
    keep = cols.service < services
    svc, t, status = cols.service[keep], cols.time[keep], cols.status[keep]
    latency = np.round(rng.gamma(4.0, 3.0, len(t)), 3)  # ms, around 12 ms
    of = {0: Status.UP, 1: Status.DOWN, 2: Status.UNKNOWN}
    ids = [f"s{i}" for i in range(services)]
    return [Sample(tt, ids[s], of[c], lat if c == 0 else None,
                   f"200 in {lat:.0f} ms" if c == 0 else ("HTTP 503" if c == 1 else "control check failed"))
            for s, tt, c, lat in zip(svc.tolist(), t.tolist(), status.tolist(), latency.tolist())]


def root_only(samples: list[Sample], head: bytes) -> bytes:
    """The root from oracle.evidence's own pieces, the way build_bundle computes it, without any file."""
    chunks: dict[tuple[str, int], list[Sample]] = {}
    for s in samples:
        chunks.setdefault((s.service, evidence._us(s.time) // evidence.HOUR_US * evidence.HOUR), []).append(s)
    leaves = [head]
    for service, hour_start in sorted(chunks):
        data = evidence.chunk_bytes(chunks[(service, hour_start)])
        leaves.append(evidence.chunk_leaf(service, hour_start, evidence.keccak(data)))
    return evidence.tree_levels(leaves)[-1][0]


def root_from_columns(cols, services: int, head: bytes) -> bytes:
    """The root by the column path the daemon is meant to use (oracle.evidence.chunks_from_columns), all in memory.
    Latencies and reasons are simplified to "none" and one reason per status: the column formatter's cost does not
    depend on their text."""
    ids = [f"s{i}" for i in range(services)]
    t_us = np.round(cols.time * 1_000_000).astype(np.int64)
    lat = np.full(len(t_us), -1, np.int64)
    chunks = evidence.chunks_from_columns(ids, cols.service, t_us, cols.status.astype(np.int64), lat,
                                          cols.status.astype(np.int64), ["ok", "HTTP 503", "control check failed"])
    leaves = [head] + [evidence.chunk_leaf(svc, hour, evidence.keccak(data)) for (svc, hour), data in sorted(chunks.items())]
    return evidence.tree_levels(leaves)[-1][0]


def file_system(path: str) -> str:
    best, kind = "", "?"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            dev, mount, fstype = line.split()[:3]
            if path.startswith(mount) and len(mount) > len(best):
                best, kind = mount, f"{fstype} ({dev})"
    except OSError:
        pass
    return kind


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f}"


def run(args) -> tuple[list[Step], dict]:
    console = Console(stderr=True)
    full = args.services * args.days * 86_400 // args.every
    terms = make_terms(args.services, args.days)
    cols = make_columns(args.services, args.days, args.every)
    windows = [(START + 86_400 * d + 7_200, START + 86_400 * d + 9_000) for d in range(0, args.days, 7)]
    steps: list[Step] = []
    info: dict = {"samples": full, "dir_fs": file_system(str(Path(args.tmpdir or tempfile.gettempdir()).resolve()))}

    with measured(steps, "compute_periods (columns)", full):
        compute_periods(terms, cols, windows)
    head_all = evidence.header_leaf("0x" + "ab" * 20, 31337, 0, START, START + args.days * 86_400,
                                    {f"s{i}": 999_000 for i in range(args.services)})
    with console.status("evidence root from columns, in memory"), \
            measured(steps, "evidence root from columns (in memory)", full):
        root_from_columns(cols, args.services, head_all)

    ev_services = min(args.evidence_services or args.services, args.services)
    if ev_services:
        t0 = time.perf_counter()
        base = rss()
        with console.status(f"creating {ev_services} services' Sample objects"):
            samples = make_samples(cols, ev_services)
        info["objects"] = (len(samples), time.perf_counter() - t0, rss() - base)
        n = len(samples)
        scale = full / n
        del cols
        ids = [f"s{i}" for i in range(ev_services)]
        period_end = START + args.days * 86_400
        head = evidence.header_leaf("0x" + "ab" * 20, 31337, 0, START, period_end, {i: 999_000 for i in ids})
        profile = cProfile.Profile() if args.profile else None
        with console.status("evidence root, in memory"), measured(steps, "evidence root only (in memory)", n, scale):
            if profile:
                profile.enable()
            root = root_only(samples, head)
            if profile:
                profile.disable()
        with tempfile.TemporaryDirectory(prefix="period-report-", dir=args.tmpdir) as tmp:
            with console.status("build_bundle, writing files"), \
                    measured(steps, "build_bundle (files, fsync each)", n, scale):
                built = evidence.build_bundle(Path(tmp) / "period-0", "0x" + "ab" * 20, 31337, 0, START, period_end,
                                              samples, {i: 999_000 for i in ids})
            files = sum(len(f) for _, _, f in os.walk(tmp))
        if built != root:
            raise SystemExit("the root computed from the pieces differs from build_bundle's: the benchmark is stale")
        info.update(root="0x" + root.hex(), files=files, evidence_services=ev_services)
        if profile:
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(12)
            info["profile"] = out.getvalue()
    info["max_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return steps, info


def total(steps: list[Step], names: tuple[str, ...]) -> float:
    return sum(s.full_seconds for s in steps if s.name in names)


def verdict(seconds: float) -> str:
    return "PASS" if seconds <= REQUIRED_SECONDS else "FAIL"


def print_table(steps: list[Step], info: dict, args, console: Console) -> None:
    table = Table(title=f"period report: {args.services} services x {args.days} d x {args.every} s = "
                        f"{info['samples']:,} samples")
    for col in ("step", "samples measured", "time (s)", f"at {info['samples']:,} (s)", "samples/s", "peak RSS added (MiB)"):
        table.add_column(col, justify="left" if col == "step" else "right")
    for s in steps:
        at_full = f"{s.full_seconds:.2f}" + (f" (x{s.scale:.0f}, linear)" if s.scale > 1.0001 else "")
        table.add_row(s.name, f"{s.samples:,}", f"{s.seconds:.2f}", at_full, f"{s.samples / s.seconds:,.0f}",
                      mib(s.peak_added))
    console.print(table)
    for label, names in rows_of_totals():
        t = total(steps, names)
        console.print(f"{label}: [bold]{t:.2f} s[/] -> requirement <= {REQUIRED_SECONDS:g} s: "
                      f"[{'green' if t <= REQUIRED_SECONDS else 'red'}]{verdict(t)}[/]")
    if "objects" in info:
        count, secs, added = info["objects"]
        console.print(f"(not timed) creating {count:,} Sample objects: {secs:.1f} s, {mib(added)} MiB")
        console.print(f"bundle: {info['files']:,} files on {info['dir_fs']}; root {info['root']}")
    console.print(f"max RSS of the process: {mib(info['max_rss'])} MiB")
    if "profile" in info:
        console.print(info["profile"])


def rows_of_totals() -> list[tuple[str, tuple[str, ...]]]:
    return [("report with the root from columns (compute_periods + column root)",
             ("compute_periods (columns)", "evidence root from columns (in memory)")),
            ("report with the root from Sample objects (compute_periods + root in memory)",
             ("compute_periods (columns)", "evidence root only (in memory)")),
            ("report with the bundle written (compute_periods + build_bundle)",
             ("compute_periods (columns)", "build_bundle (files, fsync each)"))]


def markdown(steps: list[Step], info: dict, args) -> str:
    lines = [
        "## Period report (period maths + evidence)",
        "",
        "Generated by `python -m benchmarks.period_report`. Requirement: a period report for 100 services x 30 "
        "days x 30 s samples (8.64 million), evidence root included, in <= 5 s, with peak memory stated.",
        "",
        "| | |",
        "| --- | --- |",
        f"| machine | {machine('numpy ' + np.__version__)} |",
        f"| bundle written to | {info['dir_fs']} |",
        f"| load average before the run | {info['load']} |",
        f"| conditions | {args.services} services x {args.days} d x {args.every} s = {info['samples']:,} samples, "
        "1-minute slices, ~1% failing; evidence from `Sample` objects with latency and reason; one run each |",
        "",
        f"| step | samples measured | time (s) | at {info['samples']:,} (s) | peak RSS added (MiB) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for s in steps:
        at_full = f"{s.full_seconds:.2f}" + (f" (x{s.scale:.0f}, linear)" if s.scale > 1.0001 else "")
        lines.append(f"| {s.name} | {s.samples:,} | {s.seconds:.2f} | {at_full} | {mib(s.peak_added)} |")
    lines.append("")
    for label, names in rows_of_totals():
        t = total(steps, names)
        lines.append(f"- {label}: **{t:.2f} s**, requirement <= {REQUIRED_SECONDS:g} s: **{verdict(t)}**")
    if "objects" in info:
        count, secs, added = info["objects"]
        lines.append(f"- not timed: creating {count:,} `Sample` objects took {secs:.1f} s and {mib(added)} MiB; "
                     f"the bundle had {info['files']:,} files")
    lines += [f"- max RSS of the process: {mib(info['max_rss'])} MiB", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.period_report", description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--every", type=int, default=30, help="seconds between samples of one service")
    parser.add_argument("--evidence-services", type=int, default=0,
                        help="build the evidence for the first N services only and extrapolate (0: all)")
    parser.add_argument("--tmpdir", help="where to write the bundle (default: the system's temporary directory)")
    parser.add_argument("--profile", action="store_true", help="cProfile the in-memory root step")
    parser.add_argument("--markdown", metavar="PATH", help="append the results as a markdown section to PATH")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 150)
    console.print(f"[bold]Machine:[/] {machine('numpy ' + np.__version__)}")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    steps, info = run(args)
    info["load"] = load
    print_table(steps, info, args, console)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write("\n" + markdown(steps, info, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
