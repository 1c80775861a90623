"""How robust a word model is to image conditions unlike its training data's, and what its
ink settings (``[data] auto_levels``, ``crop_to_ink``: ``images.ink_view``) do about them.

A seeded sample of IAM validation words (the writers of ``splits/val1.txt`` and ``val2.txt``)
is read under each condition of ``CONDITIONS`` (clean, low contrast, grey paper, faint ink,
inverted, blue ink on yellow paper, small scan, JPEG, wide margin, noise, upscaled), once with
the ink settings off ("raw": the image only resized) and once with them as the model's config
has them. Each transform is deterministic per image (its own seeded generator). Prints a
Markdown table of word accuracy and CER, raw and with the settings, with the paired counts of
words the settings fix and break; writes ``robustness.json`` and ``robustness.md`` to ``--out``.

    OMP_NUM_THREADS=1 python benchmarks/robustness.py ../shared/data/iam_words --out results
"""
from __future__ import annotations

import argparse
import io
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from crnn_ocr import Recognizer
from crnn_ocr.utils.files import write_atomic
from crnn_ocr.reading.images import border_median, open_image
from crnn_ocr.data.layouts import load_iam, read_ids, sample
from crnn_ocr.evaluation.metrics import cer, word_accuracy


def _grey(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("L"), dtype=np.float32)


def _image(a: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")


def paper(im: Image.Image) -> int:
    """The background grey level: the median of the border pixels."""
    return int(border_median(np.asarray(im.convert("L"))[:, :, None])[0])


def clean(im, rng):
    return im


def low_contrast(im, rng):
    """Ink and paper pulled toward mid grey."""
    return _image(128 + (_grey(im) - 128) * 0.35)


def grey_paper(im, rng):
    """A darker page: white paper at about 190."""
    return _image(_grey(im) * 0.6 + 40)


def faint_ink(im, rng):
    """Pencil: the ink 40% as dark."""
    return _image(255 - (255 - _grey(im)) * 0.4)


def inverted(im, rng):
    """Light text on a dark background."""
    return ImageOps.invert(im.convert("L"))


def blue_on_yellow(im, rng):
    """Blue ink (30, 60, 160) on yellowish paper (245, 235, 190), as RGB."""
    t = (_grey(im) / 255)[:, :, None]
    rgb = np.array([30, 60, 160], np.float32) * (1 - t) + np.array([245, 235, 190], np.float32) * t
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")


def small_scan(im, rng):
    """A third of the resolution, scaled back up: blurred."""
    w, h = im.size
    small = im.resize((max(1, round(w / 3)), max(1, round(h / 3))), Image.Resampling.BILINEAR)
    return small.resize((w, h), Image.Resampling.BILINEAR)


def jpeg(im, rng):
    """JPEG at quality 20."""
    buffer = io.BytesIO()
    im.convert("L").save(buffer, "JPEG", quality=20)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("L")


def wide_margin(im, rng):
    """30 pixels of background on every side (IAM crops are tight)."""
    return ImageOps.expand(im.convert("L"), border=30, fill=paper(im))


def noisy(im, rng):
    """Gaussian noise, sigma 20 grey levels."""
    a = _grey(im)
    return _image(a + rng.normal(0, 20, a.shape))


def upscaled(im, rng):
    """A high-resolution scan: 2.5 times larger, bicubic."""
    w, h = im.size
    return im.resize((round(w * 2.5), round(h * 2.5)), Image.Resampling.BICUBIC)


CONDITIONS: dict[str, Callable] = {
    "clean": clean, "low contrast": low_contrast, "grey paper": grey_paper, "faint ink": faint_ink,
    "inverted": inverted, "blue ink, yellow paper": blue_on_yellow, "small scan (1/3, up)": small_scan,
    "JPEG q20": jpeg, "wide margin (30 px)": wide_margin, "noise sigma 20": noisy, "upscaled x2.5": upscaled,
}


def read_all(recognizer: Recognizer, images: list[Image.Image], batch: int, ink: tuple[bool, bool]) -> list[str]:
    """The texts read with the ink settings ``ink`` (auto_levels, crop_to_ink)."""
    recognizer.config.data.auto_levels, recognizer.config.data.crop_to_ink = ink
    texts = []
    for i in range(0, len(images), batch):
        texts += [r.text for r in recognizer.read(images[i:i + batch], decoder="greedy")]  # the network alone
    return texts


def paired(gold: list[str], a: list[str], b: list[str]) -> dict:
    """Words right in ``b`` but not ``a`` (fixed) and the reverse (broken), with the two-sided
    sign-test p-value of that difference."""
    fixed = sum(g != x and g == y for g, x, y in zip(gold, a, b))
    broken = sum(g == x and g != y for g, x, y in zip(gold, a, b))
    n, k = fixed + broken, min(fixed, broken)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0
    return {"fixed": fixed, "broken": broken, "sign_test_p": p}


def markdown(rows: list[dict]) -> list[str]:
    lines = ["| condition | word acc raw | CER raw | word acc ink | CER ink | fixed / broken (p) |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['condition']} | {100 * r['word_accuracy']:.1f} | {100 * r['cer']:.1f} | "
              f"{100 * r['word_accuracy_ink']:.1f} | {100 * r['cer_ink']:.1f} | "
              f"{r['fixed']} / {r['broken']} ({r['sign_test_p']:.2g}) |" for r in rows]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="IAM words folder (words.txt, words/, splits/)")
    parser.add_argument("--model", default="handwriting-en")
    parser.add_argument("--n", type=int, default=600, help="words sampled from the validation writers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--out", default="results/robustness")
    args = parser.parse_args()
    torch.set_num_threads(1)

    root = Path(args.data)
    items = sample(load_iam(root, read_ids([str(root / "splits" / f) for f in ("val1.txt", "val2.txt")])),
                   args.n, args.seed)
    gold = [it.text for it in items]
    originals = [open_image(it.path).convert("L") for it in items]
    recognizer = Recognizer.load(args.model, threads=1)

    d = recognizer.config.data
    settings = (d.auto_levels, d.crop_to_ink)
    rows, start = [], time.perf_counter()
    for c, (name, transform) in enumerate(CONDITIONS.items()):
        t0 = time.perf_counter()
        images = [transform(im, np.random.default_rng([args.seed, c, i])) for i, im in enumerate(originals)]
        raw = read_all(recognizer, images, args.batch, (False, False))
        ink = read_all(recognizer, images, args.batch, settings)
        rows.append({"condition": name, "word_accuracy": word_accuracy(gold, raw), "cer": cer(gold, raw),
                     "word_accuracy_ink": word_accuracy(gold, ink), "cer_ink": cer(gold, ink),
                     **paired(gold, raw, ink), "seconds": time.perf_counter() - t0})
        print(f"{name}: {100 * rows[-1]['word_accuracy']:.1f} -> {100 * rows[-1]['word_accuracy_ink']:.1f} "
              f"({rows[-1]['seconds']:.0f} s)", flush=True)

    lines = [(f"{args.model} on {len(items)} IAM validation words (seed {args.seed}); word accuracy and CER in %; "
             f"raw: the image only resized; ink: auto_levels {settings[0]}, crop_to_ink {settings[1]} (the "
             "model's config); fixed / broken: words read right only with the ink settings, and the reverse "
             "(two-sided sign test p)."), "", *markdown(rows), "",
             f"{time.perf_counter() - start:.0f} s in all (1 thread)."]
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "robustness.md", "\n".join(lines) + "\n")
    write_atomic(out / "robustness.json", json.dumps(
        {"model": args.model, "n": len(items), "seed": args.seed, "auto_levels": settings[0],
         "crop_to_ink": settings[1], "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
