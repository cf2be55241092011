"""scripts/deploy.py with plain Python, through the library (its brownie side runs in `make brownie-check`)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

from eth_utils import is_checksum_address

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "deploy.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("deploy_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_main_deploys_factory_and_agreement_on_the_embedded_chain():
    deploy = _load_script()
    assert "brownie" not in sys.modules  # the plain-Python side must not need brownie
    result = deploy.main("embedded")
    assert result["network"] == "embedded"
    assert result["name"] == "aws-ec2-region"
    assert is_checksum_address(result["factory"]) and is_checksum_address(result["agreement"])
    assert result["factory"] != result["agreement"]
    assert 100_000 < result["create_gas"] < 300_000


def test_runs_as_a_script():
    out = subprocess.run([sys.executable, str(SCRIPT), "--network", "embedded", str(ROOT / "examples" / "aws-ec2.yaml")],
                         check=False, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("factory 0x") and "\nagreement 0x" in out.stdout
