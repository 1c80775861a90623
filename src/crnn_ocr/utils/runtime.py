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


def autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """The dtype of mixed-precision training, or None for float32.

    bfloat16 where the hardware computes it natively (recent GPUs; CPUs with AVX-512 BF16 or
    AMX, as oneDNN reports), float16 (with a loss scaler) on older GPUs. A CPU without native
    bfloat16 emulates it 6-8x slower than float32 (measured on an AVX2-only EPYC), so there
    ``amp`` falls back to float32.
    """
    if not amp:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return None
    return torch.bfloat16


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
