"""Version 1 bundles: one CSV chunk file per (service, hour), manifest.json and tree.json. Still verified,
proved and loaded; written on request (``version=1``). docs/evidence.md has the format."""

from __future__ import annotations

import functools
import re
from bisect import bisect_right
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from smartsla.constants import HOUR, HOUR_US, SERVICE_ID
from smartsla.encoding import seconds_to_us, to_hex
from smartsla.evidence.columns import EvidenceColumns
from smartsla.evidence.format import (
    FORMAT,
    MAX_TIME,
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
    is_int,
    load_canonical,
    unhex,
)
from smartsla.evidence.merkle import Proof, keccak, proof_from_levels, tree_levels
from smartsla.measure.samples import STATUS_NAMES, Sample, Status

SCHEME = SCHEMES[1]
CHUNK_HEADER = b"time_us,status,latency_us,reason\n"
HEADER_LEAF_PREFIX = SCHEME.encode() + b"/header\0"
CHUNK_LEAF_PREFIX = SCHEME.encode() + b"/chunk\0"
_LINE = re.compile(r"^(0|[1-9][0-9]*),(up|down|unknown),(0|[1-9][0-9]*)?,([^,]*)$")
MANIFEST_KEYS = {"format", "scheme", "agreement", "chain_id", "period", "period_start", "period_end",
                 "values", "header_leaf", "chunks", "root"}


CHUNK_KEYS = {"service", "hour_start", "hour", "file", "samples", "chunk_hash", "leaf"}


def _literal(byte: int) -> bool:
    return 0x20 <= byte <= 0x7E and byte not in b'%,"'


@functools.lru_cache(maxsize=4096)  # reasons repeat ("200 in 12 ms"): encode each once
def encode_reason(reason: str) -> str:
    """UTF-8, then every byte outside printable ASCII, and ``%`` ``,`` ``"``, as ``%XX`` (upper-case hex)."""
    return "".join(chr(b) if _literal(b) else f"%{b:02X}" for b in reason.encode("utf-8"))


def decode_reason(text: str) -> str:
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "%":
            out.append(int(text[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(ord(text[i]))
            i += 1
    return out.decode("utf-8")


def sample_line(s: Sample) -> bytes:
    latency = "" if s.latency_ms is None else str(round(s.latency_ms * 1000))
    return f"{seconds_to_us(s.time)},{Status(s.status).value},{latency},{encode_reason(s.reason or '')}\n".encode("ascii")


def chunk_bytes(samples: Iterable[Sample]) -> bytes:
    """The canonical chunk: the fixed header line, then one line per distinct sample by (time, line bytes)."""
    lines = {sample_line(s) for s in samples}
    return CHUNK_HEADER + b"".join(sorted(lines, key=lambda line: (int(line.split(b",", 1)[0]), line)))


def header_leaf(*args) -> bytes:
    return keccak(HEADER_LEAF_PREFIX + header_bytes(*args))


def chunk_leaf(service: str, hour_start: int, chunk_hash: bytes) -> bytes:
    return keccak(CHUNK_LEAF_PREFIX + service.encode("ascii") + b"\0" + hour_start.to_bytes(8, "big") + chunk_hash)


STATUS_BYTES = [name.encode("ascii") for name in STATUS_NAMES]
_POW10 = 10 ** np.arange(18, -1, -1, dtype=np.int64)
_QUADS = np.frombuffer(b"".join(b"%04d" % i for i in range(10_000)), np.uint32)  # 4 ASCII digits each


def _digits(values: np.ndarray, present: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decimal digits of non-negative int64s, right-aligned in a (n, width) uint8 matrix, and which are real."""
    top = int(values.max()) if len(values) else 0
    groups = max(1, -(-len(str(top)) // 4))
    quads = np.empty((len(values), groups), np.uint32)
    rest = values
    for j in range(groups - 1, -1, -1):
        rest, low = np.divmod(rest, 10_000)
        quads[:, j] = _QUADS[low]
    out = quads.view(np.uint8).reshape(len(values), groups * 4)
    low_bound = int(values.min()) if len(values) else 0
    if present is None and len(str(low_bound)) == groups * 4:
        return out, np.ones(out.shape, bool)  # every value has all the digits: nothing to hide
    # a digit is real from the first non-zero one on; the last one always (so 0 prints as "0")
    nonzero = out != 48
    nonzero[:, -1] = True
    mask = np.logical_or.accumulate(nonzero, axis=1)
    if present is not None:
        mask &= present[:, None]
    return out, mask


def _table(entries: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    width = max(1, max(map(len, entries)))
    out = np.zeros((len(entries), width), np.uint8)
    mask = np.zeros((len(entries), width), bool)
    for i, e in enumerate(entries):
        out[i, :len(e)] = np.frombuffer(e, np.uint8)
        mask[i, :len(e)] = True
    return out, mask


def format_lines(t_us, status, lat_us, rid, reason_bytes) -> tuple[bytes, np.ndarray]:
    """All lines concatenated, and each line's end offset."""
    n = len(t_us)
    # (digits and mask per row) for numbers; (table, row index per sample) for statuses and reasons
    fields = [(_digits(t_us), None), (_table(STATUS_BYTES), status),
              (_digits(np.maximum(lat_us, 0), lat_us >= 0), None), (_table(reason_bytes), rid)]
    width = sum(d.shape[1] for (d, _), _ in fields) + len(fields)
    mat = np.empty((n, width), np.uint8)
    mask = np.ones((n, width), bool)
    col = 0
    for ((d, m), index), sep in zip(fields, b",,,\n"):
        w = d.shape[1]
        if index is None:
            mat[:, col:col + w], mask[:, col:col + w] = d, m
        else:
            np.take(d, index, axis=0, out=mat[:, col:col + w])
            np.take(m, index, axis=0, out=mask[:, col:col + w])
        col += w
        mat[:, col] = sep
        col += 1
    flat = mat[mask].tobytes()
    return flat, np.cumsum(mask.sum(1, dtype=np.int64))


def chunks_from_columns(service_ids, svc, t_us, status, lat_us, rid, reasons, block=500_000, threads=2):
    """{(service, hour_start): chunk bytes} for columns; reasons[rid] are str. Same bytes as chunk_bytes()."""
    if len(t_us) == 0:
        return {}
    reason_bytes = [encode_reason(r).encode("ascii") for r in reasons]
    status = np.asarray(status, np.int64)
    rid = np.asarray(rid, np.int64)
    # one int64 key (service, time since the first sample) sorts as (service, time); numpy's stable sort
    # finds the already-sorted runs a store hands out
    t0 = int(t_us.min()) if len(t_us) else 0
    key = (np.asarray(svc, np.int64) << 44) | (t_us - t0)
    order = np.argsort(key, kind="stable")
    key, svc, t_us, status, lat_us, rid = key[order], svc[order], t_us[order], status[order], lat_us[order], rid[order]
    hour = t_us // HOUR_US
    starts = np.flatnonzero(np.r_[True, (svc[1:] != svc[:-1]) | (hour[1:] != hour[:-1])])
    bounds = np.r_[starts, len(t_us)].tolist()
    keys = list(zip((service_ids[s] for s in svc[starts].tolist()), (hour[starts] * HOUR).tolist()))
    # equal (service, time): the spec orders them by line bytes and drops identical lines; rare, so in Python
    tied = np.flatnonzero(key[1:] == key[:-1])
    # blocks of whole chunks, formatted and hashed on worker threads (numpy and keccak release the GIL)
    blocks = []
    c = 0
    while c < len(starts):
        e = max(bisect_right(bounds, bounds[c] + block) - 1, c + 1)
        blocks.append((c, e))
        c = e

    def work(ce):
        c, e = ce
        lo, hi = bounds[c], bounds[e]
        flat, ends = format_lines(t_us[lo:hi], status[lo:hi], lat_us[lo:hi], rid[lo:hi], reason_bytes)
        ends = ends.tolist()
        out = []
        for k in range(c, e):
            a, b = bounds[k] - lo, bounds[k + 1] - lo
            out.append(flat[(ends[a - 1] if a else 0):ends[b - 1]])
        return out

    with ThreadPoolExecutor(threads) as pool:
        bodies = [body for part in pool.map(work, blocks) for body in part]
    out = dict(zip(keys, bodies))
    if len(tied):
        for key_ in {keys[bisect_right(bounds, i) - 1] for i in tied.tolist()}:
            lines = {l + b"\n" for l in out[key_].split(b"\n")[:-1]}
            out[key_] = b"".join(sorted(lines, key=lambda l: (int(l.split(b",", 1)[0]), l)))
    return {k: CHUNK_HEADER + v for k, v in out.items()}


def files_from_samples(header: Header, samples: Iterable[Sample]) -> tuple[dict[str, bytes], bytes]:
    chunks: dict[tuple[str, int], list[Sample]] = {}
    for s in samples:
        if not SERVICE_ID.match(s.service):
            raise EvidenceError(f"service id {s.service!r} cannot name a chunk file (lower-case letters, digits, "
                                "'_' and '-', at most 32)")
        t = seconds_to_us(s.time)
        if not header.holds_us(t):
            raise header.outside(f"sample at {s.time}")
        chunks.setdefault((s.service, t // HOUR_US * HOUR), []).append(s)
    return files(header, {key: chunk_bytes(group) for key, group in chunks.items()})


def files_from_columns(header: Header, columns: EvidenceColumns) -> tuple[dict[str, bytes], bytes]:
    c = columns
    service = np.asarray(c.service, np.int64)
    bad = [i for i in sorted(set(service.tolist())) if not SERVICE_ID.match(c.service_ids[i])]
    if bad:
        raise EvidenceError(f"service id {c.service_ids[bad[0]]!r} cannot name a chunk file")
    time_us = np.asarray(c.time_us, np.int64)
    if len(time_us) and not (header.holds_us(int(time_us.min())) and header.holds_us(int(time_us.max()))):
        raise header.outside("a sample")
    datas = chunks_from_columns(list(c.service_ids), service, time_us, np.asarray(c.status, np.int64),
                                np.asarray(c.latency_us, np.int64), np.asarray(c.reason, np.int64), list(c.reasons))
    return files(header, datas)


def files(header: Header, datas: dict[tuple[str, int], bytes]) -> tuple[dict[str, bytes], bytes]:
    """One CSV file per (service, hour) chunk, manifest.json and tree.json."""
    head = header_leaf(*header.fields)
    files: dict[str, bytes] = {}
    entries = []
    for (service, hour_start) in sorted(datas):
        data = datas[(service, hour_start)]
        name = f"chunks/{service}/{hour_start}.csv"
        files[name] = data
        digest = keccak(data)
        entries.append({"service": service, "hour_start": hour_start, "hour": hour_iso(hour_start), "file": name,
                        "samples": data.count(b"\n") - 1, "chunk_hash": to_hex(digest),
                        "leaf": to_hex(chunk_leaf(service, hour_start, digest))})
    levels = tree_levels([head] + [bytes.fromhex(e["leaf"][2:]) for e in entries])
    root = levels[-1][0]
    manifest = {"format": FORMAT, "scheme": SCHEME, "agreement": header.agreement, "chain_id": header.chain_id,
                "period": header.period, "period_start": header.period_start, "period_end": header.period_end,
                "values": header.values, "header_leaf": to_hex(head), "chunks": entries, "root": to_hex(root)}
    files["manifest.json"] = canonical_json(manifest)
    files["tree.json"] = canonical_json({"levels": [[to_hex(n) for n in level] for level in levels]})
    return files, root


def check_manifest(m, findings: list[Finding]) -> bool:
    """Shape of the manifest; False if it is too broken to check the rest."""
    def bad(msg):
        findings.append(Finding("manifest.json", msg))

    if not isinstance(m, dict):
        bad("is not a JSON object")
        return False
    if not check_manifest_head(m, MANIFEST_KEYS, SCHEME,
                               f"this verifier knows {SCHEMES[1]!r} (version 1) and {SCHEMES[2]!r} (version 2)", bad):
        return False
    ok = check_common(m, bad)
    if not isinstance(m["chunks"], list) or not all(isinstance(c, dict) and set(c) == CHUNK_KEYS for c in m["chunks"]):
        bad(f"chunks is not a list of objects with keys {sorted(CHUNK_KEYS)}")
        ok = False
    for k in ("header_leaf", "root"):
        if not isinstance(m[k], str):
            bad(f"{k} is not a string")
            ok = False
    return ok


def check_chunk(directory: Path, entry: dict, index: int, m: dict, findings: list[Finding],
                 result: VerifyResult) -> bytes | None:
    """Check one chunk file against its manifest entry; return its recomputed leaf."""
    service, hour_start, name = entry["service"], entry["hour_start"], entry["file"]

    def bad(file, msg):
        findings.append(Finding(file, msg))

    where = f"chunks[{index}]"
    if not isinstance(service, str) or not SERVICE_ID.match(service):
        bad("manifest.json", f"{where}: service {service!r} is not a service id")
        return None
    if not is_int(hour_start) or not 0 <= hour_start < MAX_TIME or hour_start % HOUR:
        bad("manifest.json", f"{where}: hour_start {hour_start!r} is not the start of an hour")
        return None
    expected_name = f"chunks/{service}/{hour_start}.csv"
    if name != expected_name:
        bad("manifest.json", f"{where}: file {name!r}, expected {expected_name!r}")
    if entry["hour"] != hour_iso(hour_start):
        bad("manifest.json", f"{where}: hour {entry['hour']!r} but hour_start {hour_start} is {hour_iso(hour_start)}")
    if not (hour_start + HOUR > m["period_start"] and hour_start < m["period_end"]):
        bad("manifest.json", f"{where}: hour {hour_iso(hour_start)} does not overlap the period")
    try:
        data = (directory / expected_name).read_bytes()
    except OSError as exc:
        bad(expected_name, f"cannot be read ({exc.strerror or exc})")
        return None
    digest = keccak(data)
    leaf = chunk_leaf(service, hour_start, digest)
    if entry["chunk_hash"] != to_hex(digest):
        # Blame the side that disagrees with the entry's leaf (written from the original chunk hash).
        claimed = unhex(entry["chunk_hash"])
        if entry["leaf"] == to_hex(leaf) or claimed is None:
            bad("manifest.json", f"{where}: chunk_hash {entry['chunk_hash']} but {expected_name} hashes to "
                                 f"{to_hex(digest)}")
        else:
            bad(expected_name, f"hashes to {to_hex(digest)} but the manifest says {entry['chunk_hash']}")
            if entry["leaf"] != to_hex(chunk_leaf(service, hour_start, claimed)):
                bad("manifest.json", f"{where}: leaf {entry['leaf']} matches neither the chunk nor chunk_hash")
    elif entry["leaf"] != to_hex(leaf):
        bad("manifest.json", f"{where}: leaf {entry['leaf']} but the chunk's leaf is {to_hex(leaf)}")

    # The content, so a bundle built by something other than build_bundle is held to the same rules.
    if not data.startswith(CHUNK_HEADER):
        bad(expected_name, f"does not start with the header line {CHUNK_HEADER.decode().strip()!r}")
        return leaf
    body = data[len(CHUNK_HEADER):]
    if body and not body.endswith(b"\n"):
        bad(expected_name, "the last line does not end with a newline")
    lines = body.split(b"\n")[:-1] if body else []
    previous = None
    for n, raw in enumerate(lines, 2):
        text = raw.decode("ascii", errors="replace")
        match = _LINE.match(text)
        if match is None or "\ufffd" in text:
            bad(expected_name, f"line {n}: {text!r} is not time_us,status,latency_us,reason")
            continue
        t = int(match.group(1))
        try:
            canonical = encode_reason(decode_reason(match.group(4))) == match.group(4)
        except (ValueError, UnicodeDecodeError):
            canonical = False
        if not canonical:
            bad(expected_name, f"line {n}: reason {match.group(4)!r} is not canonically encoded")
        if not hour_start * 1_000_000 <= t < (hour_start + HOUR) * 1_000_000:
            bad(expected_name, f"line {n}: time {t} µs is outside the chunk's hour {hour_iso(hour_start)}")
        if not m["period_start"] * 1_000_000 <= t < m["period_end"] * 1_000_000:
            bad(expected_name, f"line {n}: time {t} µs is outside the period [{m['period_start']}, {m['period_end']})")
        key = (t, raw)
        if previous is not None and key <= previous:
            bad(expected_name, f"line {n}: not after line {n - 1} (lines are sorted by time, then bytes, "
                               "without duplicates)")
        previous = key
        result.samples += 1
    if entry["samples"] != len(lines):
        bad("manifest.json", f"{where}: samples {entry['samples']!r} but {expected_name} has {len(lines)}")
    return leaf


def verify(directory: Path, m: dict, result: VerifyResult, expected_root) -> None:
    findings = result.findings
    if not check_manifest(m, findings):
        return

    check_agreement(m, findings)
    head = header_leaf(m["agreement"], m["chain_id"], m["period"], m["period_start"], m["period_end"], m["values"])
    if m["header_leaf"] != to_hex(head):
        findings.append(Finding("manifest.json", f"header_leaf {m['header_leaf']} but agreement, chain_id, period, "
                                                 f"bounds and values hash to {to_hex(head)}"))
    leaves = [head]
    listed = {"manifest.json", "tree.json"}
    keys = []
    for i, entry in enumerate(m["chunks"]):
        leaf = check_chunk(directory, entry, i, m, findings, result)
        listed.add(str(entry["file"]))
        keys.append((str(entry["service"]), entry["hour_start"] if is_int(entry["hour_start"]) else -1))
        if leaf is not None:
            leaves.append(leaf)
    result.chunks = len(m["chunks"])
    if keys != sorted(set(keys)):
        findings.append(Finding("manifest.json", "chunks are not sorted by (service, hour_start) without repeats"))

    levels = tree_levels(leaves)
    root = levels[-1][0]
    result.root = to_hex(root)
    if m["root"] != to_hex(root):
        findings.append(Finding("manifest.json", f"root {m['root']} but the bundle hashes to {to_hex(root)}"))
    if expected_root is not None:
        want = expected_root if isinstance(expected_root, str) else to_hex(bytes(expected_root))
        if want.lower() != to_hex(root):
            findings.append(Finding("manifest.json", f"the bundle hashes to {to_hex(root)}, not the expected root {want}"))

    tree = load_canonical(directory, "tree.json", findings)
    if tree is not None:
        expected = [[to_hex(n) for n in level] for level in levels]
        got = tree.get("levels") if isinstance(tree, dict) else None
        if not isinstance(tree, dict) or set(tree) != {"levels"} or not isinstance(got, list):
            findings.append(Finding("tree.json", 'expected {"levels": [[leaf, ...], ..., [root]]}'))
        elif got != expected:
            findings.append(Finding("tree.json", first_tree_difference(got, expected)))

    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if path.is_file() and rel not in listed:
            findings.append(Finding(rel, "is not listed in manifest.json"))


def first_tree_difference(got: list, expected: list[list[str]]) -> str:
    if len(got) != len(expected):
        return f"{len(got)} levels, expected {len(expected)}"
    for depth, (g, e) in enumerate(zip(got, expected)):
        if not isinstance(g, list) or len(g) != len(e):
            return f"level {depth} has {len(g) if isinstance(g, list) else '?'} nodes, expected {len(e)}"
        for i, (a, b) in enumerate(zip(g, e)):
            if a != b:
                return f"level {depth} node {i} is {a}, expected {b}"
    return "differs"


def prove(bundle_dir: Path, m: dict, service: str, hour: int) -> Proof:
    try:
        leaves = [bytes.fromhex(m["header_leaf"][2:])] + [bytes.fromhex(c["leaf"][2:]) for c in m["chunks"]]
        keys = [(c["service"], c["hour_start"]) for c in m["chunks"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EvidenceError(f"{bundle_dir}: cannot read the bundle ({exc})") from None
    if (service, hour) not in keys:
        have = sorted({s for s, _ in keys})
        if service in have:
            raise EvidenceError(f"{bundle_dir}: no chunk for service {service!r} at {hour} ({hour_iso(hour)}); "
                                + hours_list(service, [h for s, h in keys if s == service]))
        raise EvidenceError(f"{bundle_dir}: no chunk for service {service!r} at {hour} ({hour_iso(hour)}); "
                            f"services with chunks: {', '.join(have) or 'none'}")
    index = 1 + keys.index((service, hour))
    levels = tree_levels(leaves)
    return Proof(service, hour, leaves[index], proof_from_levels(levels, index), levels[-1][0])


def load_columns(bundle_dir: Path, m: dict) -> EvidenceColumns:
    samples = []
    for c in m["chunks"]:
        for line in (bundle_dir / c["file"]).read_bytes().split(b"\n")[1:-1]:
            t, status, latency, reason = line.decode("ascii").split(",")
            samples.append(Sample(int(t) / 1_000_000, c["service"], Status(status),
                                  None if latency == "" else int(latency) / 1000, decode_reason(reason)))
    return EvidenceColumns.from_samples(samples)
