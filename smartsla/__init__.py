"""smart-sla: service level agreements whose terms and penalties live in Solidity contracts.

The public API is the names in ``__all__`` (pinned by a test); everything else is reached through its room, e.g.
``smartsla.terms.model``. Names are imported on first use, so ``import smartsla`` stays instant and the command
line pays only for what a command touches. docs/architecture.md maps the rooms.

    from smartsla import load_terms, Chain, Contracts
    terms = load_terms("examples/aws-ec2.yaml")
"""

from __future__ import annotations

from smartsla.exports import lazy_exports

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # terms
    "load_terms": "smartsla.terms.parse",
    "Terms": "smartsla.terms.model",
    "TermsError": "smartsla.terms.errors",
    # the penalty model and what-if
    "CreditRules": "smartsla.penalty",
    "period_credit_bps": "smartsla.penalty",
    "settle_period": "smartsla.penalty",
    # chains
    "Chain": "smartsla.chain.chain",
    "connect": "smartsla.chain.chain",
    "ChainError": "smartsla.chain.reverts",
    "Reverted": "smartsla.chain.reverts",
    "compile_contracts": "smartsla.chain.build",
    # the contracts
    "Contracts": "smartsla.onchain.client",
    "Factory": "smartsla.onchain.client",
    "Agreement": "smartsla.onchain.client",
    "TokenInfo": "smartsla.onchain.client",
    "OnChainTerms": "smartsla.onchain.types",
    "OnChainService": "smartsla.onchain.types",
    "OnChainTier": "smartsla.onchain.types",
    "PeriodState": "smartsla.onchain.types",
    "PeriodRecord": "smartsla.onchain.types",
    "SignedReport": "smartsla.onchain.types",
    "History": "smartsla.onchain.history",
    "load_history": "smartsla.onchain.history",
    # measuring
    "Sample": "smartsla.measure.samples",
    "Status": "smartsla.measure.samples",
    "SampleColumns": "smartsla.measure.periods",
    "PeriodResult": "smartsla.measure.periods",
    "compute_periods": "smartsla.measure.periods",
    # evidence
    "EvidenceColumns": "smartsla.evidence.columns",
    "EvidenceError": "smartsla.evidence.format",
    "Bundle": "smartsla.evidence.bundle",
    "build_bundle": "smartsla.evidence.bundle",
    "build_bundle_columns": "smartsla.evidence.bundle",
    "verify_bundle": "smartsla.evidence.bundle",
    "load_bundle": "smartsla.evidence.bundle",
    "prove": "smartsla.evidence.bundle",
    # the audit
    "AuditReport": "smartsla.audit.findings",
    "Finding": "smartsla.audit.findings",
}

__all__ = sorted(_EXPORTS) + ["__version__"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
