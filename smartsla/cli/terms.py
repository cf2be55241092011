"""``smartsla terms check|show``, and the terms summary other commands print.

Reuse: ``summary(terms)`` returns the summary as plain data (JSON-ready) and
``render_summary(terms, ui)`` prints it for people: parties, fee per period,
periods, each service's target, the penalty schedules as tables of "<objective>
below X: customer gets Y of the fee", the cap, oracles and quorum, maintenance
and measurement. ``smartsla create`` prints the same summary before deploying::

    from .terms import render_summary
    render_summary(terms, ui)
"""

from __future__ import annotations

import argparse
import datetime as _dt
from typing import Any

import yaml
from rich.markup import escape
from rich.table import Table

from smartsla import units
from smartsla.cli.common import UI, UserError, add_json_option, family
from smartsla.encoding import to_hex
from smartsla.terms.model import LATENCY, Terms, format_value
from smartsla.terms.openslo import OpenSLOError, from_openslo
from smartsla.terms.parse import load_terms

SHOW_EPILOG = """\
examples:
  smartsla terms show examples/levels/acme-api.yaml
  smartsla terms show examples/levels/acme-api.yaml --json

A terms file may say "extends: PARENT.yaml" (corporate -> customer -> service level); show prints the
resolved terms as one standalone YAML file, the files it was resolved from, a summary and the document
hash that goes on chain. Merge rules: docs/terms.md, "Multi-level terms: extends".
"""


def register(sub) -> None:
    actions = family(sub, "terms", "check a terms file, or show it resolved")
    check = actions.add_parser("check", help="validate a terms file and print its document hash",
                               description="Validate a terms file (with the files it extends) and print the "
                                           "document hash that an agreement created from it binds.")
    check.add_argument("file", metavar="TERMS.yaml")
    add_json_option(check)
    check.set_defaults(handler=run_check)
    show = actions.add_parser(
        "show", help="print the resolved terms (extends applied), a summary and the document hash",
        description="Resolve a terms file's extends chain, validate it, and print the resolved terms "
                    "(canonical YAML), a summary of what they mean and the document hash.",
        epilog=SHOW_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("file", metavar="TERMS.yaml")
    add_json_option(show)
    show.set_defaults(handler=run_show)
    openslo = actions.add_parser(
        "from-openslo", help="turn OpenSLO v1 SLO documents into the services of a terms file",
        description="Read OpenSLO v1 kind: SLO documents (ratioMetric good/total or bad/total, thresholdMetric; "
                    "budgetingMethod Occurrences, Timeslices, RatioTimeslices) and write a terms file with their "
                    "services, targets, slices and periods. Parties, payment, the penalty schedule and the oracles "
                    "are not in an SLO: they are written as placeholders for a development chain, and named for "
                    "you to fill in. What cannot be mapped is refused, naming the OpenSLO field.",
        epilog=OPENSLO_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    openslo.add_argument("file", metavar="SLO.yaml")
    openslo.add_argument("--out", metavar="TERMS.yaml", help="write the terms here (default: print them); an "
                                                              "existing file is not overwritten")
    openslo.add_argument("--threshold-unit", choices=["us", "ms", "s"], default="ms",
                         help="the unit of a thresholdMetric's value (OpenSLO does not say it); default ms")
    add_json_option(openslo)
    openslo.set_defaults(handler=run_from_openslo)


OPENSLO_EPILOG = """\
examples:
  smartsla terms from-openslo slo.yaml
  smartsla terms from-openslo slo.yaml --out terms.yaml && smartsla terms check terms.yaml

Mapping (docs/terms.md, "From OpenSLO"): ratioMetric -> success-rate (Occurrences -> occurrences,
RatioTimeslices -> ratio-timeslices, Timeslices -> timeslices; timeSliceWindow -> slice, timeSliceTarget ->
slice_target; a Prometheus metricSource -> events.prometheus); thresholdMetric op lt with value V and target T ->
latency, percentile 100*T, target V; the first timeWindow -> the period length (calendar startTime -> start).
"""


def run_from_openslo(args: argparse.Namespace, ui: UI) -> int:
    try:
        text = open(args.file, encoding="utf-8").read()
    except OSError as exc:
        raise UserError(f"{args.file}: cannot read: {exc.strerror or exc}") from None
    try:
        conversion = from_openslo(text, args.file, threshold_unit=args.threshold_unit)
    except OpenSLOError as exc:
        raise UserError(str(exc)) from None
    body = yaml.safe_dump(conversion.document, sort_keys=False, allow_unicode=True)
    load_terms(body, source_name=args.file)   # what is written always validates
    header = [f"# From the OpenSLO file {args.file} (smartsla terms from-openslo).",
              "# Placeholders for a development chain, to fill in: " + ", ".join(conversion.fill_in) + "."]
    header += [f"# note: {n}" for n in conversion.notes]
    output = "\n".join(header) + "\n" + body
    if args.json:
        ui.emit_json({"terms": conversion.document, "fill_in": list(conversion.fill_in), "notes": conversion.notes,
                      "written": args.out})
    if args.out:
        try:
            with open(args.out, "x", encoding="utf-8") as fh:
                fh.write(output)
        except FileExistsError:
            raise UserError(f"--out {args.out} exists; choose another name or remove it") from None
        if not args.json:
            ui.out.print(f"wrote {escape(args.out)}: {len(conversion.document['services'])} service(s); fill in "
                         f"{', '.join(conversion.fill_in)}")
    elif not args.json:
        print(output, end="")
    for note in conversion.notes:
        if not args.json:
            ui.note(f"note: {escape(note)}")
    return 0


def _hash(terms: Terms) -> str:
    return to_hex(terms.document_hash())


def _uses_extends(terms: Terms) -> bool:
    return len(terms.sources) > 1


def run_check(args: argparse.Namespace, ui: UI) -> int:
    terms = load_terms(args.file)
    digest = _hash(terms)
    if args.json:
        ui.emit_json({"file": args.file, "valid": True, "document_hash": digest, "sources": list(terms.sources)})
        return 0
    ui.out.print(f"{escape(args.file)}: valid; document hash {digest}", soft_wrap=True)
    if _uses_extends(terms):
        ui.out.print(f"resolved from: {escape(' -> '.join(terms.sources))}", soft_wrap=True)
    return 0


def run_show(args: argparse.Namespace, ui: UI) -> int:
    terms = load_terms(args.file)
    digest = _hash(terms)
    if args.json:
        ui.emit_json({"file": args.file, "sources": list(terms.sources), "document_hash": digest,
                      "terms": terms.document, "summary": summary(terms)})
        return 0
    header = ["# the resolved terms of " + args.file]
    if _uses_extends(terms):
        header.append("# resolved from (base first; later files override earlier ones):")
        header += [f"#   {source}" for source in terms.sources]
    else:
        header.append("# (no extends: the file itself)")
    header.append(f"# document hash {digest}")
    ui.out.print("\n".join(header), markup=False, highlight=False, soft_wrap=True)
    ui.out.print(terms.canonical_yaml().rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
    ui.out.print()
    render_summary(terms, ui)
    ui.out.print()
    ui.out.print(f"document hash {digest}", soft_wrap=True)
    return 0


# --------------------------------------------------------------------- summary

def _when(objective: str, threshold: int) -> str:
    relation = "above" if objective == LATENCY else "below"
    return f"{objective} {relation} {format_value(objective, threshold)}"


def _credit(credit_bps: int) -> str:
    text = f"{units.format_bps(credit_bps)} of the fee"
    if credit_bps > 10_000:
        text += f" ({units.format_bps(credit_bps - 10_000)} of it from the bond)"
    return text


def _start(terms: Terms) -> str:
    start = terms.periods.start
    if start is None:
        return "when `smartsla create` deploys it, plus --start-in (default 5 minutes)"
    return _dt.datetime.fromtimestamp(start, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _probe(service) -> str:
    if service.samples_from:
        return f"the samples of {service.samples_from} (its probe)"
    if service.from_events:
        if service.events is not None:
            return f"event counts from Prometheus{f' at {service.events.url}' if service.events.url else ''}"
        return "imported event counts"
    p = service.probe
    if p is None:
        return "imported samples"
    where = p.url if p.type == "http" else f"{p.host}:{p.port}"
    return f"{p.type} {where} every {units.format_us(p.interval_us)}"


def summary(terms: Terms) -> dict[str, Any]:
    """The terms as people read them, as plain data (the rows ``render_summary`` prints).

    Keys: ``agreement``, ``provider``, ``customer``, ``fee`` ("1000 test-usd per period"), ``bond``,
    ``periods``, ``services`` (id, objective, target, weight, probe), ``schedules`` (each with ``title``,
    ``services`` and ``tiers``: ``when``, ``credit``, ``text`` = "<objective> below X: customer gets Y of the
    fee"), ``cap``, ``oracles``, ``maintenance``, ``measurement``.
    """
    comp = terms.compensation
    token = terms.payment.token
    schedules: list[dict[str, Any]] = []

    def schedule(title: str, ids: list[str], objective: str, tiers) -> dict[str, Any]:
        rows = [{"when": _when(objective, t.threshold), "credit": _credit(t.credit_bps),
                 "text": f"{_when(objective, t.threshold)}: customer gets {_credit(t.credit_bps)}"} for t in tiers]
        return {"title": title, "services": ids, "tiers": rows}

    if comp.basis == "combined":
        ids = list(terms.service_ids)
        how = "weighted average" if comp.combined == "weighted" else "worst"
        title = (f"on the {how} {comp.objective} of {', '.join(ids)} (target "
                 f"{format_value(comp.objective, comp.target)})")
        schedules.append(schedule(title, ids, comp.objective, comp.schedule))
    else:
        groups: dict[tuple, list] = {}
        for s in terms.services:
            groups.setdefault((s.objective, s.tiers), []).append(s)
        for (objective, tiers), services in groups.items():
            ids = [s.id for s in services]
            own = "own schedule" if services[0].own_schedule else "the agreement's schedule"
            schedules.append(schedule(f"{', '.join(ids)} ({own})", ids, objective, tiers))
    if comp.basis != "combined" and len(terms.services) > 1:
        credit_rule = "the period's credit is the weighted average of the services' credits"
    elif comp.basis == "combined":
        credit_rule = "one credit for the period, from the combined value"
    else:
        credit_rule = "the period's credit is the service's credit"
    cap = f"credits are capped at {units.format_bps(comp.cap_bps)} of the fee"
    if comp.cap_bps > 10_000:
        cap += "; the part above 100% is paid from the provider's bond"
    o = terms.oracles
    fallback = (f"full credit ({units.format_bps(min(10_000, comp.cap_bps))})" if o.fallback_full_credit
                else "no credit")
    m = terms.maintenance
    meas = terms.measurement
    return {
        "agreement": terms.agreement,
        "provider": terms.provider,
        "customer": terms.customer,
        "fee": f"{terms.payment.fee} {token} per period",
        "bond": f"{terms.payment.bond} {token}",
        "periods": f"{terms.periods.count} periods of {units.format_seconds(terms.periods.length)}, "
                   f"starting {_start(terms)}",
        "services": [{"id": s.id, "objective": s.objective_words, "target": s.format_value(s.target),
                      "weight": s.weight, "probe": _probe(s)} for s in terms.services],
        "schedules": schedules,
        "credit": credit_rule,
        "cap": cap,
        "oracles": f"{o.quorum} of {len(o.members)} must report ({', '.join(o.members)}), within "
                   f"{units.format_seconds(o.deadline)} after a period ends, each having measured at least "
                   f"{units.format_ppm(o.min_coverage)} of every service's period; otherwise {fallback}",
        "maintenance": (f"up to {units.format_seconds(m.allowance)} per period, announced "
                        f"{units.format_seconds(m.notice)} ahead" if m.allowance else "none allowed"),
        "measurement": f"{units.format_seconds(meas.slice)} slices; down after {meas.down_after} failed "
                       f"sample{'s' if meas.down_after != 1 else ''}; slices without samples: {meas.gaps}",
    }


def render_summary(terms: Terms, ui: UI) -> None:
    """Print :func:`summary` for people on ``ui.out`` as tables; in --json mode, emit ``summary(terms)`` instead."""
    data = summary(terms)
    facts = Table(title=f"agreement {escape(data['agreement'])}", show_header=False, title_justify="left")
    facts.add_column("", style="bold")
    facts.add_column("")
    for label, key in (("provider", "provider"), ("customer", "customer"), ("fee", "fee"), ("bond", "bond"),
                       ("periods", "periods"), ("credit", "credit"), ("cap", "cap"), ("oracles", "oracles"),
                       ("maintenance", "maintenance"), ("measurement", "measurement")):
        facts.add_row(label, escape(str(data[key])))
    ui.out.print(facts)

    services = Table(title="services", title_justify="left")
    for name in ("service", "objective", "target", "weight", "measured by"):
        services.add_column(name, justify="right" if name == "weight" else "left")
    for s in data["services"]:
        services.add_row(escape(s["id"]), s["objective"], s["target"], str(s["weight"]), escape(s["probe"]))
    ui.out.print(services)

    for sched in data["schedules"]:
        table = Table(title=f"penalty schedule: {escape(sched['title'])}", title_justify="left")
        table.add_column("when the period's value is")
        table.add_column("customer gets")
        for tier in sched["tiers"]:
            table.add_row(tier["when"], tier["credit"])
        ui.out.print(table)
