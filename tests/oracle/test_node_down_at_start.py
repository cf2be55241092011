"""`sla-oracle run` with the node down: it used to exit at start, and the samples of the node's downtime were lost
(a 25 s hole). Measuring must not wait for the chain: the agreements the store watched are probed from their
terms, and the chain part retries until the node answers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oracle.devnet.targets import HttpTarget
from oracle.store.store import Store
from smartsla.chain.anvil import AnvilProcess, free_port
from smartsla.encoding import to_hex
from smartsla.terms.parse import load_terms

pytestmark = pytest.mark.anvil

AGREEMENT = "0x" + "cd" * 20


def events(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def wait_for(predicate, timeout: float = 30.0) -> bool:
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_probing_starts_without_the_chain_and_the_chain_part_retries(tmp_path):
    target = HttpTarget().start()
    port = free_port()
    terms_file = tmp_path / "terms.yaml"
    text = Path("examples/aws-ec2.yaml").read_text()
    terms_file.write_text(text.replace('    target: "99.99%"\n',
                                       f'    target: "99.99%"\n    probe: {{type: http, url: "{target.url}", '
                                       'interval: 1s, timeout: 500ms}\n'))
    terms = load_terms(terms_file)
    store_path = tmp_path / "oracle.db"
    with Store(store_path) as store:  # what an earlier run of this oracle watched
        store.set_state("watching", {AGREEMENT: to_hex(terms.document_hash())})
    config = tmp_path / "oracle.yaml"
    config.write_text(f"rpc_url: http://127.0.0.1:{port}\nfactory: '0x{'11' * 20}'\nkey: {{env: ORACLE_KEY}}\n"
                      f"store: oracle.db\nterms: [terms.yaml]\npoll: 1s\nlisten: 127.0.0.1:0\n")
    log = tmp_path / "oracle.log"
    env = {**os.environ, "ORACLE_KEY": "0x" + "42" * 32}
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "oracle.cli", "run", "--config", str(config)], env=env,
                                stderr=err, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    node = None
    try:
        assert wait_for(lambda: any(e["event"] == "chain-unreachable" for e in events(log))), log.read_text()
        unreachable = next(e for e in events(log) if e["event"] == "chain-unreachable")
        assert unreachable["probing"] == 1
        def probed() -> int:
            with Store(store_path, read_only=True) as store:
                return sum(store.count(k) for k in store.services())

        assert wait_for(lambda: probed() >= 3), log.read_text()  # measuring while the node is down
        assert proc.poll() is None
        # the node comes up: the chain part connects on its own. This chain has no factory at the configured
        # address, which the oracle then says, exiting 2 (as it does at start).
        node = AnvilProcess.start(port=port)
        assert proc.wait(timeout=30) == 2, log.read_text()
        assert "no-factory" in [e["event"] for e in events(log)]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
        if node is not None:
            node.stop()
        target.stop()
