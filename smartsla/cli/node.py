"""``smartsla node start|stop|status``: the local node that keeps its chain between runs."""

from __future__ import annotations

import argparse
import time

from smartsla.chain import node
from smartsla.chain.accounts import list_keystores
from smartsla.chain.chain import Chain
from smartsla.cli.common import UI, UserError, add_json_option, family, when
from smartsla.units import UnitError, format_token_amount, parse_duration_seconds, parse_token_amount

EPILOG = """\
The node is anvil on 127.0.0.1 (port from brownie-config.yaml, or $SMARTSLA_NODE_PORT). Its chain is written
to $SMARTSLA_HOME/nodes/NETWORK/state.json every second and when it stops, and loaded when it starts again.

  smartsla node start            # start (or find running) the development node
  smartsla node status --json
  smartsla node stop
  smartsla node start --fresh    # forget the saved chain and begin a new one
  smartsla node advance 31d      # move the chain's clock on: a period ends without waiting for it
"""


def register(sub) -> None:
    actions = family(sub, "node", "start, stop or inspect the local development node (anvil, state kept)")
    for name, help_text, handler in (
        ("start", "start the node in the background (does nothing if it runs)", run_start),
        ("stop", "stop the node; its chain is saved", run_stop),
        ("status", "is the node running, where, at which block", run_status),
    ):
        p = actions.add_parser(name, help=help_text, description=help_text, epilog=EPILOG,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--network", default="development", metavar="NAME",
                       help="a network of kind `node` in brownie-config.yaml (default: %(default)s)")
        add_json_option(p)
        if name == "start":
            p.add_argument("--fresh", action="store_true", help="start a new, empty chain (the saved one is deleted)")
            p.add_argument("--block-time", type=float, metavar="SECONDS",
                           help="mine a block every SECONDS so chain time follows the clock (oracle daemons need "
                                "it on an idle chain); default: a block per transaction")
        p.set_defaults(handler=handler)
    advance = actions.add_parser(
        "advance", help="move a dev chain's clock forward and mine a block (try a period's end without waiting)",
        description="Mine a block DURATION after the chain's latest block, on a dev chain. Later blocks carry on "
                    "from that time, so periods end, deadlines pass and maintenance notices run out at once. "
                    "Time only moves forward: a chain cannot be taken back.",
        epilog="  smartsla node advance 31d      # past a 30-day period\n"
               "  smartsla node advance 2h30m --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    advance.add_argument("duration", metavar="DURATION", help="how far: 90s, 2h, 31d, 1h30m")
    advance.add_argument("--network", default="development", metavar="NAME")
    add_json_option(advance)
    advance.set_defaults(handler=run_advance)
    fund = actions.add_parser(
        "fund", help="give dev accounts or addresses ether for gas (dev nodes only: oracles need it to settle)",
        description="Top up accounts with dev ether on a local node. A name is one of your keystores if one has "
                    "that name, else a dev account (oracle-1, ...).")
    fund.add_argument("accounts", nargs="+", metavar="NAME|ADDRESS")
    fund.add_argument("--ether", default="100", help="top up to at least half of this (default %(default)s)")
    fund.add_argument("--network", default="development", metavar="NAME")
    add_json_option(fund)
    fund.set_defaults(handler=run_fund)


def run_advance(args: argparse.Namespace, ui: UI) -> int:
    try:
        seconds = parse_duration_seconds(args.duration)
    except UnitError as exc:
        raise UserError(f"DURATION: {exc}; e.g. 90s, 2h or 31d") from None
    if seconds <= 0:
        raise UserError("DURATION: give a positive duration, e.g. 90s, 2h or 31d; time never moves back")
    chain = Chain.connect(args.network)
    if not chain.is_dev:
        raise UserError(f"{args.network} is not a dev chain: its clock is the real one")
    before = chain.now()
    chain.travel_to(before + seconds)
    after = chain.now()
    if args.json:
        ui.emit_json({"network": args.network, "before": before, "after": after,
                      "block": chain.w3.eth.block_number})
    else:
        ui.out.print(f"{args.network}: chain time {when(before)} -> {when(after)} "
                     f"(block {chain.w3.eth.block_number})")
    return 0


def run_fund(args: argparse.Namespace, ui: UI) -> int:
    chain = Chain.connect(args.network)
    if not chain.is_dev:
        raise UserError(f"{args.network} is not a dev chain: ether there comes from its own faucets")
    try:
        amount = parse_token_amount(args.ether, 18)
    except UnitError as exc:
        raise UserError(f"--ether: {exc}") from None
    keystores = {entry.name: entry.address for entry in list_keystores()}
    funded = {}
    for who in args.accounts:
        address = keystores.get(who) or chain.resolve(who)  # a keystore's name means that keystore's address
        chain.ensure_ether(address, amount)
        funded[who] = {"address": address, "balance": format_token_amount(chain.w3.eth.get_balance(address), 18)}
    if args.json:
        ui.emit_json(funded)
    else:
        for who, item in funded.items():
            ui.out.print(f"{who}: {item['address']} holds {item['balance']} ETH")
    return 0


def _describe(info: node.NodeInfo) -> dict:
    chain = Chain.connect(info.network)
    block = chain.w3.eth.get_block("latest")
    return {"network": info.network, "running": True, "pid": info.pid, "url": info.url, "chain_id": info.chain_id,
            "block": block["number"], "block_timestamp": block["timestamp"], "state_file": info.state_file,
            "log_file": info.log_file, "uptime_s": round(time.time() - info.started, 1)}


def run_start(args: argparse.Namespace, ui: UI) -> int:
    info, started = node.start(args.network, fresh=args.fresh, block_time=args.block_time)
    described = _describe(info) | {"started": started}
    if args.json:
        ui.emit_json(described)
    else:
        verb = "started" if started else "already running"
        ui.out.print(f"{args.network} node {verb}: {info.url} (pid {info.pid}, chain {info.chain_id}, "
                     f"block {described['block']}); chain kept in {info.state_file}")
    return 0


def run_stop(args: argparse.Namespace, ui: UI) -> int:
    info = node.stop(args.network)
    if args.json:
        ui.emit_json({"network": args.network, "stopped": info is not None, "pid": info.pid if info else None})
    elif info is None:
        ui.out.print(f"the {args.network} node was not running")
    else:
        ui.out.print(f"{args.network} node stopped (pid {info.pid}); its chain is saved in {info.state_file}")
    return 0


def run_status(args: argparse.Namespace, ui: UI) -> int:
    info = node.status(args.network)
    if info is None:
        if args.json:
            ui.emit_json({"network": args.network, "running": False})
        else:
            ui.out.print(f"the {args.network} node is not running; start it with `smartsla node start`")
        return 1
    described = _describe(info)
    if args.json:
        ui.emit_json(described)
    else:
        for key, value in described.items():
            ui.out.print(f"{key:12} {value}")
    return 0
