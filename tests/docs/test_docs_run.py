"""The docs' commands, run as their readers run them: every ```sh block of docs/workflows.md and of the README, in
order, in one shell per page, against a persistent development node, with keystore accounts.

The reader starts with what a reader brings (a home folder, a keystore password in $SMARTSLA_PASSWORD, a key of
their own in $ACME_KEY) and nothing else: no SMARTSLA_* settings, no .venv on PATH. The page does the rest. A
block that does not do what the page says fails the test, naming the block's line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from smartsla.chain.anvil import free_port
from tests.helpers.docblocks import ReaderShell, command_blocks

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)  # the environment running the tests: its bin has smartsla and sla-oracle
READER_KEY = "0x" + "ac" * 32  # the reader's own key, imported by `accounts import acme --key-env ACME_KEY`
PAGES = {"workflows": ROOT / "docs" / "workflows.md", "readme": ROOT / "README.md"}


def reader_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "reader"
    home.mkdir()
    keep = {"LANG", "LC_ALL", "TERM", "USER", "LOGNAME"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    system_path = [p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
                   if not Path(p).resolve().is_relative_to(VENV)]
    env.update(HOME=str(home), TMPDIR=str(tmp_path), PATH=os.pathsep.join(system_path),
               SMARTSLA_PASSWORD="correct horse battery staple", ACME_KEY=READER_KEY)
    return env


def workdir_for(tmp_path: Path) -> Path:
    """The reader's repository root: the checkout's files they use, by link (so nothing the page writes lands in
    the checkout)."""
    work = tmp_path / "repo"
    work.mkdir()
    for name in ("examples", "docs", "brownie-config.yaml", "contracts", "build", "node_modules"):
        if (ROOT / name).exists():
            (work / name).symlink_to(ROOT / name)
    (work / ".venv").symlink_to(VENV)
    return work


def run_page(page: Path, tmp_path: Path, extra_env: dict[str, str] | None = None) -> list[str]:
    env = reader_env(tmp_path) | (extra_env or {})
    state = tmp_path / "shell"
    state.mkdir()
    shell = ReaderShell(workdir_for(tmp_path), env, state)
    failures: list[str] = []
    try:
        for block in command_blocks(page):
            if block.not_run:
                continue
            ran, left = shell.run(block)
            output = ran.stdout + ran.stderr
            if ran.returncode != block.exit:
                failures.append(ran.describe())
                break  # what follows depends on this block
            missing = [text for text in block.output_has if text not in output]
            if missing:
                failures.append(f"{block.where}: output lacks {missing}\n{ran.describe()}")
            if left:
                failures.append(f"{block.where} left processes running (stopped now): {left}")
    finally:
        stop_env = dict(env)
        for name in ("SMARTSLA_HOME", "SMARTSLA_NODE_PORT", "PATH"):
            if (value := shell.variable(name)) is not None:
                stop_env[name] = value
        subprocess.run([str(VENV / "bin" / "smartsla"), "node", "stop"], env=stop_env, capture_output=True,
                       timeout=60)
    return failures


@pytest.mark.anvil
def test_workflows_page_runs_as_written(tmp_path):
    failures = run_page(PAGES["workflows"], tmp_path)
    assert not failures, "\n\n".join(failures)


@pytest.mark.anvil
def test_readme_runs_as_written(tmp_path):
    # a reader who already runs a node on 8545 picks another port, as workflows.md says
    failures = run_page(PAGES["readme"], tmp_path, {"SMARTSLA_NODE_PORT": str(free_port())})
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_block_is_run_or_says_why_not(page):
    blocks = command_blocks(PAGES[page])
    assert blocks, f"{page} has no command blocks"
    assert any(not b.not_run for b in blocks), f"{page}: no block is run"
    for block in blocks:
        if block.not_run:
            assert len(block.not_run) > 15, f"{block.where}: say why it is not run"
