"""Measure test-time views: does averaging a model's character probabilities over a few fixed
variants of each image (slanted either way, thicker or thinner strokes) read handwriting better
than the image alone, and at what cost? With ``--also``, other models of the same input size
join as further "views" of the image (an ensemble).

    python experiments/tta.py --checkpoint handwriting-en --iam ../shared/data/iam_words \
        --ids ../shared/data/iam_words/splits/val1.txt ../shared/data/iam_words/splits/val2.txt

Every view keeps the image's size, so each gives the same number of output columns and the
probabilities average column by column (then greedy decoding). The model reads every image
once per view; each combination of views is then scored from those log-probabilities.
Validation data only.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from decoders import log_probs_of

from crnn_ocr.hub import registry
from crnn_ocr.model.checkpoint import load as load_checkpoint, model_of
from crnn_ocr.decoding.ctc import GreedyDecoder
from crnn_ocr.data.datasets import decode_images
from crnn_ocr.data.items import Skipped
from crnn_ocr.data.layouts import load_iam, read_ids
from crnn_ocr.evaluation.metrics import cer, word_accuracy
from crnn_ocr.reading.recognizer import Recognizer


def slanted(x: torch.Tensor, shear: float) -> torch.Tensor:
    """``x`` sheared horizontally by ``shear`` pixels per pixel of height about the middle row
    (positive: the top moves right, a forward slant)."""
    n, _, h, w = x.shape
    theta = torch.tensor([[1.0, shear * h / w, 0.0], [0.0, 1.0, 0.0]]).expand(n, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


VIEWS = {
    "image": lambda x: x,
    "slant+": lambda x: slanted(x, 0.1),
    "slant-": lambda x: slanted(x, -0.1),
    "thick": lambda x: -F.max_pool2d(-x, 3, stride=1, padding=1),  # ink is dark: a min filter
    "thin": lambda x: F.max_pool2d(x, 3, stride=1, padding=1),
}


class Viewed:
    """A model that reads ``x`` (float images as numpy, as ``infer`` gives an ONNX model) through one view."""

    def __init__(self, model, view):
        self.model, self.view = model, view

    def __call__(self, x):
        with torch.no_grad():
            return self.model(self.view(torch.as_tensor(x))).numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a checkpoint, model file or bundled model name")
    p.add_argument("--iam", required=True, help="IAM words root")
    p.add_argument("--ids", nargs="+", required=True, help="validation id lists")
    p.add_argument("--also", nargs="*", default=[], help="other models of the same input size to average with")
    p.add_argument("--views", nargs="*", default=list(VIEWS), choices=list(VIEWS), help="the views to try")
    p.add_argument("--limit", type=int, default=0, help="only the first N words (0: all)")
    p.add_argument("--out", default="results/tta/tta.json")
    args = p.parse_args()
    torch.set_num_threads(1)
    path = registry.resolve(args.checkpoint)
    rec = Recognizer(*model_of(load_checkpoint(path), path))
    d = rec.config.data
    items = load_iam(args.iam, read_ids(args.ids), skipped=Skipped())
    items = items[: args.limit] if args.limit else items
    images, items = decode_images(items, d.height, d.width, d.channels, Skipped(), levels=d.auto_levels,
                                  crop=d.crop_to_ink)
    gold = [it.text for it in items]
    lp, seconds = {}, {}
    readers = {name: Viewed(rec.model, VIEWS[name]) for name in args.views}
    for other in args.also:
        other_path = registry.resolve(other)
        readers[Path(other).name] = model_of(load_checkpoint(other_path), other_path)[0]
    for name, reader in readers.items():
        t0 = time.perf_counter()
        lp[name] = log_probs_of(Recognizer(reader, rec.charset, rec.config), images)
        seconds[name] = time.perf_counter() - t0
        print(f"{name}: {1000 * seconds[name] / len(gold):.1f} ms/word", flush=True)
    results = {"checkpoint": Path(args.checkpoint).name, "n": len(gold), "eval": [Path(i).name for i in args.ids],
               "ms_per_word": {k: 1000 * s / len(gold) for k, s in seconds.items()}, "views": []}
    greedy = GreedyDecoder()
    others = [v for v in readers if v != "image"]
    for k in range(len(others) + 1):
        for extra in itertools.combinations(others, k):
            chosen = ("image",) + extra
            pred = []
            for i in range(len(gold)):
                mean = torch.logsumexp(torch.stack([torch.as_tensor(lp[v][i]) for v in chosen]), 0) - math.log(len(chosen))
                pred.append(greedy(mean, rec.charset)[0].text)
            row = {"views": list(chosen), "word_accuracy": word_accuracy(gold, pred), "cer": cer(gold, pred)}
            results["views"].append(row)
            print(f"{' + '.join(chosen)}: {100 * row['word_accuracy']:.2f}% / CER {100 * row['cer']:.2f}%",
                  flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
