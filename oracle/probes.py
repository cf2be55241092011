"""HTTP(S) and TCP probes, the control check, and the scheduler that runs them at their intervals.

A probe never raises for anything the network or the service does: every outcome is a :class:`Sample`
(``time`` = when the probe started, ``status``, ``latency_ms``, a short ``reason``). Only a bad
configuration raises, and it does so early, when the :class:`ProbeSpec` is built.

Verdicts (HTTP)

* UP: an expected status, the keyword present (if any) and the full response within ``max_latency``
  (if any): ``"200 in 12 ms"``.
* DOWN: ``"status 503"``, ``"keyword 'ok' missing"``, ``"slow: 2300 ms > max 1000 ms"``,
  ``"timeout after 5 s"``, ``"connection refused"``, ``"dns: name not resolved"``, ...
* UNKNOWN: the oracle cannot tell (its control check failed, or an internal error).

Latency is measured to the end of the body (capped at :data:`MAX_BODY` bytes): that is what a client waits
for, and the keyword has to be searched in the body anyway.

The control check: every would-be DOWN is checked against the oracle's own connectivity first. If *all*
control targets fail, the sample becomes UNKNOWN ("control check failed (...)"), never DOWN, so an oracle
that lost its network cannot report an outage of the provider. This applies even when the service seemed to
answer (a wrong status, a missing keyword): a broken proxy or captive portal on the oracle's side answers
like that too. Results are cached for ``control_ttl`` seconds, and concurrent failures share one check.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import hashlib
import inspect
import json
import logging
import math
import socket
import ssl
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Self
from urllib.parse import urlsplit

import aiohttp

from smartsla.measure.samples import Sample, Status

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # the keyword must appear in the first MiB; reading further only costs memory
USER_AGENT = "sla-oracle (+https://github.com/smart-sla)"
KINDS = ("http", "tcp")


class ProbeConfigError(ValueError):
    """A probe that cannot be run as configured (bad URL, port, method, status list, durations)."""


@dataclass(frozen=True)
class ProbeSpec:
    """What to probe and how often: mirrors the ``probe`` key of a service in the terms.

    Durations are seconds. For HTTP, ``url`` (and ``method``, ``expect_status``, ``keyword``, ``max_latency``);
    for TCP, ``host`` and ``port``. Build with :meth:`http` / :meth:`tcp` for the common cases.
    """

    service: str
    kind: str
    url: str = ""
    method: str = "GET"
    expect_status: tuple[int, ...] = (200,)
    keyword: str | None = None
    max_latency: float | None = None
    host: str = ""
    port: int = 0
    timeout: float = 10.0
    interval: float = 60.0

    def __post_init__(self) -> None:
        where = f"probe for service {self.service!r}"
        if self.kind not in KINDS:
            raise ProbeConfigError(f"{where}: kind must be one of {KINDS}, not {self.kind!r}")
        if not (isinstance(self.timeout, (int, float)) and self.timeout > 0 and math.isfinite(self.timeout)):
            raise ProbeConfigError(f"{where}: timeout must be a positive number of seconds, not {self.timeout!r}")
        if not (isinstance(self.interval, (int, float)) and self.interval > 0 and math.isfinite(self.interval)):
            raise ProbeConfigError(f"{where}: interval must be a positive number of seconds, not {self.interval!r}")
        if self.kind == "http":
            self._check_http(where)
        else:
            if not self.host or not isinstance(self.host, str):
                raise ProbeConfigError(f"{where}: tcp probe needs a host")
            if not (isinstance(self.port, int) and 1 <= self.port <= 65535):
                raise ProbeConfigError(f"{where}: tcp port must be 1..65535, not {self.port!r}")

    def _check_http(self, where: str) -> None:
        try:
            parts = urlsplit(self.url)
            parts.port  # noqa: B018 - raises ValueError on a non-numeric or out-of-range port
        except (ValueError, TypeError, AttributeError) as exc:
            raise ProbeConfigError(f"{where}: bad url {self.url!r}: {exc}") from None
        if parts.scheme not in ("http", "https"):
            raise ProbeConfigError(f"{where}: url {self.url!r} must start with http:// or https://")
        if not parts.hostname:
            raise ProbeConfigError(f"{where}: url {self.url!r} has no host")
        if not (isinstance(self.method, str) and self.method.isalpha()):
            raise ProbeConfigError(f"{where}: bad HTTP method {self.method!r}")
        object.__setattr__(self, "method", self.method.upper())
        statuses = (self.expect_status,) if isinstance(self.expect_status, int) else tuple(self.expect_status)
        if not statuses or not all(isinstance(s, int) and 100 <= s <= 599 for s in statuses):
            raise ProbeConfigError(f"{where}: expect_status must be HTTP status codes, not {self.expect_status!r}")
        object.__setattr__(self, "expect_status", statuses)
        if self.keyword is not None and (not isinstance(self.keyword, str) or not self.keyword):
            raise ProbeConfigError(f"{where}: keyword must be a non-empty string")
        if self.max_latency is not None and not (isinstance(self.max_latency, (int, float)) and self.max_latency > 0):
            raise ProbeConfigError(f"{where}: max_latency must be a positive number of seconds")

    def fingerprint(self) -> str:
        """What the probe does, whoever it is for: two specs with the same fingerprint send the same request on the
        same schedule, so one probe can serve both (its samples are the same evidence). Everything but ``service``
        counts; 16 hex digits of a SHA-256 of the fields."""
        fields = {k: v for k, v in sorted(asdict(self).items()) if k != "service"}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def target(self) -> str:
        """``GET https://host/path`` or ``tcp host:port``: what an operator recognises in a list of probes."""
        return f"{self.method} {self.url}" if self.kind == "http" else f"tcp {self.host}:{self.port}"

    @classmethod
    def http(cls, service: str, url: str, **options: Any) -> ProbeSpec:
        return cls(service=service, kind="http", url=url, **options)

    @classmethod
    def tcp(cls, service: str, host: str, port: int, **options: Any) -> ProbeSpec:
        return cls(service=service, kind="tcp", host=host, port=port, **options)

    @classmethod
    def control(cls, target: str | ProbeSpec, timeout: float = 3.0) -> ProbeSpec:
        """A control target from ``"https://example.org/"`` or ``"host:port"`` (``"[::1]:53"`` for IPv6)."""
        if isinstance(target, ProbeSpec):
            return target
        if "://" in target:
            # Any answer proves connectivity; the status is not what a control check is about.
            return cls.http(f"control:{target}", target, expect_status=tuple(range(100, 600)), timeout=timeout)
        host, sep, port = target.rpartition(":")
        if not sep or not port.isdigit():
            raise ProbeConfigError(f"control target {target!r}: expected a URL or host:port")
        return cls.tcp(f"control:{target}", host.strip("[]"), int(port), timeout=timeout)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _fmt_ms(ms: float) -> str:
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


def _fmt_s(seconds: float) -> str:
    return f"{seconds:g} s"


def _network_reason(exc: BaseException) -> str:
    """A short reason for a failure to get an answer at all."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"tls: certificate: {getattr(exc.certificate_error, 'verify_message', None) or exc.certificate_error}"
    if isinstance(exc, (aiohttp.ClientSSLError, ssl.SSLError)):
        inner = getattr(exc, "os_error", exc)
        return f"tls: {getattr(inner, 'reason', None) or inner}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        exc = exc.os_error
    if isinstance(exc, socket.gaierror):
        return "dns: name not resolved"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "bad response body"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"bad HTTP response: {exc.message}"[:120]
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return "connection refused"
    if isinstance(exc, ConnectionResetError) or getattr(exc, "errno", None) == errno.ECONNRESET:
        return "connection reset"
    code = getattr(exc, "errno", None)
    if code in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return "network unreachable" if code == errno.ENETUNREACH else "host unreachable"
    # asyncio joins the errors of several addresses into one OSError without an errno.
    text = str(exc)
    if "Connect call failed" in text and "111" in text:
        return "connection refused"
    return f"error: {type(exc).__name__}: {text}"[:160]


class LoopWatch:
    """How long the event loop went without running. A task wakes every ``tick`` seconds; a wake-up that comes
    late means the loop was held up (by other work holding the interpreter, a blocking call, a paused process),
    and every probe in flight then was measured by a clock that did not run for it: a timeout that fired late is
    no verdict on the service, and a latency measured across the stall is the oracle's, not the service's."""

    def __init__(self, tick: float = 0.02, keep: float = 120.0) -> None:
        self.tick = tick
        self.keep = keep
        self._stalls: collections.deque[tuple[float, float]] = collections.deque()  # (from, to) in loop time
        self._last = -math.inf
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._last = asyncio.get_running_loop().time()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.tick)
            now = loop.time()
            if now - self._last > 2 * self.tick:
                self._stalls.append((self._last + self.tick, now))
            self._last = now
            while self._stalls and self._stalls[0][1] < now - self.keep:
                self._stalls.popleft()

    def stalled_since(self, since: float) -> float:
        """The longest the loop did not run between loop time ``since`` and now, the stall still going on (the
        watch has not woken since) included; 0 without a watch running."""
        if self._task is None:
            return 0.0
        now = asyncio.get_running_loop().time()
        worst = max(0.0, now - max(self._last, since) - self.tick)
        for a, b in reversed(self._stalls):
            if b < since:
                break
            worst = max(worst, b - max(a, since))
        return worst


# A loop stall this long during a probe (or a tenth of its timeout, if longer) makes its timing untrustworthy;
# collection pauses and scheduling jitter stay well below it.
STALL_S = 0.05


class Prober:
    """Runs probes; owns the HTTP client session and the control check. Use as ``async with Prober() as p``.

    ``keep_alive`` reuses connections between probes of the same host. Off by default: with minute-long
    intervals connections would be idle past any server's keep-alive timeout anyway, and a fresh connection
    measures what a new client sees (DNS, connect, TLS). The benchmark uses it to show raw throughput.
    """

    def __init__(self, control: Iterable[str | ProbeSpec] = (), *, control_ttl: float = 5.0,
                 control_timeout: float = 3.0, keep_alive: bool = False, verify_tls: bool = True) -> None:
        self.control = [ProbeSpec.control(t, control_timeout) for t in control]
        self.control_ttl = control_ttl
        self.keep_alive = keep_alive
        self.verify_tls = verify_tls
        self.control_runs = 0
        self.last_control: tuple[float, bool, tuple[str, ...]] | None = None  # (unix time, ok, reasons)
        self._control_at = -math.inf
        self._control_ok = True
        self._control_task: asyncio.Task[bool] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.watch = LoopWatch()

    async def __aenter__(self) -> Self:
        self._client()  # built up front so the first probe's latency does not include it
        self.watch.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=0, force_close=not self.keep_alive, ssl=None if self.verify_tls else False)
            # No client-side total timeout: each probe sets its own with asyncio.timeout.
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=None),
                headers={"User-Agent": USER_AGENT}, cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def close(self) -> None:
        await self.watch.stop()
        if self._control_task is not None:
            self._control_task.cancel()
            await asyncio.gather(self._control_task, return_exceptions=True)
            self._control_task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- probes ------------------------------------------------------------------------------------------

    async def probe(self, spec: ProbeSpec) -> Sample:
        """Probe once; a DOWN is turned into UNKNOWN when the control check fails."""
        sample = await self.probe_raw(spec)
        if sample.status is Status.DOWN and not await self.control_ok():
            return replace(sample, status=Status.UNKNOWN, reason=f"control check failed ({sample.reason})")
        return sample

    async def probe_raw(self, spec: ProbeSpec) -> Sample:
        """Probe once, without the control check. A probe across which the loop stalled is judged by what is
        certain: a timeout (or a max_latency breach) is no verdict (``unknown``), an answer is up without a
        latency; a refused connection or a wrong status stays down, the service said so itself."""
        started = time.time()
        since = asyncio.get_running_loop().time()
        try:
            if spec.kind == "http":
                status, latency, reason = await self._http(spec)
            else:
                status, latency, reason = await self._tcp(spec)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("probe of %s failed unexpectedly", spec.service)
            status, latency, reason = Status.UNKNOWN, None, f"oracle error: {type(exc).__name__}: {exc}"[:160]
        stall = self.watch.stalled_since(since)
        if stall >= max(STALL_S, spec.timeout / 10):
            why = f"the oracle stalled {_fmt_ms(_ms(stall))} during the probe"
            if reason.startswith(("timeout", "slow:")):
                status, latency, reason = Status.UNKNOWN, None, f"no verdict: {reason}, but {why}"[:160]
            elif latency is not None:
                latency, reason = None, f"{reason}; latency not kept: {why}"[:160]
        return Sample(time=started, service=spec.service, status=status, latency_ms=latency, reason=reason)

    async def _http(self, spec: ProbeSpec) -> tuple[Status, float | None, str]:
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(spec.timeout):
                # No redirects: the terms name the endpoint the SLA is about; a redirecting endpoint lists
                # its 3xx in expect_status.
                async with self._client().request(spec.method, spec.url, allow_redirects=False) as response:
                    body = bytearray()
                    async for chunk in response.content.iter_chunked(65536):
                        if len(body) < MAX_BODY:
                            body += chunk[:MAX_BODY - len(body)]
                        elif not self.keep_alive:
                            break
                    code = response.status
        except TimeoutError:
            return Status.DOWN, None, f"timeout after {_fmt_s(spec.timeout)}"
        except aiohttp.InvalidURL as exc:
            return Status.UNKNOWN, None, f"bad url: {exc}"[:160]
        except (aiohttp.ClientError, OSError) as exc:
            return Status.DOWN, None, _network_reason(exc)
        latency = _ms(time.perf_counter() - t0)
        if code not in spec.expect_status:
            return Status.DOWN, latency, f"status {code}"
        if spec.keyword is not None and spec.keyword.encode() not in body:
            return Status.DOWN, latency, f"keyword {spec.keyword!r} missing"
        if spec.max_latency is not None and latency > spec.max_latency * 1000:
            return Status.DOWN, latency, f"slow: {_fmt_ms(latency)} > max {_fmt_ms(spec.max_latency * 1000)}"
        return Status.UP, latency, f"{code} in {_fmt_ms(latency)}"

    async def _tcp(self, spec: ProbeSpec) -> tuple[Status, float | None, str]:
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(spec.timeout):
                transport, _ = await loop.create_connection(asyncio.Protocol, spec.host, spec.port)
        except TimeoutError:
            return Status.DOWN, None, f"timeout after {_fmt_s(spec.timeout)}"
        except OSError as exc:
            return Status.DOWN, None, _network_reason(exc)
        latency = _ms(time.perf_counter() - t0)
        transport.close()
        return Status.UP, latency, f"connected in {_fmt_ms(latency)}"

    # -- the control check -------------------------------------------------------------------------------

    async def control_ok(self) -> bool:
        """True unless every control target failed (cached ``control_ttl`` s; no targets: always True)."""
        if not self.control:
            return True
        loop = asyncio.get_running_loop()
        if loop.time() - self._control_at < self.control_ttl:
            return self._control_ok
        if self._control_task is None:
            self._control_task = loop.create_task(self._run_control())
        # Shielded: one waiting probe being cancelled must not cancel the check the others wait on.
        return await asyncio.shield(self._control_task)

    async def _run_control(self) -> bool:
        loop = asyncio.get_running_loop()
        begun = loop.time()
        try:
            samples = await asyncio.gather(*(self.probe_raw(spec) for spec in self.control))
            ok = any(s.status is Status.UP for s in samples)
            self.control_runs += 1
            self.last_control = (time.time(), ok, tuple(f"{s.service}: {s.reason}" for s in samples))
            if not ok:
                log.warning("control check failed: %s", "; ".join(self.last_control[2]))
            # Aged from when it started, so the cache never outlives what the check actually saw.
            self._control_at, self._control_ok = begun, ok
            return ok
        finally:
            self._control_task = None


# -- scheduling ------------------------------------------------------------------------------------------


@dataclass
class SchedulerStats:
    """How punctual the scheduler was. Lateness = probe start - its deadline, in seconds."""

    started: int = 0
    skipped: int = 0       # deadlines not run: the previous probe of the service still running, or missed
    errors: int = 0        # callback failures
    max_lateness: float = 0.0
    lateness: deque[float] = field(default_factory=lambda: deque(maxlen=200_000))  # most recent only

    def record(self, late: float) -> None:
        self.started += 1
        self.max_lateness = max(self.max_lateness, late)
        self.lateness.append(late)

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile (``q`` in 0..100) of the recorded lateness; 0 if none."""
        if not self.lateness:
            return 0.0
        ordered = sorted(self.lateness)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


OnSample = Callable[[Sample], "Awaitable[Any] | Any"]
# After a stall, the first missed deadlines of a service are recorded as unknown samples; beyond these the
# slices are holes anyway, and a long stall must not become a burst of writes.
MAX_SKIP_SAMPLES = 10


class Scheduler:
    """Runs each probe every ``spec.interval`` seconds, on fixed deadlines, at most ``concurrency`` at once.

    Deadlines are ``first + k * interval`` on the monotonic clock: a probe's duration or a late start never
    shifts later deadlines. A service whose previous probe is still running at its next deadline skips that
    deadline (counted in ``stats.skipped``) rather than overlapping itself; after a stall longer than an
    interval, the missed deadlines are skipped too, not run back to back. Each skipped deadline is recorded as an
    ``unknown`` sample saying why, so the evidence shows the hole.

    ``probe`` is any ``async (ProbeSpec) -> Sample`` (normally :meth:`Prober.probe`); ``on_sample`` gets each
    sample and may be a coroutine function. Stop with :meth:`stop` (in-flight probes finish) or by cancelling
    :meth:`run` (in-flight probes are cancelled).
    """

    def __init__(self, probe: Callable[[ProbeSpec], Awaitable[Sample]], on_sample: OnSample, *,
                 concurrency: int = 256) -> None:
        self._probe = probe
        self._on_sample = on_sample
        self._semaphore = asyncio.Semaphore(concurrency)
        self._specs: dict[str, ProbeSpec] = {}
        self._first: dict[str, float | None] = {}
        self._handles: dict[str, asyncio.TimerHandle] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._recording: set[asyncio.Task[None]] = set()   # unknown samples of skipped deadlines, being stored
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = asyncio.Event()
        self.stats = SchedulerStats()
        self.deadlines: dict[str, float] = {}  # the current deadline per service (loop time)

    def __len__(self) -> int:
        return len(self._specs)

    def add(self, spec: ProbeSpec, *, first: float | None = None) -> None:
        """Schedule ``spec`` (replacing any spec of the same service). ``first``: seconds from the start of
        :meth:`run` (or from now, if running) to its first deadline; by default a fixed offset within the
        interval derived from the service id, so many targets with one interval do not all fire together
        and a restart keeps each service's phase."""
        self.remove(spec.service)
        self._specs[spec.service] = spec
        self._first[spec.service] = first
        if self._loop is not None:
            self._arm(spec.service, self._loop.time())

    def remove(self, service: str) -> None:
        self._specs.pop(service, None)
        self._first.pop(service, None)
        self.deadlines.pop(service, None)
        handle = self._handles.pop(service, None)
        if handle is not None:
            handle.cancel()

    def _arm(self, service: str, now: float) -> None:
        spec = self._specs[service]
        first = self._first[service]
        if first is None:
            first = zlib.crc32(service.encode()) / 2**32 * spec.interval
        self._at(service, now + first)

    def _at(self, service: str, deadline: float) -> None:
        assert self._loop is not None
        self.deadlines[service] = deadline
        self._handles[service] = self._loop.call_at(deadline, self._due, service, deadline)

    def _due(self, service: str, deadline: float) -> None:
        assert self._loop is not None
        spec = self._specs.get(service)
        if spec is None:
            return
        missed = int((self._loop.time() - deadline) // spec.interval)
        if missed > 0:
            self.stats.skipped += missed
            for k in range(min(missed, MAX_SKIP_SAMPLES)):
                self._skipped(spec, deadline + k * spec.interval, "deadline missed: the oracle was stalled")
            deadline += missed * spec.interval
        self._at(service, deadline + spec.interval)
        if service in self._running:
            self.stats.skipped += 1
            self._skipped(spec, deadline, "deadline skipped: the previous probe was still running")
            return
        self._running[service] = self._loop.create_task(self._run_one(spec, deadline))

    def _skipped(self, spec: ProbeSpec, deadline: float, reason: str) -> None:
        """A deadline not probed is a hole the evidence must show with its cause: an ``unknown`` sample at the
        deadline's wall time (it never makes a slice up or down, so the slice stays a gap unless a probe filled
        it)."""
        assert self._loop is not None
        at = time.time() - (self._loop.time() - deadline)
        task = self._loop.create_task(self._deliver(Sample(time=at, service=spec.service, status=Status.UNKNOWN,
                                                           reason=reason)))
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)

    async def _run_one(self, spec: ProbeSpec, deadline: float) -> None:
        try:
            async with self._semaphore:
                self.stats.record(asyncio.get_running_loop().time() - deadline)
                started = time.time()
                try:
                    sample = await self._probe(spec)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.exception("probe of %s raised", spec.service)
                    sample = Sample(time=started, service=spec.service, status=Status.UNKNOWN,
                                    reason=f"oracle error: {type(exc).__name__}: {exc}"[:160])
            await self._deliver(sample)
        finally:
            self._running.pop(spec.service, None)

    async def _deliver(self, sample: Sample) -> None:
        try:
            result = self._on_sample(sample)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            self.stats.errors += 1
            log.exception("on_sample failed for %s", sample.service)

    async def run(self, duration: float | None = None) -> None:
        """Run until :meth:`stop`, ``duration`` seconds, or cancellation."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        now = self._loop.time()
        for service in self._specs:
            self._arm(service, now)
        try:
            if duration is None:
                await self._stop.wait()
            else:
                try:
                    async with asyncio.timeout(duration):
                        await self._stop.wait()
                except TimeoutError:
                    pass
        except asyncio.CancelledError:
            self._halt()
            running = list(self._running.values())
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise
        self._halt()
        await asyncio.gather(*list(self._running.values()), *list(self._recording), return_exceptions=True)

    def stop(self) -> None:
        """Stop scheduling; :meth:`run` returns once the probes in flight have finished."""
        self._stop.set()

    def _halt(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
        self._loop = None
