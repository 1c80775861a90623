"""What both benchmarks record about the machine they ran on (imported by ``speed.py`` and
``peers.py``, which run as scripts from this folder)."""
from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Callable
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def seconds(call: Callable[[], object]) -> float:
    """Wall-clock seconds one ``call()`` takes."""
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0
