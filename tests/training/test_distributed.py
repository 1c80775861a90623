"""torchrun on CPU (gloo): two processes train like one, and checkpoints move between them."""
import subprocess
import sys

import pytest
import torch

from crnn_ocr.model.checkpoint import load, load_model
from crnn_ocr.cli.main import main
from crnn_ocr.data.datasets import OCRDataset
from crnn_ocr.data.items import Skipped
from crnn_ocr.data.sources import training_items
from crnn_ocr.reading.infer import infer
from crnn_ocr.evaluation.metrics import cer, word_accuracy

from conftest import write_tiny_config



def torchrun(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "crnn_ocr", "train", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.fixture
def tiny_config(tmp_path):
    return write_tiny_config(tmp_path / "tiny.toml", val=15, batch_size=8)


def test_two_processes_write_one_checkpoint_with_metrics_of_a_single_process_evaluation(tmp_path, tiny_config):
    run = tmp_path / "ddp"
    result = torchrun("--config", str(tiny_config), "--out", str(run))
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in run.glob("*.pt")) == ["best.pt", "last.pt"]
    assert not list(run.glob(".*.tmp"))
    assert result.stdout.count("epoch   1/1") == 1  # rank 0 alone reports

    ckpt = load(run / "best.pt")
    assert not any(k.startswith("module.") for k in ckpt["model"])
    model, charset, config = load_model(run / "best.pt")  # a DDP checkpoint loads in one process
    _, val_items = training_items(config.data, config.train.seed, Skipped())
    val = OCRDataset(val_items, config.data.height, config.data.width, config.data.channels, Skipped())
    pred = infer(model, val.images, charset).texts
    gold = [it.text for it in val.items]
    row = ckpt["history"][-1]
    assert row["val_cer"] == pytest.approx(cer(gold, pred))
    assert row["val_word_accuracy"] == pytest.approx(word_accuracy(gold, pred))


def test_single_process_run_resumes_under_torchrun(tmp_path, tiny_config):
    run = tmp_path / "single"
    assert main(["train", "--config", str(tiny_config), "--out", str(run)]) == 0
    result = torchrun("--out", str(run), "--resume", "--epochs", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert load(run / "last.pt")["epoch"] == 2


def test_tensorboard_logging_writes_event_files(tmp_path, tiny_config):
    pytest.importorskip("tensorboard")
    run = tmp_path / "tb"
    assert main(["train", "--config", str(tiny_config), "--out", str(run), "--tensorboard"]) == 0
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


def test_unavailable_device_is_a_clear_error(tmp_path, tiny_config, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["train", "--config", str(tiny_config), "--out", str(tmp_path / "x"), "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err
