"""End to end, in real time, on anvil: three `sla-oracle run` processes probe a local HTTP service whose answers
are slow for a known share of a short period, and read a success rate's counts from a real Prometheus scraping
request counters that fail at a known rate. One probe serves three services (availability, its p99 latency, its
Apdex score), the fourth is the counts': the values the oracles sign and the credit the contract pays are the ones
the script and the counters imply, and the auditor recomputes every one of them from each oracle's evidence."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from oracle.devnet.targets import HttpTarget
from smartsla import penalty
from smartsla.audit.checks import audit
from smartsla.audit.findings import PASS
from smartsla.onchain.types import PeriodState
from tests.helpers.localnets import ServedNet, closing_all
from tests.helpers.prometheus import real_prometheus

pytestmark = pytest.mark.anvil

SLOW_S = 0.25       # a slow answer: tolerated for T = 100 ms (T < 250 ms <= 4T), far above the p99 tier
PERIOD = 24
SLOW_FOR = 3        # seconds of slow answers: 1/8 of the period
COUNT_SLICE = 4     # seconds per slice of the counts


class LatencyNet(ServedNet):
    def __init__(self, tmp_path: Path, artifacts, prometheus: str):
        super().__init__(tmp_path, artifacts)
        self.prometheus = prometheus
        self.target.stop()
        self.target = HttpTarget(slow_delay=SLOW_S).start()
        self.start = int(time.time()) + 8
        self.terms, self.chain_terms, self.agreement = self.create_agreement(self.terms_yaml())

    def terms_yaml(self) -> str:
        a = self.addresses
        return f"""\
agreement: e2e-latency
provider: "{a['provider']}"
customer: "{a['customer']}"
payment: {{token: test-usd, fee: "1000"}}
periods: {{start: {self.start}, length: {PERIOD}s, count: 2}}
services:
  - id: api
    target: "99.9%"
    probe: {{type: http, url: "{self.target.url}", timeout: 400ms, interval: 500ms}}
    schedule: [{{below: "99.9%", credit: "10%"}}]
  - id: api-p99
    objective: latency
    percentile: 99
    target: "200ms"
    samples_from: api
    schedule: [{{above: "200ms", credit: "10%"}}, {{above: "1s", credit: "50%"}}]
  - id: api-apdex
    objective: apdex
    threshold: 100ms
    target: "0.98"
    samples_from: api
    schedule: [{{below: "0.98", credit: "20%"}}, {{below: "0.80", credit: "50%"}}]
  - id: requests
    objective: success-rate
    method: ratio-timeslices
    slice: {COUNT_SLICE}s
    target: "99.9%"
    events:
      prometheus:
        good: 'sum(increase(http_requests_total{{job="storage",code!~"5.."}}[{COUNT_SLICE}s]))'
        total: 'sum(increase(http_requests_total{{job="storage"}}[{COUNT_SLICE}s]))'
    schedule: [{{below: "99.9%", credit: "10%"}}, {{below: "95%", credit: "30%"}}, {{below: "50%", credit: "90%"}}]
compensation: {{}}
measurement: {{slice: 1s}}
oracles: {{members: ["{a['oracle-1']}", "{a['oracle-2']}", "{a['oracle-3']}"], quorum: 2, deadline: 1h, fallback: no-credit}}
"""


@pytest.fixture
def net(tmp_path, artifacts):
    (tmp_path / "prometheus").mkdir()
    with real_prometheus(tmp_path / "prometheus") as (base, exporter, wait), \
            closing_all(lambda: LatencyNet(tmp_path / "net", artifacts, base)) as make:
        exporter.traffic(good=9, failed=1)          # 10% of the requests fail, throughout
        yield make()


def test_objectives_from_one_probe_and_from_prometheus_are_signed_and_paid_as_scripted(net):
    for i in (1, 2, 3):
        # grace: the period's last slice of counts is scraped (every second) before it is read
        net.start_oracle(i, grace="3s", prometheus=net.prometheus)
    time.sleep(max(0, net.start + 10 - time.time()))
    net.target.set_mode("slow")
    time.sleep(SLOW_FOR)
    net.target.set_mode(None)
    assert net.wait_settled(net.agreement, 0), net.logs()
    record = net.agreement.period(0)
    assert record.state == PeriodState.SETTLED, net.logs()
    (settled,) = net.agreement.events("PeriodSettled")
    availability, p99, apdex, requests = settled["args"]["values"]
    assert availability == 1_000_000, net.logs()
    # the p99 is one of the slow answers: 250 ms and the time to answer, far from the fast ones (a few ms)
    assert 250_000 <= p99 < 400_000, (p99, net.logs())
    # 1/8 of the answers tolerated, the rest satisfied: (7/8 + 1/16) = 0.9375, give or take a probe at each edge
    assert abs(apdex - 937_500) <= 2 * 1_000_000 // (2 * PERIOD * 2), (apdex, net.logs())
    # 9 of every 10 requests good, within what increase()'s extrapolation to the slice edges allows: below 95%
    # and far above 50%, so the 30% tier
    assert 850_000 <= requests <= 940_000, (requests, net.logs())
    assert record.credit_bps == penalty.period_credit_bps(net.chain_terms, [availability, p99, apdex, requests]) \
        == (0 + 1_000 + 2_000 + 3_000) // 4
    for i in (1, 2, 3):
        for e in net.events(i, "signed"):
            if e["period"] == 0:
                assert e["values"][0] == 1_000_000 and 250_000 <= e["values"][1] < 400_000, e

    bundles = [d for i in (1, 2, 3) for d in (net.work / f"evidence-{i}" / net.agreement.address).glob("period-0")]
    assert len(bundles) >= 2
    report = audit(net.contracts, net.agreement.address, net.factory.address, terms_file=net.work / "terms.yaml",
                   evidence=bundles)
    values = [f for f in report.findings if f.check == "evidence.values"]
    assert [f.verdict for f in values] == [PASS] * len(bundles), values
    assert all("api, api-p99, api-apdex, requests recomputed" in f.detail for f in values)
    assert all((b / "events" / "requests.bin").stat().st_size == 32 * PERIOD // COUNT_SLICE for b in bundles)
