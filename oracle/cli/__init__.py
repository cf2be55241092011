"""The ``sla-oracle`` command: one module per subcommand, each with ``register(subparsers)`` setting ``handler=``,
a thin wrapper over the library (the daemon, the store, the importers, smartsla's period maths and evidence)."""

from __future__ import annotations

import argparse
from typing import Sequence

from oracle import __version__
from oracle.cli import compute, evidence, imports, run, status

COMMANDS = (compute, evidence, imports, run, status)

EPILOG = """\
examples:
  sla-oracle compute examples/aws-ec2.yaml --samples samples.csv --json
  sla-oracle evidence verify evidence/0xAGREEMENT/period-0
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sla-oracle",
        description="Measure service levels, compute each period's values, sign them and settle on-chain.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sla-oracle {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return int(handler(args) or 0)

