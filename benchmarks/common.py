"""What every benchmark reports about the machine it ran on, and how it prints."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from rich.console import Console


def machine(*extra: str) -> str:
    """CPU model, CPU count, OS and Python, then ``extra`` (library versions that matter to the benchmark)."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parts = [f"{model}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
             f"Python {platform.python_version()}", *extra]
    return ", ".join(parts)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: the machine is shared, so every figure says how busy it was."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_console() -> Console:
    """Tables at full width when piped into a file (make bench), the terminal's width otherwise."""
    return Console(width=None if sys.stdout.isatty() else 150)
