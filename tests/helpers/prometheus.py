"""A real Prometheus (Debian's package) on 127.0.0.1, scraping a local exporter every second: a 0/1 gauge the test
flips and request counters it makes grow. Shared by the import tests and the end-to-end tests of success rates."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from oracle.devnet.targets import closed_port

PROMETHEUS = Path("/usr/bin/prometheus")
SCRAPE_INTERVAL = 1.0


class Exporter:
    """``/metrics`` with ``probe_success`` for job api (``value``, flipped by a test) and job db (always 1), and
    ``http_requests_total{job="storage",code=...}`` counters (``requests``, grown by a test)."""

    def __init__(self) -> None:
        self.value = 1
        self.requests = {"200": 0, "500": 0}
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                counters = "".join(f'http_requests_total{{job="storage",code="{code}"}} {n}\n'
                                   for code, n in sorted(exporter.requests.items()))
                body = (f'# TYPE probe_success gauge\nprobe_success{{job="api"}} {exporter.value}\n'
                        'probe_success{job="db"} 1\n'
                        f'# TYPE http_requests_total counter\n{counters}').encode()
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self._traffic: threading.Thread | None = None
        self._stop = threading.Event()

    def traffic(self, good: int, failed: int, every: float = 0.05) -> None:
        """From now on, ``good`` and ``failed`` more requests every ``every`` seconds, until :meth:`close`."""
        def run():
            while not self._stop.wait(every):
                self.requests["200"] += good
                self.requests["500"] += failed
        self._traffic = threading.Thread(target=run, daemon=True)
        self._traffic.start()

    def close(self) -> None:
        self._stop.set()
        if self._traffic is not None:
            self._traffic.join()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def instant(base: str, query: str) -> list:
    return get_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query}))["data"]["result"]


def last_scrape(base: str, series: str = 'probe_success{job="api"}') -> float:
    result = instant(base, f"timestamp({series})")
    return float(result[0]["value"][1]) if result else 0.0


def wait_until(what: str, condition, timeout: float, log: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited with {process.returncode} while waiting for {what}:\n"
                        f"{log.read_text()[-3000:]}")
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"prometheus: no {what} within {timeout} s; its log:\n{log.read_text()[-3000:]}")


def require_prometheus() -> None:
    if not (PROMETHEUS.is_file() and os.access(PROMETHEUS, os.X_OK)):
        pytest.fail(f"{PROMETHEUS} is missing: these tests need Debian's Prometheus "
                    "(apt-get install -y --no-install-recommends prometheus)", pytrace=False)


@contextmanager
def real_prometheus(tmp: Path) -> Iterator[tuple[str, Exporter, object]]:
    """``(base_url, exporter, wait)``: Prometheus on a free loopback port scraping an :class:`Exporter` every
    second, stopped (and the exporter closed) at the end, failures included."""
    require_prometheus()
    exporter = Exporter()
    config = tmp / "prometheus.yml"
    # honor_labels keeps the exposed job="api" rather than renaming it to exported_job.
    config.write_text(f"""\
global:
  scrape_interval: {SCRAPE_INTERVAL:g}s
  scrape_timeout: {SCRAPE_INTERVAL:g}s
scrape_configs:
  - job_name: exporter
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:{exporter.port}"]
""")
    log = tmp / "prometheus.log"
    process = None
    try:
        port = closed_port()
        with open(log, "wb") as log_file:
            process = subprocess.Popen(
                [str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                cwd=tmp, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"

        def wait(what: str, condition, timeout: float = 20) -> None:
            wait_until(what, condition, timeout, log, process)

        # The scrape manager applies new targets on a 5 s tick, so the first scrape takes ~6 s.
        wait("first scrapes", lambda: instant(base, 'count_over_time(probe_success{job="api"}[1m]) >= 3'))
        yield base, exporter, wait
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        exporter.close()
