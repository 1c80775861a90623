"""Run folders: a run is never overwritten by accident, two live trainings never share a
folder, best.pt cannot be lost, a damaged last.pt and a stop during start-up get one line."""
from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import torch

from crnn_ocr.model import checkpoint
from crnn_ocr.cli.main import main

from conftest import run_cli

train_module = importlib.import_module("crnn_ocr.training.train")


@pytest.fixture
def tiny(tiny_config):
    return tiny_config


run = run_cli


def one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("crnn-ocr: error:")]
    assert len(lines) == 1, err
    return lines[0]


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_folder_holding_a_run_is_refused_unless_resume_or_overwrite(tmp_path, capsys, tiny):
    rundir = tmp_path / "run"
    assert run(capsys, "train", "--config", tiny, "--out", rundir, "--epochs", "2")[0] == 0
    before = (rundir / "last.pt").read_bytes()
    code, _, err = run(capsys, "train", "--config", tiny, "--out", rundir)
    assert code == 2 and "already holds a training run" in one_error(err) and "--overwrite" in one_error(err)
    assert (rundir / "last.pt").read_bytes() == before  # untouched
    code, _, err = run(capsys, "train", "--config", tiny, "--out", rundir, "--resume", "--overwrite")
    assert code == 2 and "give one of them" in one_error(err)
    assert run(capsys, "train", "--config", tiny, "--out", rundir, "--overwrite")[0] == 0
    assert checkpoint.load(rundir / "last.pt")["epoch"] == 1
    assert not (rundir / "samples" / "epoch_002.png").exists()  # the old run's figures went with it
    assert not (rundir / ".lock").exists()


def test_the_default_run_folder_is_protected_too(tmp_path, capsys, tiny, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "train").mkdir(parents=True)
    (tmp_path / "runs" / "train" / "history.csv").write_text("epoch\n1\n")
    code, _, err = run(capsys, "train", "--config", tiny)
    assert code == 2 and "runs/train already holds a training run (history.csv)" in one_error(err)


def test_a_live_lock_refuses_a_second_training_and_a_stale_one_is_taken_over(tmp_path, capsys, tiny):
    rundir = tmp_path / "run"
    rundir.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (rundir / ".lock").write_text(f"{sleeper.pid}\n")
        code, _, err = run(capsys, "train", "--config", tiny, "--out", rundir)
        assert code == 2 and f"in use by another training (pid {sleeper.pid}" in one_error(err)
        assert not (rundir / "last.pt").exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    (rundir / ".lock").write_text(f"{dead_pid()}\n")
    assert run(capsys, "train", "--config", tiny, "--out", rundir)[0] == 0
    assert (rundir / "best.pt").exists() and not (rundir / ".lock").exists()


def test_best_pt_is_saved_before_last_pt(tmp_path, tiny, monkeypatch):
    saved, real = [], checkpoint.save

    def save(obj, path):
        saved.append(path.name)
        real(obj, path)

    monkeypatch.setattr(checkpoint, "save", save)
    main(["train", "--config", str(tiny), "--out", str(tmp_path / "run")])
    assert saved == ["best.pt", "last.pt"]


def test_resume_re_creates_a_lost_best_pt_from_last_pt_when_last_was_best(tmp_path, capsys, tiny):
    rundir = tmp_path / "run"
    assert run(capsys, "train", "--config", tiny, "--out", rundir)[0] == 0
    (rundir / "best.pt").unlink()
    code, out, _ = run(capsys, "train", "--out", rundir, "--resume")
    assert code == 0 and "best.pt is missing: re-created from last.pt (epoch 1, the best)" in out
    best, last = checkpoint.load(rundir / "best.pt"), checkpoint.load(rundir / "last.pt")
    assert best["epoch"] == 1 and "optimizer" not in best
    assert all(torch.equal(best["model"][k], last["model"][k]) for k in best["model"])


def test_resume_says_when_the_best_epoch_is_lost_for_good(tmp_path, capsys, tiny):
    rundir = tmp_path / "run"
    assert run(capsys, "train", "--config", tiny, "--out", rundir, "--epochs", "2")[0] == 0
    last = checkpoint.load(rundir / "last.pt")
    last["history"][0]["val_cer"], last["best_cer"] = 0.0, 0.0  # epoch 1 recorded as the best
    checkpoint.save(last, rundir / "last.pt")
    (rundir / "best.pt").unlink()
    code, out, _ = run(capsys, "train", "--out", rundir, "--resume", "--epochs", "3")
    assert code == 0 and "warning: best.pt is missing, but the best epoch was 1" in out and "is lost" in out
    assert checkpoint.load(rundir / "best.pt")["epoch"] == 3  # written again by the next epoch


@pytest.mark.parametrize("damage", ["drop scheduler", "drop torch_rng", "epoch as text", "history not a list",
                                    "history too short", "aug_rng of the wrong type", "optimizer empty",
                                    "negative step"])
def test_a_damaged_last_pt_gives_one_line_on_resume(tmp_path, capsys, tiny, damage):
    rundir = tmp_path / "run"
    assert run(capsys, "train", "--config", tiny, "--out", rundir)[0] == 0
    last = checkpoint.load(rundir / "last.pt")
    if damage.startswith("drop"):
        del last[damage.split()[1]]
    else:
        last.update({"epoch as text": {"epoch": "1"}, "history not a list": {"history": None},
                     "history too short": {"history": []}, "aug_rng of the wrong type": {"aug_rng": "seed"},
                     "optimizer empty": {"optimizer": {}}, "negative step": {"step": -1}}[damage])
    checkpoint.save(last, rundir / "last.pt")
    code, _, err = run(capsys, "train", "--out", rundir, "--resume", "--epochs", "2")
    assert code == 2 and "last.pt" in one_error(err)
    assert not (rundir / ".lock").exists()


def test_a_last_pt_without_the_newer_counters_still_resumes(tmp_path, capsys, tiny):
    rundir = tmp_path / "run"
    assert run(capsys, "train", "--config", tiny, "--out", rundir)[0] == 0
    last = checkpoint.load(rundir / "last.pt")
    for key in ("best_cer", "bad_epochs", "skipped_steps"):
        del last[key]
    checkpoint.save(last, rundir / "last.pt")
    assert run(capsys, "train", "--out", rundir, "--resume", "--epochs", "2")[0] == 0


def test_ctrl_c_during_start_up_exits_130_with_one_line_and_frees_the_folder(tmp_path, capsys, tiny, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "load_training_data", interrupted)
    code, out, err = run(capsys, "train", "--config", tiny, "--out", tmp_path / "run")
    assert code == 130 and err == "crnn-ocr: interrupted\n"
    assert not (tmp_path / "run" / ".lock").exists()


def test_demo_stopped_by_sigterm_saves_and_stops(tmp_path, capsys, monkeypatch):
    def stopped(config, out, **kwargs):
        return {"interrupted": True, "epoch": 0, "step": 3}

    monkeypatch.setattr(train_module, "train", stopped)
    code, out, _ = run(capsys, "demo", "--out", tmp_path / "demo", "--test-images", "2")
    assert code == 130 and "demo done" not in out
    assert not (tmp_path / "demo" / "eval").exists()
