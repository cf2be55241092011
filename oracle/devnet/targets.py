"""Local HTTP and TCP targets with a scripted up/down schedule, for the demo, probe tests and benchmarks.

In-process (a thread with its own event loop, so synchronous test code and ``asyncio.run`` both work)::

    with HttpTarget(schedule=[(0, 2, "up"), (2, 4, "down-503")]) as target:
        target.url, target.port
        target.set_mode("slow")        # overrides the schedule until set_mode(None)

As a subprocess (prints its port on the first line of stdout, stops on SIGTERM/SIGINT)::

    python -m oracle.devnet.targets --http --schedule 0-2:up,2-4:down-503,4-:refuse

Everything binds 127.0.0.1. Modes:

==================  ==========================================================================
up                  HTTP 200 with a body containing ``keyword`` (TCP: accept and close)
down-503            HTTP 503
slow                HTTP 200 after ``slow_delay`` seconds
hang                accept and read the request but never answer (read timeouts)
keyword-missing     HTTP 200 with a body that lacks ``keyword``
flapping            alternates up / 503 on every request, starting with up
refuse              nothing listens on the port: connects get ECONNREFUSED
blackhole           the port listens but its accept queue is full: connects time out
==================  ==========================================================================
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

HTTP_MODES = ("up", "down-503", "slow", "hang", "keyword-missing", "flapping", "refuse", "blackhole")
TCP_MODES = ("up", "refuse", "blackhole")
# The modes that change what (if anything) listens on the port, rather than how a request is answered.
_LISTENER = {"refuse": "none", "blackhole": "blackhole"}

Window = tuple[float, float, str]  # (from_second, to_second, mode), seconds since the target started


def parse_schedule(text: str) -> list[Window]:
    """``"0-2:up,2-4:down-503,4-:refuse"``: an empty end means "until stopped"."""
    windows: list[Window] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        span, sep, mode = part.partition(":")
        start, dash, end = span.partition("-")
        if not sep or not dash:
            raise ValueError(f"schedule entry {part!r}: expected FROM-TO:MODE")
        windows.append((float(start), float(end) if end else float("inf"), mode))
    return windows


@dataclass
class _Counters:
    requests: int = 0
    connections: int = 0


class _Target:
    """What HTTP and TCP targets share: the schedule, the listener switching and the thread."""

    kind = ""
    modes: tuple[str, ...] = ()

    def __init__(self, schedule: Sequence[Window] = (), *, default: str = "up", port: int = 0) -> None:
        for _, _, mode in schedule:
            self._check_mode(mode)
        self._check_mode(default)
        self.schedule = list(schedule)
        self.default = default
        self.port = port
        self.counters = _Counters()
        self._override: str | None = None
        self._started = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._blackhole: list[socket.socket] = []
        self._listener = ""
        self._transports: set[asyncio.BaseTransport] = set()
        self._boundaries: list[asyncio.TimerHandle] = []

    def _check_mode(self, mode: str) -> None:
        if mode not in self.modes:
            raise ValueError(f"{self.kind} target: unknown mode {mode!r} (one of {', '.join(self.modes)})")

    # -- the schedule ------------------------------------------------------------------------------------

    def mode(self, at: float | None = None) -> str:
        """The mode now (or ``at`` seconds after start)."""
        if self._override is not None and at is None:
            return self._override
        elapsed = (time.monotonic() - self._started) if at is None else at
        for start, end, mode in self.schedule:
            if start <= elapsed < end:
                return mode
        return self.default

    def set_mode(self, mode: str | None) -> None:
        """Force a mode until ``set_mode(None)``; returns once the listener matches it."""
        if mode is not None:
            self._check_mode(mode)
        self._override = mode
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._apply(), self._loop).result(5)

    # -- listener switching --------------------------------------------------------------------------------

    async def _apply(self) -> None:
        want = _LISTENER.get(self.mode(), "serve")
        if want == self._listener:
            return
        await self._close_listener()
        if want == "serve":
            self._server = await self._start_server()
            self.port = self._server.sockets[0].getsockname()[1]
        elif want == "blackhole":
            self._open_blackhole()
        self._listener = want

    async def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        # A refusing or blackholed service has lost its process, not just its listener: drop open
        # keep-alive connections too, or a client reusing one would still get answers.
        for transport in list(self._transports):
            transport.abort()
        for sock in self._blackhole:
            sock.close()
        self._blackhole = []

    def _open_blackhole(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        # Backlog 0 admits one queued connection; with it taken and never accepted, Linux drops further
        # SYNs, so clients see a connect timeout, the loopback stand-in for an unroutable host.
        listener.listen(0)
        filler = socket.socket()
        filler.settimeout(1)
        filler.connect(("127.0.0.1", self.port))
        self._blackhole = [listener, filler]
        if self.port == 0:
            self.port = listener.getsockname()[1]

    async def _start_server(self) -> asyncio.base_events.Server:
        raise NotImplementedError

    def _schedule_boundaries(self) -> None:
        assert self._loop is not None
        for start, end, _ in self.schedule:
            for edge in (start, end):
                if edge != float("inf"):
                    # A millisecond past the edge, so mode() reads the new window, not the old one.
                    self._boundaries.append(self._loop.call_at(
                        self._started + edge + 0.001, lambda: asyncio.ensure_future(self._apply())))

    # -- lifetime ----------------------------------------------------------------------------------------

    async def serve_async(self) -> None:
        """Start listening on the running loop (for use inside an asyncio program)."""
        self._loop = asyncio.get_running_loop()
        # loop.time() is time.monotonic(), which mode() reads: one clock for the schedule and its timers.
        self._started = self._loop.time()
        if self.port == 0 and _LISTENER.get(self.mode(), "serve") != "serve":
            # Reserve a port number even when the schedule starts with nothing listening.
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
        await self._apply()
        self._schedule_boundaries()

    async def close_async(self) -> None:
        for handle in self._boundaries:
            handle.cancel()
        self._override = "refuse"
        await self._close_listener()
        self._listener = "none"

    def start(self) -> Self:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self.serve_async())
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.close_async())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"{self.kind}-target", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None
            self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _HttpProtocol(asyncio.Protocol):
    """Just enough HTTP/1.1: request line, headers, Content-Length bodies, keep-alive, HEAD."""

    def __init__(self, target: HttpTarget) -> None:
        self.target = target
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.target._transports.add(transport)
        self.target.counters.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.target._transports.discard(self.transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).split(b"\r\n")
            method = lines[0].split(b" ", 1)[0].decode("latin-1")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip().lower()
            length = int(headers.get(b"content-length", b"0") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[:end + 4 + length]
            self.target._answer(self.transport, method, headers.get(b"connection") == b"close")


class HttpTarget(_Target):
    kind = "http"
    modes = HTTP_MODES

    def __init__(self, schedule: Sequence[Window] = (), *, default: str = "up", port: int = 0,
                 keyword: str = "ok", slow_delay: float = 2.0) -> None:
        super().__init__(schedule, default=default, port=port)
        self.keyword = keyword
        self.slow_delay = slow_delay
        self._flap = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    async def _start_server(self) -> asyncio.base_events.Server:
        return await asyncio.get_running_loop().create_server(
            lambda: _HttpProtocol(self), "127.0.0.1", self.port, reuse_address=True)

    def _answer(self, transport: asyncio.Transport | None, method: str, close: bool) -> None:
        if transport is None or transport.is_closing():
            return
        self.counters.requests += 1
        mode = self.mode()
        if mode == "flapping":
            mode = "up" if self._flap % 2 == 0 else "down-503"
            self._flap += 1
        if mode == "hang":
            return
        if mode == "down-503":
            status, body = "503 Service Unavailable", b"service unavailable\n"
        elif mode == "keyword-missing":
            status, body = "200 OK", b"maintenance page\n"
        else:
            status, body = "200 OK", f"status: {self.keyword}\n".encode()
        head = (f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n").encode()
        payload = head if method == "HEAD" else head + body

        def send() -> None:
            if not transport.is_closing():
                transport.write(payload)
                if close:
                    transport.close()

        if mode == "slow":
            asyncio.get_running_loop().call_later(self.slow_delay, send)
        else:
            send()


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, target: TcpTarget) -> None:
        self.target = target

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.target.counters.connections += 1
        transport.close()


class TcpTarget(_Target):
    kind = "tcp"
    modes = TCP_MODES

    async def _start_server(self) -> asyncio.base_events.Server:
        return await asyncio.get_running_loop().create_server(
            lambda: _TcpProtocol(self), "127.0.0.1", self.port, reuse_address=True)


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released; good for a test's lifetime)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SubprocessTarget:
    """``python -m oracle.devnet.targets`` in its own process, so its CPU is not the prober's (benchmarks)."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), *args],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"target did not start: {line!r}")
        self.port = int(line)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument("--http", action="store_true")
    kind.add_argument("--tcp", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--schedule", type=parse_schedule, default=[], help="e.g. 0-2:up,2-4:down-503,4-:refuse")
    parser.add_argument("--default", default="up", help="mode outside every schedule window")
    parser.add_argument("--keyword", default="ok")
    parser.add_argument("--slow-delay", type=float, default=2.0)
    args = parser.parse_args(argv)
    if args.http:
        target: _Target = HttpTarget(args.schedule, default=args.default, port=args.port,
                                     keyword=args.keyword, slow_delay=args.slow_delay)
    else:
        target = TcpTarget(args.schedule, default=args.default, port=args.port)

    async def serve() -> None:
        await target.serve_async()
        print(target.port, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await target.close_async()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
