"""Version 2 bundles (what the oracle writes): ``samples/<service>.bin`` of fixed-width 17-byte big-endian
records per service, ``events/<service>.bin`` of 32-byte event-count records per service measured from counts,
and manifest.json. The root is over a header leaf, a reasons leaf, one service root per service with samples
(over its hour chunks) and, after them, one events root per service with counts (over its hour chunks of
counts). A bundle without counts has no ``events`` key and the root it always had. docs/evidence.md has the
format."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smartsla.constants import HOUR, HOUR_US, NO_LATENCY, SERVICE_ID
from smartsla.encoding import seconds_to_us, to_hex
from smartsla.evidence.columns import EvidenceColumns
from smartsla.evidence.format import (
    FORMAT,
    SCHEMES,
    EvidenceError,
    Finding,
    Header,
    VerifyResult,
    canonical_json,
    check_agreement,
    check_common,
    check_manifest_head,
    header_bytes,
    hour_iso,
    hours_list,
    unhex,
)
from smartsla.evidence.merkle import Proof, keccak, merkle_root, proof_from_levels, tree_levels
from smartsla.measure.events import MAX_COUNT, EventColumns, EventError
from smartsla.measure.samples import Sample

SCHEME = SCHEMES[2]
VERSION = 2
# One sample: big-endian like Solidity's abi.encodePacked(uint64, uint8, uint32, uint32), no padding.
RECORD = np.dtype([("time_us", ">u8"), ("status", "u1"), ("latency_us", ">u4"), ("reason", ">u4")])
RECORD_SIZE = RECORD.itemsize                      # 17
HEADER_LEAF_PREFIX = SCHEME.encode() + b"/header\0"
REASONS_LEAF_PREFIX = SCHEME.encode() + b"/reasons\0"
CHUNK_LEAF_PREFIX = SCHEME.encode() + b"/chunk\0"
# One interval's counts: abi.encodePacked(uint64 time_us, uint64 good, uint64 tolerating, uint64 total).
EVENT_RECORD = np.dtype([("time_us", ">u8"), ("good", ">u8"), ("tolerating", ">u8"), ("total", ">u8")])
EVENT_RECORD_SIZE = EVENT_RECORD.itemsize          # 32
EVENTS_LEAF_PREFIX = SCHEME.encode() + b"/events\0"
EVENT_KEYS = {"service", "file", "intervals", "chunks", "chunk_leaves", "events_root"}
MANIFEST_KEYS = {"format", "version", "scheme", "agreement", "chain_id", "period", "period_start", "period_end",
                    "values", "header_leaf", "reasons", "reasons_leaf", "services", "root"}


SERVICE_KEYS = {"service", "file", "samples", "chunks", "service_root"}


# coverage: present in bundles whose report states its coverage (all that this oracle writes now);
# events: present when a service of the agreement is measured from event counts
OPTIONAL_KEYS = frozenset({"coverage", "events"})


def header_leaf(agreement: str, chain_id: int, period: int, period_start: int, period_end: int,
                values: dict[str, int] | None, coverage: dict[str, int] | None = None) -> bytes:
    return keccak(HEADER_LEAF_PREFIX + header_bytes(agreement, chain_id, period, period_start, period_end, values,
                                                  scheme=SCHEME, coverage=coverage))


def reasons_leaf(reasons: Iterable[str]) -> bytes:
    """keccak(prefix ‖ for each reason: uint32 big-endian length ‖ UTF-8 bytes)."""
    parts = [REASONS_LEAF_PREFIX]
    for r in reasons:
        b = r.encode("utf-8")
        parts += [len(b).to_bytes(4, "big"), b]
    return keccak(b"".join(parts))


def records(columns: EvidenceColumns) -> np.ndarray:
    """The canonical columns as v2 records (a structured array; ``.tobytes()`` is the file format)."""
    rec = np.empty(len(columns), RECORD)
    rec["time_us"] = columns.time_us
    rec["status"] = columns.status
    rec["latency_us"] = np.where(columns.latency_us < 0, NO_LATENCY, columns.latency_us)
    rec["reason"] = columns.reason
    return rec


def chunk_leaves(service: str, data, hours: np.ndarray, *, record_size: int = RECORD_SIZE,
                 leaf_prefix: bytes = CHUNK_LEAF_PREFIX) -> tuple[list[bytes], list[int]]:
    """The chunk leaves of one service's records (``data``: their bytes; ``hours``: each record's hour
    index, non-decreasing), and the hour starts. Event counts use their own record size and leaf prefix."""
    starts = np.flatnonzero(np.concatenate(([True], hours[1:] != hours[:-1]))) if len(hours) else np.zeros(0, int)
    bounds = (np.append(starts, len(hours)) * record_size).tolist()
    hour_starts = (hours[starts] * HOUR).tolist()
    mv = memoryview(data)
    prefix = leaf_prefix + service.encode("ascii") + b"\0"
    leaves = [keccak(prefix + h.to_bytes(8, "big") + keccak(mv[a:b]))
              for h, a, b in zip(hour_starts, bounds[:-1], bounds[1:])]
    return leaves, hour_starts


@dataclass
class _Committed:
    root: bytes
    header_leaf: bytes
    reasons_leaf: bytes
    services: list[dict]             # manifest entries, sorted by service id
    files: dict[str, object]         # name -> bytes-like (the records of one service)
    events: list[dict]               # manifest entries of the counts, sorted by service id (may be empty)


def event_records(events: EventColumns) -> np.ndarray:
    rec = np.empty(len(events), EVENT_RECORD)
    rec["time_us"], rec["good"] = events.time_us, events.good
    rec["tolerating"], rec["total"] = events.tolerating, events.total
    return rec


def _commit_events(header: Header, events: EventColumns | None) -> tuple[list[dict], dict[str, object], list[bytes]]:
    """Manifest entries, files and roots (sorted by service id) of the services' counts."""
    if events is None or not len(events):
        return [], {}, []
    try:
        e = events.canonical()
    except EventError as exc:
        raise EvidenceError(str(exc)) from None
    if not (header.holds_us(int(e.time_us.min())) and header.holds_us(int(e.time_us.max()))):
        raise header.outside("an interval's counts")
    flat = event_records(e).view(np.uint8)
    starts = np.flatnonzero(np.concatenate(([True], e.service[1:] != e.service[:-1])))
    bounds = np.append(starts, len(e)).tolist()
    done = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        sid = e.service_ids[int(e.service[lo])]
        if not SERVICE_ID.match(sid):
            raise EvidenceError(f"service id {sid!r} cannot name a file")
        data = flat[lo * EVENT_RECORD_SIZE:hi * EVENT_RECORD_SIZE]
        leaves, _ = chunk_leaves(sid, data, e.time_us[lo:hi] // HOUR_US, record_size=EVENT_RECORD_SIZE,
                                 leaf_prefix=EVENTS_LEAF_PREFIX)
        done.append((sid, hi - lo, leaves, merkle_root(leaves), data))
    done.sort(key=lambda d: d[0].encode("ascii"))
    # the chunk leaves are listed (an hour of 5-minute counts is 12 records, so they cost little): a changed count
    # is then named by its hour and records, not only by its file
    entries = [{"service": sid, "file": f"events/{sid}.bin", "intervals": n, "chunks": len(leaves),
                "chunk_leaves": [to_hex(x) for x in leaves], "events_root": to_hex(root)}
               for sid, n, leaves, root, _ in done]
    return entries, {f"events/{sid}.bin": data for sid, _, _, _, data in done}, [d[3] for d in done]


def commit(header: Header, columns: EvidenceColumns, threads: int = 2,
           events: EventColumns | None = None) -> tuple[_Committed, EvidenceColumns]:
    c = columns.canonical()
    if len(c) and not (header.holds_us(int(c.time_us.min())) and header.holds_us(int(c.time_us.max()))):
        raise header.outside("a sample")
    rec = records(c)
    flat = rec.view(np.uint8)
    hours = c.time_us // HOUR_US
    svc_starts = np.flatnonzero(np.concatenate(([True], c.service[1:] != c.service[:-1]))) if len(c) else []
    bounds = np.append(svc_starts, len(c)).tolist()
    parts = [(c.service_ids[int(c.service[lo])], lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
    for sid, _, _ in parts:
        if not SERVICE_ID.match(sid):
            raise EvidenceError(f"service id {sid!r} cannot name a file (lower-case letters, digits, '_' and '-', "
                                "at most 32)")

    def work(part):
        sid, lo, hi = part
        leaves, _ = chunk_leaves(sid, flat[lo * RECORD_SIZE:hi * RECORD_SIZE], hours[lo:hi])
        return sid, lo, hi, len(leaves), merkle_root(leaves)

    # keccak releases the GIL for inputs over 2 KiB, so larger chunks hash on both threads
    if threads > 1 and len(parts) > 1:
        with ThreadPoolExecutor(threads) as pool:
            done = list(pool.map(work, parts))
    else:
        done = [work(p) for p in parts]
    done.sort(key=lambda d: d[0].encode("ascii"))
    if len({d[0] for d in done}) != len(done):
        raise EvidenceError("two service indexes have the same service id")
    head = header_leaf(*header.fields, coverage=header.coverage)
    rleaf = reasons_leaf(c.reasons)
    event_entries, event_files, event_roots = _commit_events(header, events)
    root = merkle_root([head, rleaf] + [d[4] for d in done] + event_roots)
    entries = [{"service": sid, "file": f"samples/{sid}.bin", "samples": hi - lo, "chunks": k,
                "service_root": to_hex(sroot)} for sid, lo, hi, k, sroot in done]
    files = {f"samples/{sid}.bin": flat[lo * RECORD_SIZE:hi * RECORD_SIZE] for sid, lo, hi, _, _ in done}
    files.update(event_files)
    return _Committed(root, head, rleaf, entries, files, event_entries), c


def files_from_columns(header: Header, columns: EvidenceColumns,
                       events: EventColumns | None = None) -> tuple[dict[str, bytes], bytes]:
    """One file of records per service (and of counts per service measured from them) and manifest.json."""
    committed, c = commit(header, columns, events=events)
    manifest = {"format": FORMAT, "version": VERSION, "scheme": SCHEME, "agreement": header.agreement,
                "chain_id": header.chain_id, "period": header.period, "period_start": header.period_start,
                "period_end": header.period_end, "values": header.values,
                "header_leaf": to_hex(committed.header_leaf), "reasons": list(c.reasons),
                "reasons_leaf": to_hex(committed.reasons_leaf), "services": committed.services,
                "root": to_hex(committed.root)}
    if header.coverage is not None:
        manifest["coverage"] = header.coverage
    if committed.events:
        manifest["events"] = committed.events
    files = dict(committed.files)
    files["manifest.json"] = canonical_json(manifest)
    return files, committed.root


def first_not_increasing(keys: list[np.ndarray]) -> int | None:
    """The first i where row i+1 is not strictly after row i (lexicographic over ``keys``), or None."""
    n = len(keys[0])
    if n < 2:
        return None
    after = np.zeros(n - 1, bool)
    tied = np.ones(n - 1, bool)
    for k in keys:
        a, b = k[:-1], k[1:]
        after |= tied & (b > a)
        tied &= b == a
    bad = np.flatnonzero(~after)
    return int(bad[0]) if len(bad) else None


def _records_of(directory: Path, entry: dict, where: str, folder: str, dtype: np.dtype, count_key: str,
                what: str, findings: list[Finding]) -> tuple[str, bytes, np.ndarray] | None:
    """One service's file of fixed-width records (``folder/<service>.bin``) read and its framing checked against
    its manifest entry: (file name, bytes, records), or None when there is nothing to read."""
    sid = entry["service"]

    def bad(file, msg):
        findings.append(Finding(file, msg))

    if not isinstance(sid, str) or not SERVICE_ID.match(sid):
        bad("manifest.json", f"{where}: service {sid!r} is not a service id")
        return None
    expected = f"{folder}/{sid}.bin"
    if entry["file"] != expected:
        bad("manifest.json", f"{where}: file {entry['file']!r}, expected {expected!r}")
    try:
        data = (directory / expected).read_bytes()
    except OSError as exc:
        bad(expected, f"cannot be read ({exc.strerror or exc})")
        return None
    size = dtype.itemsize
    if len(data) % size:
        bad(expected, f"{len(data)} bytes is not a whole number of {size}-byte records")
    rec = np.frombuffer(data, dtype, count=len(data) // size)
    if len(rec) == 0:
        bad(expected, f"has no records (a service without {what} has no file)")
    if entry[count_key] != len(rec):
        bad("manifest.json", f"{where}: {count_key} {entry[count_key]!r} but {expected} has {len(rec)} records")
    return expected, data, rec


def _first_bad(findings: list[Finding], file: str, size: int):
    """``first(mask, what)``: a finding for the first record the mask marks, saying how many it marks."""
    def first(mask, what):
        hits = np.flatnonzero(mask)
        if len(hits):
            i = int(hits[0])
            findings.append(Finding(file, f"record {i} (byte {i * size}): {what(i)}" +
                                    (f" ({len(hits)} records in all)" if len(hits) > 1 else "")))
    return first


def check_service_file(directory: Path, entry: dict, where: str, m: dict, findings: list[Finding],
                        result: VerifyResult, used: np.ndarray) -> bytes | None:
    """Check one service's records; return its recomputed service root."""
    read = _records_of(directory, entry, where, "samples", RECORD, "samples", "samples", findings)
    if read is None:
        return None
    expected, data, rec = read
    sid, n = entry["service"], len(rec)
    result.samples += n

    def bad(file, msg):
        findings.append(Finding(file, msg))

    t = rec["time_us"].astype(np.uint64)
    st, lat, rid = rec["status"], rec["latency_us"].astype(np.int64), rec["reason"].astype(np.int64)
    first = _first_bad(findings, expected, RECORD_SIZE)

    first(st > 2, lambda i: f"status {st[i]} is not 0 (up), 1 (down) or 2 (unknown)")
    first(rid >= len(m["reasons"]), lambda i: f"reason {rid[i]} but the manifest lists {len(m['reasons'])} reasons")
    lo, hi = m["period_start"] * 1_000_000, m["period_end"] * 1_000_000
    first((t < lo) | (t >= hi), lambda i: f"time {t[i]} µs is outside the period [{m['period_start']}, "
                                          f"{m['period_end']})")
    i = first_not_increasing([t, st, lat, rid]) if n else None
    if i is not None:
        bad(expected, f"record {i + 1} (byte {(i + 1) * RECORD_SIZE}) is not after record {i} (records are sorted "
                      "by time_us, status, latency_us, reason, without duplicates)")
    ok_r = rid[rid < len(used)]
    used[np.unique(ok_r)] = True
    leaves, _ = chunk_leaves(sid, data[:n * RECORD_SIZE], t // np.uint64(HOUR_US))
    if entry["chunks"] != len(leaves):
        bad("manifest.json", f"{where}: chunks {entry['chunks']!r} but {expected} has records in {len(leaves)} hours")
    result.chunks += len(leaves)
    return merkle_root(leaves) if leaves else None


def check_manifest(m: dict, findings: list[Finding]) -> bool:
    def bad(msg):
        findings.append(Finding("manifest.json", msg))

    if not check_manifest_head(m, MANIFEST_KEYS, SCHEME, f"version 2 bundles use {SCHEME!r}", bad, OPTIONAL_KEYS):
        return False
    ok = check_common(m, bad)
    r = m["reasons"]
    if not isinstance(r, list) or not all(isinstance(x, str) for x in r):
        bad("reasons is not a list of strings")
        ok = False
    else:
        try:
            encoded = [x.encode("utf-8") for x in r]
        except UnicodeEncodeError:
            bad("reasons: a reason is not valid Unicode")
            ok = False
        else:
            if any(a >= b for a, b in zip(encoded, encoded[1:])):
                bad("reasons are not sorted by their UTF-8 bytes without repeats")
    s = m["services"]
    if not isinstance(s, list) or not all(isinstance(e, dict) and set(e) == SERVICE_KEYS for e in s):
        bad(f"services is not a list of objects with keys {sorted(SERVICE_KEYS)}")
        ok = False
    for k in ("header_leaf", "reasons_leaf", "root"):
        if not isinstance(m[k], str):
            bad(f"{k} is not a string")
            ok = False
    if "events" in m:
        e = m["events"]
        if not isinstance(e, list) or not e or not all(isinstance(x, dict) and set(x) == EVENT_KEYS for x in e):
            bad(f"events is not a non-empty list of objects with keys {sorted(EVENT_KEYS)}")
            ok = False
    return ok


def check_events_file(directory: Path, entry: dict, where: str, m: dict, findings: list[Finding],
                      result: VerifyResult) -> bytes | None:
    """Check one service's counts; return its recomputed events root."""
    read = _records_of(directory, entry, where, "events", EVENT_RECORD, "intervals", "counts", findings)
    if read is None:
        return None
    expected, data, rec = read
    sid, n = entry["service"], len(rec)

    def bad(file, msg):
        findings.append(Finding(file, msg))

    t = rec["time_us"].astype(np.uint64)
    good, tol, total = (rec[k].astype(object) for k in ("good", "tolerating", "total"))
    first = _first_bad(findings, expected, EVENT_RECORD_SIZE)

    lo, hi = m["period_start"] * 1_000_000, m["period_end"] * 1_000_000
    first((t < lo) | (t >= hi), lambda i: f"time {t[i]} µs is outside the period [{m['period_start']}, "
                                          f"{m['period_end']})")
    first(np.array([g + x > n_ for g, x, n_ in zip(good, tol, total)], bool),
          lambda i: f"good {good[i]} + tolerating {tol[i]} is more than total {total[i]}")
    first(np.array([max(g, x, n_) > MAX_COUNT for g, x, n_ in zip(good, tol, total)], bool),
          lambda i: f"a count above {MAX_COUNT:,}")
    if n > 1:
        later = np.flatnonzero(t[1:] <= t[:-1])
        if len(later):
            i = int(later[0])
            bad(expected, f"record {i + 1} (byte {(i + 1) * EVENT_RECORD_SIZE}) is not after record {i} (records "
                          "are sorted by time_us, one per interval)")
    result.intervals += n
    hours = t // np.uint64(HOUR_US)
    leaves, hour_starts = chunk_leaves(sid, data[:n * EVENT_RECORD_SIZE], hours,
                                       record_size=EVENT_RECORD_SIZE, leaf_prefix=EVENTS_LEAF_PREFIX)
    if entry["chunks"] != len(leaves):
        bad("manifest.json", f"{where}: chunks {entry['chunks']!r} but {expected} has records in {len(leaves)} hours")
    listed = [unhex(x) for x in entry["chunk_leaves"]] if isinstance(entry["chunk_leaves"], list) else None
    if listed is None or any(x is None for x in listed):
        bad("manifest.json", f"{where}: chunk_leaves is not a list of 0x and 64 hex digits")
    elif listed and to_hex(merkle_root(listed)) != entry["events_root"]:
        bad("manifest.json", f"{where}: chunk_leaves do not hash to its events_root")
    elif len(listed) == len(leaves):
        # the manifest is consistent with itself: the hours whose records changed are the file's
        starts = np.flatnonzero(np.concatenate(([True], hours[1:] != hours[:-1]))).tolist() + [n]
        for k, (claimed, got) in enumerate(zip(listed, leaves)):
            if claimed != got:
                bad(expected, f"the counts of hour {hour_iso(hour_starts[k])} (records {starts[k]}..{starts[k + 1] - 1}, "
                              f"bytes {starts[k] * EVENT_RECORD_SIZE}..{starts[k + 1] * EVENT_RECORD_SIZE - 1}) hash to "
                              f"chunk leaf {to_hex(got)}, not the manifest's {to_hex(claimed)}: a count was changed")
    return merkle_root(leaves) if leaves else None


def verify(directory: Path, m: dict, result: VerifyResult, expected_root) -> None:
    findings = result.findings
    if not check_manifest(m, findings):
        return
    check_agreement(m, findings)

    def bad(msg):
        findings.append(Finding("manifest.json", msg))

    head = header_leaf(m["agreement"], m["chain_id"], m["period"], m["period_start"], m["period_end"],
                       m["values"], m.get("coverage"))
    if m["header_leaf"] != to_hex(head):
        bad(f"header_leaf {m['header_leaf']} but agreement, chain_id, period, bounds, values and coverage hash to "
            f"{to_hex(head)}")
    try:
        rleaf = reasons_leaf(m["reasons"])
    except UnicodeEncodeError:
        rleaf = b"\0" * 32
    if m["reasons_leaf"] != to_hex(rleaf):
        bad(f"reasons_leaf {m['reasons_leaf']} but the reasons hash to {to_hex(rleaf)}")
    used = np.zeros(len(m["reasons"]), bool)
    listed = {"manifest.json"}
    stated, computed = [], []
    for i, entry in enumerate(m["services"]):
        listed.add(str(entry["file"]))
        listed.add(f"samples/{entry['service']}.bin")
        sroot = check_service_file(directory, entry, f"services[{i}]", m, findings, result, used)
        claimed = unhex(entry["service_root"])
        if claimed is None:
            bad(f"services[{i}]: service_root {entry['service_root']!r} is not 0x and 64 hex digits")
        stated.append(claimed or b"\0" * 32)
        computed.append(sroot or b"\0" * 32)
    ids = [str(e["service"]) for e in m["services"]]
    if [i.encode() for i in ids] != sorted({i.encode() for i in ids}):
        bad("services are not sorted by service id without repeats")
    event_entries = m.get("events", [])
    event_stated, event_computed = [], []
    for i, entry in enumerate(event_entries):
        listed.add(str(entry["file"]))
        listed.add(f"events/{entry['service']}.bin")
        eroot = check_events_file(directory, entry, f"events[{i}]", m, findings, result)
        claimed = unhex(entry["events_root"])
        if claimed is None:
            bad(f"events[{i}]: events_root {entry['events_root']!r} is not 0x and 64 hex digits")
        elif eroot is not None and claimed != eroot:
            findings.append(Finding(f"events/{entry['service']}.bin", f"its records hash to events root "
                                                                       f"{to_hex(eroot)}, not {entry['events_root']}"))
        event_stated.append(claimed or b"\0" * 32)
        event_computed.append(eroot or b"\0" * 32)
    event_ids = [str(e["service"]) for e in event_entries]
    if [i.encode() for i in event_ids] != sorted({i.encode() for i in event_ids}):
        bad("events are not sorted by service id without repeats")
    if len(used) and not used.all():
        k = int(np.flatnonzero(~used)[0])
        bad(f"reasons[{k}] {m['reasons'][k]!r} is used by no record (only used reasons are listed)")
    # Which side is wrong when a file and its manifest entry disagree: the manifest is consistent with
    # its own root (then the file changed) or the file is (then the manifest changed).
    claimed_head = unhex(m["header_leaf"]) or head
    claimed_rleaf = unhex(m["reasons_leaf"]) or rleaf
    root_stated = merkle_root([claimed_head, claimed_rleaf] + stated + event_stated)
    root = merkle_root([head, rleaf] + computed + event_computed)
    stated_consistent = to_hex(root_stated) == m["root"]
    for i, (a, b) in enumerate(zip(stated, computed)):
        if a == b:
            continue
        name = f"samples/{m['services'][i]['service']}.bin"
        swapped = merkle_root([claimed_head, claimed_rleaf] + stated[:i] + [b] + stated[i + 1:] + event_stated)
        if stated_consistent:
            findings.append(Finding(name, f"its records hash to service root {to_hex(b)} but the manifest says "
                                          f"{m['services'][i]['service_root']}"))
        elif to_hex(swapped) == m["root"]:
            bad(f"services[{i}]: service_root {m['services'][i]['service_root']} but {name} hashes to {to_hex(b)}")
        else:
            findings.append(Finding(name, f"its records hash to service root {to_hex(b)}, not "
                                          f"{m['services'][i]['service_root']}"))
            bad(f"services[{i}]: service_root {m['services'][i]['service_root']} disagrees with {name}")
    result.root = to_hex(root)
    if m["root"] != to_hex(root_stated):
        bad(f"root {m['root']} but its header, reasons, service and events roots hash to {to_hex(root_stated)}")
    if expected_root is not None:
        want = expected_root if isinstance(expected_root, str) else to_hex(bytes(expected_root))
        if want.lower() != to_hex(root):
            bad(f"the bundle hashes to {to_hex(root)}, not the expected root {want}")
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if path.is_file() and rel not in listed:
            findings.append(Finding(rel, "is not listed in manifest.json"))


def files_from_samples(header: Header, samples: Iterable[Sample]) -> tuple[dict[str, bytes], bytes]:
    samples = list(samples)
    for s in samples:
        if not header.holds_us(seconds_to_us(s.time)):
            raise header.outside(f"sample at {s.time}")
    return files_from_columns(header, EvidenceColumns.from_samples(samples))


def prove(bundle_dir: Path, m: dict, service: str, hour: int) -> Proof:
    entries = m["services"]
    ids = [e["service"] for e in entries]
    if service not in ids:
        raise EvidenceError(f"{bundle_dir}: no samples of service {service!r}; services with samples: "
                            f"{', '.join(ids) or 'none'}")
    position = ids.index(service)
    data = (bundle_dir / f"samples/{service}.bin").read_bytes()
    rec = np.frombuffer(data, RECORD, count=len(data) // RECORD_SIZE)
    leaves, hours = chunk_leaves(service, data[:len(rec) * RECORD_SIZE],
                                  rec["time_us"].astype(np.uint64) // np.uint64(HOUR_US))
    if hour not in hours:
        raise EvidenceError(f"{bundle_dir}: no chunk for service {service!r} at {hour} ({hour_iso(hour)}); "
                            + hours_list(service, hours))
    index = hours.index(hour)
    inner = tree_levels(leaves)
    top = tree_levels([bytes.fromhex(m["header_leaf"][2:]), bytes.fromhex(m["reasons_leaf"][2:])] +
                      [bytes.fromhex(e["service_root"][2:]) for e in entries] +
                      [bytes.fromhex(e["events_root"][2:]) for e in m.get("events", [])])
    siblings = proof_from_levels(inner, index) + proof_from_levels(top, 2 + position)
    return Proof(service, hour, leaves[index], siblings, top[-1][0])


def load_columns(bundle_dir: Path, m: dict) -> EvidenceColumns:
    ids, parts = [], []
    for e in m["services"]:
        data = (bundle_dir / f"samples/{e['service']}.bin").read_bytes()
        ids.append(e["service"])
        parts.append(np.frombuffer(data, RECORD, count=len(data) // RECORD_SIZE))
    rec = np.concatenate(parts) if parts else np.zeros(0, RECORD)
    lat = rec["latency_us"].astype(np.int64)
    lat[lat == NO_LATENCY] = -1
    return EvidenceColumns(tuple(ids), np.repeat(np.arange(len(ids), dtype=np.int64), [len(p) for p in parts]),
                           rec["time_us"].astype(np.int64), rec["status"].astype(np.int8), lat,
                           rec["reason"].astype(np.int64), tuple(m["reasons"]))


def load_events(bundle_dir: Path, m: dict) -> EventColumns:
    """The counts of a bundle (none for one without an ``events`` key), service ids as the manifest lists them."""
    ids, parts = [], []
    for e in m.get("events", []):
        data = (bundle_dir / f"events/{e['service']}.bin").read_bytes()
        ids.append(e["service"])
        parts.append(np.frombuffer(data, EVENT_RECORD, count=len(data) // EVENT_RECORD_SIZE))
    rec = np.concatenate(parts) if parts else np.zeros(0, EVENT_RECORD)
    if len(rec) and max(int(rec[k].max()) for k in ("good", "tolerating", "total", "time_us")) >= 2**63:
        raise EvidenceError(f"{bundle_dir}: a count or time does not fit 63 bits")
    return EventColumns(tuple(ids), np.repeat(np.arange(len(ids), dtype=np.int64), [len(p) for p in parts]),
                        *(rec[k].astype(np.int64) for k in ("time_us", "good", "tolerating", "total")))
