"""CI, in a fresh environment with the wheel installed without extras: every bundled model
reads validation images (when ../shared/data is there), the reading commands work, a
training command names its extra, and nothing imported PyTorch."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np

from crnn_ocr import Recognizer
from crnn_ocr.hub import registry

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
assert importlib.util.find_spec("torch") is None, "the core install must not bring PyTorch"


def iam_words(n: int) -> list[tuple[Path, str]]:
    """(image, transcription) of the first ``n`` IAM validation words."""
    ids = set((DATA / "iam_words" / "splits" / "val1.txt").read_text().split()[:n])
    found = []
    for line in (DATA / "iam_words" / "words.txt").read_text().splitlines():
        fields = line.split(" ")
        if not line.startswith("#") and fields[0] in ids:
            a, b = fields[0].split("-")[:2]
            found.append((DATA / "iam_words" / "words" / a / f"{a}-{b}" / f"{fields[0]}.png", " ".join(fields[8:])))
    return found


def printed_lines(n: int) -> list[tuple[object, str]]:
    """(image, text) of ``n`` lines drawn in Pillow's own scalable font, for the printed model
    (the IAM words are handwriting)."""
    from PIL import Image, ImageDraw, ImageFont

    words = "the quick brown fox jumps over a lazy dog while seven wizards pack boxes".split()
    samples = []
    for i in range(n):
        text = " ".join(words[(i * 3 + k) % len(words)] for k in range(4))
        image = Image.new("L", (560, 48), 255)
        ImageDraw.Draw(image).text((8, 8), text, font=ImageFont.load_default(28), fill=20)
        samples.append((image, text))
    return samples


def check_models() -> None:
    if not DATA.is_dir():
        print(f"{DATA} is absent: the bundled models are loaded, not scored")
    for name in registry.models():
        rec = Recognizer.load(name, threads=1)
        if name == "printed-en":
            samples = printed_lines(20)
        elif name == "captcha-v2" and DATA.is_dir():
            samples = [(p, p.stem) for p in sorted((DATA / "captcha_v2" / "val").iterdir())[:100]]
        elif DATA.is_dir():
            samples = iam_words(100)
        else:
            samples = []
        if not samples:  # no data: one blank page read, so that every model still runs once
            assert rec.read([np.full((48, 160), 255, dtype=np.uint8)])[0].error is None
            print(f"{name}: loaded and read a blank image")
            continue
        readings = rec.read([p for p, _ in samples], decoder="greedy")
        assert all(r.error is None for r in readings), [r.error for r in readings if r.error][:3]
        right = sum(r.text == gold for r, (_, gold) in zip(readings, samples))
        print(f"{name}: read {len(readings)} {'drawn lines' if name == 'printed-en' else 'validation images'}, "
              f"{right} exactly right")
        if name == "printed-en":
            assert right >= 15, "printed-en reads most plain drawn lines (17 of 20 at its release)"
        if name == "captcha-v2" and samples:
            assert right == len(samples), "captcha-v2 reads every validation captcha right (its card: 100%)"


def check_commands() -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["crnn-ocr", *args], capture_output=True, text=True)

    assert run("--help").returncode == 0
    assert run("models").returncode == 0
    done = run("train")
    assert done.returncode == 2 and "pip install 'crnn-ocr[train]'" in done.stderr, done.stderr
    if DATA.is_dir():
        folder = DATA / "captcha_v2" / "val"
        done = run("predict", "--model", "captcha-v2", "--threads", "1", str(next(folder.glob("*.png"))))
        assert done.returncode == 0 and done.stdout.count("\t") == 2, done.stderr
        done = run("evaluate", "--model", "captcha-v2", "--threads", "1", "--data", str(folder),
                   "--out", "/tmp/ci-eval")
        assert done.returncode == 0, done.stderr
        print(done.stdout.strip().splitlines()[0])


check_models()
check_commands()
assert "torch" not in sys.modules
print("core install: every check passed")
