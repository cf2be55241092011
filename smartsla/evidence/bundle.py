"""Evidence bundles on disk: the samples behind a period's report, committed to by the report's evidence root.

This module is the bundle as a whole, for either version: build (samples or columns in, an atomic, durable
install out), verify, prove one (service, hour), load back into columns. Each version's format is its own module
(:mod:`~smartsla.evidence.v1`, :mod:`~smartsla.evidence.v2`) with the same functions, picked by the manifest's
``version``. Pairs are hashed sorted, as OpenZeppelin's ``MerkleProof`` does (:mod:`~smartsla.evidence.merkle`), so a
proof is a plain list of siblings a contract can check. Format and hashing: docs/evidence.md.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from smartsla.encoding import to_hex
from smartsla.evidence import v1, v2
from smartsla.evidence.columns import EvidenceColumns
from smartsla.evidence.format import BundleExistsError, EvidenceError, Finding, Header, VerifyResult, load_canonical
from smartsla.evidence.merkle import Proof
from smartsla.measure.events import EventColumns
from smartsla.measure.periods import SampleColumns
from smartsla.measure.samples import Sample

VERSION = v2.VERSION  # what the oracle writes
FORMATS = {1: v1, 2: v2}


def evidence_root(agreement: str, chain_id: int, period: int, period_start: int, period_end: int,
                  columns: EvidenceColumns, values: dict[str, int] | None = None,
                  coverage: dict[str, int] | None = None, events: EventColumns | None = None) -> bytes:
    """The v2 root of the bundle :func:`build_bundle_columns` would write, computed in memory only."""
    header = Header.checked(agreement, chain_id, period, period_start, period_end, values, coverage)
    committed, _ = v2.commit(header, columns, events=events)
    return committed.root


def build_bundle(directory: str | os.PathLike, agreement: str, chain_id: int, period: int, period_start: int,
                 period_end: int, samples: Iterable[Sample], values: dict[str, int] | None = None, *,
                 coverage: dict[str, int] | None = None, overwrite: bool = False, version: int = VERSION) -> bytes:
    """Write the bundle for one period and return its 32-byte root.

    ``samples`` must all lie in ``[period_start, period_end)``; their order and duplicates do not
    matter. The directory is written next to its final place and renamed in, so a crash never leaves
    half a bundle. If it already holds this same bundle, nothing is written; if it holds a different
    one, :class:`BundleExistsError` unless ``overwrite`` (never overwrite a bundle whose root was signed).
    ``version`` 2 (binary records, the default) or 1 (CSV chunks; docs/evidence.md).
    """
    header = Header.checked(agreement, chain_id, period, period_start, period_end, values, coverage)
    files, root = _format(version, coverage).files_from_samples(header, samples)
    return _install(Path(directory), files, root, overwrite)




def _format(version: int, coverage: dict[str, int] | None = None):
    """The module of a bundle version: v1 and v2 have the same functions."""
    if version not in FORMATS or isinstance(version, bool):
        raise EvidenceError(f"bundle version {version!r}: this oracle writes 1 or {VERSION}")
    if coverage is not None and version < 2:
        raise EvidenceError("version 1 bundles have no coverage; write version 2")
    return FORMATS[version]


def build_bundle_columns(directory: str | os.PathLike, agreement: str, chain_id: int, period: int,
                         period_start: int, period_end: int, columns: EvidenceColumns,
                         values: dict[str, int] | None = None, *, coverage: dict[str, int] | None = None,
                         overwrite: bool = False, version: int = VERSION,
                         events: EventColumns | None = None) -> bytes:
    """:func:`build_bundle` for :class:`EvidenceColumns`: the same bytes and root, without a Python object per
    sample. Columns already in canonical order (``columns.canonical()``, or the store's) are not sorted again.
    ``events``: the counts of the services measured from them (version 2 only)."""
    header = Header.checked(agreement, chain_id, period, period_start, period_end, values, coverage)
    if events is not None and len(events):
        if version != 2:
            raise EvidenceError("event counts are a version 2 record kind; write version 2")
        files, root = v2.files_from_columns(header, columns, events)
    else:
        files, root = _format(version, coverage).files_from_columns(header, columns)
    return _install(Path(directory), files, root, overwrite)


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
        inside = sorted(p.parent.name for p in directory.glob("*/manifest.json"))
        if inside:
            raise EvidenceError(f"{directory}: no manifest.json; it holds the bundles {', '.join(inside)}: verify "
                                "one of those (each period's bundle is its own folder)")
        raise EvidenceError(f"{directory}: no manifest.json; not an evidence bundle")
    result = VerifyResult(str(directory), None)
    m = load_canonical(directory, "manifest.json", result.findings)
    if m is None:
        return result
    version = m.get("version", 1) if isinstance(m, dict) else 1
    if version not in FORMATS or isinstance(version, bool):
        result.findings.append(Finding("manifest.json", f"version {version!r}; this verifier knows 1 (no version "
                                                        f"key) and {VERSION}"))
        return result
    FORMATS[version].verify(directory, m, result, expected_root)
    return result


def prove(bundle_dir: str | os.PathLike, service: str, hour: int) -> Proof:
    """The Merkle proof for one (service, hour) chunk, from the manifest's leaves (version 1) or from the
    service's records and the manifest's other nodes (version 2). Run verify_bundle to trust them."""
    bundle_dir = Path(bundle_dir)
    hour = int(hour)
    try:
        m = json.loads((bundle_dir / "manifest.json").read_text("utf-8"))
        version = m.get("version", 1)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EvidenceError(f"{bundle_dir}: cannot read the bundle ({exc})") from None
    return _format(version).prove(bundle_dir, m, service, hour)


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
    coverage: dict[str, int] | None = None   # as the manifest states it; None in bundles from before coverage
    events: EventColumns | None = None       # the counts; service_ids = the services with counts, sorted

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
        return SampleColumns(remap[c.service] if len(c) else c.service, c.time_us / 1_000_000, c.status,
                             np.asarray(c.latency_us, np.int64))

    def event_columns(self, service_ids) -> EventColumns:
        """The counts with service indexes into ``service_ids`` (the terms' order)."""
        e = self.events if self.events is not None else EventColumns.empty(())
        index = {sid: i for i, sid in enumerate(service_ids)}
        missing = [sid for sid in e.service_ids if sid not in index]
        if missing:
            raise EvidenceError(f"the bundle has counts of {', '.join(missing)}, which are not in the terms")
        remap = np.array([index[sid] for sid in e.service_ids], np.int64)
        return EventColumns(tuple(service_ids), remap[e.service] if len(e) else e.service, e.time_us, e.good,
                            e.tolerating, e.total)


def load_bundle(bundle_dir: str | os.PathLike) -> Bundle:
    """Read a bundle (version 1 or 2) into columns, for recomputing the period's values with smartsla.periods."""
    bundle_dir = Path(bundle_dir)
    try:
        m = json.loads((bundle_dir / "manifest.json").read_text("utf-8"))
        columns = _format(m.get("version", 1)).load_columns(bundle_dir, m)
        events = v2.load_events(bundle_dir, m) if m.get("version", 1) == 2 else None
        return Bundle(bundle_dir, int(m.get("version", 1)), m["agreement"], m["chain_id"], m["period"],
                      m["period_start"], m["period_end"], m["values"], m["root"], columns.canonical(),
                      m.get("coverage"), events)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EvidenceError(f"{bundle_dir}: cannot load the bundle ({exc}); run sla-oracle evidence verify") from None


def bundle_samples(bundle_dir: str | os.PathLike) -> Iterator[Sample]:
    """The samples of a (verified) bundle, by service then time, as :class:`Sample` objects."""
    return load_bundle(bundle_dir).columns.samples()
