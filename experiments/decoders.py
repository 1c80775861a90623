"""Measure what each decoder gains and costs on a handwriting model: greedy, lexicon, language model.

    python experiments/decoders.py --checkpoint runs/experiments/iam_full_shortcut/best.pt \
        --iam ../shared/data/iam_words --tune-ids ../shared/data/iam_words/splits/val1.txt \
        --eval-ids ../shared/data/iam_words/splits/val1.txt ../shared/data/iam_words/splits/val2.txt \
        --words /usr/share/dict/american-english --out results/decoders/decoders.json

Lines (or any labels.tsv folders): ``--tune-data DIR --eval-data DIR ...`` in place of the
IAM ids. The lexicon decoder answers one word, so it is left out when a label holds a space.

The model reads every image once; each decoder then decodes the same log-probabilities, so the
times are the decoders' own (ms per image, one thread). The language model's weights (alpha,
beta) are chosen on ``--tune-ids`` or ``--tune-data`` (validation data, never test data; all of
it unless ``--tune-n`` says how many of its first images); the word list and the checkpoint's
training labels are the only text the lexicon and the language model see. For lines, "word accuracy" is the share of
lines read exactly.
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

from crnn_ocr.hub import registry
from crnn_ocr.model.checkpoint import load as load_checkpoint, model_of
from crnn_ocr.data.datasets import decode_images
from crnn_ocr.reading.infer import as_arrays, batches
from crnn_ocr.reading.infer import log_probs_of as model_log_probs
from crnn_ocr.data.items import Skipped
from crnn_ocr.data.layouts import items_of, load_iam, read_ids
from crnn_ocr.decoding.lexicon import Lexicon, read_word_counts
from crnn_ocr.decoding.lm import CharNgram, LMDecoder
from crnn_ocr.evaluation.metrics import cer, word_accuracy
from crnn_ocr.reading.recognizer import Prepared, Recognizer


def log_probs_of(rec: Recognizer, images) -> list[np.ndarray]:
    """Each image's (T, 1, classes) log-probabilities, read at its own width if the model was
    trained that way (by PyTorch or ONNX Runtime, as the model was loaded)."""
    out: list[np.ndarray | None] = [None] * len(images)
    for index, batch in batches(as_arrays(images), 128, rec.config.data.trim_padding):
        lp = model_log_probs(rec.model, np.ascontiguousarray(batch))
        for j, i in enumerate(index.tolist()):
            out[i] = lp[:, j : j + 1]
    return out


def score(decoder, log_probs: list[np.ndarray], gold: list[str], charset) -> dict:
    t0 = time.perf_counter()
    pred = [decoder(lp, charset)[0].text for lp in log_probs]
    ms = 1000 * (time.perf_counter() - t0) / len(log_probs)
    return {"word_accuracy": word_accuracy(gold, pred), "cer": cer(gold, pred), "ms_per_image": ms}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a checkpoint, model file or bundled model name")
    p.add_argument("--iam", help="IAM words root (with --tune-ids and --eval-ids)")
    p.add_argument("--tune-ids", nargs="+", help="validation id lists to choose alpha, beta on")
    p.add_argument("--eval-ids", nargs="+", help="validation id lists to report on")
    p.add_argument("--tune-data", nargs="+", help="or: labels.tsv folders to choose alpha, beta on")
    p.add_argument("--eval-data", nargs="+", help="or: labels.tsv folders to report on")
    p.add_argument("--tune-n", type=int, default=0, help="images of the tuning set used for the choice "
                   "(0: all; a few hundred easy words give a flat grid that can choose badly)")
    p.add_argument("--words", nargs="+", required=True, help="word lists (e.g. /usr/share/dict/american-english)")
    p.add_argument("--alphas", type=float, nargs="+", default=[0.3, 0.6, 1.0])
    p.add_argument("--betas", type=float, nargs="+", default=[0.0, 1.0, 2.0])
    p.add_argument("--out", default="results/decoders/decoders.json")
    args = p.parse_args()
    by_ids, by_folders = (args.iam, args.tune_ids, args.eval_ids), (args.tune_data, args.eval_data)
    if not (all(by_ids) and not any(by_folders) or all(by_folders) and not any(by_ids)):
        p.error("give --iam with --tune-ids and --eval-ids, or --tune-data and --eval-data (not both)")
    return args


def load_scored(rec: Recognizer, iam: str | None, ids: list[str] | None, folders: list[str] | None, n: int = 0):
    """The model's log-probabilities of IAM words (``ids``) or labels.tsv folders, the first
    ``n`` (0: all), and their labels; unreadable images are left out."""
    d = rec.config.data
    items = load_iam(iam, read_ids(ids), skipped=Skipped()) if ids else \
        [it for f in folders for it in items_of(Path(f), "", Skipped())]
    items = items[:n] if n else items
    if d.any_width:
        prepared = [(p, it) for p, it in zip(rec._prepare([it.path for it in items]), items) if isinstance(p, Prepared)]
        images, items = [p.image for p, _ in prepared], [it for _, it in prepared]
    else:
        images, items = decode_images(items, d.height, d.width, d.channels, Skipped(), levels=d.auto_levels,
                                      crop=d.crop_to_ink)
    return log_probs_of(rec, images), [it.text for it in items]


def tune(lm: CharNgram, log_probs, gold: list[str], charset, alphas, betas) -> dict:
    """The language model's score for each (alpha, beta) of the grid, printed as it goes."""
    grid = {}
    for alpha, beta in itertools.product(alphas, betas):
        grid[(alpha, beta)] = score(LMDecoder(lm, alpha, beta), log_probs, gold, charset)
        print(f"tune alpha {alpha} beta {beta}: CER {100 * grid[(alpha, beta)]['cer']:.2f}%", flush=True)
    return grid


def main() -> None:
    from crnn_ocr.decoding.ctc import GreedyDecoder

    args = parse_args()
    torch.set_num_threads(1)
    path = registry.resolve(args.checkpoint)
    ckpt = load_checkpoint(path)  # once: the model and its training labels
    rec, vocabulary = Recognizer(*model_of(ckpt, path)), ckpt.get("vocabulary", [])
    t0 = time.perf_counter()
    counts = read_word_counts(args.words)
    words = len(counts)
    counts.update(vocabulary)  # the training labels, each as often as it occurs
    lm = CharNgram.from_texts(counts)
    lm_build = time.perf_counter() - t0

    tune_lp, tune_gold = load_scored(rec, args.iam, args.tune_ids, args.tune_data, args.tune_n)
    grid = tune(lm, tune_lp, tune_gold, rec.charset, args.alphas, args.betas)
    alpha, beta = min(grid, key=lambda k: grid[k]["cer"])

    eval_lp, eval_gold = load_scored(rec, args.iam, args.eval_ids, args.eval_data)
    results = {"checkpoint": Path(args.checkpoint).name, "n": len(eval_gold),
               "eval": [Path(i).name for i in args.eval_ids or args.eval_data],
               "tuned_on": f"first {len(tune_gold)} images of " + ", ".join(Path(i).name for i in
                                                                          args.tune_ids or args.tune_data),
               "lm": {"order": lm.order, "alpha": alpha, "beta": beta, "build_seconds": round(lm_build, 1),
                      "texts": f"{words} word-list words + {len(vocabulary)} training labels"},
               "tuning": [{"alpha": a, "beta": b, **s} for (a, b), s in grid.items()], "decoders": {}}
    lines = any(" " in g for g in eval_gold)  # the lexicon decoder answers a single word
    for name, decoder in [("greedy", GreedyDecoder()), ("lexicon", None if lines else Lexicon(counts)),
                          ("lm", LMDecoder(lm, alpha, beta))]:
        if decoder is None:
            continue
        results["decoders"][name] = s = score(decoder, eval_lp, eval_gold, rec.charset)
        print(f"{name}: word accuracy {100 * s['word_accuracy']:.2f}%, CER {100 * s['cer']:.2f}%, "
              f"{s['ms_per_image']:.2f} ms/image", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
