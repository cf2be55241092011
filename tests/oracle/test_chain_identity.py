"""An oracle's store belongs to one chain. A chain reset (`node start --fresh`) gives the factory and the agreement
the same addresses again; an oracle that carried its journal over would sign the old chain's values and submit
its peers' old signatures. The genesis block tells the chains apart."""

from __future__ import annotations

import pytest
from eth_account import Account

from oracle.config import load_config
from oracle.daemon import ChainChanged, NoFactory, OracleDaemon
from smartsla.chain.anvil import AnvilProcess
from smartsla.chain.chain import Chain
from smartsla.onchain.client import Contracts

pytestmark = pytest.mark.anvil


def daemon_on(tmp_path, url: str) -> OracleDaemon:
    config = tmp_path / "oracle.yaml"
    config.write_text(f"rpc_url: {url}\nfactory: '0x{'11' * 20}'\nkey: {{env: ORACLE_KEY}}\nstore: oracle.db\n")
    daemon = OracleDaemon(load_config(config), Account.create())
    daemon.chain = Chain.connect("oracle", url=url)
    daemon.chain_id = daemon.chain.w3.eth.chain_id
    daemon.factory = Contracts(daemon.chain).factory_at("0x" + "11" * 20)
    return daemon


def test_a_reset_chain_is_detected_and_named(tmp_path):
    first = AnvilProcess.start(extra_args=("--timestamp", "1800000000"))
    try:
        daemon = daemon_on(tmp_path, first.url)
        daemon.check_chain()             # the store is new: it is now this chain's
        daemon.check_chain()             # and stays so
    finally:
        first.stop()
    # the same chain id and port-agnostic URL; only the genesis differs, as after `node start --fresh`
    second = AnvilProcess.start(extra_args=("--timestamp", "1800000500"))
    try:
        again = daemon_on(tmp_path, second.url)
        with pytest.raises(ChainChanged, match=r"(?s)genesis.*new store"):
            again.check_chain()
        # refusing changed nothing: the store still names the first chain
        with pytest.raises(ChainChanged):
            again.check_chain()
    finally:
        second.stop()


def test_a_factory_without_code_is_named_at_start(tmp_path):
    """Instead of a BadFunctionCallOutput every round: the configured factory is not on this chain."""
    node = AnvilProcess.start()
    try:
        with pytest.raises(NoFactory, match=r"0x1111111111111111111111111111111111111111 has no code.*factory deploy"):
            daemon_on(tmp_path, node.url).check_factory()
    finally:
        node.stop()


def test_a_factory_whose_code_goes_away_stops_the_oracle_with_one_line(tmp_path):
    """While running: the factory's code gone from the same chain (here removed with anvil_setCode) is named once
    and stops the daemon, exit 2, instead of a BadFunctionCallOutput logged every poll."""
    node = AnvilProcess.start()
    try:
        chain = Chain.connect("oracle", url=node.url)
        deployer = Account.create()
        chain.w3.provider.make_request("anvil_setBalance", [deployer.address, hex(10**20)])
        factory = Contracts(chain).deploy_factory(deployer)
        daemon = daemon_on(tmp_path, node.url)
        daemon.factory = Contracts(daemon.chain).factory_at(factory.address)
        daemon.tick()  # a round with the factory there: fine
        chain.w3.provider.make_request("anvil_setCode", [factory.address, "0x"])
        with pytest.raises(NoFactory, match="has no code"):
            daemon.tick()
        daemon._stop.clear()
        daemon.exit_code = 0
        daemon.config = daemon.config.__class__(**{**daemon.config.__dict__, "poll": 0})
        daemon._work_loop()  # returns: the loop stops itself on NoFactory
        assert daemon.exit_code == 2
    finally:
        node.stop()
