"""An oracle daemon in the test's process, attached to a chain the test already holds (no node, no server): for
driving its rounds (settle_due, tick, peer_report) step by step."""

from __future__ import annotations

from pathlib import Path

from eth_account import Account

from oracle.config import load_config
from oracle.daemon import OracleDaemon


def daemon_on(tmp_path: Path, chain, contracts, oracle_key, extra_config: str = "") -> OracleDaemon:
    """A daemon with ``oracle_key``'s account, its store in ``tmp_path``, reading ``chain`` through ``contracts``.
    ``extra_config`` is more oracle.yaml (peers, evidence_dir, ...)."""
    config = tmp_path / "oracle.yaml"
    config.write_text(f"rpc_url: http://127.0.0.1:1\nfactory: '0x{'11' * 20}'\nkey: {{env: ORACLE_KEY}}\n"
                      f"store: oracle.db\n{extra_config}")
    daemon = OracleDaemon(load_config(config), Account.from_key(oracle_key))
    daemon.chain, daemon.chain_id, daemon.contracts = chain, chain.w3.eth.chain_id, contracts
    # These tests move the chain's clock months ahead; this oracle's clock moves with it, as two clocks in sync
    # would (the tests of clocks that disagree set their own).
    daemon.clock = chain.now
    return daemon
