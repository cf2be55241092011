"""The fault suite: three real `sla-oracle run` processes on anvil, in real time, while things go wrong.

Each test checks what must hold whatever happens: every period settles exactly once, by reports or the fallback;
no oracle ever signs a period with two different values; and the audit, given every oracle's evidence, finds every
settled value to be the median of reports whose values and coverage its samples imply (so a report from an oracle
that saw too little, or an unfinished period, would fail it). Fast variants run in `make test`; `make soak` runs
the long ones (SMARTSLA_SOAK=1: 16 periods, a kill every few seconds).

Here: kill -9 at random moments, among them within a few hundred milliseconds of an oracle logging `signed` (the
sign/submit window); the chain's clock jumping ahead mid-period (it once had three oracles sign two unfinished
periods at 100%). The other faults have their own tests: hostile peers (tests/oracle/test_hostile_peers.py), a
full disk (test_disk_full.py, a real tmpfs), a corrupted store (test_store_corruption.py, page and record level),
the node down at start (test_node_down_at_start.py), this machine's clock behind the chain's (test_coverage.py).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from smartsla.audit.checks import audit
from smartsla.onchain.types import PeriodState
from tests.helpers.localnets import ServedNet, closing_all

pytestmark = pytest.mark.anvil

SOAK = os.environ.get("SMARTSLA_SOAK") == "1"


class Faulty(ServedNet):
    """A local network with one HTTP service down for ``outage`` seconds in the middle of period 1, and an
    agreement of ``count`` periods of ``length`` seconds whose fallback opens ``deadline`` seconds after each."""

    def __init__(self, tmp_path: Path, artifacts, *, length: int, count: int, deadline: int = 300,
                 min_coverage: str = "75%", lead: int = 10, outage: int = 4):
        super().__init__(tmp_path, artifacts)
        self.length, self.count, self.outage = length, count, outage
        self.start = int(time.time()) + lead
        text = self.one_service_terms("faults", self.target.url, self.start, length, count)
        text = text.replace("deadline: 1h", f"deadline: {deadline}s, min_coverage: \"{min_coverage}\"")
        self.terms, self.chain_terms, self.agreement = self.create_agreement(text, fund_periods=count)

    def run_outage(self) -> None:
        """Period 1's service is down from its middle for ``outage`` seconds (in a thread of its own)."""
        def outage():
            time.sleep(max(0.0, self.start + self.length + self.length // 2 - time.time()))
            self.target.set_mode("down-503")
            time.sleep(self.outage)
            self.target.set_mode(None)
        threading.Thread(target=outage, daemon=True).start()

    def settle_all(self) -> None:
        """Wait for every period; one the oracles did not settle by its deadline is settled by the fallback, as
        anyone may (the customer here)."""
        for p in range(self.count):
            deadline = self.agreement.period_end(p) + int(self.agreement.terms.report_deadline) + 5
            while self.agreement.period(p).state == PeriodState.FUNDED and time.time() < deadline:
                time.sleep(0.5)
            if self.agreement.period(p).state == PeriodState.FUNDED:
                self.agreement.settle_by_fallback(self.accounts["customer"], p)

    def check_invariants(self) -> dict[int, int]:
        """What must hold after any fault; returns each reported period's settled value."""
        settled = self.agreement.events("PeriodSettled")
        by_period = defaultdict(list)
        for e in settled:
            by_period[e["args"]["period"]].append(e)
        assert sorted(by_period) == list(range(self.count)), self.logs()
        assert all(len(v) == 1 for v in by_period.values()), by_period        # exactly once
        for i in (1, 2, 3):                                                     # never two values for one period
            signed = defaultdict(set)
            for e in self.events(i, "signed"):
                signed[e["period"]].add((tuple(e["values"]), tuple(e["coverage"]), e["evidence_root"]))
            assert all(len(v) == 1 for v in signed.values()), (i, dict(signed))
        report = audit(self.contracts, self.agreement.address, self.factory.address,
                       terms_file=self.work / "terms.yaml",
                       evidence=[self.work / f"evidence-{i}" for i in (1, 2, 3) if (self.work / f"evidence-{i}").exists()])
        failed = [f for f in report.findings if f.verdict == "FAIL"]
        assert not failed, failed
        return {p: list(v[0]["args"]["values"])[0] for p, v in by_period.items()
                if v[0]["args"]["state"] == PeriodState.SETTLED}


@pytest.fixture
def faulty(tmp_path, artifacts):
    with closing_all(lambda **kw: Faulty(tmp_path, artifacts, **kw)) as make:
        yield make


def test_kill_9_at_random_moments(faulty):
    """Each period: one oracle is killed -9 at a random moment in it and restarted at once, and another as soon as
    it logs `signed` for the period before (between signing and submitting, within the time a log line takes to
    be read). Seeded, so a failure can be replayed."""
    count = 16 if SOAK else 3
    net = faulty(length=20, count=count)
    rng = random.Random(20261201)
    for i in (1, 2, 3):
        net.start_oracle(i)
    net.run_outage()
    kills: list[tuple[str, int, int, float]] = []

    starts = {1: 1, 2: 1, 3: 1}

    def kill_and_restart(i: int, why: str, period: int) -> None:
        kills.append((why, i, period, round(time.time() - net.start, 2)))
        net.kill_oracle(i, signal.SIGKILL)
        net.start_oracle(i)
        starts[i] += 1

    def kill_first_signer(period: int) -> int | None:
        """Kill the first oracle seen logging `signed` for ``period``, if the period is still open then."""
        until = net.agreement.period_end(period) + 10
        while time.time() < until and net.agreement.period(period).state == PeriodState.FUNDED:
            seen = next((i for i in (1, 2, 3) if any(e["period"] == period for e in net.events(i, "signed"))), None)
            if seen is not None:
                kill_and_restart(seen, "after signing", period)
                return seen
            time.sleep(0.05)
        return None

    for p in range(count):
        signer = kill_first_signer(p - 1) if p else None
        # not the oracle just killed: two restarts in one period would leave it below min_coverage (that case,
        # an oracle that does not sign, is the coverage tests')
        victim = rng.choice([i for i in (1, 2, 3) if i != signer])
        time.sleep(max(0.0, net.agreement.period_start(p) + rng.uniform(5, net.length - 4) - time.time()))
        kill_and_restart(victim, "mid-period", p)
    kill_first_signer(count - 1)
    net.settle_all()
    values = net.check_invariants()
    assert any(why == "after signing" for why, *_ in kills), kills
    # the outage was measured: period 1 is below 100% whoever's reports settled it, the others at 100%
    if 1 in values:
        assert values[1] < 1_000_000, values
    assert all(v == 1_000_000 for p, v in values.items() if p != 1), values
    # every restart is up (its SIGTERM handler in place) before the clean stop is asked of it
    until = time.time() + 30
    while time.time() < until and any(len(net.events(i, "started")) < starts[i] for i in (1, 2, 3)):
        time.sleep(0.2)
    net.close()
    assert all(code == 0 for code in net.exit_codes.values()), (net.exit_codes, net.logs())


def test_the_chain_clock_jumps_ahead_mid_period(faulty):
    """Five seconds into period 0 the chain's time jumps two minutes: the chain now calls periods 0 and 1 over
    while they are still running. No oracle signs either before its real end; each settles once, measured."""
    net = faulty(length=15, count=2, min_coverage="90%", deadline=600)
    for i in (1, 2, 3):
        net.start_oracle(i)
    net.run_outage()
    time.sleep(max(0.0, net.start + 5 - time.time()))
    net.chain.w3.provider.make_request("evm_increaseTime", [120])
    net.chain.w3.provider.make_request("evm_mine", [])
    assert net.chain.now() > net.agreement.period_end(1)
    for p in range(2):
        assert net.wait_settled(net.agreement, p, extra=60), net.logs()
    first_report = min(e["blockNumber"] for e in net.agreement.events("ReportAccepted"))
    assert net.chain.w3.eth.get_block(first_report)["timestamp"] - 120 >= net.agreement.period_end(0), \
        "a report was accepted before period 0 really ended"
    values = net.check_invariants()
    assert values == {0: 1_000_000, 1: values[1]} and values[1] < 1_000_000, values
    for i in (1, 2, 3):
        assert [e["reason"] for e in net.events(i, "not-signed")][:1] == ["not-over-here"], net.logs()
        assert len(net.events(i, "clock-skew")) == 1, net.logs()
    net.close()
    assert all(code == 0 for code in net.exit_codes.values()), (net.exit_codes, net.logs())
