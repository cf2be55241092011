"""The period report of the objectives beyond availability, at full size.

    python -m benchmarks.objectives [--services 100] [--days 30] [--every 30] [--count-every 300] [--repeat 3]
                                    [--markdown PATH]

Two workloads, each one period of ``--days`` days:

* **samples with latencies**: ``--services`` services probed every ``--every`` s (100 x 30 d x 30 s = 8.64 million
  samples), each with a latency (log-normal around 20 ms with a slow tail, ~1% failing in bursts, some unknown);
  a third of the services are held to availability, a third to a p99 latency, a third to an Apdex score (T =
  100 ms); then every service held to both availability and a p99 from one probe (``samples_from``), which doubles
  the rows the maths looks at. Timed: ``compute_periods`` (with the percentile sort and the Apdex counts), the v2
  evidence root over the samples, and the two together.
* **event counts**: ``--services`` success-rate services (ratio-timeslices, 5-minute slices) with one count row per
  ``--count-every`` s (100 x 30 d x 5 min = 864,000 rows), some slices without requests; timed the same way, the
  root over the 32-byte count records.

Wall clock, median of ``--repeat`` runs; peak memory is the resident set sampled every 5 ms during a run, above
the resident set before it (the largest over the runs), and the process's maximum RSS. The requirement: each
report, root included, <= 5 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import sys

import numpy as np
from rich.table import Table

from benchmarks.common import load_average, machine, make_console
from benchmarks.period_report import Step, measured
from benchmarks.periods import START
from smartsla.evidence.bundle import evidence_root
from smartsla.evidence.columns import EvidenceColumns
from smartsla.measure.events import EventColumns
from smartsla.measure.periods import compute_periods
from smartsla.terms.parse import load_terms

REQUIRED_SECONDS = 5.0
AGREEMENT = "0x" + "ab" * 20


def _terms(services: str, days: int):
    return load_terms(f"""\
agreement: bench
provider: provider
customer: customer
payment: {{token: ETH, fee: "1"}}
periods: {{start: {START}, length: {days}d, count: 1}}
services: {services}
compensation: {{}}
oracles: {{members: [o1], quorum: 1, deadline: 1d, fallback: no-credit}}
measurement: {{slice: 1m, down_after: 2}}
""")


def sample_terms(n: int, days: int, *, both: bool = False):
    """``n`` services: availability, p99 and Apdex in turn; with ``both`` each probed service is also held to a
    p99 by a second service measured from its samples. Copied in after validation (the terms allow 32)."""
    avail = '{id: a, target: "99.9%", schedule: [{below: "99.9%", credit: "10%"}]}'
    p99 = '{id: p, objective: latency, percentile: 99, target: "300ms", schedule: [{above: "300ms", credit: "10%"}]}'
    apdex = ('{id: x, objective: apdex, threshold: 100ms, target: "0.9", schedule: [{below: "0.9", credit: "10%"}]}')
    borrow = ('{id: b, objective: latency, percentile: 99, target: "300ms", samples_from: a, '
              'schedule: [{above: "300ms", credit: "10%"}]}')
    t = _terms(f"[{avail}, {p99}, {apdex}, {borrow}]", days)
    a, p, x, b = t.services
    if both:
        services = [dataclasses.replace(a, id=f"s{i}") for i in range(n)]
        services += [dataclasses.replace(b, id=f"s{i}-p99", samples_from=f"s{i}") for i in range(n)]
    else:
        services = [dataclasses.replace((a, p, x)[i % 3], id=f"s{i}") for i in range(n)]
    return dataclasses.replace(t, services=tuple(services))


def count_terms(n: int, days: int):
    rate = ('{id: r, objective: success-rate, method: ratio-timeslices, slice: 5m, target: "99.9%", '
            'schedule: [{below: "99.9%", credit: "10%"}]}')
    t = _terms(f"[{rate}]", days)
    return dataclasses.replace(t, services=tuple(dataclasses.replace(t.services[0], id=f"s{i}") for i in range(n)))


def sample_columns(n: int, days: int, every: int, seed: int = 1) -> EvidenceColumns:
    """By service, then time, as the store hands them out; latencies in µs, -1 for a failed probe."""
    rng = np.random.default_rng(seed)
    per = days * 86_400 // every
    total = n * per
    svc = np.repeat(np.arange(n, dtype=np.int64), per)
    t_us = (START + np.tile(np.arange(per, dtype=np.int64) * every, n)) * 1_000_000 + rng.integers(0, 1_000_000, total)
    status = np.zeros(total, np.int8)
    bursts = rng.integers(0, total - 5, size=total // 300)
    for k in range(4):
        status[bursts + k] = 1
    status[rng.integers(0, total, size=total // 1000)] = 2
    latency = np.minimum(rng.lognormal(np.log(20_000), 0.8, total), 4_000_000).astype(np.int64)
    latency[status != 0] = -1
    reasons = ("200", "HTTP 503", "control check failed")
    reason = np.where(status == 0, 0, np.where(status == 1, 1, 2)).astype(np.int64)
    return EvidenceColumns(tuple(f"s{i}" for i in range(n)), svc, t_us, status, latency, reason, reasons)


def count_columns(n: int, days: int, every: int, seed: int = 2) -> EventColumns:
    rng = np.random.default_rng(seed)
    per = days * 86_400 // every
    total_rows = n * per
    svc = np.repeat(np.arange(n, dtype=np.int64), per)
    t_us = (START + np.tile(np.arange(per, dtype=np.int64) * every, n)) * 1_000_000
    total = rng.integers(0, 20_000, total_rows)
    total[rng.random(total_rows) < 0.02] = 0
    bad = rng.binomial(total, 0.001)
    return EventColumns(tuple(f"s{i}" for i in range(n)), svc, t_us, total - bad, np.zeros(total_rows, np.int64),
                        total)


def run(name: str, repeat: int, fn) -> tuple[Step, object]:
    step = Step(name, 0)
    out = None
    for _ in range(repeat):
        with measured(step):
            out = fn()
    return step, out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.objectives", description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--every", type=int, default=30, help="seconds between one service's samples")
    parser.add_argument("--count-every", type=int, default=300, help="seconds each count row covers")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", metavar="PATH", help="append the results as a markdown section to PATH")
    args = parser.parse_args(argv)
    console = make_console()
    end = START + args.days * 86_400
    rows = []

    with console.status("generating samples with latencies"):
        cols = sample_columns(args.services, args.days, args.every)
    n = len(cols)
    for both in (False, True):
        terms = sample_terms(args.services, args.days, both=both)
        label = ("availability + p99 of every probed service (samples_from)" if both
                 else "availability / p99 / Apdex, a third each")
        # the probed services come first in the terms, so the samples' indexes are theirs
        own_ids = terms.service_ids[: args.services]
        columns = dataclasses.replace(cols, service_ids=own_ids)
        sample_cols = columns.sample_columns()
        with console.status(f"compute_periods: {label}"):
            compute, (result,) = run("compute", args.repeat, lambda: compute_periods(terms, sample_cols))
        with console.status("evidence root"):
            root, _ = run("root", args.repeat, lambda: evidence_root(
                AGREEMENT, 1, 0, START, end, columns, dict(result.values), coverage=dict(result.coverage)))
        rows.append((f"samples with latencies: {label}", f"{n:,}", compute, root))
        console.print(f"check ({label}): s0 {result.values['s0']}, s1 {result.values['s1']}, s2 {result.values['s2']}")

    with console.status("generating counts"):
        events = count_columns(args.services, args.days, args.count_every)
    terms = count_terms(args.services, args.days)
    with console.status("compute_periods: success rates"):
        compute, (result,) = run("compute", args.repeat, lambda: compute_periods(terms, [], events=events))
    empty = EvidenceColumns(terms.service_ids, *(np.zeros(0, np.int64) for _ in range(2)), np.zeros(0, np.int8),
                            np.zeros(0, np.int64), np.zeros(0, np.int64), ())
    with console.status("evidence root over counts"):
        root, _ = run("root", args.repeat, lambda: evidence_root(AGREEMENT, 1, 0, START, end, empty,
                                                                 dict(result.values), coverage=dict(result.coverage),
                                                                 events=events))
    rows.append(("event counts: success rate, ratio-timeslices of 5-minute slices", f"{len(events):,}", compute, root))
    console.print(f"check (counts): s0 {result.values['s0']} ppm")

    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    table = Table(title=f"objectives' period report, {args.services} services x {args.days} d")
    for col in ("workload", "rows", "compute_periods s", "evidence root s", "report s (sum)", "<= 5 s",
                "peak added MiB"):
        table.add_column(col, justify="left" if col == "workload" else "right")
    lines = []
    for label, count, compute, root in rows:
        total = compute.seconds + root.seconds
        peak = max(compute.peak_added, root.peak_added) / 2**20
        ok = "yes" if total <= REQUIRED_SECONDS else "NO"
        table.add_row(label, count, f"{compute.seconds:.2f}", f"{root.seconds:.2f}", f"{total:.2f}", ok,
                      f"{peak:,.0f}")
        lines.append(f"| {label} | {count} | {compute.seconds:.2f} | {root.seconds:.2f} | {total:.2f} | {ok} | "
                     f"{peak:,.0f} |")
    console.print(table)
    console.print(f"max RSS {max_rss / 2**20:,.0f} MiB; {machine()}; load {load_average()}")
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write("\n## Objectives' period report (latency percentile, Apdex, success rate)\n\n"
                    f"`python -m benchmarks.objectives`: {args.services} services x {args.days} days; samples every "
                    f"{args.every} s with latencies, counts every {args.count_every} s. Median of {args.repeat} runs; "
                    "peak memory is the resident set added during a step. Machine: "
                    f"{machine()}; load before: {load_average()}; process max RSS {max_rss / 2**20:,.0f} MiB.\n\n"
                    "| workload | rows | compute_periods s | evidence root s | report s (sum) | <= 5 s | peak added "
                    "MiB |\n|---|---:|---:|---:|---:|---|---:|\n" + "\n".join(lines) + "\n")
    return 0 if all(c.seconds + r.seconds <= REQUIRED_SECONDS for _l, _n, c, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
