"""A training run's folder: one live run at a time, never overwritten by accident, and a
``best.pt`` that a crash cannot lose.

- ``claim``: a lock file (``RUN/.lock``, created exclusively, holding the pid) refuses a
  second live training in the same folder; a lock left by a process that is gone is taken
  over. A folder that already holds a run (``best.pt``, ``last.pt`` or ``history.csv``) is
  refused unless the run is resumed (``--resume``) or started afresh (``--overwrite``, which
  removes the old run's files first).
- ``recover_best``: on ``--resume``, ``best.pt`` must hold the best epoch of the history
  ``last.pt`` recorded. ``best.pt`` is saved before ``last.pt``, so only a file removed or
  damaged by hand can be missing; when the best epoch is the last one it is re-created from
  ``last.pt``, otherwise the run says what was lost.

Not the place for what a checkpoint holds (``train_state``) or how it is written
(``checkpoint``).
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

from crnn_ocr.model import checkpoint
from crnn_ocr.model.checkpoint import CheckpointError
from crnn_ocr.utils.files import shown

RUN_FILES = ("best.pt", "last.pt", "history.csv")
"""Any of these makes a folder hold a run."""
OUTPUTS = RUN_FILES + ("loss.png",)
"""What ``--overwrite`` removes, with ``samples/epoch_*.png`` and TensorBoard event files."""
LOCK = ".lock"
YOUNG_LOCK_SECONDS = 10  # an empty lock file this young may be one being written: not stale


class RunFolderError(ValueError):
    """A run folder that cannot be trained into as asked; the message is one line."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _holder(lock: Path) -> int | None:
    """The pid a lock file names, or None if it is stale (its process is gone)."""
    try:
        text = lock.read_text().strip()
        age = time.time() - lock.stat().st_mtime
    except (OSError, UnicodeDecodeError):
        return None
    if text.isdigit():
        return int(text) if _alive(int(text)) else None
    return -1 if age < YOUNG_LOCK_SECONDS else None  # being written, or garbage left behind


def acquire_lock(out: Path) -> Path:
    """Create ``out/.lock`` holding this process's pid; ``RunFolderError`` if a live process
    holds it. A stale lock is taken over."""
    lock = out / LOCK
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pid = _holder(lock)
            if pid is not None:
                who = f"pid {pid}" if pid > 0 else "a process starting up"
                raise RunFolderError(f"{shown(out)} is in use by another training ({who}, {shown(lock)}); "
                                     "wait for it to finish or choose another --out") from None
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        return lock
    raise RunFolderError(f"could not lock {shown(out)} ({shown(lock)} keeps reappearing)")


def release_lock(lock: Path) -> None:
    """Remove a lock this process holds (not one another process took over)."""
    try:
        if lock.read_text().strip() == str(os.getpid()):
            lock.unlink()
    except OSError:
        pass


def existing_run(out: Path) -> list[str]:
    """The run files in ``out``."""
    return [name for name in RUN_FILES if (out / name).exists()]


def remove_run(out: Path) -> None:
    """Remove an old run's files (``--overwrite``): checkpoints, history, figures, events."""
    for name in OUTPUTS:
        (out / name).unlink(missing_ok=True)
    for pattern in ("samples/epoch_*.png", "tensorboard/events.out.tfevents.*"):
        for p in out.glob(pattern):
            p.unlink(missing_ok=True)


@contextmanager
def claim(out: Path, resume: bool, overwrite: bool, main_process: bool = True):
    """Hold ``out`` for one training run (see the module docstring); ``RunFolderError`` if
    it is in use or holds a run that neither ``resume`` nor ``overwrite`` allows."""
    if resume and overwrite:
        raise RunFolderError("--resume continues the run in --out and --overwrite replaces it: give one of them")
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {shown(out)} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    lock = acquire_lock(out) if main_process else None
    try:
        found = existing_run(out)
        if found and not resume:
            if not overwrite:
                raise RunFolderError(f"{shown(out)} already holds a training run ({', '.join(found)}); "
                                     "continue it with --resume or replace it with --overwrite")
            if main_process:
                remove_run(out)
        yield
    finally:
        if lock:
            release_lock(lock)


def recover_best(out: Path, state, log) -> None:
    """Make sure ``best.pt`` holds the best epoch of a resumed run's history (see the module
    docstring); ``state`` is the restored ``TrainState``."""
    p = state.progress
    if not p.history:
        return
    best = min(p.history, key=lambda h: h["val_cer"])
    path = out / "best.pt"
    try:
        held = checkpoint.load(path).get("epoch") if path.exists() else None
        problem = "is missing" if held is None else f"holds epoch {held}"
    except CheckpointError:
        held, problem = None, "is not readable"
    if held == best["epoch"]:
        return
    if best["epoch"] == p.epoch:  # last.pt holds the best epoch's weights
        checkpoint.save(state.best_dict(), path)
        log(f"best.pt {problem}: re-created from last.pt (epoch {p.epoch}, the best)")
    else:
        log(f"warning: best.pt {problem}, but the best epoch was {best['epoch']} (CER {100 * best['val_cer']:.2f}%) "
            f"and last.pt is epoch {p.epoch}: that model is lost; best.pt will be written again at the end "
            "of the next epoch")
        path.unlink(missing_ok=True)
