"""``sla-oracle status --config oracle.yaml [--json]``: what the oracle watches and which reports are pending,
read from its store without writing to it."""

from __future__ import annotations

import json
import sqlite3
import sys
import time

from oracle.config import ConfigError, load_config
from oracle.store.schema import StoreError
from oracle.store.store import Store
from smartsla.measure.samples import Status


def register(subparsers) -> None:
    parser = subparsers.add_parser("status", help="what the oracle watches and which reports are pending")
    parser.add_argument("--config", required=True, metavar="oracle.yaml")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=show_status)


def show_status(args) -> int:
    try:
        config = load_config(args.config)
        store = Store(config.store, read_only=True)
    except (ConfigError, Exception) as exc:  # noqa: BLE001
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return _show(args, config, store)
    except (StoreError, sqlite3.DatabaseError) as exc:
        # a corrupt store is said as such, once, as the daemon says it (never a traceback)
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _show(args, config, store) -> int:
    with store:
        store.check_rows()
        services = store.services()
        pending = store.pending_reports()
        probes = store.get_state("probes") or {}
        now = time.time()
        status = {
            "store": str(config.store),
            # a shared probe's key also says what it requests and which agreements its samples serve
            "services": {key: {"samples": store.count(key),
                               "last_hour_up_share": _share_up(store.samples(key, now - 3600, now)),
                               **({"probe": probes[key]} if key in probes else {})}
                         for key in services},
            "pending_reports": [{"agreement": p.agreement, "period": p.period, "values": list(p.values),
                                 "status": p.status} for p in pending],
            "lost_samples": store.get_state("lost_samples") or [],
        }
    if args.json:
        print(json.dumps(status))
        return 0
    print(f"store {status['store']}")
    for key, info in status["services"].items():
        share = info["last_hour_up_share"]
        shown = "no samples in the last hour" if share is None else f"{share:.4%} of last hour's samples up"
        probe = info.get("probe")
        serves = f" ({probe['target']}, for {_agreements(len(probe['serves']))})" if probe else ""
        print(f"  {key}{serves}: {info['samples']} samples; {shown}")
    for hole in status["lost_samples"]:
        print(f"lost samples: {hole['samples']} between {_utc(hole['from'])} and {_utc(hole['to'])} (the store "
              "could not write them)")
    print(f"pending reports: {len(pending)}")
    for p in status["pending_reports"]:
        print(f"  {p['agreement']} period {p['period']}: values {p['values']} ({p['status'] or 'not submitted'})")
    return 0


def _share_up(samples) -> float | None:
    judged = [s for s in samples if s.status != Status.UNKNOWN]
    return None if not judged else sum(s.status == Status.UP for s in judged) / len(judged)


def _agreements(n: int) -> str:
    return f"{n} agreement" + ("" if n == 1 else "s")


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))
