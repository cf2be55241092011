"""``sla-oracle import --db oracle.db FILE...`` and ``--prometheus URL``: samples from files or Prometheus into the
store (:mod:`oracle.importers`), idempotent; complete hours are sealed at once. ``--events --terms T`` imports
event counts instead (success rates, Apdex from counts)."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

from oracle.importers.events import read_events
from oracle.importers.files import ImportFormatError, read_any
from oracle.importers.prometheus import PrometheusError, query_range_samples
from oracle.store.events import EventRow
from oracle.store.samples import sample_key, sealable_hour
from oracle.store.schema import StoreError
from oracle.store.store import Store
from smartsla.constants import ADDRESS_RE
from smartsla.encoding import parse_time
from smartsla.measure.samples import Sample
from smartsla.terms.errors import TermsError
from smartsla.terms.parse import load_terms


def register(subparsers) -> None:
    """``sla-oracle import --db oracle.db FILE...`` or ``... --prometheus URL --query Q --service S --from --to``."""
    p = subparsers.add_parser("import", help="store samples or incidents from files or Prometheus (idempotent)",
                              description="Append samples from CSV / JSON-lines exports, an incident list or "
                                          "a Prometheus 0/1 series to the store. Re-importing adds nothing.")
    p.add_argument("files", nargs="*", metavar="FILE")
    p.add_argument("--db", required=True, help="the oracle's store (created if missing)")
    p.add_argument("--agreement", metavar="0xADDRESS",
                   help="the agreement the samples are for (required): each row's service is that agreement's "
                        "service id from its terms, and the daemon measures the service from these samples")
    p.add_argument("--kind", choices=["samples-csv", "samples-jsonl", "incidents"],
                   help="default: samples-jsonl for .jsonl/.ndjson, samples-csv otherwise")
    p.add_argument("--slice", type=int, default=60, metavar="SECONDS",
                   help="incidents: the terms' measurement.slice (default 60)")
    p.add_argument("--from", dest="start", type=parse_time, metavar="TIME",
                   help="incidents: with --to, the file is complete for this range (other slices are up); "
                        "--prometheus: the range to read")
    p.add_argument("--to", dest="end", type=parse_time, metavar="TIME")
    p.add_argument("--prometheus", metavar="URL", help="read a series from this Prometheus server "
                                                      "(e.g. http://127.0.0.1:9090) with query_range")
    p.add_argument("--query", metavar="PROMQL", help="--prometheus: an expression giving one 0/1 series, "
                                                     "e.g. 'probe_success{job=\"api\"}'")
    p.add_argument("--service", metavar="ID", help="--prometheus: the service id the samples belong to")
    p.add_argument("--step", default="30s", metavar="DURATION",
                   help="--prometheus: evaluation step, e.g. 15s (default 30s)")
    p.add_argument("--events", action="store_true",
                   help="the FILEs are event counts (success-rate, apdex with source: events), not samples: a header "
                        "service,time,good,total or service,time,satisfied,tolerating,total, optionally seconds "
                        "(the interval's length); CSV, or JSON lines for .jsonl; needs --terms")
    p.add_argument("--terms", metavar="TERMS.yaml",
                   help="--events: the agreement's terms, which say which services count events and their slices")
    p.set_defaults(handler=_import_command)


def _import_command(args) -> int:
    try:
        _check_agreement(args.agreement)
        if args.prometheus is not None:
            _import_prometheus(args)
            return 0
        if not args.files:
            raise ValueError("give FILE arguments or --prometheus URL")
        if args.events:
            _import_events(args)
            return 0
        if args.terms is not None:
            raise ValueError("--terms is only used with --events (samples need no terms to be stored)")
        options = {"slice_seconds": args.slice, "start": args.start, "end": args.end} if args.kind == "incidents" else {}
        batches = [(f, read_any(f, args.kind, **options)) for f in args.files]
        with Store(args.db) as store:
            for f, samples in batches:
                added = store.append(_for_agreement(args.agreement, samples))
                print(f"{f}: {len(samples)} samples, {added} new")
                _say_if_ahead(f, samples)
            _seal(store)
    except (ImportFormatError, ValueError, StoreError, PrometheusError, TermsError) as exc:
        print(f"sla-oracle import: {exc}", file=sys.stderr)
        return 2
    return 0


def _import_events(args) -> None:
    if args.terms is None:
        raise ValueError("--events needs --terms TERMS.yaml: the terms say which services are measured from counts "
                         "and the slices an interval must lie inside")
    terms = load_terms(args.terms)
    batches = [(f, read_events(f, terms)) for f in args.files]
    with Store(args.db) as store:
        for f, lines in batches:
            added = store.append_events([EventRow(sample_key(args.agreement, r.service), r.time_us, r.seconds, r.good,
                                                  r.tolerating, r.total, f"import {Path(f).name}:{r.line}")
                                         for r in lines])
            print(f"{f}: {len(lines)} intervals, {added} new")


def _check_agreement(agreement: str | None) -> None:
    if agreement is None:
        raise ValueError("give --agreement 0xADDRESS: the daemon reads each agreement's samples apart, so an "
                         "import names the agreement its rows' services belong to")
    if not ADDRESS_RE.match(agreement):
        raise ValueError(f"--agreement {agreement!r} is not a 0x address (40 hex digits)")


def _for_agreement(agreement: str, samples: list[Sample]) -> list[Sample]:
    """The rows' service ids become the store's key of that agreement's service."""
    return [replace(s, service=sample_key(agreement, s.service)) for s in samples]


def _say_if_ahead(source: str, samples: list[Sample]) -> None:
    """Rows ahead of this machine's clock are kept (the clock may be the one that is wrong) but said, once."""
    now = time.time()
    ahead = [s.time for s in samples if s.time > now + 300]
    if ahead:
        print(f"sla-oracle import: warning: {source}: {len(ahead)} sample(s) are ahead of this machine's clock "
              f"(the latest {max(ahead) - now:.0f} s ahead); check the file's times and this clock", file=sys.stderr)


def _seal(store) -> None:
    """Imported history is mostly complete hours: pack them now, so the daemon reads them fast from the start."""
    store.seal_hours(sealable_hour(time.time()) * 3600)


def _import_prometheus(args) -> None:
    if args.files:
        raise ValueError("--prometheus imports no files; run a separate import for them")
    missing = [opt for opt, value in (("--query", args.query), ("--service", args.service),
                                      ("--from", args.start), ("--to", args.end)) if value is None]
    if missing:
        raise ValueError(f"--prometheus needs {', '.join(missing)}")
    samples = query_range_samples(args.prometheus, args.query, args.service, args.start, args.end, args.step)
    with Store(args.db) as store:
        added = store.append(_for_agreement(args.agreement, samples))
        _seal(store)
    print(f"{args.prometheus} {args.query}: {len(samples)} samples, {added} new")
    if not samples:
        print("sla-oracle import: warning: the query gave no data in that range; check its labels", file=sys.stderr)
