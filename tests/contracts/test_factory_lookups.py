"""Finding one agreement asks the node for its log by the agreement's indexed address, not for every agreement the
factory ever made: every command that names an agreement once read all of the factory's logs from block 0 (and
`smartsla list` did that once per agreement listed, n + 1 scans for n agreements)."""

from __future__ import annotations

import json

import pytest

from smartsla import cli as smartsla_cli
from smartsla.cli import customer
from smartsla.cli.common import Session


@pytest.fixture
def log_reads(chain, monkeypatch):
    """Every eth_getLogs the client makes: (filter, number of logs the node answered)."""
    reads: list[tuple[dict, int]] = []
    original = chain.w3.eth.get_logs

    def recording(params):
        logs = original(params)
        reads.append((dict(params), len(logs)))
        return logs

    monkeypatch.setattr(chain.w3.eth, "get_logs", recording)
    return reads


def test_one_agreement_is_read_from_its_own_log(world, log_reads):
    made = [world.create(accepted=False) for _ in range(5)]
    log_reads.clear()
    third = world.factory.agreement(made[2].address.lower())
    assert third.address == made[2].address and third.terms == made[2].terms
    assert third.creator() == world.provider.address
    # one read, filtered by the agreement's topic, answered with its one log
    assert [n for _, n in log_reads] == [1]
    topics = log_reads[0][0]["topics"]
    assert topics[1].lower().endswith(made[2].address.lower()[2:])
    stranger = world.stranger.address
    with pytest.raises(LookupError, match=f"no agreement {stranger}"):
        world.factory.agreement(stranger)


def test_list_reads_the_factorys_logs_once(world, log_reads, monkeypatch, capsys):
    for _ in range(4):
        world.create(accepted=False)
    chain = world.chain
    monkeypatch.setattr(chain, "close", lambda: None)
    monkeypatch.setattr(customer, "open_session", lambda args: Session(chain, world.contracts, chain.kind))
    log_reads.clear()
    assert smartsla_cli.main(["list", "--network", chain.kind, "--factory", world.factory.address,
                              "--address", world.customer.address, "--json"]) == 0, capsys.readouterr().err
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4 and all(r["roles"] == ["customer"] for r in rows)
    assert len(log_reads) == 1, log_reads
