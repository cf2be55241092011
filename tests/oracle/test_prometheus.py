"""The Prometheus source of ``sla-oracle import``.

Against a real Prometheus (Debian's package: ``apt-get install -y prometheus``), started here on
127.0.0.1 with a 1 s scrape interval and scraping a gauge this test flips; and against a fake server
that answers in the shape Prometheus 2.42 gives, for the parsing, chunking and error paths.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from oracle.cli import main
from oracle.devnet.targets import closed_port
from oracle.importers.prometheus import PrometheusError, chunks, parse_step, query_range_samples
from oracle.store.samples import sample_key
from oracle.store.store import Store
from smartsla.measure.samples import Sample, Status
from tests.helpers.prometheus import SCRAPE_INTERVAL, instant, last_scrape, real_prometheus, require_prometheus

# Scrape timestamps are taken when a scrape starts, so one that begins just before a flip can carry
# the new value; this covers that request latency.
EPSILON = 0.25


# -- a fake Prometheus -----------------------------------------------------------------------------

class FakePrometheus:
    """Answers each request with ``answer(params) -> (status, body)`` and records the parameters."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.requests: list[dict[str, str]] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                params = {"path": url.path, **dict(urllib.parse.parse_qsl(url.query))}
                fake.requests.append(params)
                status, body = fake.answer(params)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FakePrometheus:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def matrix(*series: tuple[dict, list]) -> dict:
    return {"status": "success",
            "data": {"resultType": "matrix", "result": [{"metric": m, "values": v} for m, v in series]}}


API = {"__name__": "probe_success", "instance": "127.0.0.1:9115", "job": "api"}


def test_points_become_samples_and_nan_is_a_gap():
    # Prometheus writes whole-second timestamps as integers and the rest with up to 3 decimals.
    body = matrix((API, [[1795737497, "1"], [1795737497.5, "0"], [1795737498, "NaN"], [1795737498.5, "1"]]))
    with FakePrometheus(lambda p: (200, body)) as fake:
        got = query_range_samples(fake.url + "/", 'probe_success{job="api"}', "api", 1795737497, 1795737498.5, "500ms")
    reason = 'prometheus: probe_success{job="api"}'
    assert got == [Sample(1795737497.0, "api", Status.UP, None, reason),
                   Sample(1795737497.5, "api", Status.DOWN, None, reason),
                   Sample(1795737498.5, "api", Status.UP, None, reason)]
    assert fake.requests == [{"path": "/api/v1/query_range", "query": 'probe_success{job="api"}',
                              "start": "1795737497.000", "end": "1795737498.500", "step": "0.500"}]


def test_long_ranges_are_chunked_on_one_grid():
    assert list(chunks(0, 9_000, 1000, max_points=4)) == [(0, 3000), (4000, 7000), (8000, 9000)]
    assert list(chunks(0, 7_500, 1000, max_points=4)) == [(0, 3000), (4000, 7000)]
    assert list(chunks(5, 5, 1000)) == [(5, 5)]
    # 30 days at 30 s: 86,401 points, more than 11,000, so several requests, none over the limit.
    pieces = list(chunks(0, 30 * 86_400_000, 30_000))
    assert len(pieces) == 9
    assert all((last - first) // 30_000 + 1 <= 10_000 for first, last in pieces)
    assert sum((last - first) // 30_000 + 1 for first, last in pieces) == 86_401

    def answer(p):
        start, end, step = float(p["start"]), float(p["end"]), float(p["step"])
        n = round((end - start) / step) + 1
        return 200, matrix((API, [[start + i * step, "1" if i % 2 else "0"] for i in range(n)]))

    with FakePrometheus(answer) as fake:
        got = query_range_samples(fake.url, "probe_success", "api", 100, 130, 1, max_points=7)
    assert [s.time for s in got] == [float(t) for t in range(100, 131)]
    assert [(r["start"], r["end"]) for r in fake.requests] == [
        ("100.000", "106.000"), ("107.000", "113.000"), ("114.000", "120.000"), ("121.000", "127.000"),
        ("128.000", "130.000")]


def test_step_parsing():
    assert parse_step("30s") == 30 and parse_step("1m30s") == 90 and parse_step("500ms") == 0.5
    assert parse_step("15") == 15 and parse_step(0.25) == 0.25 and parse_step("1h") == 3600
    for bad in ("", "30 s", "1x", "s", "0", "-5", "0s"):
        with pytest.raises(ValueError, match="step"):
            parse_step(bad)


def test_errors_are_clear():
    with FakePrometheus(lambda p: (200, matrix((API, [[10, "1"]]), ({**API, "instance": "b"}, [[10, "0"]])))) as fake:
        with pytest.raises(PrometheusError, match=r'more than one series .*instance="127.0.0.1:9115".*'
                                                   r'instance="b".*min\(\.\.\.\)'):
            query_range_samples(fake.url, "probe_success", "api", 0, 10, 1)
    # A second series that only shows up in a later chunk (say the exporter was relabelled) is caught too.
    with FakePrometheus(lambda p: (200, matrix(({**API, "instance": p["start"]}, [[float(p["start"]), "1"]])))) as fake:
        with pytest.raises(PrometheusError, match="more than one series"):
            query_range_samples(fake.url, "probe_success", "api", 0, 10, 1, max_points=5)
    with FakePrometheus(lambda p: (200, matrix((API, [[10, "1"], [11, "0.5"]])))) as fake:
        with pytest.raises(PrometheusError, match=r"value 0.5 at 11.000; only 0 \(down\) and 1 \(up\)"):
            query_range_samples(fake.url, "avg_over_time(probe_success[5m])", "api", 0, 11, 1)
    with FakePrometheus(lambda p: (200, {**matrix((API, [[10, "1"]])), "warnings": ["remote read failed"]})) as fake:
        with pytest.raises(PrometheusError, match="warnings.*remote read failed"):
            query_range_samples(fake.url, "probe_success", "api", 0, 10, 1)
    with FakePrometheus(lambda p: (404, b"404 page not found")) as fake:
        with pytest.raises(PrometheusError, match="HTTP 404.*root of a Prometheus server"):
            query_range_samples(fake.url + "/graph", "probe_success", "api", 0, 10, 1)
    with FakePrometheus(lambda p: (200, b"<html>login</html>")) as fake:
        with pytest.raises(PrometheusError, match="did not answer JSON"):
            query_range_samples(fake.url, "probe_success", "api", 0, 10, 1)
    with pytest.raises(PrometheusError, match=r"cannot reach Prometheus at http://127.0.0.1:\d+/api/v1/query_range: "
                                              "Connection refused"):
        query_range_samples(f"http://127.0.0.1:{closed_port()}", "probe_success", "api", 0, 10, 1)

    # A server that accepts the connection but never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with pytest.raises(PrometheusError, match="no answer within 0.3 s"):
            query_range_samples(f"http://127.0.0.1:{silent.getsockname()[1]}", "up", "api", 0, 10, 1, timeout=0.3)

    with pytest.raises(ValueError, match="service 'API'"):
        query_range_samples("http://127.0.0.1:1", "up", "API", 0, 10, 1)
    with pytest.raises(ValueError, match="expected http"):
        query_range_samples("127.0.0.1:9090", "up", "api", 0, 10, 1)
    with pytest.raises(ValueError, match="before start"):
        query_range_samples("http://127.0.0.1:1", "up", "api", 10, 0, 1)


def test_cli_arguments(tmp_path, capsys):
    db = str(tmp_path / "o.db")
    assert main(["import", "--db", db, "--agreement", AGREEMENT, "--prometheus", "http://127.0.0.1:1",
                 "--query", "up"]) == 2
    assert "--prometheus needs --service, --from, --to" in capsys.readouterr().err
    assert main(["import", "--db", db, "--agreement", AGREEMENT]) == 2
    assert "give FILE arguments or --prometheus URL" in capsys.readouterr().err


# -- a real Prometheus -----------------------------------------------------------------------------

def test_prometheus_is_installed():
    require_prometheus()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """A real Prometheus on 127.0.0.1 scraping an ``Exporter`` every second: ``(base_url, exporter, wait)``."""
    with real_prometheus(tmp_path_factory.mktemp("prometheus")) as served:
        yield served


def _last_scrape(base: str) -> float:
    return last_scrape(base)


def test_real_prometheus_down_where_the_gauge_was_0(prometheus, tmp_path, capsys):
    base, gauge, wait = prometheus
    start = time.time()
    wait("a scrape after the start", lambda: _last_scrape(base) >= start)
    down_from = time.time()
    gauge.value = 0
    time.sleep(4 * SCRAPE_INTERVAL)
    down_to = time.time()
    gauge.value = 1
    wait("two scrapes after the outage", lambda: _last_scrape(base) >= down_to + SCRAPE_INTERVAL)
    end = time.time()

    query = 'probe_success{job="api"}'
    got = query_range_samples(base, query, "api", start, end, "500ms")
    # Every step has a value (the series was scraped throughout): no gaps, one sample per step.
    assert len(got) == int((round(end * 1000) - round(start * 1000)) // 500) + 1
    assert {(s.service, s.reason, s.latency_ms) for s in got} == {("api", f"prometheus: {query}", None)}
    down = [s.time for s in got if s.status is Status.DOWN]
    up = [s.time for s in got if s.status is Status.UP]
    # A step shows the last scrape at or before it: a 0 appears from the first scrape after the flip
    # and lasts until the first scrape after flipping back, i.e. up to one scrape interval late.
    assert down and all(down_from - EPSILON <= t < down_to + SCRAPE_INTERVAL + EPSILON for t in down), \
        (down_from, down_to, down)
    assert all(not (down_from + SCRAPE_INTERVAL + EPSILON <= t < down_to - EPSILON) for t in up), \
        (down_from, down_to, up)
    assert min(up) < down_from and max(up) >= down_to
    assert len(down) >= 2 * (4 * SCRAPE_INTERVAL - SCRAPE_INTERVAL - 2 * EPSILON)  # 2 steps per second

    # Chunked requests see exactly the points one request does.
    assert query_range_samples(base, query, "api", start, end, "500ms", max_points=3) == got

    # The command stores them, and a second run adds nothing.
    db = str(tmp_path / "o.db")
    argv = ["import", "--db", db, "--agreement", AGREEMENT, "--prometheus", base, "--query", query, "--service", "api",
            "--from", f"{start:.3f}", "--to", f"{end:.3f}", "--step", "500ms"]
    assert main(argv) == 0
    assert f"{len(got)} samples, {len(got)} new" in capsys.readouterr().out
    assert main(argv) == 0
    assert f"{len(got)} samples, 0 new" in capsys.readouterr().out
    with Store(db) as store:
        assert store.count(sample_key(AGREEMENT, "api")) == len(got)


def test_real_prometheus_errors_and_gaps(prometheus, capsys, tmp_path):
    base, _, _ = prometheus
    now = time.time()
    with pytest.raises(PrometheusError, match=r'more than one series .*job="api".*job="db"'):
        query_range_samples(base, "probe_success", "api", now - 3, now, 1)
    with pytest.raises(PrometheusError, match=r"value 2 at .*only 0 \(down\) and 1 \(up\)"):
        query_range_samples(base, 'probe_success{job="api"} + 1', "api", now - 3, now, 1)
    with pytest.raises(PrometheusError, match=r"refused the query \(bad_data\): .*parse error"):
        query_range_samples(base, 'probe_success{job="api"', "api", now - 3, now, 1)
    # Aggregating the two series is the way to import them as one service.
    assert {s.status for s in query_range_samples(base, "min(probe_success)", "api", now - 3, now, 1)} <= \
        {Status.UP, Status.DOWN}
    # NaN (0/0) and a range before the first scrape are gaps: no samples.
    assert query_range_samples(base, 'probe_success{job="api"} * 0 / 0', "api", now - 3, now, 1) == []
    assert query_range_samples(base, 'probe_success{job="api"}', "api", now - 86_400, now - 86_000, 10) == []
    # A week at 30 s is 20,161 points: over Prometheus' limit in one request, fine in chunks. The range
    # ends 2 minutes ahead because a step shows the last scrape of the 5 minutes before it.
    with pytest.raises(PrometheusError, match="exceeded maximum resolution of 11,000 points"):
        query_range_samples(base, "up", "api", now - 7 * 86_400, now + 120, 30, max_points=30_000)
    week = query_range_samples(base, 'probe_success{job="api"}', "api", now - 7 * 86_400, now + 120, 30)
    assert 3 <= len(week) <= 6 and week[-1].time > now
    db = str(tmp_path / "o.db")
    assert main(["import", "--db", db, "--agreement", AGREEMENT, "--prometheus", base, "--query", "probe_success",
                 "--service", "api", "--from", str(now - 3), "--to", str(now)]) == 2
    assert "more than one series" in capsys.readouterr().err


AGREEMENT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def test_real_prometheus_counts_become_slices_of_a_success_rate(prometheus, tmp_path):
    """The daemon's Prometheus source of counts, on real counters: each 5 s slice's good and total are read at the
    slice's end, stored, and the S3-style success rate computed from them is the error rate the test made (10%),
    within what increase()'s extrapolation allows; the credit is the schedule's for it (below 95%: 100%)."""
    import yaml

    from eth_account import Account

    from oracle.config import load_config
    from oracle.daemon import OracleDaemon, Watched
    from smartsla.measure.periods import compute_periods
    from smartsla.penalty import period_credit_bps
    from smartsla.terms.parse import load_terms

    base, exporter, wait = prometheus
    exporter.traffic(good=9, failed=1)          # 9 good and 1 failed request every 50 ms
    wait("the counters", lambda: instant(base, 'count_over_time(http_requests_total{code="500"}[1m]) >= 3'))
    slice_seconds, slices = 5, 4
    start = (int(time.time()) // slice_seconds + 1) * slice_seconds
    end = start + slice_seconds * slices
    wait("the period's last scrapes", lambda: _last_scrape(base) >= end + SCRAPE_INTERVAL, timeout=60)

    doc = yaml.safe_load(Path("examples/aws-s3.yaml").read_text())
    doc["periods"] = {"start": start, "length": f"{slice_seconds * slices}s", "count": 1}
    doc["measurement"] = {"slice": f"{slice_seconds}s"}
    service = doc["services"][0]
    service["slice"] = f"{slice_seconds}s"
    service["events"]["prometheus"] = {
        "good": f'sum(increase(http_requests_total{{job="storage",code!~"5.."}}[{slice_seconds}s]))',
        "total": f'sum(increase(http_requests_total{{job="storage"}}[{slice_seconds}s]))',
    }
    path = tmp_path / "terms.yaml"
    path.write_text(yaml.safe_dump(doc))
    terms = load_terms(path)

    class Period:     # the chain's view of the period, which this test does not need a chain for
        address = AGREEMENT

        def period_start(self, index):
            return start

        def period_end(self, index):
            return end

    config = tmp_path / "oracle.yaml"
    config.write_text(f"rpc_url: http://127.0.0.1:1\nfactory: '0x{'11' * 20}'\nkey: {{env: ORACLE_KEY}}\n"
                      f"store: oracle.db\nprometheus: {base}\n")
    daemon = OracleDaemon(load_config(config), Account.create())
    watched = Watched(Period(), terms)
    events = daemon.period_events(watched, 0)
    assert len(events) == slices and set(events.time_us.tolist()) == {(start + k * slice_seconds) * 10**6
                                                                        for k in range(slices)}
    assert all(0 < g <= t for g, t in zip(events.good.tolist(), events.total.tolist()))
    (result,) = compute_periods(terms, [], [], events=events)
    assert 850_000 <= result.values["s3"] <= 950_000, result.values
    assert result.coverage["s3"] == 1_000_000
    assert period_credit_bps(terms, [result.values["s3"]]) == 10_000
    # a second read adds nothing: the store holds the period's counts now
    with Store(tmp_path / "oracle.db") as store:
        assert store.event_count() == slices
