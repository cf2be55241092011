"""What an audit says: findings (PASS, FAIL or SKIP with the exact discrepancy) and the report that holds
them with the history, timings and recomputed values. A leaf of the audit room: the checks, the evidence checks
and the replay all write findings, and none of them imports another for it."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from smartsla.onchain.history import History
from smartsla.units import format_token_amount

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass(frozen=True)
class Finding:
    check: str       # e.g. "reports.signers"
    subject: str     # what it is about: "agreement", "period 3", a bundle directory
    verdict: str     # PASS | FAIL | SKIP
    detail: str

    @property
    def failed(self) -> bool:
        return self.verdict == FAIL


def money_formatter(token: tuple[str, int] | None):
    """Amounts for people: in the token's units with its symbol; base units only when the token does not say its
    decimals (the JSON's history and totals stay in base units, for machines)."""
    if token is None:
        return lambda units: f"{units:,} base units"
    symbol, decimals = token
    # a failing check may have a negative gap to show
    return lambda units: f"{'-' if units < 0 else ''}{format_token_amount(abs(units), decimals)} {symbol}"


@dataclass
class AuditReport:
    agreement: str
    chain_id: int
    findings: list[Finding]
    history: History | None
    timings: dict[str, float] = field(default_factory=dict)
    replay: dict[str, Any] | None = None         # speed and counts of the replay, when run
    evidence_values: dict[tuple[int, str], dict[str, int]] = field(default_factory=dict)  # (period, oracle) -> recomputed
    token: tuple[str, int] | None = None         # (symbol, decimals) of the agreement's token, when it says
    name: str | None = None                      # the terms' `agreement` name, when the audit was given the file
    # per service, the objective words of the terms file, when it is the agreement's (its hash is on chain); the
    # chain alone only says lower- or higher-is-better
    objectives: list[str] | None = None
    # the combined number per settled period: {"how", "decides_credit", "objective", "target", "periods"}, values
    # in the objective's unit; None when there is none to show (one service, or objectives that differ)
    combined: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not any(f.failed for f in self.findings)

    def counts(self) -> dict[str, int]:
        c = Counter(f.verdict for f in self.findings)
        return {v: c.get(v, 0) for v in (PASS, FAIL, SKIP)}

    def to_json(self) -> dict[str, Any]:
        return {
            "agreement": self.agreement,
            "name": self.name,
            "objectives": self.objectives,
            "combined": self.combined,
            "chain_id": self.chain_id,
            "result": PASS if self.ok else FAIL,
            "counts": self.counts(),
            "findings": [asdict(f) for f in self.findings],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "replay": self.replay,
            "history": self.history.to_json() if self.history else None,
        }


def add_finding(findings: list[Finding], check: str, subject: str, problems: list[str], ok_detail: str) -> None:
    findings.append(Finding(check, subject, FAIL if problems else PASS, "; ".join(problems) if problems else ok_detail))
