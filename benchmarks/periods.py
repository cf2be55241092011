"""Speed and memory of the period maths (smartsla/measure/periods.py) at the size the oracle must handle.

    python -m benchmarks.periods [--services 100] [--days 30] [--every 30] [--objects 1000000]

The workload: ``--services`` services probed every ``--every`` seconds for one
period of ``--days`` days (default 100 x 30 d x 30 s = 8.64 million samples),
1-minute slices, down_after 2, ~1% of samples failing in short bursts, and a
few maintenance windows. Timings are wall-clock of the best of ``--repeat``
runs; peak memory is what tracemalloc saw allocated during one run (numpy
reports its buffers to tracemalloc) and the process's maximum RSS.

``--objects`` also times converting that many :class:`smartsla.measure.samples.Sample`
objects to columns, the extra cost when samples arrive as objects rather than
columns (reported per million; creating the objects is not timed).
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import sys
import time
import tracemalloc

import numpy as np
from rich.console import Console
from rich.table import Table

from smartsla.measure.periods import DOWN, UP, SampleColumns, columns_from_samples, compute_periods
from smartsla.measure.samples import Sample, Status
from smartsla.terms.parse import load_terms

START = 1_798_761_600


def make_terms(services: int, days: int):
    # Terms allow at most 64 services; the benchmark goes beyond that on
    # purpose, so the services are copied in after validation.
    terms = load_terms(f"""\
agreement: bench
provider: provider
customer: customer
payment: {{token: ETH, fee: "1"}}
periods: {{start: {START}, length: {days}d, count: 1}}
services: [{{id: s0, target: '99.9%'}}]
compensation: {{schedule: [{{below: "99.9%", credit: "10%"}}]}}
oracles: {{members: [o1], quorum: 1, deadline: 1d, fallback: no-credit}}
measurement: {{slice: 1m, down_after: 2, gaps: exclude}}
""")
    base = terms.services[0]
    return dataclasses.replace(
        terms, services=tuple(dataclasses.replace(base, id=f"s{i}") for i in range(services)))


def make_columns(services: int, days: int, every: int, seed: int = 1) -> SampleColumns:
    rng = np.random.default_rng(seed)
    per = days * 86_400 // every
    svc = np.repeat(np.arange(services, dtype=np.int64), per)
    # probes drift by up to a second, so samples are not on a perfect grid
    t = START + np.tile(np.arange(per, dtype=np.float64) * every, services) + rng.random(services * per)
    status = np.full(services * per, UP, dtype=np.int8)
    bursts = rng.integers(0, services * per - 5, size=services * per // 300)
    for k in range(4):
        status[bursts + k] = DOWN
    status[rng.integers(0, services * per, size=services * per // 1000)] = 2  # unknown
    # arrival order of a store: interleaved in time, not grouped by service
    order = np.argsort(t, kind="stable")
    return SampleColumns(svc[order], t[order], status[order])


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.periods", description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--every", type=int, default=30, help="seconds between samples of one service")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--objects", type=int, default=1_000_000, help="Sample objects to convert (0: skip)")
    args = parser.parse_args(argv)

    terms = make_terms(args.services, args.days)
    cols = make_columns(args.services, args.days, args.every)
    windows = [(START + 86_400 * d + 7_200, START + 86_400 * d + 9_000) for d in range(0, args.days, 7)]
    n = len(cols.time)

    seconds = timed(lambda: compute_periods(terms, cols, windows), args.repeat)
    tracemalloc.start()
    (result,) = compute_periods(terms, cols, windows)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    table = Table(title=f"period maths: {args.services} services x {args.days} d x {args.every} s "
                        f"= {n:,} samples, numpy {np.__version__}, Python {sys.version.split()[0]}")
    for col in ("step", "samples", "time (s)", "samples/s", "peak traced (MiB)"):
        table.add_column(col, justify="left" if col == "step" else "right")
    table.add_row("compute_periods (columns, arrival order)", f"{n:,}", f"{seconds:.2f}", f"{n / seconds:,.0f}",
                  f"{peak / 2**20:,.0f}")
    # ordered by (service, time, status), as Store.columns hands them out: checked, not sorted again
    order = np.lexsort((cols.status, cols.time, cols.service))
    ordered = SampleColumns(cols.service[order], cols.time[order], cols.status[order])
    del order
    seconds = timed(lambda: compute_periods(terms, ordered, windows), args.repeat)
    tracemalloc.start()
    compute_periods(terms, ordered, windows)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    table.add_row("compute_periods (columns, by service and time)", f"{n:,}", f"{seconds:.2f}", f"{n / seconds:,.0f}",
                  f"{peak / 2**20:,.0f}")

    if args.objects:
        objs_n = min(args.objects, n)
        status_of = {UP: Status.UP, DOWN: Status.DOWN, 2: Status.UNKNOWN}
        ids = terms.service_ids
        objs = [Sample(float(t), ids[s], status_of[int(c)])
                for s, t, c in zip(cols.service[:objs_n].tolist(), cols.time[:objs_n].tolist(), cols.status[:objs_n].tolist())]
        conv = timed(lambda: columns_from_samples(objs, ids), 1)
        table.add_row("columns_from_samples (objects)", f"{objs_n:,}", f"{conv:.2f}", f"{objs_n / conv:,.0f}", "")
        del objs

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    console = Console()
    console.print(table)
    console.print(f"max RSS of the process (includes the generated input): {rss:,.0f} MiB")
    joint = result.joint
    console.print(f"check: joint {joint.ppm} ppm, s0 {result.services['s0'].ppm} ppm, "
                  f"maintenance slices {joint.maintenance}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
