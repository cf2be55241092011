"""The oracle's small HTTP endpoint, bound to 127.0.0.1 by default.

- ``GET /reports/<chain_id>/<agreement>/<period>``: this oracle's signed report for that period, so any oracle
  that gathers a quorum can submit it;
- ``GET /healthz``: 200 while the daemon runs;
- ``GET /metrics``: Prometheus text format (probes, failures, latencies, reports, settlements, last error).
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from smartsla.constants import ADDRESS_RE

ReportLookup = Callable[[int, str, int], "dict[str, Any] | None"]
_REPORT_PATH = re.compile(rf"^/reports/(\d+)/({ADDRESS_RE.pattern.strip('^$')})/(\d+)$")


class Metrics:
    """The daemon's counters, in a registry of their own so that several oracles can run in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # an agreement and its service as two labels, so dashboards can group by either
        labels = ["agreement", "service"]
        self.probes = Counter("sla_oracle_probes", "probes run", labels, registry=self.registry)
        self.failures = Counter("sla_oracle_probe_failures", "probes that found the service down",
                                labels, registry=self.registry)
        self.latency = Histogram("sla_oracle_probe_latency_seconds", "probe latency", labels,
                                 registry=self.registry)
        self.pending = Gauge("sla_oracle_pending_reports", "periods signed and not (known to be) settled",
                             registry=self.registry)
        self.reports = Counter("sla_oracle_reports_signed", "period reports signed", registry=self.registry)
        self.settlements = Counter("sla_oracle_settlements", "periods settled by this oracle's submissions",
                                   ["outcome"], registry=self.registry)
        self.last_error = Gauge("sla_oracle_last_error_timestamp_seconds", "time of the last error",
                                registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ReportServer:
    def __init__(self, lookup: ReportLookup, metrics: Metrics | None = None, host: str = "127.0.0.1",
                 port: int = 0):
        self.lookup = lookup
        self.metrics = metrics or Metrics()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server interface
                if self.path == "/healthz":
                    return self._send(200, b"ok\n", "text/plain")
                if self.path == "/metrics":
                    return self._send(200, server.metrics.render(), CONTENT_TYPE_LATEST)
                match = _REPORT_PATH.match(self.path)
                if not match:
                    return self._send(404, b'{"error": "no such path"}', "application/json")
                found = server.lookup(int(match[1]), match[2], int(match[3]))
                if found is None:
                    return self._send(404, b'{"error": "no signed report for that period yet"}', "application/json")
                return self._send(200, json.dumps(found).encode(), "application/json")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:  # structured logs are the daemon's job
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="oracle-http", daemon=True)

    def start(self) -> "ReportServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def fetch_report(peer_url: str, chain_id: int, agreement: str, period: int, timeout: float = 3.0) -> dict | None:
    """A peer's signed report, or None when it has none yet or cannot be reached."""
    url = f"{peer_url.rstrip('/')}/reports/{chain_id}/{agreement}/{period}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - peers are configured URLs
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
