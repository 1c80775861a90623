"""Checkpoints: a crash while one is being written leaves the previous one intact."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from crnn_ocr.model import checkpoint
from crnn_ocr.model.pretrained import load_pretrained


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
from crnn_ocr.model import checkpoint

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


def test_pretrained_weights_of_another_input_height_feed_the_gru_the_same_sum(tmp_path):
    """A 32-pixel model starts a 48-pixel one: the GRU's input weights are resampled from 2
    to 3 rows of CNN features, so that features that are the same in every row give the same
    input to the GRU; everything else is copied whole."""
    from crnn_ocr.model.charset import Charset
    from crnn_ocr.model.crnn import CRNN

    torch.manual_seed(0)
    small = CRNN(4, height=32, width=64, rnn_hidden=8, cnn_channels=(4, 4, 8, 8, 8), shortcut=True)
    tall = CRNN(4, height=48, width=64, rnn_hidden=8, cnn_channels=(4, 4, 8, 8, 8), shortcut=True)
    assert (small.feature_rows, tall.feature_rows) == (2, 3)
    path = tmp_path / "small.pt"
    torch.save({"model": small.state_dict(), "charset": "abc", "config": {}}, path)
    copied, total, _ = load_pretrained(tall, path, Charset("abc"))
    assert copied == total - 2  # the classifier is mapped by character
    column = torch.rand(8, 1)  # one column's CNN features (channels), the same in every row
    for name in ("rnn.weight_ih_l0", "rnn.weight_ih_l0_reverse"):
        w_small, w_tall = small.state_dict()[name], tall.state_dict()[name]
        assert w_tall.shape == (24, 8 * 3)
        small_sum, tall_sum = w_small @ column.repeat(1, 2).flatten(), w_tall @ column.repeat(1, 3).flatten()
        assert torch.allclose(small_sum, tall_sum, atol=1e-5)
    assert tall.shortcut.weight.shape == (4, 24, 3)
    assert torch.equal(tall.state_dict()["cnn.0.0.weight"], small.state_dict()["cnn.0.0.weight"])


def test_a_model_with_residual_blocks_added_starts_as_the_model_without_them(tmp_path):
    """The plain simple backbone's weights load into one with residual blocks after its last
    two conv blocks: the layers are matched by stage (their indices in ``model.cnn`` moved),
    and the new blocks start as the identity, so the deeper model reads exactly as the other."""
    from crnn_ocr.model.charset import Charset
    from crnn_ocr.model.crnn import CRNN

    torch.manual_seed(0)
    plain = CRNN(4, height=32, width=64, rnn_hidden=8, cnn_channels=(4, 4, 8, 8, 8)).eval()
    with torch.no_grad():  # running statistics that are not the defaults, so that they must be copied
        for module in plain.cnn.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    deep = CRNN(4, height=32, width=64, rnn_hidden=8, cnn_channels=(4, 4, 8, 8, 8), cnn_blocks=(0, 0, 0, 1, 2))
    path = tmp_path / "plain.pt"
    torch.save({"model": plain.state_dict(), "charset": "abc", "config": {}}, path)
    copied, total, _ = load_pretrained(deep, path, Charset("abc"))
    assert copied == len(plain.state_dict()) - 2  # all but the classifier, which is mapped by character
    assert total > copied  # the three residual blocks are new
    images = torch.rand(2, 1, 32, 64)
    assert torch.allclose(deep.eval()(images), plain(images), atol=1e-5)


def test_a_model_with_nan_weights_is_refused_in_one_line(tmp_path):
    from conftest import tiny_checkpoint

    path = tiny_checkpoint(tmp_path / "ok.pt")
    ckpt = checkpoint.load(path)
    name = next(k for k, v in ckpt["model"].items() if v.is_floating_point())
    ckpt["model"][name][0] = float("nan")  # as a diverged run saves it
    checkpoint.save(ckpt, tmp_path / "nan.pt")
    checkpoint.load_model(path)  # the same file without the nan loads
    with pytest.raises(checkpoint.CheckpointError, match=f"nan or inf weights in 1 of its tensors \\(first: {name}\\)"):
        checkpoint.load_model(tmp_path / "nan.pt")


def test_integer_or_misshapen_weights_are_refused_saying_which(tmp_path):
    from conftest import tiny_checkpoint

    ckpt = checkpoint.load(tiny_checkpoint(tmp_path / "ok.pt"))
    name = next(k for k, v in ckpt["model"].items() if v.is_floating_point())
    wrong = dict(ckpt, model=ckpt["model"] | {name: ckpt["model"][name].round().int()})
    checkpoint.save(wrong, tmp_path / "int.pt")
    with pytest.raises(checkpoint.CheckpointError, match=f"integer weights where floats belong .*first: {name}"):
        checkpoint.load_model(tmp_path / "int.pt")
    misshapen = dict(ckpt, model=ckpt["model"] | {name: torch.zeros(3, 1)})
    checkpoint.save(misshapen, tmp_path / "shape.pt")
    with pytest.raises(checkpoint.CheckpointError, match=f"size mismatch for {name}"):
        checkpoint.load_model(tmp_path / "shape.pt")
