"""Where and how a run executes: the device, the processes of a ``torchrun`` job, and stop
requests (Ctrl-C, SIGTERM) turned into a flag the training loop checks between steps."""
from __future__ import annotations

import os
import signal

import torch
import torch.distributed as dist


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: no signal handling
                pass
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def select_device(name: str) -> torch.device:
    """``auto`` is CUDA when present, else the CPU; under torchrun each rank takes its GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is available")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps: MPS is not available")
    if name not in ("cpu", "mps"):
        raise ValueError(f"unknown device {name!r} (auto, cpu, cuda or mps)")
    return torch.device(name)


def world_size() -> int:
    """The number of processes of this job (1 unless started by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def any_rank(flag: bool, world: int) -> bool:
    """True if ``flag`` is true on any process (every rank must take the same branch)."""
    if world == 1:
        return flag
    t = torch.tensor([float(flag)])
    dist.all_reduce(t)
    return bool(t.item())
