"""The ``smartsla`` command: one module per family of subcommands, each registering its own parsers.

A module exposes ``register(subparsers)``; every parser it adds sets ``handler=`` to a function
``(args, ui) -> int``. Errors that users can fix are raised as the library's exceptions and turned into one
red line here, never a traceback.
"""

from __future__ import annotations

import argparse
from typing import Sequence

from smartsla import __version__
from smartsla.cli import accounts, audit, customer, node, provider, simulate, terms, tools
from smartsla.cli.common import UI, UserError, handle_errors

FAMILIES = (simulate, terms, tools, node, accounts, provider, customer, audit)

DESCRIPTION = """\
Smart service level agreements: terms in YAML, penalties in Solidity, payouts by the contract.

providers:  terms check|show, factory deploy, create, bond, announce, terminate sign|submit, close
customers:  fund, status, payouts, withdraw, list, settle-fallback
auditors:   audit (--replay, --html)
everyone:   simulate (what-if on the embedded chain), node start|stop|status|fund, accounts, build

Without --network, commands use $SMARTSLA_NETWORK or `development` (start it: smartsla node start).
docs/workflows.md walks through each user's steps.
"""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="smartsla", description=DESCRIPTION,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="version", version=f"smartsla {__version__}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    for family in FAMILIES:
        family.register(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    top = parser()
    args = top.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        # a family given without its action ("smartsla node") shows that family's help
        shown = getattr(args, "family_parser", None) or top
        shown.print_help()
        return 2
    ui = UI(json_mode=bool(getattr(args, "json", False)))
    return handle_errors(ui, lambda: handler(args, ui))


__all__ = ["main", "parser", "UI", "UserError"]
