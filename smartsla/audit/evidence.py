"""The audit's evidence checks: each bundle verifies, its root is what an oracle signed for that period, and
the values recomputed from its raw samples with the oracles' own period maths are what that oracle reported."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smartsla.audit.findings import FAIL, SKIP, Finding, add_finding
from smartsla.evidence.bundle import Bundle, load_bundle, verify_bundle
from smartsla.measure.events import EventColumns
from smartsla.measure.periods import PeriodResult, SampleColumns, compute_periods
from smartsla.onchain.history import History, ReportRecord


@dataclass
class AuditedBundle:
    """One evidence bundle as the audit sees it: the bundle as loaded, what its verification found (empty when
    it verifies), the root recomputed from its files, and the oracle's signed report lying beside it, if any."""

    directory: str
    bundle: Bundle
    problems: list[str]
    root: bytes | None
    signed: dict[str, Any] | None = None

    @property
    def agreement(self) -> str:
        return self.bundle.agreement

    @property
    def chain_id(self) -> int:
        return self.bundle.chain_id

    @property
    def period(self) -> int:
        return self.bundle.period

    @property
    def period_start(self) -> int:
        return self.bundle.period_start

    @property
    def period_end(self) -> int:
        return self.bundle.period_end

    @property
    def values(self) -> dict[str, int] | None:
        return self.bundle.values  # as the manifest states them


# The oracle's signed report of a bundle ``period-N`` lies beside it as ``period-N.report.json``: the bundle is
# exactly what was signed, the signature cannot be inside what it signs.
SIGNED_REPORT_SUFFIX = ".report.json"


def _signed_owner(history: History, bundle: AuditedBundle) -> tuple[str | None, str]:
    """The oracle whose signed report (beside the bundle) vouches for this bundle, or None and why not."""
    signed = bundle.signed
    if signed is None:
        return None, "no signed report lies beside the bundle (period-N.report.json)"
    try:
        values = [int(v) for v in signed["values"]]
        coverage = [int(c) for c in signed["coverage"]]
        root = bytes.fromhex(str(signed["evidence_root"]).removeprefix("0x"))
        signature = bytes.fromhex(str(signed["signature"]).removeprefix("0x"))
        period = int(signed["period"])
    except (KeyError, TypeError, ValueError) as exc:
        return None, f"the signed report is malformed ({exc.__class__.__name__}: {exc})"
    if period != bundle.period or root != bundle.root:
        return None, f"the signed report is for period {period} root 0x{root.hex()[:16]}…, not this bundle's"
    signer = history.agreement.report_signer(period, values, coverage, root, signature)
    if signer is None or signer not in history.terms.oracles:
        return None, f"the signed report is signed by {signer or 'nobody recoverable'}, not by an oracle of the agreement"
    return signer, ""


def load_audited(directory: str | Path) -> AuditedBundle:
    result = verify_bundle(directory)
    b = load_bundle(directory)
    loaded = AuditedBundle(str(directory), b, [str(f) for f in result.findings],
                           bytes.fromhex(result.root[2:]) if result.root else None)
    signed_file = Path(directory).parent / f"{Path(directory).name}{SIGNED_REPORT_SUFFIX}"
    if signed_file.exists():
        try:
            loaded.signed = json.loads(signed_file.read_text("utf-8"))
        except ValueError as exc:
            loaded.problems.append(f"{signed_file.name} is not JSON: {exc}")
    return loaded


def recompute(terms: Any, bundles: list[AuditedBundle], maintenance: list[tuple[int, int]], start: int,
              period: int) -> PeriodResult:
    """A period's values and coverage from bundles' raw samples, with the oracles' own period maths."""
    parts = [b.bundle.sample_columns(terms.service_ids) for b in bundles]
    cols = SampleColumns(np.concatenate([p.service for p in parts]), np.concatenate([p.time for p in parts]),
                         np.concatenate([p.status for p in parts]), np.concatenate([p.latency_us for p in parts]))
    counts = [b.bundle.event_columns(terms.service_ids) for b in bundles]
    events = EventColumns(terms.service_ids, *(np.concatenate([getattr(c, k) for c in counts])
                                               for k in ("service", "time_us", "good", "tolerating", "total")))
    return compute_periods(terms, cols, maintenance, start=start, events=events)[period]


def check_evidence(history: History, dirs: Sequence[str | Path], terms_doc: Any = None,
                   recomputed_out: dict | None = None) -> list[Finding]:
    """Each bundle: it verifies; it is this agreement's, on this chain, for a settled period; its root is the
    one some oracle signed in that period's reports, with the same values; and with the terms file, the values
    recomputed from its samples (plus the same oracle's bundle of the period before, when given: a run of
    failures that began there counts) are that oracle's reported values."""
    findings: list[Finding] = []
    bundles: list[AuditedBundle] = []
    for d in _bundle_dirs(dirs):
        try:
            bundles.append(load_audited(d))
        except Exception as exc:  # noqa: BLE001 - EvidenceError and friends: a finding, not a crash
            findings.append(Finding("evidence.bundle", str(d), FAIL, f"cannot read the bundle: {exc}"))
    # Two oracles with the same samples write the same bundle (the header does not name the oracle): a bundle
    # supports every report that signed its root.
    by_root: dict[tuple[int, bytes], list[str]] = {}
    for p, s in history.settlements.items():
        for r in s.reports:
            by_root.setdefault((p, r.evidence_root), []).append(r.oracle)
    owners: dict[str, list[str]] = {b.directory: by_root.get((b.period, b.root), []) for b in bundles}
    unused: set[str] = set()

    for b in bundles:
        report = _check_root(history, b, owners, unused, findings)
        if report is None:
            continue
        if terms_doc is None:
            findings.append(Finding("evidence.values", b.directory, SKIP, "recomputing needs the terms file "
                                                                          "(--terms): the measuring method is in "
                                                                          "the document"))
            continue
        _check_values(history, b, bundles, owners, report, terms_doc, recomputed_out, findings)
    return findings


def _check_root(history: History, b: AuditedBundle, owners: dict[str, list[str]], unused: set[str],
                findings: list[Finding]) -> ReportRecord | None:
    """evidence.bundle and evidence.root: the bundle verifies, is this agreement's and period's, and its root is
    what an oracle signed; returns that oracle's report (None when there is none to hold the bundle to)."""
    ids = list(history.terms.service_names)
    subject = b.directory
    add_finding(findings, "evidence.bundle", subject, [f"does not verify: {p}" for p in b.problems[:5]] +
                ([f"... {len(b.problems) - 5} more"] if len(b.problems) > 5 else []),
                f"verifies: root 0x{b.root.hex() if b.root else '?'}")
    problems = []
    if b.agreement.lower() != history.address.lower():
        problems.append(f"the bundle is for agreement {b.agreement}, not {history.address}")
    if b.chain_id != history.chain_id:
        problems.append(f"the bundle is for chain {b.chain_id}, not {history.chain_id}")
    if (b.period_start, b.period_end) != (history.agreement.period_start(b.period),
                                          history.agreement.period_end(b.period)):
        problems.append(f"bounds [{b.period_start}, {b.period_end}) are not period {b.period}'s")
    s = history.settlements.get(b.period)
    report = None
    if s is None:
        problems.append(f"period {b.period} is not settled")
    else:
        report = next((r for r in s.reports if r.oracle in owners[b.directory]), None)
        if report is None:
            # an oracle's report the contract did not need (the quorum was reached without it) still binds
            # its signer: the bundle must prove what that oracle signed
            signer, why = _signed_owner(history, b)
            if signer is not None:
                owners[b.directory] = [signer]
                report = ReportRecord(signer, tuple(int(v) for v in b.signed["values"]),
                                      tuple(int(c) for c in b.signed["coverage"]), b.root or b"",
                                      bytes.fromhex(str(b.signed["signature"]).removeprefix("0x")))
                unused.add(b.directory)
            else:
                roots = ", ".join(f"{r.oracle[:10]}… 0x{r.evidence_root.hex()[:16]}…" for r in s.reports)
                problems.append(f"root 0x{b.root.hex() if b.root else '?'} is in no report of period "
                                f"{b.period} (reports: {roots or 'none'}), and {why}")
        if report is not None and b.values is not None and [b.values.get(i) for i in ids] != list(report.values):
            problems.append(f"the manifest's values {b.values} are not the reported {list(report.values)}")
        coverage = b.bundle.coverage
        if report is not None and coverage is not None and [coverage.get(i) for i in ids] != list(report.coverage):
            problems.append(f"the manifest's coverage {coverage} is not the reported {list(report.coverage)}")
    add_finding(findings, "evidence.root", subject, problems,
                (f"its root 0x{b.root.hex() if b.root else '?'} is what {', '.join(owners[b.directory])} signed "
                 f"for period {b.period}"
                 + (" (a report the contract did not need: the quorum was reached without it)"
                    if b.directory in unused else "")) if report else "")
    return report


def _check_values(history: History, b: AuditedBundle, bundles: list[AuditedBundle], owners: dict[str, list[str]],
                  report: ReportRecord, terms_doc: Any, recomputed_out: dict | None, findings: list[Finding]) -> None:
    """evidence.values: each service's value (availability, latency percentile, Apdex) recomputed from the bundle's
    samples is what its oracle reported."""
    subject = b.directory
    context = [x for x in bundles if x.period == b.period - 1 and set(owners[x.directory]) &
               set(owners[b.directory]) and not x.problems][:1]
    try:
        result = recompute(terms_doc, [*context, b], history.maintenance, history.terms.start, b.period)
    except Exception as exc:  # noqa: BLE001 - bad samples for these terms
        findings.append(Finding("evidence.values", subject, FAIL, f"cannot recompute: {exc}"))
        return
    values, coverage = result.values, result.coverage
    if recomputed_out is not None:
        for oracle in owners[b.directory]:
            recomputed_out[(b.period, oracle)] = values
    problems = []
    checked = []
    for i, sid in enumerate(history.terms.service_names):
        checked.append(sid)
        if values.get(sid) != report.values[i]:
            unit = "µs" if history.terms.services[i].lower_is_better else "ppm"
            problems.append(f"{sid}: recomputed {values.get(sid)} {unit}, {report.oracle} reported "
                            f"{report.values[i]}")
        if coverage.get(sid) != report.coverage[i]:
            problems.append(f"{sid}: the samples cover {coverage.get(sid)} ppm of the period, {report.oracle} "
                            f"reported coverage {report.coverage[i]}")
    if problems and not context and b.period > 0 and terms_doc.measurement.down_after > 1:
        problems.append(f"(the oracle's bundle of period {b.period - 1} was not given: a run of failures that "
                        "began there counts from its first sample)")
    add_finding(findings, "evidence.values", subject, problems,
                f"{', '.join(checked) or 'no service'} recomputed from the samples (values and "
                f"coverage) = the report of "
                f"{', '.join(owners[b.directory])}" + (f" (with period {b.period - 1}'s bundle)" if context else ""))


def _bundle_dirs(dirs: Sequence[str | Path]) -> list[Path]:
    """Each given directory is a bundle (it has manifest.json) or holds bundles below it."""
    found: list[Path] = []
    for d in dirs:
        d = Path(d)
        if (d / "manifest.json").exists():
            found.append(d)
            continue
        below = sorted(p.parent for p in d.rglob("manifest.json")) if d.is_dir() else []
        found.extend(below or [d])
    return found
