"""``smartsla audit``: an agreement checked from chain data alone; PASS/FAIL findings, JSON, an HTML report."""

from __future__ import annotations

import argparse
import os
from collections import defaultdict
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from smartsla.audit.checks import audit
from smartsla.audit.html import render
from smartsla.chain.deployments import DeploymentError, agreement_names, factory_address
from smartsla.cli.common import UI, UserError, add_factory_option, add_network_option, address_arg, open_session

EPILOG = """\
examples:
  smartsla audit 0xAgreement --network development
  smartsla audit 0xAgreement --terms acme-api-2027.yaml --evidence evidence/0xAgreement --html audit.html
  smartsla audit 0xAgreement --replay --json

Everything comes from the chain: the terms from the factory's creation log, the history from the agreement's
logs, the reports' signatures from the settling transactions. Exit status: 0 every check passed, 1 a check
failed, 2 bad input. docs/audit.md lists the checks.
"""

COLOURS = {"PASS": "green", "FAIL": "bold red", "SKIP": "yellow"}


def register(sub) -> None:
    p = sub.add_parser("audit", help="audit an agreement from chain data alone (--replay, --html)",
                       description="Rebuild an agreement and its full history from the chain and check the code, "
                                   "the terms, every report, settlement and payment, and optionally the oracles' "
                                   "evidence and a replay of every transaction.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("agreement", metavar="AGREEMENT", help="the agreement's address")
    add_network_option(p)
    add_factory_option(p)
    p.add_argument("--terms", metavar="FILE", help="the terms file: check it against the on-chain hash and terms; "
                                                   "needed to recompute values from evidence")
    p.add_argument("--evidence", action="append", default=[], metavar="DIR",
                   help="an evidence bundle, or a directory holding bundles (repeat)")
    p.add_argument("--replay", action="store_true",
                   help="re-execute the whole transaction history on an anvil fork and compare every log and the "
                        "final state")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout instead of tables")
    p.add_argument("--html", metavar="FILE", help="write a report for people: verdicts and plots")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ui: UI) -> int:
    args.agreement = address_arg(args.agreement, "AGREEMENT")
    for d in args.evidence:
        if not Path(d).is_dir():
            raise UserError(f"--evidence {d}: not a directory")
    if args.terms and not Path(args.terms).is_file():
        raise UserError(f"--terms {args.terms}: no such file")
    if args.html:
        folder = Path(args.html).resolve().parent
        if not folder.is_dir():
            raise UserError(f"--html {args.html}: the folder {folder} does not exist; create it or write elsewhere")
        if not os.access(folder, os.W_OK):
            raise UserError(f"--html {args.html}: the folder {folder} is not writable")
    session = open_session(args)
    try:
        try:
            factory = factory_address(session.chain, args.factory)
        except DeploymentError:
            if args.factory:
                raise
            factory = None  # no address book entry: the agreement names its factory, whose log must confirm it
        with ui.status("auditing") as status:
            report = audit(session.contracts, args.agreement, factory, terms_file=args.terms,
                           evidence=args.evidence, replay=args.replay, progress=lambda m: status.update(m))
            # without the terms file, the name `create` recorded on this machine, if any
            report.name = report.name or agreement_names(session.chain).get(report.agreement)
    finally:
        session.chain.close()
    if args.html:
        Path(args.html).write_text(render(report), encoding="utf-8")
        if not args.json:
            ui.note(f"wrote {args.html}")
    if args.json:
        ui.emit_json(report.to_json())
        return 0 if report.ok else 1
    print_report(ui, report)
    return 0 if report.ok else 1


def print_report(ui: UI, report) -> None:
    """Failures one per row; passing per-period findings of one check folded into one row."""
    named = f"{report.name} " if report.name else ""
    table = Table(title=f"audit of {named}{report.agreement} (chain {report.chain_id})", show_lines=False)
    for name in ("verdict", "check", "subject", "detail"):
        table.add_column(name, overflow="fold")
    groups: dict[tuple[str, str], list] = defaultdict(list)
    order: list[tuple[str, str]] = []
    for f in report.findings:
        key = (f.check, f.verdict) if f.verdict == "PASS" and f.subject.startswith("period ") else (id(f), "")
        if key not in groups:
            order.append(key)
        groups[key].append(f)
    for key in order:
        items = groups[key]
        f = items[0]
        subject, detail = f.subject, f.detail
        if len(items) > 1:
            periods = [int(x.subject.split()[1]) for x in items]
            subject = f"{len(items)} periods ({_ranges(periods)})"
            detail = f"every period; e.g. period {periods[0]}: {f.detail}"
        colour = COLOURS.get(f.verdict, "")
        table.add_row(f"[{colour}]{f.verdict}[/]", f.check, escape(subject), escape(detail))
    ui.out.print(table)
    c = report.combined
    if c and c["periods"]:
        role = "decided the credit" if c["decides_credit"] else "shown; each service's own credit decided"
        values = ", ".join(f"{p}: {v}" for p, v in c["periods"].items())
        ui.out.print(f"combined ({escape(c['how'])}) {escape(c['objective'])} per period ({role}): {escape(values)}")
    counts = report.counts()
    t = report.timings
    line = (f"{'[bold red]FAIL[/]' if not report.ok else '[green]PASS[/]'}: {counts['PASS']} passed, "
            f"{counts['FAIL']} failed, {counts['SKIP']} skipped; {len(report.history.settlements)} settlements, "
            f"{len(report.history.transactions)} transactions; audited in {t.get('total', 0):.2f} s")
    if report.replay:
        r = report.replay
        line += (f"; replay: {r['transactions']} transactions in {r['replay_seconds']:.2f} s "
                 f"({r['transactions_per_second']} tx/s, fork started in {r['fork_start_seconds']:.2f} s)")
    ui.out.print(line)


def _ranges(numbers: list[int]) -> str:
    numbers = sorted(numbers)
    parts = []
    start = prev = numbers[0]
    for n in numbers[1:] + [None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)


__all__ = ["print_report", "register", "run"]
