"""The offline build (reproducible, pinned, clear failures) and chain connections (embedded, anvil, RPC URL)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import solcx

from smartsla.chain import build
from smartsla.chain.anvil import AnvilProcess
from smartsla.chain.chain import Chain
from smartsla.chain.config import compiler_settings, project_root
from smartsla.chain.reverts import ChainError

ROOT = Path(__file__).resolve().parents[2]


def test_adapter_answers_like_solc():
    out = subprocess.run([str(build.ADAPTER), "--version"], capture_output=True, text=True, check=True).stdout
    settings = compiler_settings()
    assert f"Version: {settings['version']}+commit." in out
    bad = subprocess.run([str(build.ADAPTER), "--bin", "x.sol"], capture_output=True, text=True)
    assert bad.returncode != 0 and "only answers" in bad.stderr


def test_same_sources_same_bytes(artifacts):
    settings = compiler_settings()
    sources = build.collect_sources(project_root(), settings["remappings"])
    output = solcx.compile_standard(build.standard_input(sources, settings), solc_binary=build.solc_binary())
    fresh = output["contracts"]["contracts/SlaAgreement.sol"]["SlaAgreement"]["evm"]["deployedBytecode"]["object"]
    assert "0x" + fresh == artifacts["SlaAgreement"].deployed_bytecode


def test_artifacts_record_compiler_settings_and_source_hashes(artifacts):
    data = json.loads((project_root() / "build" / "contracts" / "SlaAgreement.json").read_text())
    assert data["compiler"]["settings"]["evmVersion"] == compiler_settings()["evm_version"]
    assert data["compiler"]["version"].startswith(compiler_settings()["version"])
    assert "contracts/SlaAgreement.sol" in data["sourceHashes"]
    assert any(k.startswith("node_modules/@openzeppelin/contracts/") for k in data["sourceHashes"])


def _project_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    copy.mkdir()
    shutil.copy(ROOT / "brownie-config.yaml", copy)
    shutil.copytree(ROOT / "contracts", copy / "contracts")
    (copy / "node_modules").symlink_to(ROOT / "node_modules")
    return copy


def test_wrong_compiler_version_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / "solc"
    fake.write_text("#!/bin/sh\necho 'Version: 0.8.19+commit.7dd6d404.Linux.g++'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("SMARTSLA_ROOT", str(_project_copy(tmp_path)))
    monkeypatch.setenv("SMARTSLA_SOLC", str(fake))
    with pytest.raises(build.BuildError, match="pins 0.8.30"):
        build.compile_contracts(force=True)


def test_missing_import_names_the_fix(tmp_path, monkeypatch):
    copy = _project_copy(tmp_path)
    (copy / "contracts" / "Broken.sol").write_text('import "@openzeppelin/contracts/NoSuchFile.sol";\n')
    monkeypatch.setenv("SMARTSLA_ROOT", str(copy))
    with pytest.raises(build.BuildError, match="NoSuchFile.sol"):
        build.compile_contracts(force=True)


def test_compile_error_is_reported(tmp_path, monkeypatch):
    copy = _project_copy(tmp_path)
    (copy / "contracts" / "Broken.sol").write_text("pragma solidity 0.8.30;\ncontract Broken { function f( }\n")
    monkeypatch.setenv("SMARTSLA_ROOT", str(copy))
    with pytest.raises(build.BuildError, match="compilation failed"):
        build.compile_contracts(force=True)


def test_embedded_chain_time_travel():
    with Chain.connect("embedded") as chain:
        before = chain.now()
        chain.travel(3_600)
        assert chain.now() >= before + 3_600


@pytest.mark.anvil
def test_anvil_started_and_stopped_by_pid():
    chain = Chain.connect("anvil")
    proc = chain.anvil.process
    assert chain.anvil.url.startswith("http://127.0.0.1:")
    before = chain.now()
    chain.travel(86_400)
    assert chain.now() >= before + 86_400
    chain.close()
    assert proc.poll() is not None


@pytest.mark.anvil
def test_rpc_url_checks_chain_id():
    anvil = AnvilProcess.start(chain_id=31337)
    try:
        assert Chain.connect("custom", url=anvil.url, expect_chain_id=31337).w3.eth.chain_id == 31337
        with pytest.raises(ChainError, match="expects 1"):
            Chain.connect("mainnet-by-mistake", url=anvil.url, expect_chain_id=1)
    finally:
        anvil.stop()


def test_rpc_url_that_is_down():
    with pytest.raises(ChainError, match="cannot reach"):
        Chain.connect("down", url="http://127.0.0.1:9")


def test_unknown_network_lists_known_ones():
    with pytest.raises(ChainError, match="embedded"):
        Chain.connect("nope")


def test_the_shipped_build_is_the_build():
    """What an installed package deploys and audits against is exactly this checkout's build (a contract change
    that was not rebuilt before committing fails here)."""
    build.compile_contracts()
    for name in build.SHIPPED:
        fresh = json.loads((build.build_dir() / "contracts" / f"{name}.json").read_text())
        fresh.pop("sourceHashes")
        assert json.loads((build.SHIPPED_DIR / f"{name}.json").read_text()) == fresh, name
