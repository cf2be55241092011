"""Probes, the control check and the scheduler, against the local targets of oracle/devnet/targets.py (loopback only)."""

from __future__ import annotations

import asyncio
import math
import socket
import time

import pytest

from oracle.devnet.targets import HttpTarget, SubprocessTarget, TcpTarget, closed_port, parse_schedule
from oracle.probes import (
    ProbeConfigError,
    Prober,
    ProbeSpec,
    Scheduler,
    _network_reason,
)
from smartsla.measure.samples import Sample, Status


def probe(spec: ProbeSpec, **prober_options) -> Sample:
    async def go() -> Sample:
        async with Prober(**prober_options) as prober:
            return await prober.probe(spec)
    return asyncio.run(go())


@pytest.fixture(scope="module")
def http():
    with HttpTarget(slow_delay=0.3) as target:
        yield target


@pytest.fixture
def target(http):
    http.set_mode(None)
    yield http
    http.set_mode(None)


# -- HTTP verdicts ------------------------------------------------------------------------------------------


def test_up_gives_status_and_latency(target):
    before = time.time()
    sample = probe(ProbeSpec.http("api", target.url, keyword="ok"))
    assert sample.status is Status.UP and sample.service == "api"
    assert sample.reason.startswith("200 in ") and sample.reason.endswith(" ms")
    assert sample.latency_ms is not None and 0 < sample.latency_ms < 1000
    assert before <= sample.time <= time.time()  # the probe's start, not its end


def test_status_503(target):
    target.set_mode("down-503")
    down = probe(ProbeSpec.http("api", target.url))
    assert (down.status, down.reason) == (Status.DOWN, "status 503")
    assert down.latency_ms is not None
    listed = probe(ProbeSpec.http("api", target.url, expect_status=[200, 503]))
    assert listed.status is Status.UP and listed.reason.startswith("503 in ")


def test_keyword(target):
    assert probe(ProbeSpec.http("api", target.url, keyword="status: ok")).status is Status.UP
    target.set_mode("keyword-missing")
    sample = probe(ProbeSpec.http("api", target.url, keyword="ok"))
    assert (sample.status, sample.reason) == (Status.DOWN, "keyword 'ok' missing")
    assert probe(ProbeSpec.http("api", target.url)).status is Status.UP  # no keyword asked for


def test_over_max_latency_is_down_within_is_up(target):
    target.set_mode("slow")  # answers after 0.3 s
    slow = probe(ProbeSpec.http("api", target.url, max_latency=0.1, timeout=2))
    assert slow.status is Status.DOWN and slow.reason.startswith("slow: ") and "> max 100 ms" in slow.reason
    assert slow.latency_ms >= 300
    assert probe(ProbeSpec.http("api", target.url, max_latency=1.5, timeout=2)).status is Status.UP
    assert probe(ProbeSpec.http("api", target.url, timeout=2)).status is Status.UP


def test_timeout(target):
    target.set_mode("hang")
    t0 = time.monotonic()
    sample = probe(ProbeSpec.http("api", target.url, timeout=0.25))
    elapsed = time.monotonic() - t0
    assert (sample.status, sample.reason, sample.latency_ms) == (Status.DOWN, "timeout after 0.25 s", None)
    assert 0.24 <= elapsed < 2


def test_connect_timeout_blackhole(target):
    target.set_mode("blackhole")
    sample = probe(ProbeSpec.http("api", target.url, timeout=0.25))
    assert (sample.status, sample.reason) == (Status.DOWN, "timeout after 0.25 s")


def test_refused(target):
    target.set_mode("refuse")
    sample = probe(ProbeSpec.http("api", target.url, timeout=1))
    assert (sample.status, sample.reason, sample.latency_ms) == (Status.DOWN, "connection refused", None)
    target.set_mode(None)
    assert probe(ProbeSpec.http("api", target.url)).status is Status.UP  # same port, listening again


@pytest.mark.parametrize("method", ["HEAD", "post", "PUT"])
def test_methods(target, method):
    sample = probe(ProbeSpec.http("api", target.url, method=method))
    assert sample.status is Status.UP


def test_keep_alive_client_survives_a_restart_of_the_target(target):
    async def go() -> list[Sample]:
        spec = ProbeSpec.http("api", target.url)
        async with Prober(keep_alive=True) as prober:
            first = await prober.probe(spec)
            target.set_mode("refuse")   # drops the kept-alive connection
            target.set_mode(None)
            return [first, await prober.probe(spec), await prober.probe(spec)]
    statuses = [s.status for s in asyncio.run(go())]
    # The reused, now dead connection may cost one probe (server disconnected); never more.
    assert statuses[0] is Status.UP and statuses[2] is Status.UP


def test_flapping_target_alternates(target):
    target.set_mode("flapping")

    async def go() -> list[Sample]:
        async with Prober() as prober:
            return [await prober.probe(ProbeSpec.http("api", target.url)) for _ in range(6)]
    samples = asyncio.run(go())
    assert [s.status for s in samples] == [Status.UP, Status.DOWN] * 3
    assert all(s.reason == "status 503" for s in samples[1::2])


def test_scripted_schedule():
    schedule = parse_schedule("0-0.6:up,0.6-1.2:down-503,1.2-:refuse")
    assert schedule == [(0, 0.6, "up"), (0.6, 1.2, "down-503"), (1.2, math.inf, "refuse")]

    async def go(url: str) -> list[Sample]:
        out = []
        async with Prober() as prober:
            for at in (0.3, 0.9, 1.5):
                await asyncio.sleep(max(0.0, at - (time.monotonic() - start)))
                out.append(await prober.probe(ProbeSpec.http("api", url, timeout=1)))
        return out

    with HttpTarget(schedule) as target:
        start = time.monotonic()
        samples = asyncio.run(go(target.url))
    assert [s.reason.split(" ")[0] for s in samples] == ["200", "status", "connection"]


def test_schedule_rejects_unknown_modes():
    with pytest.raises(ValueError, match="unknown mode"):
        HttpTarget([(0, 1, "sideways")])
    with pytest.raises(ValueError, match="unknown mode"):
        TcpTarget([(0, 1, "down-503")])
    with pytest.raises(ValueError, match="FROM-TO:MODE"):
        parse_schedule("0:up")


def test_subprocess_target():
    with SubprocessTarget("--http", "--schedule", "0-30:down-503") as target:
        sample = probe(ProbeSpec.http("api", target.url, timeout=2))
        assert (sample.status, sample.reason) == (Status.DOWN, "status 503")
    assert target.process.returncode is not None
    with SubprocessTarget("--tcp") as target:
        assert probe(ProbeSpec.tcp("db", "127.0.0.1", target.port, timeout=2)).status is Status.UP


# -- TCP -------------------------------------------------------------------------------------------------


def test_tcp_up_refused_timeout():
    with TcpTarget() as target:
        up = probe(ProbeSpec.tcp("db", "127.0.0.1", target.port, timeout=1))
        assert up.status is Status.UP and up.reason.startswith("connected in ")
        target.set_mode("refuse")
        refused = probe(ProbeSpec.tcp("db", "127.0.0.1", target.port, timeout=1))
        assert (refused.status, refused.reason) == (Status.DOWN, "connection refused")
        target.set_mode("blackhole")
        hung = probe(ProbeSpec.tcp("db", "127.0.0.1", target.port, timeout=0.2))
        assert (hung.status, hung.reason, hung.latency_ms) == (Status.DOWN, "timeout after 0.2 s", None)
        target.set_mode(None)
        assert probe(ProbeSpec.tcp("db", "127.0.0.1", target.port, timeout=1)).status is Status.UP


# -- bad and unreachable URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize("url, message", [
    ("ftp://example.org/", "must start with http:// or https://"),
    ("example.org/health", "must start with http:// or https://"),
    ("http:///health", "has no host"),
    ("http://example.org:99999/", "bad url"),
    ("http://example.org:port/", "bad url"),
    ("", "must start with"),
])
def test_bad_url_is_a_clear_config_error(url, message):
    with pytest.raises(ProbeConfigError, match=message) as info:
        ProbeSpec.http("api", url)
    assert "'api'" in str(info.value)


@pytest.mark.parametrize("options, message", [
    ({"method": "GE T"}, "method"),
    ({"expect_status": []}, "expect_status"),
    ({"expect_status": [200, 700]}, "expect_status"),
    ({"timeout": 0}, "timeout"),
    ({"interval": -1}, "interval"),
    ({"max_latency": 0}, "max_latency"),
    ({"keyword": ""}, "keyword"),
])
def test_bad_http_options(options, message):
    with pytest.raises(ProbeConfigError, match=message):
        ProbeSpec.http("api", "http://127.0.0.1/", **options)


def test_bad_tcp_and_kind():
    with pytest.raises(ProbeConfigError, match="port"):
        ProbeSpec.tcp("db", "127.0.0.1", 0)
    with pytest.raises(ProbeConfigError, match="host"):
        ProbeSpec.tcp("db", "", 5432)
    with pytest.raises(ProbeConfigError, match="kind"):
        ProbeSpec(service="x", kind="icmp")
    with pytest.raises(ProbeConfigError, match="host:port"):
        ProbeSpec.control("no-port-here")


def test_spec_normalises():
    spec = ProbeSpec.http("api", "https://example.org/", method="head", expect_status=204)
    assert (spec.method, spec.expect_status) == ("HEAD", (204,))


def test_unreachable_url_is_down_with_reason():
    sample = probe(ProbeSpec.http("api", f"http://127.0.0.1:{closed_port()}/", timeout=1))
    assert (sample.status, sample.reason) == (Status.DOWN, "connection refused")


def test_failure_reasons_are_short_and_specific():
    assert _network_reason(socket.gaierror(-2, "Name or service not known")) == "dns: name not resolved"
    assert _network_reason(ConnectionResetError(104, "reset")) == "connection reset"
    assert _network_reason(OSError(101, "Network is unreachable")) == "network unreachable"
    assert _network_reason(OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 80), "
                                   "[Errno 111] Connect call failed ('127.0.0.1', 80)")) == "connection refused"


def test_tls_against_plain_http_is_down_not_a_crash(target):
    sample = probe(ProbeSpec.http("api", target.url.replace("http://", "https://"), timeout=0.3))
    assert sample.status is Status.DOWN and sample.reason  # e.g. "tls: ..." or "server disconnected"


# -- the control check -----------------------------------------------------------------------------------


def test_lost_network_turns_down_into_unknown(target):
    target.set_mode("refuse")
    dead = [f"127.0.0.1:{closed_port()}", f"http://127.0.0.1:{closed_port()}/"]
    sample = probe(ProbeSpec.http("api", target.url, timeout=1), control=dead)
    assert sample.status is Status.UNKNOWN
    assert sample.reason == "control check failed (connection refused)"


def test_control_does_not_touch_up_samples(target):
    sample = probe(ProbeSpec.http("api", target.url), control=[f"127.0.0.1:{closed_port()}"])
    assert sample.status is Status.UP


def test_one_working_control_target_is_enough(target):
    with TcpTarget() as control:
        target.set_mode("down-503")
        live = [f"127.0.0.1:{closed_port()}", f"127.0.0.1:{control.port}"]
        assert probe(ProbeSpec.http("api", target.url), control=live).status is Status.DOWN


def test_control_blackholed_times_out_into_unknown(target):
    with TcpTarget(default="blackhole") as control:
        target.set_mode("down-503")
        sample = probe(ProbeSpec.http("api", target.url), control=[f"127.0.0.1:{control.port}"],
                       control_timeout=0.2)
        assert sample.status is Status.UNKNOWN and sample.reason == "control check failed (status 503)"


def test_control_result_is_cached_and_shared(target):
    target.set_mode("down-503")

    async def go() -> tuple[list[Sample], Prober]:
        spec = ProbeSpec.http("api", target.url)
        async with Prober(control=[f"127.0.0.1:{closed_port()}"], control_ttl=60) as prober:
            concurrent = await asyncio.gather(*(prober.probe(spec) for _ in range(20)))
            sequential = [await prober.probe(spec) for _ in range(5)]
            return [*concurrent, *sequential], prober
    samples, prober = asyncio.run(go())
    assert all(s.status is Status.UNKNOWN for s in samples)
    assert prober.control_runs == 1
    assert prober.last_control is not None and prober.last_control[1] is False


def test_control_cache_expires(target):
    target.set_mode("down-503")

    async def go() -> list[Status]:
        spec = ProbeSpec.http("api", target.url)
        with TcpTarget() as control:
            async with Prober(control=[f"127.0.0.1:{control.port}"], control_ttl=0.2) as prober:
                first = await prober.probe(spec)
                control.set_mode("refuse")      # the oracle "loses its network"
                cached = await prober.probe(spec)
                await asyncio.sleep(0.25)
                expired = await prober.probe(spec)
                assert prober.control_runs == 2
                return [first.status, cached.status, expired.status]
    assert asyncio.run(go()) == [Status.DOWN, Status.DOWN, Status.UNKNOWN]


# -- the scheduler ---------------------------------------------------------------------------------------


def fake_probe(duration: float = 0.0, log: list | None = None):
    async def run(spec: ProbeSpec) -> Sample:
        if log is not None:
            log.append((spec.service, asyncio.get_running_loop().time()))
        await asyncio.sleep(duration)
        return Sample(time=time.time(), service=spec.service, status=Status.UP, reason="fake")
    return run


def spec(service: str = "api", interval: float = 0.1) -> ProbeSpec:
    return ProbeSpec.http(service, "http://127.0.0.1/", interval=interval, timeout=interval)


def test_deadlines_do_not_drift():
    starts: list = []
    samples: list[Sample] = []

    async def go() -> Scheduler:
        # Each probe takes 40 ms: "now + interval" scheduling would drift by 40 ms a round, 0.8 s by the end.
        scheduler = Scheduler(fake_probe(0.04, starts), samples.append)
        scheduler.add(spec(interval=0.1), first=0)
        t0 = asyncio.get_running_loop().time()
        await scheduler.run(duration=2.05)
        starts[:] = [t - t0 for _, t in starts]
        return scheduler
    scheduler = asyncio.run(go())
    assert len(starts) == len(samples) == 21
    assert scheduler.stats.started == 21 and scheduler.stats.skipped == 0
    for k, at in enumerate(starts):
        assert abs(at - k * 0.1) < 0.05, (k, at)
    # Lateness is against the fixed deadline; it stays small and never accumulates.
    assert 0 <= scheduler.stats.percentile(50) < 0.02
    assert abs(starts[-1] - 2.0) < 0.05


def test_lateness_recorded_when_concurrency_is_exhausted():
    async def go() -> Scheduler:
        scheduler = Scheduler(fake_probe(0.2), lambda s: None, concurrency=1)
        scheduler.add(spec("a", interval=10), first=0)
        scheduler.add(spec("b", interval=10), first=0)
        await scheduler.run(duration=0.5)
        return scheduler
    stats = asyncio.run(go()).stats
    assert stats.started == 2
    assert min(stats.lateness) < 0.05
    assert 0.18 <= stats.max_lateness < 0.4 and stats.percentile(100) == stats.max_lateness


def test_lateness_recorded_when_the_loop_is_blocked():
    def blocking_sink(sample: Sample) -> None:
        time.sleep(0.15)  # a synchronous sink (say, a slow disk) holds up the whole loop

    async def go() -> Scheduler:
        scheduler = Scheduler(fake_probe(), blocking_sink)
        scheduler.add(spec("a", interval=10), first=0)
        scheduler.add(spec("b", interval=10), first=0.01)
        await scheduler.run(duration=0.4)
        return scheduler
    assert asyncio.run(go()).stats.max_lateness >= 0.1


def test_overrunning_probe_skips_deadlines_instead_of_overlapping():
    active = 0
    peak = 0

    async def slow(spec_: ProbeSpec) -> Sample:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.25)
        active -= 1
        return Sample(time=time.time(), service=spec_.service, status=Status.UP)

    async def go() -> Scheduler:
        scheduler = Scheduler(slow, lambda s: None)
        scheduler.add(spec(interval=0.1), first=0)
        await scheduler.run(duration=0.95)
        return scheduler
    stats = asyncio.run(go()).stats
    assert peak == 1
    assert stats.started in (3, 4) and stats.skipped >= 5


def test_a_skipped_deadline_is_an_unknown_sample_the_evidence_shows():
    """A probe whose timeout is close to its interval once dropped deadlines silently (4 of 71 at 0.9 s / 1 s): each
    skipped deadline is now an unknown sample at its time, with the reason, so it is a visible hole, never a value."""
    got: list[Sample] = []

    async def slow(spec_: ProbeSpec) -> Sample:
        started = time.time()
        await asyncio.sleep(0.25)
        return Sample(time=started, service=spec_.service, status=Status.UP)

    async def go() -> Scheduler:
        scheduler = Scheduler(slow, got.append)
        scheduler.add(spec(interval=0.1), first=0)
        await scheduler.run(duration=0.95)
        return scheduler
    stats = asyncio.run(go()).stats
    unknown = [s for s in got if s.status == Status.UNKNOWN]
    assert len(unknown) == stats.skipped >= 5
    assert {s.reason for s in unknown} == {"deadline skipped: the previous probe was still running"}
    assert len(got) - len(unknown) == stats.started                 # every probe started is stored too
    times = sorted(s.time for s in got)
    assert all(b - a < 0.2 for a, b in zip(times, times[1:]))   # no stretch without a sample of some kind


def test_default_phases_spread_over_the_interval():
    async def go() -> dict[str, float]:
        scheduler = Scheduler(fake_probe(), lambda s: None)
        for i in range(200):
            scheduler.add(spec(f"svc-{i}", interval=60))
        task = asyncio.create_task(scheduler.run())
        await asyncio.sleep(0)
        now = asyncio.get_running_loop().time()
        offsets = {k: d - now for k, d in scheduler.deadlines.items()}
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return offsets
    offsets = asyncio.run(go())
    assert all(-0.01 <= v < 60 for v in offsets.values())
    assert max(offsets.values()) - min(offsets.values()) > 50   # spread, not bunched
    assert asyncio.run(go()) == pytest.approx(offsets, abs=0.01)  # and stable across restarts


def test_cancellation_cancels_probes_in_flight_and_leaves_nothing_behind():
    cancelled: list[str] = []

    async def hang(spec_: ProbeSpec) -> Sample:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(spec_.service)
            raise
        raise AssertionError("unreachable")

    async def go() -> None:
        scheduler = Scheduler(hang, lambda s: None)
        for name in "abc":
            scheduler.add(spec(name, interval=1), first=0)
        task = asyncio.create_task(scheduler.run())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert scheduler.deadlines and not scheduler._handles and not scheduler._running
        assert asyncio.all_tasks() == {asyncio.current_task()}
    asyncio.run(go())
    assert sorted(cancelled) == ["a", "b", "c"]


def test_stop_lets_probes_in_flight_finish():
    samples: list[Sample] = []

    async def go() -> None:
        scheduler = Scheduler(fake_probe(0.2), samples.append)
        scheduler.add(spec(interval=10), first=0)
        task = asyncio.create_task(scheduler.run())
        await asyncio.sleep(0.05)
        scheduler.stop()
        await task
    asyncio.run(go())
    assert len(samples) == 1


def test_failing_probe_and_sink_do_not_stop_scheduling():
    samples: list[Sample] = []

    async def broken(spec_: ProbeSpec) -> Sample:
        raise RuntimeError("bug")

    async def sink(sample: Sample) -> None:
        samples.append(sample)
        if len(samples) == 1:
            raise OSError("disk full")

    async def go() -> Scheduler:
        scheduler = Scheduler(broken, sink)
        scheduler.add(spec(interval=0.1), first=0)
        await scheduler.run(duration=0.35)
        return scheduler
    scheduler = asyncio.run(go())
    assert len(samples) == 4 and scheduler.stats.errors == 1
    assert all(s.status is Status.UNKNOWN and s.reason == "oracle error: RuntimeError: bug" for s in samples)


def test_add_and_remove_while_running():
    seen: list[str] = []

    async def go() -> None:
        scheduler = Scheduler(fake_probe(), lambda s: seen.append(s.service))
        scheduler.add(spec("a", interval=0.1), first=0)
        task = asyncio.create_task(scheduler.run())
        await asyncio.sleep(0.15)
        scheduler.remove("a")
        scheduler.add(spec("b", interval=0.1), first=0)
        await asyncio.sleep(0.15)
        scheduler.stop()
        await task
    asyncio.run(go())
    assert seen[:2] == ["a", "a"] and set(seen[2:]) == {"b"} and len(seen) >= 4


def test_scheduler_with_real_probes_and_control(target):
    samples: list[Sample] = []

    async def go() -> None:
        with TcpTarget() as control:
            async with Prober(control=[f"127.0.0.1:{control.port}"]) as prober:
                scheduler = Scheduler(prober.probe, samples.append, concurrency=8)
                for i in range(20):
                    scheduler.add(ProbeSpec.http(f"svc-{i}", target.url, keyword="ok", interval=0.2, timeout=1))
                scheduler.add(ProbeSpec.tcp("db", "127.0.0.1", control.port, interval=0.2, timeout=1))
                await scheduler.run(duration=1.0)
    asyncio.run(go())
    assert len({s.service for s in samples}) == 21
    assert len(samples) >= 21 * 4
    assert all(s.status is Status.UP for s in samples)


def test_a_probe_starved_by_other_work_is_never_down():
    """At 500 agreements the daemon's own Python work held the interpreter while probes were in flight: their
    timeouts fired when the loop got the interpreter back, 3,197 samples of an up target were stored as down, and
    the contract paid credits for outages that never happened. Here a thread hogs the interpreter in bursts while
    a target in its own process answers at once: every verdict is up or unknown (the probe's time cannot be
    trusted), never down, and an answer measured across a stall keeps no latency."""
    import sys
    import threading

    samples: list[Sample] = []
    stop = threading.Event()

    def hog():
        while not stop.is_set():
            deadline = time.perf_counter() + 0.6
            while time.perf_counter() < deadline:   # pure Python: holds the interpreter for a switch interval
                sum(range(1000))
            time.sleep(0.05)

    async def go():
        async with Prober() as prober:
            scheduler = Scheduler(prober.probe, samples.append)
            scheduler.add(ProbeSpec.http("api", target.url, interval=0.25, timeout=0.15), first=0)
            await scheduler.run(duration=4)

    interval = sys.getswitchinterval()
    with SubprocessTarget("--http") as target:
        thread = threading.Thread(target=hog, daemon=True)
        sys.setswitchinterval(0.4)      # a busy thread keeps the interpreter this long before it must yield
        thread.start()
        try:
            asyncio.run(go())
        finally:
            stop.set()
            thread.join()
            sys.setswitchinterval(interval)
    statuses = [s.status for s in samples]
    assert Status.DOWN not in statuses, [(s.status, s.reason) for s in samples if s.status is Status.DOWN]
    assert Status.UP in statuses
    stalled = [s for s in samples if "stalled" in s.reason]
    assert stalled, "the hog never stalled the loop: this test did not test anything"
    assert all(s.latency_ms is None for s in stalled if s.status is Status.UP)
