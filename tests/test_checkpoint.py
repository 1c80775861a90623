"""Checkpoints: a crash while one is being written leaves the previous one intact."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from crnn_ocr import checkpoint


def small_checkpoint(charset: str) -> dict:
    return {"model": {"w": torch.arange(4.0)}, "config": {}, "charset": charset}


def test_a_save_that_fails_midway_keeps_the_previous_checkpoint_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.save(small_checkpoint("old"), path)
    assert os.listdir(tmp_path) == ["last.pt"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # readable like any file the user writes

    def disk_full(obj, f):
        f.write(b"PK\x03\x04 the first bytes of a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        checkpoint.save(small_checkpoint("new"), path)
    assert checkpoint.load(path)["charset"] == "old"
    assert os.listdir(tmp_path) == ["last.pt"]


SLOW_SAVE = """
import io, sys, time
import torch
from crnn_ocr import checkpoint

real_save = torch.save

def slow_save(obj, f):  # the real bytes, written slowly enough to be killed half-way
    buf = io.BytesIO()
    real_save(obj, buf)
    data = buf.getvalue()
    for i in range(0, len(data), 1 << 14):
        f.write(data[i : i + (1 << 14)])
        f.flush()
        time.sleep(0.02)

torch.save = slow_save
checkpoint.save({"model": {"w": torch.zeros(1_000_000)}, "config": {}, "charset": "new"}, sys.argv[1])
"""


def test_a_process_killed_while_saving_leaves_the_previous_checkpoint_intact(tmp_path):
    path = tmp_path / "last.pt"
    checkpoint.save(small_checkpoint("old"), path)
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SAVE, str(path)])
    try:
        deadline = time.time() + 60
        while not any(p.name.endswith(".tmp") and p.stat().st_size > 0 for p in tmp_path.iterdir()):
            assert proc.poll() is None and time.time() < deadline, "the writer never started"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert checkpoint.load(path)["charset"] == "old"
    assert checkpoint.load(path)["model"]["w"].tolist() == [0, 1, 2, 3]
