"""smart-sla as a package: `python -m build` makes a wheel that installs into a fresh venv in a temporary folder, and
there, with no checkout, no Node.js and no solc, the commands work from the shipped build.

Nothing is downloaded: the build runs without isolation (build, setuptools and wheel come with the test extra),
the wheel installs with --no-deps --no-index, and the fresh venv reaches its dependencies through a path file
naming the project venv's site-packages (a plain path, so the project's own editable install is not seen: the
test checks that `smartsla` is imported from the fresh venv)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.anvil  # the last step runs a throwaway anvil


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "-o", str(tmp / "dist"), str(ROOT)],
                   check=True, capture_output=True, text=True, timeout=300)
    wheel = next((tmp / "dist").glob("smart_sla-*.whl"))
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300)
    work = tmp / "elsewhere"
    work.mkdir()
    shutil.copy(ROOT / "examples" / "aws-ec2.yaml", work / "aws-ec2.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMARTSLA_", "PYTHON"))}
    env["SMARTSLA_HOME"] = str(tmp / "home")
    env["PATH"] = f"{env_dir / 'bin'}:/usr/bin:/bin"  # no node_modules, no anvil

    def run(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), cwd=work, env={**env, "PATH": path or env["PATH"]}, capture_output=True,
                              text=True, timeout=180)

    return env_dir, run


def test_the_package_is_imported_from_the_fresh_venv(installed):
    env_dir, run = installed
    out = run(str(env_dir / "bin" / "python"), "-c", "import smartsla, oracle, smartsla.cli, oracle.cli; "
                                                     "print(smartsla.__file__, oracle.__file__)")
    assert out.returncode == 0, out.stderr
    assert all(p.startswith(str(env_dir)) for p in out.stdout.split()), out.stdout


def test_simulate_and_terms_work_without_a_checkout(installed):
    env_dir, run = installed
    out = run(str(env_dir / "bin" / "smartsla"), "simulate", "aws-ec2.yaml", "--period", "99.95%", "--json")
    assert out.returncode == 0, out.stderr
    assert "credit" in out.stdout
    out = run(str(env_dir / "bin" / "smartsla"), "terms", "check", "aws-ec2.yaml")
    assert out.returncode == 0, out.stderr


def test_the_oracle_computes_without_a_checkout(installed, tmp_path):
    env_dir, run = installed
    samples = tmp_path / "samples.csv"
    samples.write_text("".join(f"ec2,{1798761600 + 60 * i},{'down' if i % 10 == 0 else 'up'}\n" for i in range(600)))
    out = run(str(env_dir / "bin" / "sla-oracle"), "compute", "aws-ec2.yaml", "--samples", str(samples),
              "--start", "2027-01-01T00:00:00Z", "--json")
    assert out.returncode == 0, out.stderr


def test_build_needs_the_checkout_and_says_so(installed):
    env_dir, run = installed
    out = run(str(env_dir / "bin" / "smartsla"), "build", "--force")
    assert out.returncode == 2
    assert "checkout" in out.stderr and "Traceback" not in out.stderr


def test_anvil_is_found_on_path_or_named(installed):
    env_dir, run = installed
    out = run(str(env_dir / "bin" / "smartsla"), "list", "--network", "anvil")
    assert out.returncode == 2 and "anvil not found" in out.stderr and "PATH" in out.stderr, out.stderr
    anvil_dir = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin"
    # with anvil on PATH: the factory and the test dollar deploy from the shipped build
    out = run(str(env_dir / "bin" / "smartsla"), "factory", "deploy", "--network", "anvil", "--json",
              path=f"{env_dir / 'bin'}:{anvil_dir}:/usr/bin:/bin")
    assert out.returncode == 0, out.stderr
    assert '"factory"' in out.stdout
