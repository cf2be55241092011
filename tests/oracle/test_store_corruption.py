"""Every read of the store is checked as strictly as every write. The schema's CHECKs guard writes only: a one-byte
change in the file (`down` -> `dowN`) passed SQLite's integrity_check and read as "unknown", so an outage became a
gap and the oracle signed 100%. A read that meets an impossible value is corruption: it stops signing, /healthz
and `sla-oracle status` say so, in one line."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request

import numpy as np
import pytest

from oracle.cli import main as oracle_main
from oracle.server import ReportServer
from oracle.store.samples import BLOCK_RECORD
from oracle.store.schema import StoreCorrupt
from oracle.store.store import Store
from smartsla.measure.samples import Sample, Status

HOUR = 1_800_000_000 // 3600 * 3600  # an hour boundary in 2027
KEY = "0x" + "ab" * 20 + ":api"


def a_store_with_an_outage(path, seal: bool) -> None:
    with Store(path) as store:
        store.append([Sample(HOUR + 60 * i, KEY, Status.DOWN if 10 <= i < 22 else Status.UP, None, "")
                      for i in range(60)])
        if seal:
            assert store.seal_hours(HOUR + 2 * 3600) == 1


def flip_in_file(path, old: bytes, new: bytes) -> int:
    """Change bytes in the file itself, past its first page (the schema's), as a bad disk or a stray write does."""
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    count, at = 0, data.find(old, page)
    while at != -1:
        data[at:at + len(old)] = new
        count += 1
        at = data.find(old, at + 1)
    path.write_bytes(bytes(data))
    return count


def test_a_flipped_status_in_a_row_is_corruption_not_unknown(tmp_path):
    path = tmp_path / "oracle.db"
    a_store_with_an_outage(path, seal=False)
    assert flip_in_file(path, b"down", b"dowN") >= 12  # the 12 rows (and their index entries)
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)  # SQLite sees nothing
    with Store(path, read_only=True) as store:
        with pytest.raises(StoreCorrupt, match="changed outside the oracle"):
            store.columns([KEY], HOUR, HOUR + 3600)
        with pytest.raises(StoreCorrupt, match="'dowN'"):
            list(store.samples(KEY))
        with pytest.raises(StoreCorrupt):
            store.columns_from_rows([KEY], HOUR, HOUR + 3600)
    with Store(path) as store, pytest.raises(StoreCorrupt):
        store.seal_hours(HOUR + 2 * 3600)  # nothing corrupt is packed into a block either


def test_a_flipped_status_in_a_sealed_block_is_corruption(tmp_path):
    path = tmp_path / "oracle.db"
    a_store_with_an_outage(path, seal=True)
    record = np.zeros(1, BLOCK_RECORD)
    record["dt"], record["status"], record["latency"] = 10 * 60 * 1_000_000, 1, -1
    down = record.tobytes()[:13]  # time in the hour, status, latency: the first sample of the outage
    bad = bytearray(down)
    bad[4] = 9  # a status code no sample has
    assert flip_in_file(path, down, bytes(bad)) == 1
    with Store(path, read_only=True) as store, pytest.raises(StoreCorrupt, match="sealed block"):
        store.columns([KEY], HOUR, HOUR + 3600)


def test_status_says_corrupt_in_one_line_and_healthz_tells_the_truth(tmp_path, capsys):
    path = tmp_path / "oracle.db"
    a_store_with_an_outage(path, seal=False)
    flip_in_file(path, b"down", b"dowN")
    config = tmp_path / "oracle.yaml"
    config.write_text(f"rpc_url: http://127.0.0.1:1\nfactory: '0x{'11' * 20}'\nkey: {{env: K}}\nstore: {path}\n")
    assert oracle_main(["status", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "changed outside the oracle" in err and "Traceback" not in err
    problem = {"now": None}
    server = ReportServer(lambda *_: None, problem=lambda: problem["now"]).start()
    try:
        assert urllib.request.urlopen(server.url + "/healthz").read() == b"ok\n"
        problem["now"] = "store corrupt, signing stopped"
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(server.url + "/healthz")
        assert answer.value.code == 503 and b"store corrupt" in answer.value.read()
    finally:
        server.stop()


def test_the_daemon_stops_signing_on_a_corrupt_store_and_says_so_once(tmp_path, capsys):
    from eth_account import Account

    from oracle.config import load_config
    from oracle.daemon import OracleDaemon

    path = tmp_path / "oracle.db"
    a_store_with_an_outage(path, seal=False)
    flip_in_file(path, b"down", b"dowN")
    config = tmp_path / "oracle.yaml"
    config.write_text(f"rpc_url: http://127.0.0.1:1\nfactory: '0x{'11' * 20}'\nkey: {{env: K}}\nstore: {path}\n"
                      "poll: 0s\n")
    daemon = OracleDaemon(load_config(config), Account.create())
    rounds = iter(range(3))

    def tick():  # a round that reads the period's samples, as settling does
        if next(rounds, None) is None:
            daemon._stop.set()
            return
        daemon.store.columns([KEY], HOUR, HOUR + 3600)

    daemon.tick = tick
    daemon._work_loop()
    assert daemon.problem and daemon.problem.startswith("store corrupt, signing stopped")
    events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert events.count("store-corrupt") == 1 and "error" not in events
