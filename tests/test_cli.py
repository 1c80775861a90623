"""End to end through the command line: train on a few synthetic captchas, evaluate,
predict, resume."""
import json
import subprocess
import sys

import torch

from crnn_ocr.checkpoint import load
from crnn_ocr.cli import main
from crnn_ocr.data import synthetic_captchas

from conftest import write_tiny_config



def test_train_evaluate_predict_resume(tmp_path, capsys):
    config = write_tiny_config(tmp_path / "tiny.toml", threads=2)
    run = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(run)]) == 0
    for name in ("best.pt", "last.pt", "history.csv", "loss.png", "samples/epoch_001.png"):
        assert (run / name).is_file(), name
    ckpt = torch.load(run / "best.pt", weights_only=True)
    assert ckpt["charset"] and ckpt["epoch"] == 1 and "model" in ckpt and ckpt["config"]["train"]["epochs"] == 1

    assert main(["train", "--out", str(run), "--resume", "--epochs", "2"]) == 0
    assert load(run / "last.pt")["epoch"] == 2
    assert len((run / "history.csv").read_text().splitlines()) == 3  # header + 2 epochs

    test_dir = tmp_path / "test"
    test_dir.mkdir()
    for i, item in enumerate(synthetic_captchas(6, seed=99)):
        item.image.save(test_dir / f"{item.text}-{i}.png")
    out = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--data", str(test_dir),
                 "--out", str(out), "--label-sep", "-"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 6
    assert {"word_accuracy", "cer", "wer", "bleu"} <= metrics.keys()
    assert 0 <= metrics["word_accuracy"] <= 1 and 0 <= metrics["bleu"] <= 100
    for name in ("predictions.tsv", "samples.png", "confusion.png", "report.md"):
        assert (out / name).is_file(), name
    rows = (out / "predictions.tsv").read_text().splitlines()
    assert len(rows) == 7 and rows[0].startswith("path\tgold\tprediction\tcorrect")

    capsys.readouterr()
    assert main(["predict", "--checkpoint", str(run / "best.pt"), str(test_dir)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6
    path, text, confidence = lines[0].split("\t")
    assert path.endswith(".png") and 0 <= float(confidence) <= 1


def test_module_entry_point_prints_help():
    result = subprocess.run([sys.executable, "-m", "crnn_ocr", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "train" in result.stdout and "evaluate" in result.stdout
