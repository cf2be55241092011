"""Discovery reads the factory's logs incrementally: each round only the blocks since the last (and a margin a
reorg could replace), each agreement decoded once; a chain that goes back (a node reset to a snapshot) is read
from block 0 again, misses no agreement, adds none twice and forgets the ones that no longer exist."""

from __future__ import annotations

from oracle import daemon as daemon_module
from smartsla.chain.chain import Chain
from smartsla.onchain.client import Contracts
from smartsla.terms.parse import load_terms
from tests.helpers.daemon import daemon_on
from tests.helpers.world import make_world

DOC = b"\x11" * 32   # the world's agreements' document hash


def test_discovery_is_incremental_and_survives_a_chain_that_goes_back(tmp_path, artifacts, monkeypatch, capsys):
    with Chain.connect("embedded") as chain:
        contracts = Contracts(chain, artifacts)
        w = make_world(chain, contracts)
        daemon = daemon_on(tmp_path, chain, contracts, w.oracles[0].key)
        daemon.factory = w.factory
        daemon.terms_by_hash[DOC] = load_terms("examples/aws-ec2.yaml")
        decoded = []
        original = daemon.factory.from_event
        monkeypatch.setattr(daemon.factory, "from_event", lambda e: decoded.append(e["args"]["agreement"]) or
                            original(e))
        a = w.create()
        stranger_terms = w.create(oracles=[w.stranger.address], quorum=1)    # not this oracle's
        decoded.clear()       # creating decodes the agreement from its log too
        chain.w3.provider.ethereum_tester.mine_blocks(20)    # they fall out of the next round's margin
        daemon.discover()
        assert set(daemon.watched) == {a.address} and daemon.last_discovery["from_block"] == 0
        assert sorted(decoded) == sorted([a.address, stranger_terms.address])

        snapshot = chain.snapshot()
        previous = daemon.last_discovery["to_block"]
        b = w.create()
        decoded.clear()
        daemon.discover()
        assert set(daemon.watched) == {a.address, b.address}
        assert decoded == [b.address]                       # nothing decoded twice
        assert daemon.last_discovery["from_block"] == previous - daemon_module.DISCOVERY_MARGIN + 1
        assert daemon.last_discovery["events"] == 1         # only the margin and the new blocks were read

        daemon.discover()                                   # nothing new: nothing decoded, nothing added
        assert decoded == [b.address] and set(daemon.watched) == {a.address, b.address}

        chain.revert_to(snapshot)                           # the node went back: b never existed
        daemon.discover()
        assert daemon.last_discovery["from_block"] == 0
        assert set(daemon.watched) == {a.address}
        assert '"event": "vanished"' in capsys.readouterr().err
        c = w.create()
        daemon.discover()
        assert set(daemon.watched) == {a.address, c.address}
