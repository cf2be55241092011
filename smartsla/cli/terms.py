"""``smartsla terms check|show``."""

from __future__ import annotations

import argparse

from ..terms import load_terms
from .common import UI, family


def register(sub) -> None:
    actions = family(sub, "terms", "check a terms file, or show it resolved")
    check = actions.add_parser("check", help="validate a terms file and print its document hash")
    check.add_argument("file", metavar="TERMS.yaml")
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace, ui: UI) -> int:
    terms = load_terms(args.file)
    digest = "0x" + terms.document_hash().hex()
    if args.json:
        ui.emit_json({"file": args.file, "valid": True, "document_hash": digest})
    else:
        ui.out.print(f"{args.file}: valid; document hash {digest}")
    return 0
