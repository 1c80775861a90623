"""Where and how a run executes: the CPU threads, the device, the processes of a ``torchrun``
job, and stop requests (Ctrl-C, SIGTERM) turned into a flag the training loop checks between steps.

Threads are decided here and nowhere else (``use_threads``): training, reading (PyTorch and
ONNX Runtime) and serving all call it. By default a command takes the cores the machine can
give: those this process may run on, less the work other processes keep busy (the load
average). Threads that spin against another process's work make every command crawl (the
captcha demo trained at 2 img/s with two threads beside a busy core, 22 img/s with one);
``crowded`` says so, with the fix, when a command is told to use more threads than are free.

PyTorch is imported only by the functions that need it, so that reading never loads it.
"""
from __future__ import annotations

import os
import signal
import sys
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, else every core)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def busy_cores() -> float:
    """How many cores other processes keep busy: the one-minute load average (0 where unknown)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def free_cores() -> int:
    """The cores the machine can give a new command: usable ones less the busy ones, at least 1."""
    return max(1, min(usable_cores(), round(usable_cores() - busy_cores())))


def crowded(threads: int) -> str:
    """A one-line warning when ``threads`` exceed the free cores (else ""): spinning threads
    then wait on one another and the command may run many times slower."""
    free = free_cores()
    if threads <= free:
        return ""
    return (f"{threads} threads on a machine with {free} free core{'s' * (free > 1)} (load {busy_cores():.1f} on "
            f"{usable_cores()}): this may run many times slower; use --threads {free}")


def thread_count(requested: int = 0) -> int:
    """The number of CPU threads to compute with: ``requested`` if given (> 0), else
    ``$OMP_NUM_THREADS`` if set (a launcher's or the user's choice, e.g. torchrun's 1 per
    process), else ``free_cores()``. Warns (``crowded``) when ``requested`` is more than the
    machine can give."""
    if requested > 0:
        if crowded(requested):
            warnings.warn(crowded(requested), RuntimeWarning, stacklevel=3)
        return requested
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else free_cores()


def apply_threads(threads: int) -> None:
    """Make PyTorch compute on ``threads`` threads, if it is loaded (ONNX Runtime takes the
    number from ``OnnxModel``)."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def use_threads(requested: int = 0) -> int:
    """``thread_count(requested)``, applied to PyTorch when it is loaded; returns the number."""
    threads = thread_count(requested)
    apply_threads(threads)
    return threads


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
    import torch

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
    import torch

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
    import torch
    import torch.distributed as dist

    t = torch.tensor([float(flag)])
    dist.all_reduce(t)
    return bool(t.item())
