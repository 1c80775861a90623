"""Training: a non-finite loss, SIGTERM and Ctrl-C, resume, the moving average of the weights.
Nothing is lost: a resumed run ends with the weights of an uninterrupted one.
"""
from __future__ import annotations

import importlib
import os
import signal

import pytest
import torch

from crnn_ocr.model import checkpoint
from crnn_ocr.model.charset import Charset
from crnn_ocr.cli.main import main
from crnn_ocr.model.crnn import CRNN
from crnn_ocr.config.schema import Config
from crnn_ocr.training.train import train

from conftest import write_tiny_config


train_module = importlib.import_module("crnn_ocr.training.train")  # the package's ``train`` attribute is the function


@pytest.fixture
def tiny_toml(tmp_path):
    # 4 steps per epoch
    return write_tiny_config(tmp_path / "tiny.toml", train=16, val=4, epochs=2, batch_size=4, small_model=True)


def signal_on_loss_call(monkeypatch, n: int, signum: int) -> None:
    """Send ``signum`` to this process during the ``n``-th training step (after its loss)."""
    real, calls = train_module.ctc_loss, []

    def loss(*args):
        calls.append(1)
        if len(calls) == n:
            os.kill(os.getpid(), signum)
        return real(*args)

    monkeypatch.setattr(train_module, "ctc_loss", loss)


def test_a_non_finite_loss_skips_the_step_and_training_goes_on(tmp_path, tiny_toml, monkeypatch):
    real, calls = train_module.ctc_loss, []

    def loss(*args):
        calls.append(1)
        value = real(*args)
        return value * float("nan") if len(calls) == 2 else value

    monkeypatch.setattr(train_module, "ctc_loss", loss)
    config = Config.from_toml(tiny_toml)
    config.train.epochs = 1
    logs = []
    result = train(config, tmp_path / "run", log=logs.append)
    assert result["epoch"] == 1 and len(calls) == 4
    assert "step 1: non-finite loss or gradient, step skipped (1 so far)" in logs
    assert "1 steps were skipped for non-finite loss or gradients" in logs
    last = checkpoint.load(tmp_path / "run" / "last.pt")
    assert last["skipped_steps"] == 1 and last["step"] == 4
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())


def test_without_a_progress_bar_a_plain_progress_line_is_logged(tmp_path, tiny_toml, monkeypatch, capsys):
    # capsys: stderr is not a terminal, so there is no bar (as in `crnn-ocr train > log`)
    monkeypatch.setattr(train_module, "PROGRESS_EVERY", 0)
    config = Config.from_toml(tiny_toml)
    config.train.epochs = 1
    logs = []
    train(config, tmp_path / "run", log=logs.append)
    steps = [line.split()[3] for line in logs if line.startswith("  epoch 1/1 step ")]
    assert steps == ["1/4", "2/4", "3/4", "4/4"]
    assert all("train loss" in line and "img/s" in line for line in logs if line.startswith("  epoch 1/1 step "))


def test_sigterm_stops_at_the_next_step_and_saves_last_pt(tmp_path, tiny_toml, monkeypatch):
    signal_on_loss_call(monkeypatch, 3, signal.SIGTERM)
    result = train(Config.from_toml(tiny_toml), tmp_path / "run", log=lambda *a: None)
    assert result == {"interrupted": True, "epoch": 0, "step": 3}
    last = checkpoint.load(tmp_path / "run" / "last.pt")
    assert (last["epoch"], last["step"]) == (0, 3) and {"optimizer", "scheduler", "torch_rng"} <= last.keys()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler is put back


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_ctrl_c_then_resume_ends_with_the_weights_of_an_uninterrupted_run(tmp_path, tiny_toml, monkeypatch, capsys,
                                                                         ema):
    config = Config.from_toml(tiny_toml)
    config.train.ema = ema
    train(config, tmp_path / "full", log=lambda *a: None)

    cut = tmp_path / "cut"
    signal_on_loss_call(monkeypatch, 6, signal.SIGINT)  # mid-way through the second epoch
    assert main(["train", "--config", str(tiny_toml), "--out", str(cut), "--ema", str(ema)]) == 130
    assert checkpoint.load(cut / "last.pt")["step"] == 6
    monkeypatch.undo()
    assert main(["train", "--out", str(cut), "--resume", "--rnn-hidden", "32"]) == 2  # another model: refused
    assert "does not fit this model" in capsys.readouterr().err
    assert main(["train", "--out", str(cut), "--resume"]) == 0
    assert "Traceback" not in capsys.readouterr().err

    full, resumed = checkpoint.load(tmp_path / "full" / "last.pt"), checkpoint.load(cut / "last.pt")
    assert (resumed["epoch"], resumed["step"]) == (full["epoch"], full["step"]) == (2, 8)
    assert full["model"].keys() == resumed["model"].keys()
    for name, tensor in full["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    assert ("ema" in full) == ("ema" in resumed) == (ema > 0)
    for name, tensor in full.get("ema", {}).items():
        assert torch.equal(tensor, resumed["ema"][name]), name
    assert [h["val_cer"] for h in full["history"]] == [h["val_cer"] for h in resumed["history"]]
    assert full["scheduler"]["last_epoch"] == resumed["scheduler"]["last_epoch"]


def test_with_ema_validation_and_best_pt_use_the_averaged_weights(tmp_path, tiny_toml):
    config = Config.from_toml(tiny_toml)
    config.train.epochs, config.train.ema = 1, 0.5
    train(config, tmp_path / "run", log=lambda *a: None)
    best, last = checkpoint.load(tmp_path / "run" / "best.pt"), checkpoint.load(tmp_path / "run" / "last.pt")
    assert "ema" not in best and best["model"].keys() == last["model"].keys()
    for name, tensor in best["model"].items():
        assert torch.equal(tensor, last["ema"]["module." + name]), name
    raw = last["model"]["fc.weight"]
    assert not torch.equal(best["model"]["fc.weight"], raw)  # 4 steps of averaging: not the raw weights
    model = CRNN.from_config(config, Charset(best["charset"]))
    model.load_state_dict(best["model"])  # best.pt loads like any checkpoint


def test_cnn_lr_trains_the_cnn_at_its_share_of_the_learning_rate_and_resumes(tmp_path, tiny_toml, capsys):
    config = Config.from_toml(tiny_toml)
    config.train.epochs, config.train.cnn_lr = 1, 0.1
    train(config, tmp_path / "run", log=lambda *a: None)
    last = checkpoint.load(tmp_path / "run" / "last.pt")
    rest, cnn = last["optimizer"]["param_groups"]
    model = CRNN.from_config(config, Charset(last["charset"]))
    assert len(cnn["params"]) == len(list(model.cnn.parameters()))
    assert len(rest["params"]) + len(cnn["params"]) == len(list(model.parameters()))
    assert cnn["lr"] == pytest.approx(0.1 * rest["lr"]) and cnn["initial_lr"] == pytest.approx(0.1 * config.train.lr)
    assert main(["train", "--out", str(tmp_path / "run"), "--resume", "--epochs", "2", "--cnn-lr", "0.5"]) == 2
    assert "was trained with cnn_lr 0.1; resume it with --cnn-lr 0.1" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "run"), "--resume", "--epochs", "2"]) == 0  # two groups load back
    assert len(checkpoint.load(tmp_path / "run" / "last.pt")["optimizer"]["param_groups"]) == 2


def test_a_misspelt_pretrained_start_fails_before_the_data_is_loaded(tmp_path, tiny_toml, monkeypatch):
    from crnn_ocr.hub.registry import UnknownModel

    def loaded(*args):
        raise AssertionError("the data was loaded first")

    monkeypatch.setattr(train_module, "load_training_data", loaded)
    config = Config.from_toml(tiny_toml)
    config.model.pretrained = "handwritng-en"
    with pytest.raises(UnknownModel, match="unknown model 'handwritng-en'"):
        train(config, tmp_path / "run", log=lambda *a: None)
    config.model.pretrained = str(tmp_path / "missing.safetensors")
    with pytest.raises(checkpoint.CheckpointError, match="pretrained start not found"):
        train(config, tmp_path / "run2", log=lambda *a: None)
    config.model.pretrained = str(tmp_path)
    with pytest.raises(checkpoint.CheckpointError, match="is a folder, not a checkpoint file"):
        train(config, tmp_path / "run3", log=lambda *a: None)


def test_resuming_a_checkpoint_without_training_state_is_refused(tmp_path, tiny_toml, capsys):
    run = tmp_path / "run"
    run.mkdir()
    config = Config.from_toml(tiny_toml)
    model = CRNN.from_config(config, Charset("abc"))
    checkpoint.save({"model": model.state_dict(), "config": config.to_dict(), "charset": "abc", "epoch": 1},
                    run / "last.pt")  # what best.pt holds: weights, no optimizer
    assert main(["train", "--out", str(run), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "cannot be resumed" in err and "--pretrained" in err and "Traceback" not in err


def test_mixed_precision_falls_back_to_float32_on_a_cpu_without_native_bfloat16(monkeypatch):
    import torch

    from crnn_ocr.utils.runtime import autocast_dtype

    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, amp=False) is None
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert autocast_dtype(cpu, amp=True) is None
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert autocast_dtype(cpu, amp=True) == torch.bfloat16


def test_by_default_a_run_starts_from_the_bundled_synthetic_words_model_when_its_cnn_fits(tmp_path, capsys):
    """``pretrained = "auto"`` (the default): the simple backbone at its default widths starts
    from ``synth-words`` (at another input height, its GRU input resampled); a CNN of other
    widths, or ResNet-18, starts from scratch, and the log says which."""
    from crnn_ocr import Config
    from crnn_ocr.model.pretrained import auto_start
    from crnn_ocr.cli.main import main

    config = Config()
    assert config.model.pretrained == "auto" and auto_start(config) == "synth-words"
    config.model.backbone = "resnet18"
    assert auto_start(config) == ""
    config.model.backbone, config.model.cnn_channels = "simple", [8, 16, 32, 64, 128]
    assert auto_start(config) == ""

    toml = write_tiny_config(tmp_path / "tiny.toml", train=8, val=4, batch_size=8, augment=False)
    toml.write_text(toml.read_text().replace('pretrained = ""\n', ""))  # back to the default
    assert main(["train", "--config", str(toml), "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "pretrained: auto -> synth-words" in out
    assert "pretrained: copied 46 of 48 tensors from synth-words" in out  # all but the classifier
    assert main(["train", "--config", str(toml), "--cnn-channels", "8", "16", "32", "64", "128",
                 "--out", str(tmp_path / "slim")]) == 0
    assert "pretrained: auto -> none (from scratch)" in capsys.readouterr().out
    assert main(["train", "--config", str(toml), "--pretrained", "none", "--out", str(tmp_path / "none")]) == 0
    assert "pretrained:" not in capsys.readouterr().out


def test_the_moving_average_warms_up_then_keeps_its_decay():
    from torch.optim.swa_utils import AveragedModel

    from crnn_ocr.training.state import ema_with_warmup

    net = torch.nn.Linear(1, 1, bias=False)
    ema = AveragedModel(net, multi_avg_fn=ema_with_warmup(0.999), use_buffers=True)

    def step_to(value: float) -> float:
        net.weight.data.fill_(value)
        ema.update_parameters(net)
        return ema.module.weight.item()

    assert step_to(0.0) == 0.0  # the first update copies
    assert step_to(11.0) == pytest.approx(11.0 * 9 / 11)  # n = 1: decay 2/11, not 0.999
    for _ in range(20_000):
        step_to(1.0)
    assert step_to(2.0) == pytest.approx(1.0 + 0.001)  # decay capped at 0.999


def test_the_coarse_ctc_shortcut_adds_a_loss_on_pooled_columns_and_leaves_no_trace(tmp_path, tiny_toml, monkeypatch):
    config = Config.from_toml(tiny_toml)
    config.train.epochs = 1
    config.model.ctc_shortcut, config.model.shortcut_pool, config.model.width_pool = 1.0, 2, 8
    real, columns = train_module.ctc_loss, []

    def loss(log_probs, *args):
        columns.append(log_probs.shape[0])
        return real(log_probs, *args)

    monkeypatch.setattr(train_module, "ctc_loss", loss)
    train(config, tmp_path / "run", log=lambda *a: None)
    main_columns = config.data.width // 8
    assert columns[:2] == [main_columns, -(-main_columns // 2)]  # each step: the main loss, then the shortcut's
    assert len(columns) == 2 * 4  # 4 steps; validation computes its loss elsewhere
    model, _, loaded = checkpoint.load_model(tmp_path / "run" / "best.pt")
    assert model.shortcut is None and model.columns == main_columns and loaded.model.width_pool == 8
