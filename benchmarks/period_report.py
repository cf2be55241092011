"""A whole period report at full size: the store read, the period maths, the evidence root, the bundle written.

    python -m benchmarks.period_report [--services 100] [--days 30] [--every 30] [--repeat 3]
                                       [--store-services 100] [--markdown PATH]

The requirement: "Period report for 100 services x 30 days x 30 s samples (8.64 million samples), evidence
root included: <= 5 s, with peak memory stated." The samples are those of ``benchmarks.periods`` (~1% failing
in bursts, some unknown, probes drifting by up to a second) with a latency and a reason on every sample as
the prober writes them ("200 in 12 ms", "HTTP 503", "control check failed"), held as
:class:`smartsla.EvidenceColumns` in the order ``Store.columns`` hands them out (by service, then time).

Steps, each timed on its own (wall clock, median of ``--repeat`` runs, all at full size):

* ``compute_periods`` from those columns (their order is checked, not trusted, and they are not sorted again);
* ``evidence_root``: the v2 root in memory (canonical order check, 17-byte records, keccak of every
  (service, hour) chunk, the service trees and the root), nothing written;
* ``build_bundle_columns``: the same plus writing the bundle (one file per service and the manifest) into a
  temporary directory and making it durable (syncfs, directory fsyncs, rename);
* ``Store.columns`` of the month from a real store, as the daemon reads a period: all 8.64 million samples
  written into a temporary SQLite store as the daemon keys them (not timed; about 3 minutes), sealed with
  ``Store.seal_hours`` (timed once, reported: a one-off for a month, hourly in the daemon), then read; the
  columns are checked to be exactly the samples written;
* the period report from the store, end to end: ``Store.columns`` + ``compute_periods`` + ``evidence_root``
  in one timed run (and its root checked against the in-memory one);
* for information, not part of the report: ``verify_bundle`` of that bundle; sorting columns that arrive in
  time order rather than by service; and ``Store.columns_from_rows`` (the read without blocks, a Python tuple
  per row), measured once on ``--rows-services`` services and extrapolated linearly.

``--store-services`` below ``--services`` measures the store on fewer services and extrapolates linearly (the
table says so).

Peak memory is the process's resident set size sampled every 5 ms while a step runs, minus the resident set
before it ("added"; the largest of the runs), and the process's maximum RSS overall (which includes the
8.64 million input samples held in memory).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.common import load_average, machine, make_console
from benchmarks.periods import START, make_columns, make_terms
from oracle.store.store import Store
from smartsla.encoding import to_hex
from smartsla.evidence import bundle as evidence
from smartsla.evidence.columns import EvidenceColumns
from smartsla.measure.periods import compute_periods
from smartsla.measure.samples import STATUS_OF_CODE, Sample

PAGE = os.sysconf("SC_PAGE_SIZE")
REQUIRED_SECONDS = 5.0
AGREEMENT = "0x" + "ab" * 20

STEP_COMPUTE = "compute_periods (columns)"
STEP_ROOT = "evidence root, v2 (in memory)"
STEP_BUNDLE = "build_bundle_columns, v2 (files written, durable)"
STEP_VERIFY = "verify_bundle (information)"
STEP_SORT = "columns in arrival order -> canonical (information)"
STEP_STORE = "Store.columns, sealed month (SQLite)"
STEP_FROM_STORE = "period report from the store (Store.columns + compute_periods + evidence root)"
STEP_ROWS = "Store.columns_from_rows, no blocks (information)"


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


@dataclass
class Step:
    name: str
    samples: int
    runs: list[float] = field(default_factory=list)
    peak_added: int = 0          # bytes above the RSS at the step's start, largest over the runs
    scale: float = 1.0           # full-size samples / measured samples

    @property
    def seconds(self) -> float:
        return statistics.median(self.runs)

    @property
    def full_seconds(self) -> float:
        return self.seconds * self.scale


@contextmanager
def measured(step: Step):
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
        step.runs.append(seconds)
        step.peak_added = max(step.peak_added, max(peak, rss()) - base)


REASONS = ("HTTP 503", "control check failed") + tuple(f"200 in {ms} ms" for ms in range(200))


def make_evidence_columns(services: int, days: int, every: int, seed: int = 2) -> EvidenceColumns:
    """The benchmark's samples with the prober's latency and reason, ordered by (service, time) as the store
    hands them out."""
    cols = make_columns(services, days, every)
    order = np.lexsort((cols.status, cols.time, cols.service))
    rng = np.random.default_rng(seed)
    n = len(order)
    status = cols.status[order]
    latency = np.where(status == 0, np.round(rng.gamma(4.0, 3.0, n) * 1000), -1).astype(np.int64)  # ~12 ms
    reason = np.where(status == 1, 0, np.where(status == 2, 1, 2 + np.minimum(latency // 1000, 199)))
    ids = tuple(f"s{i}" for i in range(services))
    ev = EvidenceColumns(ids, cols.service[order], np.round(cols.time[order] * 1_000_000).astype(np.int64), status,
                         latency, reason.astype(np.int64), REASONS)
    return ev


def make_store(path: Path, columns: EvidenceColumns, services: int, batch: int = 200_000) -> int:
    """A store holding the first ``services`` services' samples (keys as the daemon names them), appended in
    batches of ``batch`` samples (Sample objects made per batch, not all at once)."""
    part = columns.take(columns.service < services)
    status = STATUS_OF_CODE
    with Store(path) as store:
        for i in range(0, len(part), batch):
            chunk = part.take(slice(i, i + batch))
            store.append([Sample(t / 1_000_000, f"{AGREEMENT}:s{s}", status[c], None if lat < 0 else lat / 1000,
                                 REASONS[r])
                          for s, t, c, lat, r in zip(chunk.service.tolist(), chunk.time_us.tolist(),
                                                     chunk.status.tolist(), chunk.latency_us.tolist(),
                                                     chunk.reason.tolist())])
    return len(part)


def same_columns(a: EvidenceColumns, b: EvidenceColumns) -> bool:
    return (all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("service", "time_us", "status", "latency_us",
                                                                          "reason")) and a.reasons == b.reasons)


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


def run(args, console: Console) -> tuple[list[Step], dict]:
    terms = make_terms(args.services, args.days)
    with console.status("generating the samples (not timed)"):
        columns = make_evidence_columns(args.services, args.days, args.every)
    full = len(columns)
    windows = [(START + 86_400 * d + 7_200, START + 86_400 * d + 9_000) for d in range(0, args.days, 7)]
    period_end = START + args.days * 86_400
    tmpdir = Path(args.tmpdir or tempfile.gettempdir()).resolve()
    info: dict = {"samples": full, "dir_fs": file_system(str(tmpdir)), "loads": []}
    steps = {name: Step(name, full) for name in (STEP_COMPUTE, STEP_ROOT, STEP_BUNDLE, STEP_VERIFY, STEP_SORT)}
    roots = set()
    for i in range(args.repeat):
        info["loads"].append(load_average())
        with console.status(f"run {i + 1}/{args.repeat}: compute_periods"), measured(steps[STEP_COMPUTE]):
            (result,) = compute_periods(terms, columns.sample_columns(), windows)
        values = {sid: c.ppm for sid, c in result.services.items()}
        with console.status(f"run {i + 1}/{args.repeat}: evidence root"), measured(steps[STEP_ROOT]):
            roots.add(evidence.evidence_root(AGREEMENT, 31337, 0, START, period_end, columns, values))
        with tempfile.TemporaryDirectory(prefix="period-report-", dir=tmpdir) as tmp:
            bundle = Path(tmp) / "period-0"
            with console.status(f"run {i + 1}/{args.repeat}: writing the bundle"), measured(steps[STEP_BUNDLE]):
                roots.add(evidence.build_bundle_columns(bundle, AGREEMENT, 31337, 0, START, period_end, columns,
                                                        values))
            info["files"] = sum(len(f) for _, _, f in os.walk(bundle))
            info["bundle_bytes"] = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
            with console.status(f"run {i + 1}/{args.repeat}: verifying the bundle"), measured(steps[STEP_VERIFY]):
                verified = evidence.verify_bundle(bundle)
            if not verified.ok:
                raise SystemExit(f"the bundle does not verify: {verified.findings[:3]}")
            roots.add(bytes.fromhex(verified.root[2:]))
        shuffled = columns.take(np.argsort(columns.time_us, kind="stable"))
        with console.status(f"run {i + 1}/{args.repeat}: ordering arrival-order columns"), measured(steps[STEP_SORT]):
            shuffled.canonical()
        del shuffled
    if len(roots) != 1:
        raise SystemExit(f"the root differs between steps or runs: {sorted(r.hex() for r in roots)}")
    info["root"] = to_hex(roots.pop())
    info["values_check"] = f"joint {result.joint.ppm} ppm, s0 {result.services['s0'].ppm} ppm"

    store_services = min(args.store_services, args.services)
    if store_services:
        with tempfile.TemporaryDirectory(prefix="period-report-store-", dir=tmpdir) as tmp:
            path = Path(tmp) / "oracle.db"
            info["store_fill_load"] = load_average()
            with console.status(f"filling a store with {store_services} services (not timed)"):
                t0 = time.perf_counter()
                n = make_store(path, columns, store_services)
                info["store_fill"] = (n, time.perf_counter() - t0)
            console.print(f"store filled: {n:,} samples in {info['store_fill'][1]:.0f} s")
            step = steps[STEP_STORE] = Step(STEP_STORE, n, scale=full / n)
            whole = steps[STEP_FROM_STORE] = Step(STEP_FROM_STORE, n, scale=full / n)
            keys = [f"{AGREEMENT}:s{i}" for i in range(store_services)]
            ids = tuple(f"s{i}" for i in range(store_services))
            expected = columns.take(columns.service < store_services).canonical()
            with Store(path) as store:
                info["seal_load"] = load_average()
                with console.status("sealing the month (timed once)"):
                    t0 = time.perf_counter()
                    blocks = store.seal_hours(period_end)
                    info["seal"] = (blocks, time.perf_counter() - t0)
                console.print(f"sealed: {blocks:,} blocks in {info['seal'][1]:.1f} s")
                info["store_bytes"] = sum(p.stat().st_size for p in Path(tmp).iterdir())
                for i in range(args.repeat):
                    info.setdefault("store_loads", []).append(load_average())
                    with console.status(f"run {i + 1}/{args.repeat}: Store.columns"), measured(step):
                        got = store.columns(keys, START, period_end)
                    if not same_columns(got.with_service_ids(ids), expected):
                        raise SystemExit("Store.columns gave other samples than were stored")
                    del got
                    with console.status(f"run {i + 1}/{args.repeat}: period report from the store"), \
                            measured(whole):
                        context = store.columns(keys, START, period_end).with_service_ids(ids)
                        (from_store,) = compute_periods(terms, context.sample_columns(), windows)
                        got_values = {sid: c.ppm for sid, c in from_store.services.items()}
                        root = evidence.evidence_root(AGREEMENT, 31337, 0, START, period_end, context, got_values)
                    del context
                    if store_services == args.services and to_hex(root) != info["root"]:
                        raise SystemExit(f"the root from the store differs: 0x{root.hex()} != {info['root']}")
                rows_services = min(args.rows_services, store_services)
                if rows_services:
                    rows = steps[STEP_ROWS] = Step(STEP_ROWS, 0)
                    with console.status("Store.columns_from_rows (once)"), measured(rows):
                        got = store.columns_from_rows(keys[:rows_services], START, period_end)
                    rows.samples = len(got)
                    rows.scale = full / len(got)
                    del got
    info["max_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    order = (STEP_STORE, STEP_COMPUTE, STEP_ROOT, STEP_FROM_STORE, STEP_BUNDLE, STEP_VERIFY, STEP_SORT, STEP_ROWS)
    return [steps[name] for name in order if name in steps], info


def totals(steps: list[Step]) -> list[tuple[str, float]]:
    by = {s.name: s.full_seconds for s in steps}
    out = [("period report, root included (compute_periods + evidence root)", by[STEP_COMPUTE] + by[STEP_ROOT]),
           ("period report with the bundle written (compute_periods + build_bundle_columns)",
            by[STEP_COMPUTE] + by[STEP_BUNDLE])]
    if STEP_FROM_STORE in by:
        out.append((("period report from the store, root included (Store.columns + compute_periods + evidence "
                     "root, timed end to end)"), by[STEP_FROM_STORE]))
        out.append(("the same as the sum of the steps' medians (Store.columns + compute_periods + evidence root)",
                    by[STEP_STORE] + by[STEP_COMPUTE] + by[STEP_ROOT]))
    return out


def verdict(seconds: float) -> str:
    return "PASS" if seconds <= REQUIRED_SECONDS else "FAIL"


def at_full(s: Step) -> str:
    return f"{s.full_seconds:.2f}" + (f" (x{s.scale:.0f}, linear)" if s.scale > 1.0001 else "")


def print_table(steps: list[Step], info: dict, args, console: Console) -> None:
    table = Table(title=f"period report: {args.services} services x {args.days} d x {args.every} s = "
                        f"{info['samples']:,} samples (median of {args.repeat})")
    for col in ("step", "samples measured", "runs (s)", "median (s)", f"at {info['samples']:,} (s)",
                "peak RSS added (MiB)"):
        table.add_column(col, justify="left" if col == "step" else "right")
    for s in steps:
        table.add_row(s.name, f"{s.samples:,}", " ".join(f"{r:.2f}" for r in s.runs), f"{s.seconds:.2f}", at_full(s),
                      mib(s.peak_added))
    console.print(table)
    for label, t in totals(steps):
        console.print(f"{label}: [bold]{t:.2f} s[/] -> requirement <= {REQUIRED_SECONDS:g} s: "
                      f"[{'green' if t <= REQUIRED_SECONDS else 'red'}]{verdict(t)}[/]")
    console.print(f"bundle: {info['files']:,} files, {info['bundle_bytes'] / 2**20:,.0f} MiB on {info['dir_fs']}; "
                  f"root {info['root']}; {info['values_check']}")
    console.print(f"load average before each run: {' | '.join(info['loads'])}")
    if "store_fill" in info:
        console.print(store_line(info))
    console.print(f"max RSS of the process: {mib(info['max_rss'])} MiB")


def store_line(info: dict) -> str:
    (n, fill), (blocks, seal) = info["store_fill"], info["seal"]
    return (f"the store: {n:,} samples written in {fill:.0f} s (load {info['store_fill_load']}; not timed: "
            f"{n / fill / 1e3:,.0f} thousand samples/s in batches of 200,000), sealed into {blocks:,} hour blocks "
            f"in {seal:.1f} s (load {info['seal_load']}; once for a whole month, one hour at a time in the daemon), "
            f"{info['store_bytes'] / 2**30:.2f} GiB on disk with the blocks; load before each store run: "
            f"{' / '.join(info['store_loads'])}")


def markdown(steps: list[Step], info: dict, args) -> str:
    lines = [
        "## Period report (store read + period maths + evidence)",
        "",
        "Generated by `python -m benchmarks.period_report`. Requirement: a period report for 100 services x 30 "
        "days x 30 s samples (8.64 million), evidence root included, in <= 5 s, with peak memory stated; the "
        "store read of the month in well under 3 s.",
        "",
        "| | |",
        "| --- | --- |",
        f"| machine | {machine('numpy ' + np.__version__)} |",
        f"| bundle written to | {info['dir_fs']} |",
        f"| load average before each run | {' / '.join(info['loads'])} (2 CPUs, shared with other work) |",
        f"| conditions | {args.services} services x {args.days} d x {args.every} s = {info['samples']:,} samples, "
        "1-minute slices, down_after 2, ~1% failing, latency and reason on every sample; columns in the store's "
        f"(service, time) order; evidence format v2 (docs/evidence.md); median of {args.repeat} runs |",
        "",
        f"| step | samples measured | runs (s) | median (s) | at {info['samples']:,} (s) | peak RSS added (MiB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in steps:
        lines.append(f"| {s.name} | {s.samples:,} | {' '.join(f'{r:.2f}' for r in s.runs)} | {s.seconds:.2f} | "
                     f"{at_full(s)} | {mib(s.peak_added)} |")
    lines.append("")
    for label, t in totals(steps):
        lines.append(f"- {label}: **{t:.2f} s**, requirement <= {REQUIRED_SECONDS:g} s: **{verdict(t)}**")
    lines.append(f"- the bundle: {info['files']:,} files ({args.services} services + manifest), "
                 f"{info['bundle_bytes'] / 2**20:,.0f} MiB; every step gave the same root")
    by = {s.name: s for s in steps}
    if STEP_STORE in by:
        store = by[STEP_STORE]
        lines.append(f"- `Store.columns` is the daemon's read of a period: {store.samples / store.seconds / 1e6:.1f} "
                     "million samples/s from the sealed hour blocks (docs/oracle.md), checked equal to the samples "
                     "written; the end-to-end row reads the store, computes and hashes in one go and gave the same "
                     "root as the in-memory columns")
        lines.append(f"- {store_line(info)}")
    if STEP_ROWS in by:
        rows = by[STEP_ROWS]
        lines.append(f"- `Store.columns_from_rows` is the read without blocks (the path before schema 2, a Python "
                     f"tuple per row): {rows.samples / rows.seconds / 1e6:.2f} million rows/s, "
                     f"{rows.full_seconds:.1f} s for the month by linear extrapolation from one run")
    lines += [f"- max RSS of the process: {mib(info['max_rss'])} MiB (includes the {info['samples']:,} input samples "
              "held in memory, about 33 bytes each, a time-ordered copy for the information row, and the "
              "store's columns)", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.period_report", description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--every", type=int, default=30, help="seconds between samples of one service")
    parser.add_argument("--repeat", type=int, default=3, help="runs per step; the median is reported")
    parser.add_argument("--store-services", type=int, default=100,
                        help="services written to the store for the Store.columns steps; fewer than --services "
                             "are extrapolated linearly (0: skip the store)")
    parser.add_argument("--rows-services", type=int, default=10,
                        help="services read once with Store.columns_from_rows, extrapolated (0: skip)")
    parser.add_argument("--evidence-services", type=int, default=0,
                        help="ignored: the evidence now runs at full size (kept for `python -m benchmarks`)")
    parser.add_argument("--tmpdir", help="where to write the bundle (default: the system's temporary directory)")
    parser.add_argument("--markdown", metavar="PATH", help="append the results as a markdown section to PATH")
    args = parser.parse_args(argv)
    console = make_console()
    console.print(f"[bold]Machine:[/] {machine('numpy ' + np.__version__)}")
    if args.evidence_services:
        console.print("note: --evidence-services is ignored; every step runs at full size")
    steps, info = run(args, console)
    print_table(steps, info, args, console)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write("\n" + markdown(steps, info, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
