"""End to end through the command line: train on a few synthetic captchas, evaluate,
predict, resume; a model trained without padding reads images of every width, in order."""
import json
import math
import subprocess
import sys
import warnings

import pytest
import torch

from crnn_ocr.decoding.ctc import greedy as ctc_greedy
from crnn_ocr.model.checkpoint import load, load_model
from crnn_ocr.cli.main import build_parser, config_from_args, main
from crnn_ocr.reading.infer import crop_width
from crnn_ocr.data.synth.captcha import synthetic_captchas
from crnn_ocr.reading.images import content_widths
from crnn_ocr.reading.recognizer import Recognizer

from conftest import text_image, write_tiny_config



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


def test_a_model_trained_without_padding_reads_every_width_in_order(tmp_path):
    folder = tmp_path / "words"
    folder.mkdir()
    words = ["a", "to", "the", "word", "which", "longer", "remarks", "everyone"] * 3
    lines = []
    for i, word in enumerate(words):
        text_image(word, (12 + 9 * len(word), 32)).save(folder / f"{i}.png")
        lines.append(f"{i}.png\t{word}")
    (folder / "labels.tsv").write_text("\n".join(lines) + "\n")
    config = write_tiny_config(tmp_path / "tiny.toml", data=f'path = "{folder}"\ntrim_padding = true', batch_size=4)
    run = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(run)]) == 0
    assert main(["export", "--checkpoint", str(run / "best.pt"), "--onnx", str(tmp_path / "m.onnx")]) == 0
    images = [folder / f"{i}.png" for i in range(len(words))]  # each word thrice, 8 words apart
    for path in (run / "best.pt", tmp_path / "m.onnx"):
        rec = Recognizer.load(path)
        assert rec.config.data.trim_padding
        # Every image is cut to its own width, whatever the batch: the same answers in any batching.
        together = [(r.text, r.confidence) for r in rec.read(images, batch_size=5)]
        alone = [(r.text, r.confidence) for im in images for r in rec.read([im])]
        assert [t for t, _ in together] == [t for t, _ in alone]
        assert all(abs(math.log(a[1]) - math.log(b[1])) < 1e-3 for a, b in zip(together, alone))
    # Alone, an image is cut to its own width, which is not what the padded image gives.
    model, charset, config = load_model(run / "best.pt")
    x = torch.from_numpy(Recognizer(model, charset, config)._prepare(images[:1])[0].image[None])
    width = crop_width(content_widths(x)[0], x.shape[3])
    with torch.no_grad():
        trimmed = ctc_greedy(model(x[..., :width].float() / 255), charset)[1][0]
        padded = ctc_greedy(model(x.float() / 255), charset)[1][0]
    assert width < x.shape[3] and abs(math.log(alone[0][1]) - math.log(trimmed)) < 1e-4
    assert abs(math.log(trimmed) - math.log(padded)) > 1e-3


def test_flags_override_the_config(tmp_path):
    config = write_tiny_config(tmp_path / "tiny.toml")
    args = build_parser().parse_args(["train", "--config", str(config), "--no-trim-padding", "--cnn-channels",
                                      "8", "16", "32", "32", "64", "--epochs", "3"])
    cfg = config_from_args(args)
    assert not cfg.data.trim_padding and cfg.model.cnn_channels == [8, 16, 32, 32, 64] and cfg.train.epochs == 3
    assert cfg.data.synthetic_train == 48 and config_from_args(build_parser().parse_args(
        ["train", "--config", str(config)])).data.trim_padding


def test_module_entry_point_prints_help():
    result = subprocess.run([sys.executable, "-m", "crnn_ocr", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "train" in result.stdout and "evaluate" in result.stdout


def test_output_to_a_pipe_is_written_a_line_at_a_time():
    # `crnn-ocr train > log`: each epoch's line reaches the file when it is printed, not at exit
    probe = ("import sys; from crnn_ocr.cli.main import safe_streams; safe_streams(); "
             "print(sys.stdout.line_buffering, sys.stderr.line_buffering)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.split() == ["True", "True"]


def test_a_warning_naming_a_file_with_a_newline_is_one_whole_line():
    from crnn_ocr.cli.main import one_line_warning

    line = one_line_warning(UserWarning("w\nide.png: 8000 pixels wide, scaled down"), UserWarning, "f.py", 1)
    assert line == "crnn-ocr: warning: w\\x0aide.png: 8000 pixels wide, scaled down\n"


def test_main_restores_the_warning_format_of_its_caller(tmp_path, capsys):
    before = warnings.formatwarning
    assert main(["predict", "--model", str(tmp_path / "missing.pt"), str(tmp_path / "x.png")]) == 2
    assert warnings.formatwarning is before and "crnn-ocr: error:" in capsys.readouterr().err


class FailingImport:
    """A meta-path finder that makes importing ``crnn_ocr.cli.main`` raise ``error``."""

    def __init__(self, error: BaseException):
        self.error = error

    def find_spec(self, name, path=None, target=None):
        if name == "crnn_ocr.cli.main":
            raise self.error


@pytest.mark.parametrize("error, code, line", [
    (KeyboardInterrupt(), 130, "crnn-ocr: interrupted"),
    (RecursionError("maximum recursion depth exceeded"), 2,  # as a half-imported numpy fails after a Ctrl-C
     "crnn-ocr: error: cannot load crnn_ocr: RecursionError: maximum recursion depth exceeded"),
])
def test_the_entry_point_turns_a_failure_while_loading_into_one_line(monkeypatch, capsys, error, code, line):
    from crnn_ocr.cli import entry

    monkeypatch.delenv("CRNN_OCR_TRACEBACK", raising=False)
    monkeypatch.delitem(sys.modules, "crnn_ocr.cli.main")
    monkeypatch.setattr(sys, "meta_path", [FailingImport(error)] + sys.meta_path)
    assert entry.main(["--help"]) == code
    assert capsys.readouterr().err == line + "\n"


def test_importing_the_package_loads_no_torch_until_a_training_name_is_used():
    probe = ("import sys, crnn_ocr; assert 'torch' not in sys.modules; "
             "from crnn_ocr import make_decoder, Recognizer; assert 'torch' not in sys.modules; "
             "from crnn_ocr import CRNN; assert 'torch' in sys.modules; "
             "from crnn_ocr.decoding.ctc import decoder_names; print(' '.join(decoder_names()))")  # the one table
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.split() == ["greedy", "lexicon", "lm"], done.stderr
