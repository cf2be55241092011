"""``sla-oracle compute``: the period maths as a command, for people checking numbers and for tests.

Samples come as ``service,time,status[,latency_ms][,reason]`` (read by the importer that ``sla-oracle import``
uses), maintenance windows as ``start,end``; the maths is :func:`smartsla.periods.compute_periods`, the one
implementation the daemon and the auditor use too.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import sys
from collections.abc import Sequence

import numpy as np

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from oracle.importers.events import event_columns, read_events
from oracle.importers.files import ImportFormatError
from oracle.importers.files import read_samples_csv as read_samples_file
from smartsla import penalty, units
from smartsla.encoding import parse_time
from smartsla.measure.periods import PeriodResult, SampleColumns, columns_from_samples, compute_periods
from smartsla.terms.errors import TermsError
from smartsla.terms.model import Terms, format_value
from smartsla.terms.parse import load_terms


class InputError(ValueError):
    """A bad input file, located as ``file:line``."""




def _rows(path: str):
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            yield from csv.reader(fh)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a UTF-8 CSV file ({exc})") from None


def read_samples_csv(path: str, service_ids: Sequence[str]) -> SampleColumns:
    """``service,time,status[,latency_ms][,reason]`` rows (a header row is optional), read by the importer that
    ``sla-oracle import`` uses, so both accept exactly the same files."""
    try:
        samples = read_samples_file(path, set(service_ids))
    except (ImportFormatError, OSError) as exc:
        raise InputError(str(exc)) from None
    return columns_from_samples(samples, service_ids)


def read_maintenance_csv(path: str) -> list[tuple[float, float]]:
    """``start,end`` rows (half-open windows); a header row is optional."""
    out = []
    for line, row in enumerate(_rows(path), start=1):
        if not row or (len(row) == 1 and not row[0].strip()) or row[0].lstrip().startswith("#"):
            continue
        where = f"{path}:{line}"
        if line == 1 and [c.strip().lower() for c in row] == ["start", "end"]:
            continue
        if len(row) != 2:
            raise InputError(f"{where}: expected 2 columns (start,end), got {len(row)}")
        try:
            a, b = parse_time(row[0]), parse_time(row[1])
        except ValueError as exc:
            raise InputError(f"{where}: {exc}") from None
        if b < a:
            raise InputError(f"{where}: the window ends before it starts; write start,end")
        out.append((a, b))
    return out


def _credit(terms: Terms, r: PeriodResult) -> tuple[int, str | None]:
    """The credit (bps) the period's values would give, and the combined value shown (None when the services'
    objectives differ, so that no combined number means anything)."""
    rules = terms.credit_rules()
    values = [r.values[sid] for sid in terms.service_ids]
    objective = terms.combined_objective()
    combined = None if objective is None else format_value(objective, penalty.combined_value(rules, values))
    return penalty.period_credit_bps(rules, values), combined


def results_json(terms: Terms, results: Sequence[PeriodResult]) -> dict:
    periods = []
    for r in results:
        credit, combined = _credit(terms, r)
        periods.append({
            "index": r.index,
            "values": {sv.id: sv.format_value(r.values[sv.id]) for sv in terms.services},
            "onchain": {sid: r.values[sid] for sid in terms.service_ids},
            "coverage": {sid: r.coverage[sid] for sid in terms.service_ids},
            # the availability of each service's own (or borrowed) slices, whatever its objective
            "ppm": {sid: c.ppm for sid, c in r.services.items()},
            "joint_ppm": r.joint.ppm,
            "slices": {sid: {"up": c.up, "down": c.down, "excluded": c.excluded} for sid, c in r.services.items()},
            "combined": combined,
            "credit_bps": credit,
            "credit": units.format_bps(credit),
        })
    return {"periods": periods}


def _print_tables(terms: Terms, results: Sequence[PeriodResult], out) -> None:
    console = Console(file=out, highlight=False)
    m = terms.measurement
    console.print(
        f"{escape(terms.agreement)}: slice {units.format_seconds(m.slice)}, down_after {m.down_after}, gaps {m.gaps}"
    )
    for sv in terms.services:
        console.print(f"  {escape(sv.id)}: {sv.objective_words}, target {sv.format_value(sv.target)}")
    joint_shown = any(sv.objective == "availability" and not sv.samples_from for sv in terms.services)
    if joint_shown:
        console.print("  joint: the availability services together (shown, not signed)")
    for r in results:
        start = _dt.datetime.fromtimestamp(r.start, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        end = _dt.datetime.fromtimestamp(r.end, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        table = Table(title=f"period {r.index}  {start} .. {end}")
        table.add_column("service")
        table.add_column("value", justify="right", no_wrap=True)
        for col in ("on-chain", "coverage", "up", "down", "excl."):
            table.add_column(col, justify="right", no_wrap=True)
        for sv in terms.services:
            c = r.services[sv.id]
            value = sv.format_value(r.values[sv.id]) + ("" if c.measured else " (no data)")
            table.add_row(escape(sv.id), value, str(r.values[sv.id]),
                          units.format_ppm(r.coverage[sv.id]), str(c.up), str(c.down), str(c.excluded))
        joint = r.joint
        if joint_shown:
            table.add_row("joint", units.format_ppm(joint.ppm) + ("" if joint.measured else " (no data)"),
                          "", "", str(joint.up), str(joint.down), str(joint.excluded))
        console.print(table)
        credit, combined = _credit(terms, r)
        shown = f"combined {terms.compensation.combined} {combined}; " if combined is not None else ""
        console.print(f"{shown}credit {units.format_bps(credit)} of the fee")


def _run_compute(args: argparse.Namespace) -> int:
    try:
        terms = load_terms(args.terms)
        start = None
        if args.start is not None:
            try:
                start = parse_time(args.start)
            except ValueError as exc:
                raise InputError(f"--start: {exc}") from None
            if start != int(start):
                raise InputError("--start: must be a whole second")
        elif terms.periods.start is None:
            raise InputError(f"{args.terms}: periods.start is not set; give the first period's start with "
                             "--start (unix seconds or ISO-8601 such as 2027-01-01T00:00:00Z)")
        if args.samples is None and args.events is None:
            raise InputError("give --samples FILE.csv (probes' samples) and/or --events FILE.csv (event counts)")
        cols = read_samples_csv(args.samples, terms.service_ids) if args.samples else SampleColumns(
            np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int8))
        events = None
        if args.events:
            try:
                events = event_columns(read_events(args.events, terms), terms)
            except (ImportFormatError, OSError) as exc:
                raise InputError(str(exc)) from None
        missing = [s.id for s in terms.services if s.from_events] if events is None else []
        if missing:
            raise InputError(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} measured from event "
                             "counts: give them with --events FILE.csv")
        windows = read_maintenance_csv(args.maintenance) if args.maintenance else []
        try:
            results = compute_periods(terms, cols, windows, start=start, events=events)
        except ValueError as exc:
            raise InputError(f"{args.samples or args.events}: {exc}") from None
    except (TermsError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(results_json(terms, results), sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
    else:
        _print_tables(terms, results, sys.stdout)
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "compute",
        help="compute each period's values (what the oracle would sign) and their credit from samples",
        description="Compute each period's value per service in its objective (availability, latency "
                    "percentile, Apdex, success rate), the exact uint32 the oracle would sign for it, its coverage, "
                    "the joint availability and the credit those values give (rules: docs/oracle.md, 'Period "
                    "maths').",
    )
    parser.add_argument("terms", metavar="TERMS.yaml", help="the terms file")
    parser.add_argument("--samples", metavar="FILE.csv",
                        help="rows service,time,status[,latency_ms]; time unix seconds or ISO-8601; status up|down|unknown")
    parser.add_argument("--events", metavar="FILE.csv",
                        help="event counts (success-rate, apdex with source: events): a header service,time,good,"
                             "total or service,time,satisfied,tolerating,total [,seconds]; .jsonl for JSON lines")
    parser.add_argument("--maintenance", metavar="FILE.csv", help="announced maintenance windows: rows start,end (half-open)")
    parser.add_argument("--start", metavar="TIME", help="first period's start when the terms have no periods.start")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.set_defaults(handler=_run_compute)
    return parser
