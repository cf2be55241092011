"""``smartsla build``."""

from __future__ import annotations

import argparse

from smartsla.chain.build import compile_contracts
from smartsla.cli.common import UI


def register(sub) -> None:
    build = sub.add_parser("build", help="compile the contracts into build/ (other commands do it on demand)",
                           description="Compile contracts/ with the settings of brownie-config.yaml into build/.")
    build.add_argument("--force", action="store_true", help="recompile even if nothing changed")
    build.set_defaults(handler=run_build)


def run_build(args: argparse.Namespace, ui: UI) -> int:
    artifacts = compile_contracts(force=args.force, quiet=False)
    for name, art in artifacts.items():
        ui.out.print(f"{name:28} {len(art.deployed_bytecode) // 2 - 1:6} bytes deployed  ({art.source})")
    return 0
