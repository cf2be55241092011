"""A peer is untrusted input. Whatever it answers about one agreement (values outside uint32, floats that overflow,
a body trickled a byte at a time, a body cut off, megabytes, not JSON) is refused, counted and logged once, and
neither this round nor any other agreement waits for it. (One peer sending garbage about agreement A once kept
both A and B from settling for as long as it kept it up.)"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from oracle.daemon import Watched
from oracle.server import PeerError, fetch_report
from smartsla.chain.chain import Chain
from smartsla.onchain.client import Contracts
from smartsla.onchain.types import PeriodState
from smartsla.terms.parse import load_terms
from tests.helpers.daemon import daemon_on
from tests.helpers.world import make_world

TERMS = "examples/aws-ec2.yaml"
AGREEMENT = "0x" + "ab" * 20


class HostilePeer:
    """A raw HTTP peer on 127.0.0.1 that answers every request with ``answer(path)``: a list of (bytes, pause
    after) pieces, so it can trickle, stall or cut off as a real misbehaving peer does."""

    def __init__(self, answer):
        self.answer = answer
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[str] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        with conn:
            try:
                path = conn.recv(4096).split(b" ")[1].decode()
                self.requests.append(path)
                for piece, pause in self.answer(path):
                    if self._stop.is_set():
                        return
                    conn.sendall(piece)
                    time.sleep(pause)
            except OSError:
                pass

    def stop(self):
        self._stop.set()
        self.sock.close()


def response(body: bytes, length: int | None = None) -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body) if length is None else length}"
            "\r\nConnection: close\r\n\r\n").encode() + body


@pytest.mark.parametrize("answer,reason", [
    (lambda _p: [(response(b"", 40), 0)] + [(b"x", 0.3)] * 40, "deadline"),  # trickled: 12 s at this pace
    (lambda _p: [(response(b"{}", 100), 0)], "cut-off"),                     # says 100 bytes, sends 2, closes
    (lambda _p: [(response(b" " * 200_000), 0)], "too-big"),
    (lambda _p: [(response(b"not json"), 0)], "not-json"),
    (lambda _p: [(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 0)], "status"),
])
def test_every_peer_exchange_has_a_total_deadline_and_a_reason(answer, reason):
    peer = HostilePeer(answer)
    try:
        began = time.monotonic()
        with pytest.raises(PeerError) as refused:
            fetch_report(peer.url, 1, AGREEMENT, 0, deadline_s=1.0)
        assert refused.value.reason == reason
        # the deadline bounds the whole exchange: the trickle (12 s at its pace) is cut off at 1 s, not per read
        assert time.monotonic() - began < 2.5
    finally:
        peer.stop()


def test_a_peer_with_no_report_yet_or_away_is_none():
    away = HostilePeer(lambda _p: [(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 0)])
    try:
        assert fetch_report(away.url, 1, AGREEMENT, 0, deadline_s=1.0) is None
    finally:
        away.stop()
    assert fetch_report(away.url, 1, AGREEMENT, 0, deadline_s=1.0) is None  # nobody listens now


GARBAGE = [
    {"values": [-1], "evidenceRoot": "0x" + "00" * 32, "signature": "0x" + "11" * 65},
    {"values": [2**40], "evidenceRoot": "0x" + "00" * 32, "signature": "0x" + "11" * 65},
    {"values": [1e999], "evidenceRoot": "0x" + "00" * 32, "signature": "0x" + "11" * 65},
    {"values": ["999000"], "evidenceRoot": "0x" + "00" * 32, "signature": "0x" + "11" * 65},
    {"values": [True], "evidenceRoot": "0x" + "00" * 32, "signature": "0x" + "11" * 65},
    {"values": [999_000], "evidenceRoot": "0xzz", "signature": "0x11"},
    {"values": 7, "evidenceRoot": None, "signature": []},
    [1, 2, 3],
]


def test_a_hostile_peer_about_one_agreement_delays_no_agreement(tmp_path, artifacts, capsys):
    answers = iter(GARBAGE * 4)

    def garbage(path):
        item = next(answers, GARBAGE[0])
        body = json.dumps(item).replace("Infinity", "1e999").encode()
        return [(response(body), 0)]

    peer = HostilePeer(garbage)
    try:
        with Chain.connect("embedded") as chain:
            contracts = Contracts(chain, artifacts)
            w = make_world(chain, contracts)
            # no probe runs here: terms that count a report without samples (min_coverage 0%)
            first, second = w.create(quorum=1, minCoverage=0), w.create(quorum=1, minCoverage=0)
            for agreement in (first, second):
                agreement.fund(w.customer, 2)
            daemon = daemon_on(tmp_path, chain, contracts, w.oracles[0].key,
                               f"evidence_dir: evidence\npeers: ['{peer.url}']\n")
            for agreement in (first, second):
                daemon.watched[agreement.address] = Watched(agreement, load_terms(TERMS))
            w.over(first, 0, extra=30)
            for _ in GARBAGE:  # every kind of garbage is refused, none escapes
                assert daemon.peer_report(peer.url, first, 0) is None
            now = chain.now()  # and a round with the peer still at it settles both agreements
            for watched in daemon.watched.values():
                daemon.settle_due(watched, now)
            assert first.period(0).state == PeriodState.SETTLED and second.period(0).state == PeriodState.SETTLED
            refused = sum(v for k, v in _samples(daemon, "sla_oracle_bad_peer_reports_total").items())
            assert refused >= len(GARBAGE)
            logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
            bad = [e for e in logged if e["event"] == "bad-peer-report"]
            assert bad and {e["reason"] for e in bad} <= {"malformed", "not-json", "bad-signature"}
            # once per (peer, agreement, period, reason): not a line per round
            keys = [(e["peer"], e["agreement"], e["period"], e["reason"]) for e in bad]
            assert len(keys) == len(set(keys))
    finally:
        peer.stop()


def test_one_agreement_failing_does_not_stop_the_others(tmp_path, artifacts, capsys):
    with Chain.connect("embedded") as chain:
        contracts = Contracts(chain, artifacts)
        w = make_world(chain, contracts)
        broken, healthy = w.create(quorum=1, minCoverage=0), w.create(quorum=1, minCoverage=0)  # no probes here
        healthy.fund(w.customer, 1)
        daemon = daemon_on(tmp_path, chain, contracts, w.oracles[0].key, "evidence_dir: evidence\n")
        daemon.store  # noqa: B018 - the store opens first, as at start
        daemon.check_chain()
        daemon.factory = w.factory
        terms = load_terms(TERMS)
        daemon.watched[broken.address] = Watched(broken, terms)
        daemon.watched[healthy.address] = Watched(healthy, terms)
        measure = daemon.measure

        def measure_or_fail(watched, index):
            if watched.agreement.address == broken.address:
                raise RuntimeError("this agreement's round breaks")
            return measure(watched, index)

        daemon.measure = measure_or_fail
        daemon.discover = lambda: None
        w.over(healthy, 0, extra=30)
        daemon.tick()
        assert healthy.period(0).state == PeriodState.SETTLED
        errors = [json.loads(line) for line in capsys.readouterr().err.splitlines() if '"error"' in line]
        assert any(e.get("agreement") == broken.address and "breaks" in e["error"] for e in errors)
        assert _samples(daemon, "sla_oracle_agreement_errors_total") == {broken.address: 1.0}


def _samples(daemon, name: str) -> dict:
    found = {}
    for family in daemon.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name:
                found[sample.labels.get("agreement") or tuple(sample.labels.values())] = sample.value
    return found
