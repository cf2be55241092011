"""One probe per distinct target and method, however many agreements measure it: two agreements whose terms hold the
same probe share one schedule and one run of samples, and each agreement's evidence holds exactly the samples of its
own service and period, with the values and evidence root it would have had with samples of its own.

Once, every agreement's service was a probe of its own: a provider's endpoint in 500 agreements was probed 500 times
per interval, and the probe loop starved into timeouts that were paid as outages."""

from __future__ import annotations

import json
from pathlib import Path

from oracle.cli import main as oracle_main
from oracle.daemon import Watched, shared_probe
from oracle.store.samples import sample_key
from smartsla.chain.chain import Chain
from smartsla.evidence.bundle import load_bundle
from smartsla.measure.samples import Sample, Status
from smartsla.onchain.client import Contracts
from smartsla.onchain.types import PeriodState
from smartsla.terms.parse import load_terms
from tests.helpers.daemon import daemon_on
from tests.helpers.world import make_world

DOC = b"\x11" * 32   # the world's agreements' document hash
DAY = 86_400


def probed_terms(url: str = "http://127.0.0.1:1/health"):
    text = Path("examples/aws-ec2.yaml").read_text()
    return load_terms(text.replace('    target: "99.99%"\n',
                                   f'    target: "99.99%"\n    probe: {{type: http, url: "{url}"}}\n'))


def minutes(key: str, start: int, end: int, down: list[tuple[int, int]]) -> list[Sample]:
    """A sample mid-minute for every minute of [start, end), down within the (from, to) stretches."""
    out = []
    for t in range(start, end, 60):
        status = Status.DOWN if any(a <= t < b for a, b in down) else Status.UP
        out.append(Sample(float(t + 30), key, status, 12.0, "200" if status == Status.UP else "status 503"))
    return out


def test_a_probe_shared_by_two_agreements_gives_each_its_own_evidence(tmp_path, artifacts, capsys):
    with Chain.connect("embedded") as chain:
        contracts = Contracts(chain, artifacts)
        w = make_world(chain, contracts)
        terms = probed_terms()
        start = chain.now() + 60
        a = w.create(quorum=1, start=start)
        b = w.create(quorum=1, start=start + DAY)       # the same terms, a day later: the periods overlap
        for agreement in (a, b):
            w.mint(w.customer, agreement.terms.fee)
            agreement.fund(w.customer, 1)
        daemon = daemon_on(tmp_path, chain, contracts, w.oracles[0].key, "evidence_dir: evidence\n")
        daemon.factory = w.factory
        daemon.terms_by_hash[DOC] = terms
        daemon.discover()
        assert set(daemon.watched) == {a.address, b.address}
        key = shared_probe(terms.services[0].probe).service
        assert daemon.probing() == {key: {a.address, b.address}}     # one schedule for both

        # down 30 min in a's first day only, 50 min while both run, 20 min in b's last day only
        down = [(start + 600, start + 2400), (start + 2 * DAY, start + 2 * DAY + 3000),
                (start + 30 * DAY + 3600, start + 30 * DAY + 4800)]
        shared = minutes(key, start, start + 31 * DAY, down)
        daemon.store.append(shared)
        # an import for b alone (its own key) lands in b's evidence, not a's
        imported = Sample(float(start + 30 * DAY + 7200 + 45), sample_key(b.address, "ec2"), Status.DOWN, None,
                          "imported: status 500")
        daemon.store.append([imported])

        # the operator sees one probe, what it requests and whom it serves
        capsys.readouterr()
        assert oracle_main(["status", "--config", str(tmp_path / "oracle.yaml"), "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)["services"]
        assert listed[key]["probe"] == {"target": "GET http://127.0.0.1:1/health",
                                        "serves": sorted([a.address, b.address])}
        assert listed[key]["samples"] == len(shared)
        assert oracle_main(["status", "--config", str(tmp_path / "oracle.yaml")]) == 0
        assert f"{key} (GET http://127.0.0.1:1/health, for 2 agreements): {len(shared)} samples" in \
            capsys.readouterr().out

        # what each agreement would have had with the samples under its own key (before probes were shared)
        (tmp_path / "ref").mkdir()
        reference = daemon_on(tmp_path / "ref", chain, contracts, w.oracles[0].key, "evidence_dir: evidence\n")
        for agreement in (a, b):
            own = sample_key(agreement.address, "ec2")
            reference.store.append([Sample(s.time, own, s.status, s.latency_ms, s.reason) for s in shared])
        reference.store.append([imported])
        expected = {ag.address: reference.measure(Watched(ag, terms), 0) for ag in (a, b)}

        w.over(b, 0, extra=30)
        for agreement in (a, b):
            daemon.settle_due(daemon.watched[agreement.address], chain.now())
            assert agreement.period(0).state == PeriodState.SETTLED
            intent = daemon.store.report(daemon.chain_id, agreement.address, 0)
            values, coverage, root = expected[agreement.address]
            assert (list(intent.values), list(intent.coverage), intent.evidence_root) == (values, coverage, root)

            bundle = load_bundle(tmp_path / "evidence" / agreement.address / "period-0")
            p0, p1 = agreement.period_start(0), agreement.period_end(0)
            times = bundle.columns.time_us // 1_000_000
            assert times.min() >= p0 and times.max() < p1
            mine = [s for s in shared if p0 <= s.time < p1] + ([imported] if agreement is b else [])
            assert len(bundle.columns) == len(mine)
        # the agreements' values differ as their own periods' outages do
        assert expected[a.address][0] != expected[b.address][0]


def test_a_shared_probe_stops_with_its_last_agreement(tmp_path, artifacts, capsys):
    with Chain.connect("embedded") as chain:
        contracts = Contracts(chain, artifacts)
        w = make_world(chain, contracts)
        terms = probed_terms()
        a = w.create(periodCount=1)
        b = w.create(periodCount=2)
        other = probed_terms("http://127.0.0.1:1/other")
        daemon = daemon_on(tmp_path, chain, contracts, w.oracles[0].key)
        for agreement, t in ((a, terms), (b, terms)):
            daemon.watched[agreement.address] = Watched(agreement, t)
            assert daemon.start_probes(agreement.address, t) == 1
        assert daemon.start_probes(a.address, terms) == 1           # discovered again: still one user
        key = shared_probe(terms.services[0].probe).service
        assert shared_probe(other.services[0].probe).service != key  # another URL is another probe
        assert daemon.probing() == {key: {a.address, b.address}}

        w.over(a, 0)
        a.close(w.stranger)
        daemon.retire_closed()
        assert daemon.probing() == {key: {b.address}}               # b still measures it
        assert '"probes_stopped": 0, "probes_still_shared": 1' in capsys.readouterr().err
        w.over(b, 1)
        b.close(w.stranger)
        daemon.retire_closed()
        assert daemon.probing() == {}
