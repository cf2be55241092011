"""The smart-sla oracle (``sla-oracle``): probes, the store, importers, signing and submission, the daemon.

It depends on :mod:`smartsla` (the period maths, the evidence format, the contracts' client); smartsla never
imports this package. The public API is the names in ``__all__`` (pinned by a test), imported on first use.
"""

from __future__ import annotations

from smartsla.exports import lazy_exports

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "OracleDaemon": "oracle.daemon",
    "OracleConfig": "oracle.config",
    "ConfigError": "oracle.config",
    "load_config": "oracle.config",
    "ProbeSpec": "oracle.probes",
    "Prober": "oracle.probes",
    "Scheduler": "oracle.probes",
    "Store": "oracle.store.store",
    "StoreError": "oracle.store.schema",
    "ReportIntent": "oracle.store.journal",
    "ImportFormatError": "oracle.importers.files",
    "read_any": "oracle.importers.files",
    "read_samples_csv": "oracle.importers.files",
    "read_samples_jsonl": "oracle.importers.files",
    "read_incidents_csv": "oracle.importers.files",
    "PrometheusError": "oracle.importers.prometheus",
    "query_range_samples": "oracle.importers.prometheus",
    "ReportServer": "oracle.server",
    "fetch_report": "oracle.server",
    "sign_once": "oracle.submit",
}

__all__ = sorted(_EXPORTS) + ["__version__"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
