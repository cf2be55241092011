"""The oracle's HTTP endpoint: reports for peers, health, metrics; loopback only."""

from __future__ import annotations

import urllib.request

from oracle.server import Metrics, ReportServer, fetch_report

AGREEMENT = "0x" + "ab" * 20


def test_serves_reports_health_and_metrics():
    stored = {(1, AGREEMENT, 3): {"values": [999_000], "evidenceRoot": "0x" + "00" * 32, "signature": "0x01"}}
    metrics = Metrics()
    server = ReportServer(lambda c, a, p: stored.get((c, a, p)), metrics).start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        assert fetch_report(server.url, 1, AGREEMENT, 3) == stored[(1, AGREEMENT, 3)]
        assert fetch_report(server.url, 1, AGREEMENT, 4) is None
        assert urllib.request.urlopen(server.url + "/healthz").read() == b"ok\n"
        metrics.probes.labels("probe:00112233aabbccdd", "GET http://127.0.0.1/").inc(3)
        metrics.pending.set(2)
        metrics.settlements.labels("settled").inc()
        text = urllib.request.urlopen(server.url + "/metrics").read().decode()
        assert 'sla_oracle_probes_total{probe="probe:00112233aabbccdd",target="GET http://127.0.0.1/"} 3.0' in text
        assert "sla_oracle_pending_reports 2.0" in text
        assert 'sla_oracle_settlements_total{outcome="settled"} 1.0' in text
    finally:
        server.stop()


def test_unreachable_peer_is_none():
    server = ReportServer(lambda c, a, p: None).start()
    url = server.url
    server.stop()
    assert fetch_report(url, 1, AGREEMENT, 0, deadline_s=0.5) is None


def test_a_restart_right_after_a_crash_may_listen_again():
    """kill -9 while peers were fetching leaves the port's closed connections in TIME_WAIT: the real server binds
    through them (SO_REUSEADDR), so the start-up check must too. It once refused every immediate restart for a
    minute (`listen ... is taken`, exit 2), found by the fault suite's kill -9."""
    from oracle.cli.run import _listen_taken

    server = ReportServer(lambda *_: None, Metrics()).start()
    port = int(server.url.rsplit(":", 1)[1])
    for _ in range(3):
        urllib.request.urlopen(f"{server.url}/healthz", timeout=5).read()
    server.stop()
    assert _listen_taken("127.0.0.1", port) is None
    live = ReportServer(lambda *_: None, Metrics(), port=port).start()
    try:
        assert _listen_taken("127.0.0.1", port) is not None       # a live listener is still found
    finally:
        live.stop()
