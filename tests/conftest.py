"""Tiny fixtures built by the tests themselves: captcha folders, an IAM layout, labels.tsv."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont


@pytest.fixture(autouse=True, scope="session")
def language_model_cache(tmp_path_factory):
    """Built language models are cached in a folder of the test run, never in the user's home."""
    import os

    os.environ["CRNN_OCR_CACHE"] = str(tmp_path_factory.mktemp("lm-cache"))


def text_image(text: str, size=(120, 40), mode="L", font_size: int | None = None, stroke: int = 0,
               at=(4, 10)) -> Image.Image:
    """A white image with ``text`` drawn in black by Pillow's default font (its small bitmap
    face, or the scalable one at ``font_size``), ``stroke`` pixels bolder."""
    im = Image.new("RGB", size, "white")
    font = ImageFont.load_default(font_size) if font_size else None
    ImageDraw.Draw(im).text(at, text, fill="black", font=font, stroke_width=stroke, stroke_fill="black")
    return im.convert(mode)


@pytest.fixture
def captcha_folder(tmp_path: Path) -> Path:
    """Six images in several modes and formats, labelled by file name."""
    folder = tmp_path / "captchas"
    folder.mkdir()
    for text, mode, ext in [("2b827", "RGBA", "png"), ("3bnyf", "RGB", "jpg"), ("44c22", "L", "png"),
                            ("5npdn", "P", "png"), ("6g45w", "RGB", "png"), ("7cgym", "RGBA", "png")]:
        text_image(text, (200, 50), mode).save(folder / f"{text}.{ext}")
    (folder / "notes.txt").write_text("not an image, ignored")
    return folder


@pytest.fixture
def iam_root(tmp_path: Path) -> Path:
    """An IAM-shaped folder: words.txt with ok, err and malformed lines, one missing image."""
    root = tmp_path / "iam"
    lines = ["# comment line", "a01-000u-00-00 ok 154 408 768 27 51 AT A",
             "a01-000u-00-01 ok 154 507 766 213 48 NN MOVE",
             "a01-000u-00-02 err 154 796 764 70 50 TO to",
             "a01-000u-00-03 ok 154 919 757 166 78 VB two words",
             "a01-000u-00-04 ok 154 919 757 166 78 VB missing",
             "garbage line",
             "b02-010-01-00 ok 170 10 10 60 40 NN Peers"]
    (root / "words").mkdir(parents=True)
    (root / "words.txt").write_text("\n".join(lines) + "\n")
    for wid, text in [("a01-000u-00-00", "A"), ("a01-000u-00-01", "MOVE"), ("a01-000u-00-02", "to"),
                      ("a01-000u-00-03", "two words"), ("b02-010-01-00", "Peers")]:
        a, b = wid.split("-")[:2]
        d = root / "words" / a / f"{a}-{b}"
        d.mkdir(parents=True, exist_ok=True)
        text_image(text, (90, 40)).save(d / f"{wid}.png")
    return root


@pytest.fixture
def tsv_folder(tmp_path: Path) -> Path:
    """labels.tsv with CRLF endings, a blank line, a line without a tab and a non-UTF-8 line."""
    folder = tmp_path / "own"
    (folder / "img").mkdir(parents=True)
    for i, text in enumerate(["hello", "wörld", "a b"]):
        text_image(text).save(folder / "img" / f"{i}.png")
    data = (b"img/0.png\thello\r\n\r\nimg/1.png\tw\xc3\xb6rld\r\nno tab here\r\n"
            b"img/2.png\ta b\r\nimg/9.png\t\xff\xfe bad\r\n")
    (folder / "labels.tsv").write_bytes(data)
    return folder


def write_tiny_config(path: Path, train: int = 48, val: int = 16, epochs: int = 1, batch_size: int = 16,
                      threads: int = 1, small_model: bool = False, augment: bool = True, data: str = "") -> Path:
    """A config for a seconds-long training run on synthetic captchas at 32x128."""
    # pretrained = "": the tiny runs test the training loop from a seeded random start (the
    # default start, "auto", has a test of its own in test_train.py)
    model = "[model]\npretrained = \"\"\n" + ("rnn_hidden = 16\nrnn_layers = 1\n" if small_model else "")
    path.write_text(f"""[data]
height = 32
width = 128
synthetic_train = {train}
synthetic_val = {val}
augment = {str(augment).lower()}
{data}
{model}[train]
epochs = {epochs}
batch_size = {batch_size}
threads = {threads}
""")
    return path


def random_array(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w), dtype=np.uint8)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: tiny batches gain nothing from more, and on a busy
    machine the threads of a parallel region wait for each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_config(tmp_path) -> Path:
    """A config file for a seconds-long training run on synthetic captchas."""
    return write_tiny_config(tmp_path / "tiny.toml", train=8, val=4, batch_size=8, small_model=True, augment=False)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """``crnn-ocr argv``: exit code, stdout, stderr; never a traceback."""
    from crnn_ocr.cli.main import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    return code, out, err


CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"


def tiny_checkpoint(path, backbone: str = "simple", seed: int = 0):
    """An untrained model saved as ``crnn-ocr train`` saves one: parity needs no training."""
    import torch

    from crnn_ocr import CRNN, Charset, Config
    from crnn_ocr.model import checkpoint

    torch.manual_seed(seed)
    config = Config()
    config.data.height, config.data.width = 32, 128
    config.model.backbone = backbone
    charset = Charset(CHARS)
    model = CRNN.from_config(config, charset)
    checkpoint.save({"model": model.state_dict(), "config": config.to_dict(), "charset": charset.chars,
                     "epoch": 1}, path)
    return path


@pytest.fixture
def evaluation_folder(tmp_path):
    """An ``evaluate`` output folder: metrics.json, predictions.tsv with one image missing."""
    folder = tmp_path / "eval"
    (folder / "images").mkdir(parents=True)
    rows = [("images/ab.png", "ab", "ab", 1, 0.99), ("images/cd.png", "cd", "cb", 0, 0.41),
            ("images/gone.png", "ef", "ef", 1, 0.87)]
    for path, gold, *_ in rows[:2]:
        text_image(gold).save(folder / path)
    lines = ["path\tgold\tprediction\tcorrect\tconfidence"] + ["\t".join(map(str, r)) for r in rows]
    (folder / "predictions.tsv").write_text("\n".join(lines) + "\n")
    (folder / "metrics.json").write_text(json.dumps({"n": 3, "word_accuracy": 2 / 3, "cer": 1 / 6}))
    return folder
