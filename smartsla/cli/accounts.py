"""``smartsla accounts list|new|import``: encrypted keystores for the people who sign."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from eth_account import Account
from rich.table import Table

from smartsla.chain import accounts
from smartsla.cli.common import UI, UserError, add_json_option, family

EPILOG = """\
Keystores are Web3 Secret Storage files (as geth writes them) in $SMARTSLA_HOME/keystores (~/.smartsla by
default), readable by you only. Use one with --account NAME; the password comes from $SMARTSLA_PASSWORD or a
prompt. A key is never printed.

  smartsla accounts new provider-ops
  SMARTSLA_PASSWORD=... smartsla accounts import acme --key-env ACME_KEY
  smartsla accounts list
"""


def register(sub) -> None:
    actions = family(sub, "accounts", "create, import and list encrypted keystores")
    lst = actions.add_parser("list", help="the keystores and their addresses", epilog=EPILOG,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    add_json_option(lst)
    lst.set_defaults(handler=run_list)
    new = actions.add_parser("new", help="make a new key and store it encrypted", epilog=EPILOG,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    new.add_argument("name")
    add_json_option(new)
    new.set_defaults(handler=run_new)
    imp = actions.add_parser("import", help="store an existing key encrypted", epilog=EPILOG,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    imp.add_argument("name")
    imp.add_argument("--key-env", metavar="VAR",
                     help="read the key from this environment variable (else you are asked for it)")
    add_json_option(imp)
    imp.set_defaults(handler=run_import)


def _new_password(ui: UI) -> str:
    password = os.environ.get(accounts.PASSWORD_ENV)
    if password is not None:
        return password
    if not sys.stdin.isatty():
        raise UserError(f"no password: set {accounts.PASSWORD_ENV}, or run on a terminal to be asked")
    first = getpass.getpass("new password: ")
    if first != getpass.getpass("again: "):
        raise UserError("the two passwords differ; nothing was stored")
    return first


def _saved(ui: UI, args: argparse.Namespace, entry: accounts.KeystoreEntry) -> int:
    if args.json:
        ui.emit_json({"name": entry.name, "address": entry.address, "path": str(entry.path)})
    else:
        ui.out.print(f"{entry.name}: {entry.address} stored encrypted in {entry.path}")
    return 0


def run_new(args: argparse.Namespace, ui: UI) -> int:
    account = Account.create()
    return _saved(ui, args, accounts.save_keystore(args.name, account, _new_password(ui)))


def run_import(args: argparse.Namespace, ui: UI) -> int:
    if args.key_env:
        account = accounts.key_from_env(args.key_env)
    else:
        if not sys.stdin.isatty():
            raise UserError("no key: pass --key-env VAR, or run on a terminal to be asked")
        try:
            account = Account.from_key(getpass.getpass("private key (hidden): ").strip())
        except Exception:  # noqa: BLE001 - never echo what was typed
            raise UserError("that is not a private key (64 hex digits, 0x optional)") from None
    return _saved(ui, args, accounts.save_keystore(args.name, account, _new_password(ui)))


def run_list(args: argparse.Namespace, ui: UI) -> int:
    entries = accounts.list_keystores()
    if args.json:
        ui.emit_json([{"name": e.name, "address": e.address, "path": str(e.path)} for e in entries])
        return 0
    if not entries:
        ui.out.print(f"no keystores in {accounts.keystore_dir()}; make one with `smartsla accounts new NAME`")
        return 0
    table = Table(title=f"keystores in {accounts.keystore_dir()}")
    table.add_column("name")
    table.add_column("address")
    for e in entries:
        table.add_row(e.name, e.address)
    ui.out.print(table)
    return 0
