"""The ``smartsla`` command."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from rich.console import Console
from rich.table import Table

from . import __version__
from .build import BuildError, compile_contracts
from .chain import ChainError, Reverted
from .terms import TermsError, load_terms
from .units import format_bps

SIMULATE_EPILOG = """\
examples:
  smartsla simulate examples/aws-ec2.yaml --period 99.95% --period 98.2%
  smartsla simulate examples/multi-service.yaml --period api=100%,db=99.95%,queue=100% --json

Each --period is one period's measured values, in order from the first period. The agreement is created,
funded for that many periods, and each period settled by a quorum of dev oracles on the embedded chain:
the numbers come from the real contract's settling transactions, gas from their receipts.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smartsla",
        description="Smart service level agreements: terms in YAML, penalties in Solidity, payouts by the contract.",
    )
    parser.add_argument("--version", action="version", version=f"smartsla {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sim = sub.add_parser(
        "simulate", help="what-if: run an agreement's periods on the embedded chain and show the payouts",
        description="Run the real agreement contract on the embedded chain with the values you give, "
                    "and show what each party would be paid.",
        epilog=SIMULATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sim.add_argument("terms", metavar="TERMS.yaml", help="the agreement's terms file")
    sim.add_argument("--period", action="append", default=[], metavar="VALUES",
                     help="one period's values: SERVICE=VALUE,... (or just VALUE for one service); repeat in order")
    sim.add_argument("--json", action="store_true", help="print one JSON object instead of tables")

    build = sub.add_parser("build", help="compile the contracts into build/ (done on demand by other commands)")
    build.add_argument("--force", action="store_true", help="recompile even if nothing changed")

    terms = sub.add_parser("terms", help="check a terms file")
    terms_sub = terms.add_subparsers(dest="terms_command", metavar="ACTION")
    check = terms_sub.add_parser("check", help="validate a terms file and print its document hash")
    check.add_argument("file", metavar="TERMS.yaml")
    check.add_argument("--json", action="store_true")
    return parser


def _err(console: Console, message: str) -> int:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    try:
        if args.command == "simulate":
            return _simulate(args, out, err)
        if args.command == "build":
            artifacts = compile_contracts(force=args.force, quiet=False)
            for name, art in artifacts.items():
                out.print(f"{name:28} {len(art.deployed_bytecode) // 2 - 1:6} bytes deployed  ({art.source})")
            return 0
        if args.command == "terms" and args.terms_command == "check":
            terms = load_terms(args.file)
            digest = "0x" + terms.document_hash().hex()
            if args.json:
                print(json.dumps({"file": args.file, "valid": True, "document_hash": digest}))
            else:
                out.print(f"{args.file}: valid; document hash {digest}")
            return 0
        _parser().print_help()
        return 2
    except TermsError as exc:
        return _err(err, str(exc))
    except (BuildError, ChainError) as exc:
        return _err(err, str(exc))
    except Reverted as exc:
        return _err(err, f"the contract refused: {exc}")


def _simulate(args: argparse.Namespace, out: Console, err: Console) -> int:
    from .simulate import SimulationError, parse_period_arg, simulate

    terms = load_terms(args.terms)
    try:
        periods = [parse_period_arg(terms, text, i) for i, text in enumerate(args.period)]
        if args.json:
            result = simulate(terms, periods)
        else:
            with err.status("starting") as status:
                result = simulate(terms, periods, progress=lambda msg: status.update(msg))
    except SimulationError as exc:
        return _err(err, str(exc))
    if args.json:
        print(json.dumps(result.as_json()))
        return 0
    for note in result.notes:
        err.print(f"[yellow]note:[/] {note}")
    ids = terms.service_ids
    sym = result.token_symbol
    table = Table(title=f"{terms.agreement} on the embedded chain, amounts in {sym}")
    table.add_column("period", justify="right")
    for sid in ids:
        table.add_column(sid, justify="right")
    table.add_column("credit", justify="right")
    table.add_column("to customer", justify="right")
    table.add_column("to provider", justify="right")
    table.add_column("gas used", justify="right")
    for p in result.periods:
        table.add_row(str(p.index), *[p.values[s] for s in ids], format_bps(p.credit_bps),
                      result.amount(p.compensation), result.amount(p.provider_payout), f"{p.gas_used:,}")
    totals = result.as_json()["totals"]
    table.add_section()
    table.add_row("total", *[""] * len(ids), "", totals["compensation"], totals["provider_payout"], "")
    out.print(table)
    gas = ", ".join(f"{k} {v:,}" for k, v in result.gas.items())
    out.print(f"agreement {result.agreement}; gas from receipts: {gas}; settling gas per period above")
    return 0


if __name__ == "__main__":
    sys.exit(main())
