"""The command blocks of a Markdown document, and a shell that runs them in order as a reader would.

A reader copies the ```sh blocks of a page one after the other into one terminal: what one block exports or
assigns (``AGREEMENT=$(...)``), and the folder it changes to, is there for the next. :class:`ReaderShell` keeps
that state between blocks in a file, so each block runs in its own ``bash`` and a failure names its block.

A block can carry one HTML comment on the line above it (invisible on the rendered page) saying what running
it gives when that is not "exit 0":

    <!-- test: exit 3; output has "NotYetClosable" -->
    <!-- test: not run: REASON -->

``exit N`` is the status of the block (its last command; ``set -e`` stops at the first failure);
``output has "TEXT"`` needs TEXT in stdout or stderr (repeatable); ``not run: REASON`` leaves the block out, and
the reason is required, so every block that is not run says why on the page itself.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)\s*$")
DIRECTIVE = re.compile(r"^\s*<!--\s*test:\s*(?P<body>.*?)\s*-->\s*$")
SHELL_LANGS = {"sh", "bash", "shell", "console"}


@dataclass
class Block:
    path: Path
    line: int            # 1-based line of the opening fence
    lang: str
    text: str
    exit: int = 0
    output_has: list[str] = field(default_factory=list)
    not_run: str | None = None

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


class DirectiveError(ValueError):
    pass


def _apply(block: Block, body: str) -> None:
    if body.startswith("not run:"):
        reason = body[len("not run:"):].strip()
        if not reason:
            raise DirectiveError(f"{block.where}: `not run:` needs a reason")
        block.not_run = reason
        return
    for part in (p.strip() for p in body.split(";") if p.strip()):
        if m := re.fullmatch(r"exit (\d+)", part):
            block.exit = int(m.group(1))
        elif m := re.fullmatch(r'output has "(.+)"', part):
            block.output_has.append(m.group(1))
        else:
            raise DirectiveError(f"{block.where}: unknown test directive {part!r} "
                                 "(exit N; output has \"TEXT\"; not run: REASON)")


def command_blocks(path: Path) -> list[Block]:
    """Every fenced shell block of ``path``, in order, with its directive applied."""
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening or not opening.group("lang"):
            i += 1
            continue
        indent = len(opening.group("indent"))
        body, j = [], i + 1
        while j < len(lines) and not FENCE.match(lines[j]):
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        if opening.group("lang") in SHELL_LANGS:
            block = Block(path, i + 1, opening.group("lang"), "\n".join(body) + "\n")
            k = i - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            if k >= 0 and (d := DIRECTIVE.match(lines[k])):
                _apply(block, d.group("body"))
            blocks.append(block)
        i = j + 1
    return blocks


@dataclass
class Ran:
    block: Block
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def describe(self) -> str:
        return (f"{self.block.where} exited {self.returncode} (expected {self.block.exit}) in {self.seconds:.1f} s\n"
                f"--- block ---\n{self.block.text}--- stdout ---\n{self.stdout[-4000:]}\n"
                f"--- stderr ---\n{self.stderr[-4000:]}")


class ReaderShell:
    """One reader's terminal, block by block: variables (every assignment is exported: ``set -a``) and the current
    folder carry over. Each block runs in a process group of its own, and whatever it leaves running is stopped
    and reported: a page must stop what it starts."""

    def __init__(self, workdir: Path, env: dict[str, str], state_dir: Path):
        self.state = state_dir / "env.sh"
        self.cwd_file = state_dir / "cwd"
        self.base_env = env
        self.state.write_text("")
        self.cwd_file.write_text(str(workdir))

    def run(self, block: Block, timeout: float = 300) -> tuple[Ran, list[str]]:
        script = (
            "set -a -o pipefail\n"
            f"source {shlex.quote(str(self.state))}\n"
            f'cd "$(cat {shlex.quote(str(self.cwd_file))})"\n'
            f"trap 'rc=$?; export -p > {shlex.quote(str(self.state))}; pwd > {shlex.quote(str(self.cwd_file))}; "
            "exit $rc' EXIT\n"
            "set -e\n" + block.text
        )
        began = time.monotonic()
        # files, not pipes: something a block leaves in the background would hold a pipe open, and the wait with it
        out_file, err_file = self.state.with_name("stdout"), self.state.with_name("stderr")
        with open(out_file, "w") as out, open(err_file, "w") as err:
            proc = subprocess.Popen(["bash", "-c", script], env=self.base_env, stdout=out, stderr=err,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        left = _stop_group(proc.pid)
        return Ran(block, proc.returncode, out_file.read_text(errors="replace"), err_file.read_text(errors="replace"),
                   time.monotonic() - began), left

    def variable(self, name: str) -> str | None:
        """A variable as the next block would see it."""
        for line in self.state.read_text().splitlines():
            m = re.match(rf"declare -x {re.escape(name)}=\"(.*)\"$", line)
            if m:
                return m.group(1)
        return self.base_env.get(name)


def _command_line(proc_dir: Path) -> str:
    """A process's command line. It reads empty for a moment while a just-forked child has not exec'd yet (seen on
    a loaded machine): ask again for up to half a second, then name it by its ``comm``."""
    for _ in range(10):
        text = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        if text:
            return text
        time.sleep(0.05)
    return f"[{(proc_dir / 'comm').read_text().strip()}]"


def _stop_group(pgid: int) -> list[str]:
    """Kill what is left of a block's process group; the command lines of what was left."""
    left = []
    for proc_dir in Path("/proc").iterdir():
        if not proc_dir.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc_dir.name)) == pgid:
                left.append(_command_line(proc_dir))
        except (ProcessLookupError, PermissionError, FileNotFoundError):
            continue
    if left:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left
