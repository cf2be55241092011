"""The oracle's small HTTP endpoint, bound to 127.0.0.1 by default.

- ``GET /reports/<chain_id>/<agreement>/<period>``: this oracle's signed report for that period, so any oracle
  that gathers a quorum can submit it;
- ``GET /healthz``: 200 ``ok`` while the daemon runs and can sign; 503 with the reason when it cannot (a corrupt
  store);
- ``GET /metrics``: Prometheus text format (probes, failures, latencies, reports, settlements, last error).
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import urllib.parse
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
        # one probe serves every agreement with the same probe in its terms: labelled by the probe's store key
        # (`sla-oracle status` lists the services it serves) and by what it requests, for dashboards
        labels = ["probe", "target"]
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
        self.samples_lost = Counter("sla_oracle_samples_lost", "samples the store could not write (a full disk, "
                                    "an I/O error)", registry=self.registry)
        self.bad_peer_reports = Counter("sla_oracle_bad_peer_reports", "peer answers refused, by peer and reason",
                                        ["peer", "reason"], registry=self.registry)
        self.withheld = Counter("sla_oracle_reports_withheld", "periods this oracle did not sign, by reason "
                                "(coverage below the terms' minimum; the period not over by this machine's clock)",
                                ["reason"], registry=self.registry)
        self.clock_skew = Gauge("sla_oracle_clock_skew_seconds", "the chain's latest block time minus this "
                                "machine's clock", registry=self.registry)
        self.agreement_errors = Counter("sla_oracle_agreement_errors", "rounds in which one agreement failed "
                                        "(the others went on)", ["agreement"], registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ReportServer:
    def __init__(self, lookup: ReportLookup, metrics: Metrics | None = None, host: str = "127.0.0.1",
                 port: int = 0, problem: Callable[[], str | None] = lambda: None):
        self.lookup = lookup
        self.metrics = metrics or Metrics()
        self.problem = problem  # what keeps the daemon from signing, if anything: /healthz says it
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server interface
                if self.path == "/healthz":
                    problem = server.problem()
                    if problem:
                        return self._send(503, f"unhealthy: {problem}\n".encode(), "text/plain")
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


REPORT_LIMIT = 64 * 1024  # a report is a few hundred bytes; anything near this is not one


class PeerError(Exception):
    """A peer's answer that cannot be a report: too slow, too big, cut off, or not JSON. The reason is short and
    stable (it labels a metric)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def fetch_report(peer_url: str, chain_id: int, agreement: str, period: int, deadline_s: float = 3.0) -> dict | None:
    """A peer's signed report as parsed JSON; None when it has none yet (404) or cannot be reached. Whatever else
    it answers raises :class:`PeerError`. ``deadline_s`` bounds the whole exchange, not each read: a peer that
    trickles its body a byte at a time is cut off at the deadline like one that never answers."""
    parts = urllib.parse.urlsplit(f"{peer_url.rstrip('/')}/reports/{chain_id}/{agreement}/{period}")
    ends = time.monotonic() + deadline_s

    def left() -> float:
        remaining = ends - time.monotonic()
        if remaining <= 0:
            raise PeerError("deadline", f"no whole answer within {deadline_s:g} s")
        return remaining

    connection_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_type(parts.hostname, parts.port, timeout=left())
    sock = response = None
    try:
        try:
            connection.request("GET", parts.path)
            sock = connection.sock  # kept: the connection lets go of it once the response says it will close
            sock.settimeout(left())
            response = connection.getresponse()
        except (OSError, http.client.HTTPException):
            return None  # not reachable (or not now): like a peer that has no report yet
        if response.status == 404:
            return None
        if response.status != 200:
            raise PeerError("status", f"HTTP {response.status}")
        body = bytearray()
        while True:
            sock.settimeout(left())
            try:
                chunk = response.read1(8192)
            except TimeoutError:
                raise PeerError("deadline", f"no whole answer within {deadline_s:g} s") from None
            except (OSError, http.client.HTTPException) as exc:
                raise PeerError("cut-off", exc.__class__.__name__) from None
            if not chunk:
                if response.length:  # the peer closed before the length it announced
                    raise PeerError("cut-off", f"{response.length} bytes short")
                break
            body += chunk
            if len(body) > REPORT_LIMIT:
                raise PeerError("too-big", f"more than {REPORT_LIMIT} bytes")
        try:
            return json.loads(body)
        except ValueError:
            raise PeerError("not-json") from None
    finally:
        for part in (response, connection, sock):
            if part is not None:
                part.close()
