"""Evidence bundles: the samples behind a period's report, committed to by the report's evidence root.

Version 2 (written by the oracle): a directory with ``manifest.json`` and ``samples/<service>.bin``, each a
service's samples as fixed-width 17-byte big-endian records in canonical order. The root is a keccak Merkle
root over a header leaf (agreement, chain id, period, bounds, values), a reasons leaf (the probe texts the
records index) and one service root per service, itself the root over that service's (service, hour) chunk
leaves; so every byte of the bundle is pinned by the 32 bytes that go on-chain in the signed report. Version 1
(CSV chunk files and tree.json) is still verified and loaded. Format and hashing: docs/evidence.md.

Pairs are hashed sorted (``keccak(min(a,b) ++ max(a,b))``), as OpenZeppelin's ``MerkleProof`` does,
so a proof is a plain list of siblings that a contract can check with ``MerkleProof.verify``.

For an auditor: :func:`load_bundle` (header and per-service columns, for ``smartsla.periods.compute_periods``)
and :func:`verify_bundle`.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import re
import shutil
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import sha3

from smartsla.constants import ADDRESS_RE, HOUR, HOUR_US, NO_LATENCY, SERVICE_ID
from smartsla.encoding import address_key, seconds_to_us, to_hex
from smartsla.measure.periods import SampleColumns, is_ordered
from smartsla.measure.samples import Sample, Status

SCHEME = "smart-sla/evidence/v1"
FORMAT = "smart-sla-evidence"
CHUNK_HEADER = b"time_us,status,latency_us,reason\n"
HEADER_LEAF_PREFIX = SCHEME.encode() + b"/header\0"
CHUNK_LEAF_PREFIX = SCHEME.encode() + b"/chunk\0"
MAX_TIME = 253402300800  # 10000-01-01: beyond it there is no ISO hour to print
_AGREEMENT = re.compile(r'^[\x20-\x7e]{1,200}$')
_LINE = re.compile(r"^(0|[1-9][0-9]*),(up|down|unknown),(0|[1-9][0-9]*)?,([^,]*)$")
MANIFEST_KEYS = {"format", "scheme", "agreement", "chain_id", "period", "period_start", "period_end",
                 "values", "header_leaf", "chunks", "root"}
CHUNK_KEYS = {"service", "hour_start", "hour", "file", "samples", "chunk_hash", "leaf"}


def keccak(data) -> bytes:
    # safe-pysha3 directly: eth_utils.keccak costs ~15 us a call in dispatch, 8x the hash of a tree node
    return sha3.keccak_256(data).digest()


class EvidenceError(Exception):
    """Bad input to the evidence functions (not a finding about a bundle's contents)."""


class BundleExistsError(EvidenceError):
    """The bundle directory already holds a different bundle."""


# -- canonical encoding ----------------------------------------------------------------------------

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


def header_bytes(agreement: str, chain_id: int, period: int, period_start: int, period_end: int,
                 values: dict[str, int] | None, scheme: str = SCHEME) -> bytes:
    doc = {"agreement": agreement, "chain_id": chain_id, "period": period, "period_end": period_end,
           "period_start": period_start, "scheme": scheme, "values": values}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def header_leaf(*args) -> bytes:
    return keccak(HEADER_LEAF_PREFIX + header_bytes(*args))


def chunk_leaf(service: str, hour_start: int, chunk_hash: bytes) -> bytes:
    return keccak(CHUNK_LEAF_PREFIX + service.encode("ascii") + b"\0" + hour_start.to_bytes(8, "big") + chunk_hash)


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b if a <= b else b + a)


def tree_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """All levels, leaves first, root last. An odd last node moves up unchanged."""
    if not leaves:
        raise EvidenceError("a tree needs at least one leaf")
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        level = levels[-1]
        nxt = [hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        levels.append(nxt)
    return levels


def _proof_from_levels(levels: list[list[bytes]], index: int) -> list[bytes]:
    proof = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index //= 2
    return proof


def verify_proof(leaf: bytes, proof: Iterable[bytes], root: bytes) -> bool:
    node = bytes(leaf)
    for sibling in proof:
        node = hash_pair(node, bytes(sibling))
    return node == bytes(root)


def canonical_json(doc) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")


def _unhex(text) -> bytes | None:
    if isinstance(text, str) and re.fullmatch(r"0x[0-9a-f]{64}", text):
        return bytes.fromhex(text[2:])
    return None


def hour_iso(hour_start: int) -> str:
    return datetime.fromtimestamp(hour_start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalize_agreement(agreement: str) -> str:
    agreement = str(agreement)
    if ADDRESS_RE.match(agreement):
        return address_key(agreement)
    if not _AGREEMENT.match(agreement) or '"' in agreement or "\\" in agreement:
        raise EvidenceError(f"agreement {agreement!r}: use its 0x address")
    return agreement


# -- columns: the same chunk bytes, vectorised (8.64 million samples in seconds) ---

STATUS_BYTES = [b"up", b"down", b"unknown"]     # UP=0, DOWN=1, UNKNOWN=2 as in smartsla.periods
_POW10 = 10 ** np.arange(18, -1, -1, dtype=np.int64)


def _keccak(data) -> bytes:
    return sha3.keccak_256(data).digest()


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



# -- columns ---------------------------------------------------------------------------------------

STATUS_NAMES = ("up", "down", "unknown")          # codes 0, 1, 2: smartsla.periods' UP, DOWN, UNKNOWN
_STATUS_OF = {Status.UP: 0, Status.DOWN: 1, Status.UNKNOWN: 2}


def _canonical_order(svc, t, st, latkey, rid) -> np.ndarray:
    """The permutation sorting rows by (svc, t, st, latkey, rid). One stable argsort of a combined
    (service, time) key when it fits in int64 (5x faster than a five-key lexsort at 8.64 million rows),
    then a lexsort of only the rows that share a (service, time), which are rare."""
    t0, t1 = int(t.min()), int(t.max())
    span = t1 - t0 + 1
    if int(svc.max()) >= (2 ** 63 - 1) // span:
        return np.lexsort((rid, latkey, st, t, svc))
    order = np.argsort(svc * span + (t - t0), kind="stable")
    s2, t2 = svc[order], t[order]
    same = (s2[1:] == s2[:-1]) & (t2[1:] == t2[:-1])
    if same.any():
        tied = np.flatnonzero(np.concatenate(([False], same)) | np.concatenate((same, [False])))
        rows = order[tied]
        order[tied] = rows[np.lexsort((rid[rows], latkey[rows], st[rows], t[rows], svc[rows]))]
    return order


@dataclass(frozen=True)
class EvidenceColumns:
    """Samples as columns: what the store hands out, what a bundle is built from and what it loads back to.

    ``service`` indexes ``service_ids``; ``time_us`` is unix time in integer microseconds; ``status`` is
    0 up, 1 down, 2 unknown (``smartsla.periods``' codes); ``latency_us`` is integer microseconds or -1 for
    none; ``reason`` indexes ``reasons``. :meth:`canonical` gives the one order the evidence is hashed in.
    """

    service_ids: tuple[str, ...]
    service: np.ndarray
    time_us: np.ndarray
    status: np.ndarray
    latency_us: np.ndarray
    reason: np.ndarray
    reasons: tuple[str, ...]

    def __post_init__(self):
        n = len(self.time_us)
        if not (len(self.service) == len(self.status) == len(self.latency_us) == len(self.reason) == n):
            raise EvidenceError("service, time_us, status, latency_us and reason must have the same length")

    def __len__(self) -> int:
        return len(self.time_us)

    @classmethod
    def from_samples(cls, samples: Iterable[Sample], service_ids: Iterable[str] | None = None) -> EvidenceColumns:
        samples = list(samples)
        ids = list(service_ids) if service_ids is not None else sorted({s.service for s in samples})
        index = {sid: i for i, sid in enumerate(ids)}
        reasons: dict[str, int] = {}
        svc, t, st, lat, rid = [], [], [], [], []
        for s in samples:
            i = index.get(s.service)
            if i is None:
                raise EvidenceError(f"sample at {s.time} is for service {s.service!r}, not one of {', '.join(ids)}")
            svc.append(i)
            t.append(seconds_to_us(s.time))
            st.append(_STATUS_OF[Status(s.status)])
            lat.append(-1 if s.latency_ms is None else round(s.latency_ms * 1000))
            rid.append(reasons.setdefault(s.reason or "", len(reasons)))
        return cls(tuple(ids), np.array(svc, np.int64), np.array(t, np.int64), np.array(st, np.int8),
                   np.array(lat, np.int64), np.array(rid, np.int64), tuple(reasons))

    def take(self, which) -> EvidenceColumns:
        """The rows selected by a boolean mask, an index array or a slice (order kept)."""
        return replace(self, service=self.service[which], time_us=self.time_us[which], status=self.status[which],
                       latency_us=self.latency_us[which], reason=self.reason[which])

    def between(self, start: int, end: int) -> EvidenceColumns:
        """The rows with ``start <= time < end`` (unix seconds)."""
        return self.take((self.time_us >= int(start) * 1_000_000) & (self.time_us < int(end) * 1_000_000))

    def with_service_ids(self, service_ids: Iterable[str]) -> EvidenceColumns:
        ids = tuple(service_ids)
        if len(ids) != len(self.service_ids):
            raise EvidenceError(f"{len(ids)} service ids for {len(self.service_ids)} services")
        return replace(self, service_ids=ids)

    def canonical(self) -> EvidenceColumns:
        """Rows ordered by (service, time_us, status, latency with none last, reason), identical rows once;
        ``reasons`` reduced to those used, sorted by their UTF-8 bytes, each once.

        Columns already in that order (the store hands them out so) are checked in one vectorised pass
        and not sorted. Raises :class:`EvidenceError` for a status, latency or reason out of range.
        """
        n = len(self)
        svc = np.asarray(self.service, np.int64)
        t = np.asarray(self.time_us, np.int64)
        st = np.asarray(self.status, np.int8)
        lat = np.asarray(self.latency_us, np.int64)
        rid = np.asarray(self.reason, np.int64)
        if n:
            if svc.min() < 0 or svc.max() >= len(self.service_ids):
                raise EvidenceError(f"service index out of range 0..{len(self.service_ids) - 1}")
            if st.min() < 0 or st.max() > 2:
                raise EvidenceError("status codes are 0 (up), 1 (down) and 2 (unknown)")
            if lat.min() < -1 or lat.max() >= NO_LATENCY:
                raise EvidenceError(f"latency_us must be -1 (none) or 0..{NO_LATENCY - 1}")
            if rid.min() < 0 or rid.max() >= len(self.reasons):
                raise EvidenceError(f"reason index out of range 0..{len(self.reasons) - 1}")
        used = np.flatnonzero(np.bincount(rid, minlength=len(self.reasons))).tolist() if n else []
        texts = sorted({self.reasons[i] for i in used}, key=lambda r: r.encode("utf-8"))
        position = {r: i for i, r in enumerate(texts)}
        remap = np.zeros(len(self.reasons), np.int64)
        remap[used] = [position[self.reasons[i]] for i in used]
        rid = remap[rid] if n else rid
        latkey = np.where(lat < 0, NO_LATENCY, lat)
        keys = [svc, t, st, latkey, rid]
        if not is_ordered(*keys):
            order = _canonical_order(svc, t, st, latkey, rid)
            svc, t, st, lat, rid, latkey = svc[order], t[order], st[order], lat[order], rid[order], latkey[order]
        if n > 1:
            same = (svc[1:] == svc[:-1]) & (t[1:] == t[:-1])
            if same.any():
                same &= (st[1:] == st[:-1]) & (latkey[1:] == latkey[:-1]) & (rid[1:] == rid[:-1])
                if same.any():
                    keep = np.concatenate(([True], ~same))
                    svc, t, st, lat, rid = svc[keep], t[keep], st[keep], lat[keep], rid[keep]
        return EvidenceColumns(self.service_ids, svc, t, st, lat, rid, tuple(texts))

    def sample_columns(self) -> SampleColumns:
        """For :func:`smartsla.periods.compute_periods` (service indexes unchanged; time in float seconds)."""
        return SampleColumns(np.asarray(self.service, np.int64), np.asarray(self.time_us) / 1_000_000,
                             np.asarray(self.status, np.int8))

    def samples(self) -> Iterator[Sample]:
        status = [Status(s) for s in STATUS_NAMES]
        for s, t, c, lat, r in zip(self.service.tolist(), self.time_us.tolist(), self.status.tolist(),
                                   self.latency_us.tolist(), self.reason.tolist()):
            yield Sample(t / 1_000_000, self.service_ids[s], status[c], None if lat < 0 else lat / 1000,
                         self.reasons[r])


# -- v2: binary records, one file per service -------------------------------------------------------

SCHEME_V2 = "smart-sla/evidence/v2"
VERSION = 2
# One sample: big-endian like Solidity's abi.encodePacked(uint64, uint8, uint32, uint32), no padding.
RECORD = np.dtype([("time_us", ">u8"), ("status", "u1"), ("latency_us", ">u4"), ("reason", ">u4")])
RECORD_SIZE = RECORD.itemsize                      # 17
V2_HEADER_PREFIX = SCHEME_V2.encode() + b"/header\0"
V2_REASONS_PREFIX = SCHEME_V2.encode() + b"/reasons\0"
V2_CHUNK_PREFIX = SCHEME_V2.encode() + b"/chunk\0"
V2_MANIFEST_KEYS = {"format", "version", "scheme", "agreement", "chain_id", "period", "period_start", "period_end",
                    "values", "header_leaf", "reasons", "reasons_leaf", "services", "root"}
V2_SERVICE_KEYS = {"service", "file", "samples", "chunks", "service_root"}


def header_leaf_v2(agreement: str, chain_id: int, period: int, period_start: int, period_end: int,
                   values: dict[str, int] | None) -> bytes:
    return keccak(V2_HEADER_PREFIX + header_bytes(agreement, chain_id, period, period_start, period_end, values,
                                                  scheme=SCHEME_V2))


def reasons_leaf(reasons: Iterable[str]) -> bytes:
    """keccak(prefix ‖ for each reason: uint32 big-endian length ‖ UTF-8 bytes)."""
    parts = [V2_REASONS_PREFIX]
    for r in reasons:
        b = r.encode("utf-8")
        parts += [len(b).to_bytes(4, "big"), b]
    return keccak(b"".join(parts))


def chunk_leaf_v2(service: str, hour_start: int, chunk_hash: bytes) -> bytes:
    return keccak(V2_CHUNK_PREFIX + service.encode("ascii") + b"\0" + hour_start.to_bytes(8, "big") + chunk_hash)


def merkle_root(leaves: list[bytes]) -> bytes:
    """The root of :func:`tree_levels` without keeping the levels."""
    level = list(leaves)
    if not level:
        raise EvidenceError("a tree needs at least one leaf")
    while len(level) > 1:
        nxt = [hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def records(columns: EvidenceColumns) -> np.ndarray:
    """The canonical columns as v2 records (a structured array; ``.tobytes()`` is the file format)."""
    rec = np.empty(len(columns), RECORD)
    rec["time_us"] = columns.time_us
    rec["status"] = columns.status
    rec["latency_us"] = np.where(columns.latency_us < 0, NO_LATENCY, columns.latency_us)
    rec["reason"] = columns.reason
    return rec


def _chunk_leaves(service: str, data, hours: np.ndarray) -> tuple[list[bytes], list[int]]:
    """The chunk leaves of one service's records (``data``: their bytes; ``hours``: each record's hour
    index, non-decreasing), and the hour starts."""
    starts = np.flatnonzero(np.concatenate(([True], hours[1:] != hours[:-1]))) if len(hours) else np.zeros(0, int)
    bounds = (np.append(starts, len(hours)) * RECORD_SIZE).tolist()
    hour_starts = (hours[starts] * HOUR).tolist()
    mv = memoryview(data)
    prefix = V2_CHUNK_PREFIX + service.encode("ascii") + b"\0"
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


def _commit_v2(agreement, chain_id, period, period_start, period_end, columns: EvidenceColumns, values,
               threads: int = 2) -> tuple[_Committed, EvidenceColumns]:
    c = columns.canonical()
    if len(c) and not (period_start * 1_000_000 <= int(c.time_us.min()) and
                       int(c.time_us.max()) < period_end * 1_000_000):
        raise EvidenceError(f"a sample is outside period {period} [{period_start}, {period_end})")
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
        leaves, _ = _chunk_leaves(sid, flat[lo * RECORD_SIZE:hi * RECORD_SIZE], hours[lo:hi])
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
    head = header_leaf_v2(agreement, chain_id, period, period_start, period_end, values)
    rleaf = reasons_leaf(c.reasons)
    root = merkle_root([head, rleaf] + [d[4] for d in done])
    entries = [{"service": sid, "file": f"samples/{sid}.bin", "samples": hi - lo, "chunks": k,
                "service_root": to_hex(sroot)} for sid, lo, hi, k, sroot in done]
    files = {f"samples/{sid}.bin": flat[lo * RECORD_SIZE:hi * RECORD_SIZE] for sid, lo, hi, _, _ in done}
    return _Committed(root, head, rleaf, entries, files), c


def evidence_root(agreement: str, chain_id: int, period: int, period_start: int, period_end: int,
                  columns: EvidenceColumns, values: dict[str, int] | None = None) -> bytes:
    """The v2 root of the bundle :func:`build_bundle_columns` would write, computed in memory only."""
    _, agreement, chain_id, period, period_start, period_end, values = _bundle_header(
        ".", agreement, chain_id, period, period_start, period_end, values)
    committed, _ = _commit_v2(agreement, chain_id, period, period_start, period_end, columns, values)
    return committed.root


def _build_v2(directory, agreement, chain_id, period, period_start, period_end, columns, values, overwrite) -> bytes:
    committed, c = _commit_v2(agreement, chain_id, period, period_start, period_end, columns, values)
    manifest = {"format": FORMAT, "version": VERSION, "scheme": SCHEME_V2, "agreement": agreement,
                "chain_id": chain_id, "period": period, "period_start": period_start, "period_end": period_end,
                "values": values, "header_leaf": to_hex(committed.header_leaf), "reasons": list(c.reasons),
                "reasons_leaf": to_hex(committed.reasons_leaf), "services": committed.services,
                "root": to_hex(committed.root)}
    files = dict(committed.files)
    files["manifest.json"] = canonical_json(manifest)
    return _install(directory, files, committed.root, overwrite)


def _first_not_increasing(keys: list[np.ndarray]) -> int | None:
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


def _check_service_file(directory: Path, entry: dict, where: str, m: dict, findings: list[Finding],
                        result: VerifyResult, used: np.ndarray) -> bytes | None:
    """Check one service's records; return its recomputed service root."""
    sid, name = entry["service"], entry["file"]

    def bad(file, msg):
        findings.append(Finding(file, msg))

    if not isinstance(sid, str) or not SERVICE_ID.match(sid):
        bad("manifest.json", f"{where}: service {sid!r} is not a service id")
        return None
    expected = f"samples/{sid}.bin"
    if name != expected:
        bad("manifest.json", f"{where}: file {name!r}, expected {expected!r}")
    try:
        data = (directory / expected).read_bytes()
    except OSError as exc:
        bad(expected, f"cannot be read ({exc.strerror or exc})")
        return None
    if len(data) % RECORD_SIZE:
        bad(expected, f"{len(data)} bytes is not a whole number of {RECORD_SIZE}-byte records")
    rec = np.frombuffer(data, RECORD, count=len(data) // RECORD_SIZE)
    n = len(rec)
    result.samples += n
    if n == 0:
        bad(expected, "has no records (a service without samples has no file)")
    if entry["samples"] != n:
        bad("manifest.json", f"{where}: samples {entry['samples']!r} but {expected} has {n} records")
    t = rec["time_us"].astype(np.uint64)
    st, lat, rid = rec["status"], rec["latency_us"].astype(np.int64), rec["reason"].astype(np.int64)

    def first(mask, what):
        hits = np.flatnonzero(mask)
        if len(hits):
            i = int(hits[0])
            bad(expected, f"record {i} (byte {i * RECORD_SIZE}): {what(i)}" +
                (f" ({len(hits)} records in all)" if len(hits) > 1 else ""))

    first(st > 2, lambda i: f"status {st[i]} is not 0 (up), 1 (down) or 2 (unknown)")
    first(rid >= len(m["reasons"]), lambda i: f"reason {rid[i]} but the manifest lists {len(m['reasons'])} reasons")
    lo, hi = m["period_start"] * 1_000_000, m["period_end"] * 1_000_000
    first((t < lo) | (t >= hi), lambda i: f"time {t[i]} µs is outside the period [{m['period_start']}, "
                                          f"{m['period_end']})")
    i = _first_not_increasing([t, st, lat, rid]) if n else None
    if i is not None:
        bad(expected, f"record {i + 1} (byte {(i + 1) * RECORD_SIZE}) is not after record {i} (records are sorted "
                      "by time_us, status, latency_us, reason, without duplicates)")
    ok_r = rid[rid < len(used)]
    used[np.unique(ok_r)] = True
    leaves, _ = _chunk_leaves(sid, data[:n * RECORD_SIZE], t // np.uint64(HOUR_US))
    if entry["chunks"] != len(leaves):
        bad("manifest.json", f"{where}: chunks {entry['chunks']!r} but {expected} has records in {len(leaves)} hours")
    result.chunks += len(leaves)
    return merkle_root(leaves) if leaves else None


def _check_manifest_head(m: dict, keys: set, scheme: str, scheme_hint: str, bad) -> bool:
    """The keys, the format and the hash scheme, which every version states; False when the rest cannot be read."""
    if set(m) != keys:
        bad(f"keys: missing {sorted(keys - set(m))}, unexpected {sorted(set(m) - keys)}")
        return False
    if m["format"] != FORMAT:
        bad(f"format {m['format']!r}, expected {FORMAT!r}")
    if m["scheme"] != scheme:
        bad(f"hash scheme {m['scheme']!r}; {scheme_hint}")
        return False
    return True


def _check_manifest_v2(m: dict, findings: list[Finding]) -> bool:
    def bad(msg):
        findings.append(Finding("manifest.json", msg))

    if not _check_manifest_head(m, V2_MANIFEST_KEYS, SCHEME_V2, f"version 2 bundles use {SCHEME_V2!r}", bad):
        return False
    ok = _check_common(m, bad)
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
    if not isinstance(s, list) or not all(isinstance(e, dict) and set(e) == V2_SERVICE_KEYS for e in s):
        bad(f"services is not a list of objects with keys {sorted(V2_SERVICE_KEYS)}")
        ok = False
    for k in ("header_leaf", "reasons_leaf", "root"):
        if not isinstance(m[k], str):
            bad(f"{k} is not a string")
            ok = False
    return ok


def _verify_v2(directory: Path, m: dict, result: VerifyResult, expected_root) -> None:
    findings = result.findings
    if not _check_manifest_v2(m, findings):
        return

    def bad(msg):
        findings.append(Finding("manifest.json", msg))

    head = header_leaf_v2(m["agreement"], m["chain_id"], m["period"], m["period_start"], m["period_end"],
                          m["values"])
    if m["header_leaf"] != to_hex(head):
        bad(f"header_leaf {m['header_leaf']} but agreement, chain_id, period, bounds and values hash to {to_hex(head)}")
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
        sroot = _check_service_file(directory, entry, f"services[{i}]", m, findings, result, used)
        claimed = _unhex(entry["service_root"])
        if claimed is None:
            bad(f"services[{i}]: service_root {entry['service_root']!r} is not 0x and 64 hex digits")
        stated.append(claimed or b"\0" * 32)
        computed.append(sroot or b"\0" * 32)
    ids = [str(e["service"]) for e in m["services"]]
    if [i.encode() for i in ids] != sorted({i.encode() for i in ids}):
        bad("services are not sorted by service id without repeats")
    if len(used) and not used.all():
        k = int(np.flatnonzero(~used)[0])
        bad(f"reasons[{k}] {m['reasons'][k]!r} is used by no record (only used reasons are listed)")
    # Which side is wrong when a file and its manifest entry disagree: the manifest is consistent with
    # its own root (then the file changed) or the file is (then the manifest changed).
    claimed_head = _unhex(m["header_leaf"]) or head
    claimed_rleaf = _unhex(m["reasons_leaf"]) or rleaf
    root_stated = merkle_root([claimed_head, claimed_rleaf] + stated)
    root = merkle_root([head, rleaf] + computed)
    stated_consistent = to_hex(root_stated) == m["root"]
    for i, (a, b) in enumerate(zip(stated, computed)):
        if a == b:
            continue
        name = f"samples/{m['services'][i]['service']}.bin"
        swapped = merkle_root([claimed_head, claimed_rleaf] + stated[:i] + [b] + stated[i + 1:])
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
        bad(f"root {m['root']} but its header, reasons and service roots hash to {to_hex(root_stated)}")
    if expected_root is not None:
        want = expected_root if isinstance(expected_root, str) else to_hex(bytes(expected_root))
        if want.lower() != to_hex(root):
            bad(f"the bundle hashes to {to_hex(root)}, not the expected root {want}")
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if path.is_file() and rel not in listed:
            findings.append(Finding(rel, "is not listed in manifest.json"))


# -- building --------------------------------------------------------------------------------------

def _bundle_header(directory, agreement, chain_id, period, period_start, period_end, values):
    """The arguments both bundle builders share, normalised and checked."""
    period_start, period_end = int(period_start), int(period_end)
    if period_end <= period_start:
        raise EvidenceError(f"period end {period_end} is not after its start {period_start}")
    if values is not None:
        values = {str(k): int(v) for k, v in values.items()}
    return (Path(directory), normalize_agreement(agreement), int(chain_id), int(period), period_start, period_end,
            values)


def build_bundle(directory: str | os.PathLike, agreement: str, chain_id: int, period: int, period_start: int,
                 period_end: int, samples: Iterable[Sample], values: dict[str, int] | None = None, *,
                 overwrite: bool = False, version: int = VERSION) -> bytes:
    """Write the bundle for one period and return its 32-byte root.

    ``samples`` must all lie in ``[period_start, period_end)``; their order and duplicates do not
    matter. The directory is written next to its final place and renamed in, so a crash never leaves
    half a bundle. If it already holds this same bundle, nothing is written; if it holds a different
    one, :class:`BundleExistsError` unless ``overwrite`` (never overwrite a bundle whose root was signed).
    ``version`` 2 (binary records, the default) or 1 (CSV chunks; docs/evidence.md).
    """
    directory, agreement, chain_id, period, period_start, period_end, values = _bundle_header(
        directory, agreement, chain_id, period, period_start, period_end, values)
    if version == VERSION:
        samples = list(samples)
        for s in samples:
            t = seconds_to_us(s.time)
            if not period_start * 1_000_000 <= t < period_end * 1_000_000:
                raise EvidenceError(f"sample at {s.time} is outside period {period} [{period_start}, {period_end})")
        columns = EvidenceColumns.from_samples(samples)
        return _build_v2(directory, agreement, chain_id, period, period_start, period_end, columns, values, overwrite)
    _check_version(version)
    chunks: dict[tuple[str, int], list[Sample]] = {}
    for s in samples:
        if not SERVICE_ID.match(s.service):
            raise EvidenceError(f"service id {s.service!r} cannot name a chunk file (lower-case letters, digits, "
                                "'_' and '-', at most 32)")
        t = seconds_to_us(s.time)
        if not period_start * 1_000_000 <= t < period_end * 1_000_000:
            raise EvidenceError(f"sample at {s.time} is outside period {period} [{period_start}, {period_end})")
        chunks.setdefault((s.service, t // HOUR_US * HOUR), []).append(s)
    datas = {key: chunk_bytes(group) for key, group in chunks.items()}
    return _write_bundle(directory, agreement, chain_id, period, period_start, period_end, datas, values, overwrite)


def _check_version(version: int) -> None:
    if version not in (1, VERSION):
        raise EvidenceError(f"bundle version {version!r}: this oracle writes 1 or {VERSION}")


def build_bundle_columns(directory: str | os.PathLike, agreement: str, chain_id: int, period: int,
                         period_start: int, period_end: int, columns: EvidenceColumns,
                         values: dict[str, int] | None = None, *, overwrite: bool = False,
                         version: int = VERSION) -> bytes:
    """:func:`build_bundle` for :class:`EvidenceColumns`: the same bytes and root, without a Python object per
    sample. Columns already in canonical order (``columns.canonical()``, or the store's) are not sorted again."""
    directory, agreement, chain_id, period, period_start, period_end, values = _bundle_header(
        directory, agreement, chain_id, period, period_start, period_end, values)
    if version == VERSION:
        return _build_v2(directory, agreement, chain_id, period, period_start, period_end, columns, values, overwrite)
    _check_version(version)
    c = columns
    service = np.asarray(c.service, np.int64)
    bad = [i for i in sorted(set(service.tolist())) if not SERVICE_ID.match(c.service_ids[i])]
    if bad:
        raise EvidenceError(f"service id {c.service_ids[bad[0]]!r} cannot name a chunk file")
    time_us = np.asarray(c.time_us, np.int64)
    if len(time_us) and not (period_start * 1_000_000 <= time_us.min() and time_us.max() < period_end * 1_000_000):
        raise EvidenceError(f"a sample is outside period {period} [{period_start}, {period_end})")
    datas = chunks_from_columns(list(c.service_ids), service, time_us, np.asarray(c.status, np.int64),
                                np.asarray(c.latency_us, np.int64), np.asarray(c.reason, np.int64), list(c.reasons))
    return _write_bundle(directory, agreement, chain_id, period, period_start, period_end, datas, values, overwrite)


def _write_bundle(directory: Path, agreement: str, chain_id: int, period: int, period_start: int, period_end: int,
                  datas: dict[tuple[str, int], bytes], values, overwrite: bool) -> bytes:
    """Version 1: one CSV file per (service, hour) chunk, manifest.json and tree.json."""
    head = header_leaf(agreement, chain_id, period, period_start, period_end, values)
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
    manifest = {"format": FORMAT, "scheme": SCHEME, "agreement": agreement, "chain_id": chain_id, "period": period,
                "period_start": period_start, "period_end": period_end, "values": values,
                "header_leaf": to_hex(head), "chunks": entries, "root": to_hex(root)}
    files["manifest.json"] = canonical_json(manifest)
    files["tree.json"] = canonical_json({"levels": [[to_hex(n) for n in level] for level in levels]})
    return _install(directory, files, root, overwrite)


def _install(directory: Path, files: dict[str, bytes], root: bytes, overwrite: bool) -> bytes:
    """Write ``files`` into a temporary sibling, make it durable and rename it into place."""
    if directory.exists():
        existing = _existing_root(directory)
        if existing == to_hex(root) and not verify_bundle(directory).findings:
            return root
        if not overwrite and (existing is not None or any(directory.iterdir())):
            raise BundleExistsError(f"{directory} already holds a bundle with root {existing or '(unreadable)'}, "
                                    f"not {to_hex(root)}; keep it if its root was signed, or pass overwrite")
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    _write_durably(tmp, files)
    if directory.exists():
        old = directory.parent / f".{directory.name}.old-{os.getpid()}"
        os.rename(directory, old)
        os.rename(tmp, directory)
        shutil.rmtree(old)
    else:
        os.rename(tmp, directory)
    _fsync_dir(directory.parent)  # the rename itself must survive a power cut before the root is signed
    return root


_libc = ctypes.CDLL(None, use_errno=True)


def _write_durably(tmp: Path, files: dict[str, bytes]) -> None:
    """Write everything, then one syncfs for the whole file system and an fsync per directory:
    the same durability as an fsync per file, with one journal commit instead of one per file."""
    dirs = {tmp}
    for name in files:
        dirs.add((tmp / name).parent)
    for d in sorted(dirs):
        d.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        fd = os.open(tmp / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data).cast("B")
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        if getattr(_libc, "syncfs", None) is None or _libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)
    for d in sorted(dirs, reverse=True):
        _fsync_dir(d)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)



def _existing_root(directory: Path) -> str | None:
    try:
        return json.loads((directory / "manifest.json").read_text("utf-8"))["root"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


# -- verifying -------------------------------------------------------------------------------------

@dataclass
class Finding:
    file: str          # relative to the bundle directory
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


@dataclass
class VerifyResult:
    directory: str
    root: str | None                 # recomputed from the files, None if the manifest is unreadable
    chunks: int = 0
    samples: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict:
        return {"result": "PASS" if self.ok else "FAIL", "directory": self.directory, "root": self.root,
                "chunks": self.chunks, "samples": self.samples, "findings": [asdict(f) for f in self.findings]}


def _load_canonical(directory: Path, name: str, findings: list[Finding]):
    try:
        raw = (directory / name).read_bytes()
    except FileNotFoundError:
        findings.append(Finding(name, "missing"))
        return None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        findings.append(Finding(name, f"not valid JSON ({exc})"))
        return None
    canonical = canonical_json(doc)
    if raw != canonical:
        at = next((i for i, (a, b) in enumerate(zip(raw, canonical)) if a != b), min(len(raw), len(canonical)))
        findings.append(Finding(name, f"not in canonical form (first difference at byte {at}); "
                                      "a bundle is byte-for-byte what build_bundle writes"))
    return doc


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_manifest(m, findings: list[Finding]) -> bool:
    """Shape of the manifest; False if it is too broken to check the rest."""
    def bad(msg):
        findings.append(Finding("manifest.json", msg))

    if not isinstance(m, dict):
        bad("is not a JSON object")
        return False
    if not _check_manifest_head(m, MANIFEST_KEYS, SCHEME,
                                f"this verifier knows {SCHEME!r} (version 1) and {SCHEME_V2!r} (version 2)", bad):
        return False
    ok = _check_common(m, bad)
    if not isinstance(m["chunks"], list) or not all(isinstance(c, dict) and set(c) == CHUNK_KEYS for c in m["chunks"]):
        bad(f"chunks is not a list of objects with keys {sorted(CHUNK_KEYS)}")
        ok = False
    for k in ("header_leaf", "root"):
        if not isinstance(m[k], str):
            bad(f"{k} is not a string")
            ok = False
    return ok


def _check_common(m: dict, bad) -> bool:
    """The header fields both versions share."""
    ok = True
    for k in ("chain_id", "period", "period_start", "period_end"):
        if not _is_int(m[k]) or m[k] < 0:
            bad(f"{k} {m[k]!r} is not a non-negative integer")
            ok = False
    if ok and m["period_end"] <= m["period_start"]:
        bad(f"period_end {m['period_end']} is not after period_start {m['period_start']}")
    if not isinstance(m["agreement"], str):
        bad("agreement is not a string")
        ok = False
    v = m["values"]
    if v is not None and (not isinstance(v, dict) or not all(_is_int(x) for x in v.values())):
        bad("values is neither null nor an object of integers")
        ok = False
    return ok


def _check_chunk(directory: Path, entry: dict, index: int, m: dict, findings: list[Finding],
                 result: VerifyResult) -> bytes | None:
    """Check one chunk file against its manifest entry; return its recomputed leaf."""
    service, hour_start, name = entry["service"], entry["hour_start"], entry["file"]

    def bad(file, msg):
        findings.append(Finding(file, msg))

    where = f"chunks[{index}]"
    if not isinstance(service, str) or not SERVICE_ID.match(service):
        bad("manifest.json", f"{where}: service {service!r} is not a service id")
        return None
    if not _is_int(hour_start) or not 0 <= hour_start < MAX_TIME or hour_start % HOUR:
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
        claimed = _unhex(entry["chunk_hash"])
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


def _check_agreement(m: dict, findings: list[Finding]) -> None:
    try:
        agreement = normalize_agreement(m["agreement"])
    except EvidenceError as exc:
        findings.append(Finding("manifest.json", str(exc)))
        agreement = m["agreement"]
    if agreement != m["agreement"]:
        findings.append(Finding("manifest.json", f"agreement {m['agreement']!r} is not lower-case"))


def verify_bundle(directory: str | os.PathLike, expected_root: bytes | str | None = None) -> VerifyResult:
    """Recompute every chunk hash, leaf, tree level and the root; check the samples' hours and period.
    Version 1 and version 2 bundles (docs/evidence.md).

    Raises :class:`EvidenceError` only when ``directory`` is not a bundle at all; everything else is a
    finding naming the file.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise EvidenceError(f"{directory}: not a directory")
    if not (directory / "manifest.json").exists():
        raise EvidenceError(f"{directory}: no manifest.json; not an evidence bundle")
    result = VerifyResult(str(directory), None)
    findings = result.findings
    m = _load_canonical(directory, "manifest.json", findings)
    if isinstance(m, dict) and "version" in m:
        if m["version"] == VERSION and not isinstance(m["version"], bool):
            if _check_manifest_v2(m, findings):
                _check_agreement(m, findings)
                _verify_v2(directory, m, result, expected_root)
        else:
            findings.append(Finding("manifest.json", f"version {m['version']!r}; this verifier knows 1 (no version "
                                                     f"key) and {VERSION}"))
        return result
    if m is None or not _check_manifest(m, findings):
        return result

    _check_agreement(m, findings)
    head = header_leaf(m["agreement"], m["chain_id"], m["period"], m["period_start"], m["period_end"], m["values"])
    if m["header_leaf"] != to_hex(head):
        findings.append(Finding("manifest.json", f"header_leaf {m['header_leaf']} but agreement, chain_id, period, "
                                                 f"bounds and values hash to {to_hex(head)}"))
    leaves = [head]
    listed = {"manifest.json", "tree.json"}
    keys = []
    for i, entry in enumerate(m["chunks"]):
        leaf = _check_chunk(directory, entry, i, m, findings, result)
        listed.add(str(entry["file"]))
        keys.append((str(entry["service"]), entry["hour_start"] if _is_int(entry["hour_start"]) else -1))
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

    tree = _load_canonical(directory, "tree.json", findings)
    if tree is not None:
        expected = [[to_hex(n) for n in level] for level in levels]
        got = tree.get("levels") if isinstance(tree, dict) else None
        if not isinstance(tree, dict) or set(tree) != {"levels"} or not isinstance(got, list):
            findings.append(Finding("tree.json", 'expected {"levels": [[leaf, ...], ..., [root]]}'))
        elif got != expected:
            findings.append(Finding("tree.json", _first_tree_difference(got, expected)))

    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if path.is_file() and rel not in listed:
            findings.append(Finding(rel, "is not listed in manifest.json"))
    return result


def _first_tree_difference(got: list, expected: list[list[str]]) -> str:
    if len(got) != len(expected):
        return f"{len(got)} levels, expected {len(expected)}"
    for depth, (g, e) in enumerate(zip(got, expected)):
        if not isinstance(g, list) or len(g) != len(e):
            return f"level {depth} has {len(g) if isinstance(g, list) else '?'} nodes, expected {len(e)}"
        for i, (a, b) in enumerate(zip(g, e)):
            if a != b:
                return f"level {depth} node {i} is {a}, expected {b}"
    return "differs"


# -- proofs ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Proof:
    service: str
    hour_start: int
    leaf: bytes
    siblings: list[bytes]
    root: bytes

    def to_json(self) -> dict:
        return {"service": self.service, "hour_start": self.hour_start, "hour": hour_iso(self.hour_start),
                "leaf": to_hex(self.leaf), "proof": [to_hex(s) for s in self.siblings], "root": to_hex(self.root),
                "valid": verify_proof(self.leaf, self.siblings, self.root)}


def prove(bundle_dir: str | os.PathLike, service: str, hour: int) -> Proof:
    """The Merkle proof for one (service, hour) chunk, from the manifest's leaves (version 1) or from the
    service's records and the manifest's other nodes (version 2). Run verify_bundle to trust them."""
    bundle_dir = Path(bundle_dir)
    hour = int(hour)
    try:
        m = json.loads((bundle_dir / "manifest.json").read_text("utf-8"))
        if isinstance(m, dict) and m.get("version") == VERSION:
            return _prove_v2(bundle_dir, m, service, hour)
        leaves = [bytes.fromhex(m["header_leaf"][2:])] + [bytes.fromhex(c["leaf"][2:]) for c in m["chunks"]]
        keys = [(c["service"], c["hour_start"]) for c in m["chunks"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EvidenceError(f"{bundle_dir}: cannot read the bundle ({exc})") from None
    if (service, hour) not in keys:
        have = sorted({s for s, _ in keys})
        raise EvidenceError(f"{bundle_dir}: no chunk for service {service!r} at {hour} ({hour_iso(hour)}); "
                            f"services with chunks: {', '.join(have) or 'none'}")
    index = 1 + keys.index((service, hour))
    levels = tree_levels(leaves)
    return Proof(service, hour, leaves[index], _proof_from_levels(levels, index), levels[-1][0])


def _prove_v2(bundle_dir: Path, m: dict, service: str, hour: int) -> Proof:
    entries = m["services"]
    ids = [e["service"] for e in entries]
    if service not in ids:
        raise EvidenceError(f"{bundle_dir}: no samples of service {service!r}; services with samples: "
                            f"{', '.join(ids) or 'none'}")
    position = ids.index(service)
    data = (bundle_dir / f"samples/{service}.bin").read_bytes()
    rec = np.frombuffer(data, RECORD, count=len(data) // RECORD_SIZE)
    leaves, hours = _chunk_leaves(service, data[:len(rec) * RECORD_SIZE],
                                  rec["time_us"].astype(np.uint64) // np.uint64(HOUR_US))
    if hour not in hours:
        raise EvidenceError(f"{bundle_dir}: no chunk for service {service!r} at {hour} ({hour_iso(hour)})")
    index = hours.index(hour)
    inner = tree_levels(leaves)
    top = tree_levels([bytes.fromhex(m["header_leaf"][2:]), bytes.fromhex(m["reasons_leaf"][2:])] +
                      [bytes.fromhex(e["service_root"][2:]) for e in entries])
    siblings = _proof_from_levels(inner, index) + _proof_from_levels(top, 2 + position)
    return Proof(service, hour, leaves[index], siblings, top[-1][0])


def proof(bundle_dir: str | os.PathLike, service: str, hour: int) -> list[bytes]:
    return prove(bundle_dir, service, hour).siblings


@dataclass(frozen=True)
class Bundle:
    """A bundle's header and samples as loaded by :func:`load_bundle` (not verified: call verify_bundle)."""

    directory: Path
    version: int
    agreement: str
    chain_id: int
    period: int
    period_start: int
    period_end: int
    values: dict[str, int] | None
    root: str                          # as the manifest states it
    columns: EvidenceColumns           # canonical order; service_ids = the services with samples, sorted

    def services(self) -> dict[str, EvidenceColumns]:
        """Per service id, its samples (each a one-service :class:`EvidenceColumns`, index 0)."""
        c = self.columns
        out = {}
        for i, sid in enumerate(c.service_ids):
            part = c.take(c.service == i)
            out[sid] = replace(part, service_ids=(sid,), service=np.zeros(len(part), np.int64))
        return out

    def sample_columns(self, service_ids) -> SampleColumns:
        """Columns for ``compute_periods`` with service indexes into ``service_ids`` (the terms' order)."""
        index = {sid: i for i, sid in enumerate(service_ids)}
        missing = [sid for sid in self.columns.service_ids if sid not in index]
        if missing:
            raise EvidenceError(f"the bundle has samples of {', '.join(missing)}, which are not in the terms")
        remap = np.array([index[sid] for sid in self.columns.service_ids], np.int64)
        c = self.columns
        return SampleColumns(remap[c.service] if len(c) else c.service, c.time_us / 1_000_000, c.status)


def load_bundle(bundle_dir: str | os.PathLike) -> Bundle:
    """Read a bundle (version 1 or 2) into columns, for recomputing the period's values with smartsla.periods."""
    bundle_dir = Path(bundle_dir)
    try:
        m = json.loads((bundle_dir / "manifest.json").read_text("utf-8"))
        if m.get("version") == VERSION:
            ids, parts = [], []
            for e in m["services"]:
                data = (bundle_dir / f"samples/{e['service']}.bin").read_bytes()
                ids.append(e["service"])
                parts.append(np.frombuffer(data, RECORD, count=len(data) // RECORD_SIZE))
            rec = np.concatenate(parts) if parts else np.zeros(0, RECORD)
            lat = rec["latency_us"].astype(np.int64)
            lat[lat == NO_LATENCY] = -1
            columns = EvidenceColumns(tuple(ids), np.repeat(np.arange(len(ids), dtype=np.int64),
                                                            [len(p) for p in parts]),
                                      rec["time_us"].astype(np.int64), rec["status"].astype(np.int8), lat,
                                      rec["reason"].astype(np.int64), tuple(m["reasons"]))
        else:
            samples = []
            for c in m["chunks"]:
                for line in (bundle_dir / c["file"]).read_bytes().split(b"\n")[1:-1]:
                    t, status, latency, reason = line.decode("ascii").split(",")
                    samples.append(Sample(int(t) / 1_000_000, c["service"], Status(status),
                                          None if latency == "" else int(latency) / 1000, decode_reason(reason)))
            columns = EvidenceColumns.from_samples(samples)
        return Bundle(bundle_dir, int(m.get("version", 1)), m["agreement"], m["chain_id"], m["period"],
                      m["period_start"], m["period_end"], m["values"], m["root"], columns.canonical())
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EvidenceError(f"{bundle_dir}: cannot load the bundle ({exc}); run sla-oracle evidence verify") from None


def bundle_samples(bundle_dir: str | os.PathLike) -> Iterator[Sample]:
    """The samples of a (verified) bundle, by service then time, as :class:`Sample` objects."""
    return load_bundle(bundle_dir).columns.samples()
