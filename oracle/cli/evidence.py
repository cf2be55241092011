"""``sla-oracle evidence verify|prove``: the evidence bundles of smartsla.evidence, from the command line."""

from __future__ import annotations

import json
import re
import sys

from smartsla.constants import HOUR
from smartsla.encoding import parse_time
from smartsla.evidence.bundle import prove, verify_bundle
from smartsla.evidence.format import EvidenceError


def parse_hour(text: str) -> int:
    """Unix seconds or ISO-8601 with a zone (``2027-01-01T13:00Z``) of an hour's start."""
    try:
        value = parse_time(text)
    except ValueError as exc:
        raise EvidenceError(f"the hour: {exc}") from None
    if value % HOUR:
        raise EvidenceError(f"hour {text!r} is not the start of an hour")
    return int(value)


def register(subparsers) -> None:
    p = subparsers.add_parser("evidence", help="verify evidence bundles and prove chunks",
                              description="Evidence bundles hold the samples behind a report; see docs/evidence.md.")
    sub = p.add_subparsers(dest="evidence_command", metavar="ACTION", required=True)
    v = sub.add_parser("verify", help="recompute every hash of a bundle",
                       description="Exit 0 PASS, 1 FAIL (each discrepancy is printed), 2 bad input.")
    v.add_argument("directory")
    v.add_argument("--root", help="also require this root (e.g. the evidenceRoot of the on-chain report)")
    v.add_argument("--json", action="store_true", help="machine-readable result")
    v.set_defaults(handler=_verify_command)
    pr = sub.add_parser("prove", help="print the Merkle proof of one (service, hour) chunk")
    pr.add_argument("directory")
    pr.add_argument("service")
    pr.add_argument("hour", help="the hour's start: unix seconds or ISO-8601 (UTC if no zone)")
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(handler=_prove_command)


def _verify_command(args) -> int:
    try:
        if args.root is not None and not re.fullmatch(r"0x[0-9a-fA-F]{64}", args.root):
            raise EvidenceError(f"--root {args.root!r} is not 0x and 64 hex digits")
        result = verify_bundle(args.directory, args.root)
    except EvidenceError as exc:
        print(f"sla-oracle evidence verify: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        for f in result.findings:
            print(f"FAIL {f}")
        counts = f", {result.intervals} intervals of event counts" if result.intervals else ""
        print(f"{'PASS' if result.ok else 'FAIL'} {result.directory}: {result.chunks} chunks, {result.samples} samples"
              f"{counts}, root {result.root}")
    return 0 if result.ok else 1


def _prove_command(args) -> int:
    try:
        p = prove(args.directory, args.service, parse_hour(args.hour))
    except EvidenceError as exc:
        print(f"sla-oracle evidence prove: {exc}", file=sys.stderr)
        return 2
    doc = p.to_json()
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(f"chunk  {doc['service']} {doc['hour']} ({doc['hour_start']})")
        print(f"leaf   {doc['leaf']}")
        for i, s in enumerate(doc["proof"]):
            print(f"proof[{i}] {s}")
        print(f"root   {doc['root']}  ({'verifies' if doc['valid'] else 'DOES NOT VERIFY'})")
    return 0
