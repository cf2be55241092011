"""``smartsla simulate``: what-if on the embedded chain with the real contract."""

from __future__ import annotations

import argparse
import json

from rich.markup import escape
from rich.table import Table

from smartsla.cli.common import UI, UserError
from smartsla.simulate import SimulationError, parse_period_arg, simulate
from smartsla.terms.parse import load_terms
from smartsla.units import format_bps

EPILOG = """\
examples:
  smartsla simulate examples/aws-ec2.yaml --period 99.95% --period 98.2%
  smartsla simulate examples/multi-service.yaml --period api=100%,db=99.95%,queue=100% --json

Each --period is one period's measured values, in order from the first period. The agreement is created,
funded for that many periods, and each period settled by a quorum of dev oracles on the embedded chain:
the numbers come from the real contract's settling transactions, gas from their receipts.
"""


def register(sub) -> None:
    sim = sub.add_parser(
        "simulate", help="what-if: run an agreement's periods on the embedded chain and show the payouts",
        description="Run the real agreement contract on the embedded chain with the values you give, "
                    "and show what each party would be paid.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sim.add_argument("terms", metavar="TERMS.yaml", help="the agreement's terms file")
    sim.add_argument("--period", action="append", default=[], metavar="VALUES",
                     help="one period's values: SERVICE=VALUE,... (or just VALUE for one service); repeat in order")
    sim.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    sim.set_defaults(handler=run)


def run(args: argparse.Namespace, ui: UI) -> int:
    terms = load_terms(args.terms)
    try:
        periods = [parse_period_arg(terms, text, i) for i, text in enumerate(args.period)]
        with ui.status("starting") as status:
            result = simulate(terms, periods, progress=lambda msg: status.update(msg))
    except SimulationError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps(result.as_json()))
        return 0
    for note in result.notes:
        ui.note(f"[yellow]note:[/] {note}")
    ids = terms.service_ids
    table = Table(title=f"{terms.agreement} on the embedded chain, amounts in {result.token_symbol}")
    table.add_column("period", justify="right")
    for sid in ids:
        table.add_column(escape(sid), justify="right")
    shown = terms.combined_objective() is not None
    if shown:
        how = terms.compensation.combined
        decides = terms.compensation.basis == "combined"
        table.add_column(f"combined ({how})" + ("" if decides else ", shown"), justify="right")
    for name in ("credit", "to customer", "to provider", "gas used"):
        table.add_column(name, justify="right")
    for p in result.periods:
        table.add_row(str(p.index), *[p.values[s] for s in ids], *([p.combined] if shown else []),
                      format_bps(p.credit_bps), result.amount(p.compensation), result.amount(p.provider_payout),
                      f"{p.gas_used:,}")
    totals = result.as_json()["totals"]
    table.add_section()
    table.add_row("total", *[""] * (len(ids) + shown), "", totals["compensation"], totals["provider_payout"], "")
    ui.out.print(table)
    gas = ", ".join(f"{k} {v:,}" for k, v in result.gas.items())
    ui.out.print(f"agreement {result.agreement}; gas from receipts: {gas}; settling gas per period above")
    return 0
