"""``sla-oracle run --config oracle.yaml``: the daemon (:mod:`oracle.daemon`), with its errors as one line."""

from __future__ import annotations

import socket
import sys

from oracle.config import ConfigError, load_config
from oracle.daemon import ChainChanged, NoFactory, OracleDaemon


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="run the oracle daemon: probe, compute, sign, settle",
                                   description="Watch the agreements that name this oracle's address, probe their "
                                               "services, and settle each period when it is due.")
    parser.add_argument("--config", required=True, metavar="oracle.yaml")
    parser.set_defaults(handler=run_daemon)


def _listen_taken(host: str, port: int) -> str | None:
    """Why the report server could not bind its address, or None; checked before the store is opened, so that a
    refused start leaves nothing behind."""
    if port == 0:
        return None
    with socket.socket() as probe:
        # As the server itself binds: through the closed connections a crash leaves in TIME_WAIT, never beside a
        # live listener.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def run_daemon(args) -> int:
    try:
        config = load_config(args.config)
        account = config.key.load(interactive=sys.stdin.isatty())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    taken = _listen_taken(config.listen_host, config.listen_port)
    if taken:
        print(f"error: listen {config.listen_host}:{config.listen_port} is taken ({taken}); stop what uses it, or "
              f"set `listen` in {args.config} to a free port", file=sys.stderr)
        return 2
    try:
        daemon = OracleDaemon(config, account)
    except Exception as exc:  # noqa: BLE001 - a terms file that does not load: say which and why
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return daemon.run()
    except (ChainChanged, NoFactory) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - e.g. the node is down at start: a clear line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
