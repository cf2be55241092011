"""oracle.yaml and the signing key: clear errors, and the key never appears in any of them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from eth_account import Account

from oracle.config import ConfigError, load_config

KEY = "0x" + "42" * 32
FACTORY = "0x" + "11" * 20


def write(tmp_path, text: str):
    path = tmp_path / "oracle.yaml"
    path.write_text(text)
    return path


def test_keystore_with_password_from_environment(tmp_path, monkeypatch):
    (tmp_path / "key.json").write_text(json.dumps(Account.encrypt(KEY, "s3cret", iterations=2)))
    cfg = load_config(write(tmp_path, f"rpc_url: http://127.0.0.1:8545\nfactory: '{FACTORY}'\n"
                                      "key: {keystore: key.json, password_env: ORACLE_PW}\nlisten: 127.0.0.1:9101\n"
                                      "peers: [http://127.0.0.1:9102]\ngrace: 10s\n"))
    monkeypatch.setenv("ORACLE_PW", "s3cret")
    assert cfg.key.load().address == Account.from_key(KEY).address
    assert (cfg.listen_host, cfg.listen_port, cfg.grace) == ("127.0.0.1", 9101, 10)
    monkeypatch.setenv("ORACLE_PW", "wrong")
    with pytest.raises(ConfigError, match="wrong password") as err:
        cfg.key.load()
    assert KEY[2:] not in str(err.value) and "wrong" not in str(err.value).split("password")[1]


def test_key_from_environment_never_echoed(tmp_path, monkeypatch):
    cfg = load_config(write(tmp_path, f"rpc_url: http://127.0.0.1:8545\nfactory: '{FACTORY}'\nkey: {{env: ORACLE_KEY}}\n"))
    monkeypatch.setenv("ORACLE_KEY", "0xnot-a-key-but-secret")
    with pytest.raises(ConfigError) as err:
        cfg.key.load()
    assert "not-a-key-but-secret" not in str(err.value) and "ORACLE_KEY" in str(err.value)
    monkeypatch.setenv("ORACLE_KEY", KEY)
    assert cfg.key.load().address == Account.from_key(KEY).address


@pytest.mark.parametrize("text, message", [
    ("rpc_url: http://x\nfactory: '0x11'\nkey: {env: K}\n", "factory must be a 0x address"),
    (f"factory: '{FACTORY}'\nkey: {{env: K}}\n", "rpc_url is required"),
    (f"rpc_url: ftp://x\nfactory: '{FACTORY}'\nkey: {{env: K}}\n", "http(s) URL"),
    (f"rpc_url: http://x\nfactory: '{FACTORY}'\nkey: {{env: K, keystore: k.json}}\n", "key must be"),
    (f"rpc_url: http://x\nfactory: '{FACTORY}'\nkey: {{env: K}}\nlisten: 9101\n", "listen must be HOST:PORT"),
    (f"rpc_url: http://x\nfactory: '{FACTORY}'\nkey: {{env: K}}\ngrace: 10\n", "grace"),
    (f"rpc_url: http://x\nfactory: '{FACTORY}'\nkey: {{env: K}}\npeer: []\n", "unknown key(s) peer"),
    ("rpc_url: [unclosed\n", "not valid YAML"),
])
def test_bad_configuration_names_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(write(tmp_path, text))


def test_missing_keystore_and_missing_password(tmp_path, monkeypatch):
    cfg = load_config(write(tmp_path, f"rpc_url: http://x\nfactory: '{FACTORY}'\nkey: {{keystore: nope.json, password_env: PW}}\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        cfg.key.load()
    (tmp_path / "nope.json").write_text(json.dumps(Account.encrypt(KEY, "pw", iterations=2)))
    monkeypatch.delenv("PW", raising=False)
    with pytest.raises(ConfigError, match="set PW"):
        cfg.key.load()


def test_run_with_the_node_down_says_so_and_keeps_measuring(tmp_path):
    """Once it exited 1 here, losing the samples of the node's downtime; now it says so (never the key), goes on,
    and SIGTERM still stops it cleanly."""
    cfg = write(tmp_path, f"rpc_url: http://127.0.0.1:9\nfactory: '{FACTORY}'\nkey: {{env: ORACLE_KEY}}\n"
                          "store: o.db\nlisten: 127.0.0.1:0\n")
    log = tmp_path / "oracle.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "oracle.cli", "run", "--config", str(cfg)],
                                env={**os.environ, "ORACLE_KEY": KEY}, stderr=err, stdout=subprocess.DEVNULL)
    try:
        ends = time.monotonic() + 30
        while time.monotonic() < ends and '"started"' not in log.read_text():
            time.sleep(0.2)
        text = log.read_text()
        assert '"chain-unreachable"' in text and "cannot reach http://127.0.0.1:9" in text, text
        assert proc.poll() is None  # still running: measuring does not wait for the chain
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    assert code == 0 and KEY[2:] not in log.read_text()


def test_run_with_a_wrong_password_exits_before_touching_anything(tmp_path, monkeypatch, capsys):
    from oracle.cli import main

    (tmp_path / "key.json").write_text(json.dumps(Account.encrypt(KEY, "right", iterations=2)))
    cfg = write(tmp_path, f"rpc_url: http://127.0.0.1:9\nfactory: '{FACTORY}'\n"
                          "key: {keystore: key.json, password_env: PW}\nstore: o.db\n")
    monkeypatch.setenv("PW", "wrong")
    assert main(["run", "--config", str(cfg)]) == 2
    assert "wrong password" in capsys.readouterr().err
    assert not (tmp_path / "o.db").exists()


def test_an_occupied_listen_port_is_refused_before_the_store_is_created(tmp_path, capsys, monkeypatch):
    """`sla-oracle run` with its listen port taken: one error line naming the port and the fix, exit 2, and no
    store file left behind (it once failed with [Errno 98], exit 1, after creating oracle.db)."""
    import socket

    from oracle.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write(tmp_path, f"rpc_url: http://127.0.0.1:1\nfactory: '{FACTORY}'\nkey: {{env: ORACLE_KEY}}\n"
                                 f"listen: 127.0.0.1:{port}\nstore: oracle.db\n")
        monkeypatch.setenv("ORACLE_KEY", KEY)
        assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "listen" in err and "Errno" not in err
    assert not (tmp_path / "oracle.db").exists()


def test_a_mistyped_key_gets_a_suggestion(tmp_path):
    with pytest.raises(ConfigError, match=r"evidance_dir \(did you mean evidence_dir\?\)"):
        load_config(write(tmp_path, f"rpc_url: http://127.0.0.1:8545\nfactory: '{FACTORY}'\n"
                                    "key: {env: K}\nevidance_dir: ev\n"))
