"""``sla-oracle run --config oracle.yaml``: the daemon (:mod:`oracle.daemon`), with its errors as one line."""

from __future__ import annotations

import sys

from oracle.config import ConfigError, load_config
from oracle.daemon import ChainChanged, OracleDaemon


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="run the oracle daemon: probe, compute, sign, settle",
                                   description="Watch the agreements that name this oracle's address, probe their "
                                               "services, and settle each period when it is due.")
    parser.add_argument("--config", required=True, metavar="oracle.yaml")
    parser.set_defaults(handler=run_daemon)


def run_daemon(args) -> int:
    try:
        config = load_config(args.config)
        account = config.key.load(interactive=sys.stdin.isatty())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        daemon = OracleDaemon(config, account)
    except Exception as exc:  # noqa: BLE001 - a terms file that does not load: say which and why
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return daemon.run()
    except ChainChanged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - e.g. the node is down at start: a clear line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
