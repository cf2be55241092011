"""What every benchmark reports about the machine it ran on."""

from __future__ import annotations

import os
import platform
from pathlib import Path


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
