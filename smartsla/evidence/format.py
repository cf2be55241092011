"""What both bundle versions share: the format name and hash schemes, the header a root commits to,
errors and verification findings, canonical JSON, and the manifest checks common to both."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from smartsla.constants import ADDRESS_RE, PPM, US_PER_SECOND
from smartsla.encoding import address_key

SCHEMES = {1: "smart-sla/evidence/v1", 2: "smart-sla/evidence/v2"}  # the hash scheme each version names
FORMAT = "smart-sla-evidence"
MAX_TIME = 253402300800  # 10000-01-01: beyond it there is no ISO hour to print
_AGREEMENT = re.compile(r'^[\x20-\x7e]{1,200}$')


class EvidenceError(Exception):
    """Bad input to the evidence functions (not a finding about a bundle's contents)."""


class BundleExistsError(EvidenceError):
    """The bundle directory already holds a different bundle."""


def header_bytes(agreement: str, chain_id: int, period: int, period_start: int, period_end: int,
                 values: dict[str, int] | None, scheme: str = SCHEMES[1],
                 coverage: dict[str, int] | None = None) -> bytes:
    doc = {"agreement": agreement, "chain_id": chain_id, "period": period, "period_end": period_end,
           "period_start": period_start, "scheme": scheme, "values": values}
    if coverage is not None:  # absent, not null, in bundles written before reports carried coverage
        doc["coverage"] = coverage
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def canonical_json(doc) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")


def unhex(text) -> bytes | None:
    if isinstance(text, str) and re.fullmatch(r"0x[0-9a-f]{64}", text):
        return bytes.fromhex(text[2:])
    return None


def hour_iso(hour_start: int) -> str:
    return datetime.fromtimestamp(hour_start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hours_list(service: str, hours: list[int], most: int = 12) -> str:
    """``hours with samples of 'api': 2027-01-01T00:00:00Z, ...`` for an error that asked for another hour."""
    shown = ", ".join(hour_iso(h) for h in sorted(hours)[:most])
    more = f" and {len(hours) - most} more" if len(hours) > most else ""
    return f"hours with samples of {service!r}: {shown or 'none'}{more}"


def normalize_agreement(agreement: str) -> str:
    agreement = str(agreement)
    if ADDRESS_RE.match(agreement):
        return address_key(agreement)
    if not _AGREEMENT.match(agreement) or '"' in agreement or "\\" in agreement:
        raise EvidenceError(f"agreement {agreement!r}: use its 0x address")
    return agreement


def check_manifest_head(m: dict, keys: set, scheme: str, scheme_hint: str, bad,
                        optional: frozenset = frozenset()) -> bool:
    """The keys, the format and the hash scheme, which every version states; False when the rest cannot be read."""
    if not keys <= set(m) <= keys | optional:
        bad(f"keys: missing {sorted(keys - set(m))}, unexpected {sorted(set(m) - keys - optional)}")
        return False
    if m["format"] != FORMAT:
        bad(f"format {m['format']!r}, expected {FORMAT!r}")
    if m["scheme"] != scheme:
        bad(f"hash scheme {m['scheme']!r}; {scheme_hint}")
        return False
    return True


@dataclass(frozen=True)
class Header:
    """What a bundle's root commits to besides the samples, normalised and checked (both versions)."""

    agreement: str
    chain_id: int
    period: int
    period_start: int
    period_end: int
    values: dict[str, int] | None
    coverage: dict[str, int] | None = None   # per service, the ppm of its eligible slices measured (version 2)

    @classmethod
    def checked(cls, agreement, chain_id, period, period_start, period_end, values, coverage=None) -> "Header":
        period_start, period_end = int(period_start), int(period_end)
        if period_end <= period_start:
            raise EvidenceError(f"period end {period_end} is not after its start {period_start}")
        if values is not None:
            values = {str(k): int(v) for k, v in values.items()}
        if coverage is not None:
            coverage = {str(k): int(v) for k, v in coverage.items()}
            if not all(0 <= v <= PPM for v in coverage.values()):
                raise EvidenceError(f"coverage {coverage}: each is ppm, 0..{PPM}")
        return cls(normalize_agreement(agreement), int(chain_id), int(period), period_start, period_end, values,
                   coverage)

    @property
    def fields(self) -> tuple:
        """(agreement, chain_id, period, period_start, period_end, values): the header leaf's arguments."""
        return (self.agreement, self.chain_id, self.period, self.period_start, self.period_end, self.values)

    def holds_us(self, t_us: int) -> bool:
        return self.period_start * US_PER_SECOND <= t_us < self.period_end * US_PER_SECOND

    def outside(self, what: str) -> EvidenceError:
        return EvidenceError(f"{what} is outside period {self.period} [{self.period_start}, {self.period_end})")


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
    intervals: int = 0               # event-count records (version 2 bundles with counts)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict:
        return {"result": "PASS" if self.ok else "FAIL", "directory": self.directory, "root": self.root,
                "chunks": self.chunks, "samples": self.samples, "intervals": self.intervals,
                "findings": [asdict(f) for f in self.findings]}


def load_canonical(directory: Path, name: str, findings: list[Finding]):
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


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_common(m: dict, bad) -> bool:
    """The header fields both versions share."""
    ok = True
    for k in ("chain_id", "period", "period_start", "period_end"):
        if not is_int(m[k]) or m[k] < 0:
            bad(f"{k} {m[k]!r} is not a non-negative integer")
            ok = False
    if ok and m["period_end"] <= m["period_start"]:
        bad(f"period_end {m['period_end']} is not after period_start {m['period_start']}")
    if not isinstance(m["agreement"], str):
        bad("agreement is not a string")
        ok = False
    v = m["values"]
    if v is not None and (not isinstance(v, dict) or not all(is_int(x) for x in v.values())):
        bad("values is neither null nor an object of integers")
        ok = False
    c = m.get("coverage", {})
    if not isinstance(c, dict) or not all(is_int(x) and 0 <= x <= PPM for x in c.values()):
        bad(f"coverage is not an object of integers 0..{PPM} (ppm)")
        ok = False
    return ok


def check_agreement(m: dict, findings: list[Finding]) -> None:
    try:
        agreement = normalize_agreement(m["agreement"])
    except EvidenceError as exc:
        findings.append(Finding("manifest.json", str(exc)))
        agreement = m["agreement"]
    if agreement != m["agreement"]:
        findings.append(Finding("manifest.json", f"agreement {m['agreement']!r} is not lower-case"))
