"""Foundry's invariant fuzzer on the real contracts (tests/forge/AgreementInvariants.t.sol): conservation of funds,
each period settled at most once, no money in a closed agreement, nothing funded before the bond.

forge comes from npm (`@foundry-rs/forge`, installed by `npm ci`) and compiles through our solc-js adapter with the
compiler settings of brownie-config.yaml (passed on its command line: no foundry.toml to drift from them). It runs
offline. The run count keeps it to a few seconds; raise SMARTSLA_FORGE_RUNS for a longer hunt.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from smartsla.chain.build import ADAPTER
from smartsla.chain.config import compiler_settings, project_root

ROOT = project_root()
INVARIANTS = ["invariant_conservation_of_funds", "invariant_each_period_settled_at_most_once",
              "invariant_no_money_in_a_closed_agreement", "invariant_no_funding_before_the_bond"]


def forge_binary() -> Path:
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
    return ROOT / "node_modules" / "@foundry-rs" / f"forge-{platform.system().lower()}-{arch}" / "bin" / "forge"


def test_forge_invariants_hold_on_the_real_contracts(tmp_path):
    forge = forge_binary()
    assert forge.exists(), f"{forge} is missing: `npm ci` installs @foundry-rs/forge (package.json)"
    solc = tmp_path / "solc"
    solc.write_text(f'#!/bin/sh\nexec node "{ADAPTER}" "$@"\n')
    solc.chmod(0o755)
    settings = compiler_settings()
    command = [str(forge), "test", "--root", str(ROOT), "--contracts", "tests/forge", "--use", str(solc), "--offline",
               "--evm-version", settings["evm_version"], "--out", str(tmp_path / "out"),
               "--cache-path", str(tmp_path / "cache"), "--no-auto-detect", "--color", "never"]
    if settings["optimizer"]["enabled"]:
        command += ["--optimize", "--optimizer-runs", str(settings["optimizer"]["runs"])]
    for remapping in settings["remappings"]:
        command += ["--remappings", remapping]
    env = {**os.environ, "SMARTSLA_NODE_MODULES": str(ROOT / "node_modules"),
           "FOUNDRY_INVARIANT_RUNS": os.environ.get("SMARTSLA_FORGE_RUNS", "64"), "FOUNDRY_INVARIANT_DEPTH": "50",
           # forge writes failure replays under the project otherwise
           "FOUNDRY_INVARIANT_FAILURE_PERSIST_DIR": str(tmp_path / "failures")}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    for name in INVARIANTS:
        assert f"[PASS] {name}()" in output, output[-6000:]
    assert not (ROOT / "cache").exists() and not (ROOT / "out").exists(), "forge wrote into the project"
