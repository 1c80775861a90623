"""Score a model on a dataset and write the evaluation report.

The images are read by ``infer.infer``, like everywhere else; the report is
``metrics.json``, ``predictions.tsv``, ``samples.png``, ``confusion.png`` and ``report.md``
showing them together. It runs on the core install (no PyTorch); without matplotlib (the
training extra) the report has no figures and says so.
"""
from __future__ import annotations

import csv
import importlib.util
import io
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crnn_ocr.config.sections import DataConfig
from crnn_ocr.reading.images import BadImage, ImageTooWide, load_array
from crnn_ocr.data.items import DataError, Item, Skipped
from crnn_ocr.data.sources import evaluation_items, evaluation_root
from crnn_ocr.decoding.lexicon import Lexicon
from crnn_ocr.evaluation import metrics
from crnn_ocr.reading.infer import Images, infer, take
from crnn_ocr.reading.recognizer import Recognizer, decoder_lists
from crnn_ocr.utils.files import shown, unicode_text, write_atomic

FIGURES_NEED = "matplotlib"  # the figures come with the training extra


def can_draw() -> bool:
    """Whether matplotlib is installed (found without importing it)."""
    try:
        return importlib.util.find_spec(FIGURES_NEED) is not None
    except ImportError:
        return False


@dataclass
class Loaded:
    """A dataset's images as the model reads them (an array, or a list in any-width mode) and
    the items they belong to; ``scaled_down``: the images wider than ``max_width``."""

    images: Images
    items: list[Item]
    scaled_down: list[str] = field(default_factory=list)


def load_items(items: list[Item], d: DataConfig, skipped: Skipped) -> Loaded:
    """Decode and preprocess every item as the model's ``DataConfig`` says; an image that
    cannot be read is counted in ``skipped`` under its reason."""
    arrays, kept, scaled_down = [], [], []
    for it in items:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                arrays.append(load_array(it.image if it.image is not None else it.path, d.height, d.width,
                                         d.channels, d.max_width, it.path, d.auto_levels, d.crop_to_ink))
                kept.append(it)
            except BadImage as e:
                skipped[f"image {str(e).split(' (')[0]}"] += 1  # the reason without file-specific details
        for w in caught:
            warnings.warn(w.message, w.category, stacklevel=2)
            if issubclass(w.category, ImageTooWide):
                scaled_down.append(it.path)
    if d.width:
        arrays = np.stack(arrays) if arrays else np.zeros((0, d.channels, d.height, d.width), dtype=np.uint8)
    return Loaded(arrays, kept, scaled_down)


def bleu_text(bleu: float | None) -> str:
    """Character BLEU as shown, or why it is missing (``metrics.char_bleu``)."""
    return f"{bleu:.2f}" if bleu is not None else "n/a (needs sacrebleu: pip install 'crnn-ocr[train]')"


def escape_md(text: str) -> str:
    """Text safe inside a Markdown table cell: HTML and Markdown specials escaped."""
    text = shown(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for c in "\\`*_[]|#!":
        text = text.replace(c, "\\" + c)
    return text.replace("\n", " ")


def evaluate(checkpoint: str | Path, data: str | Path, out: str | Path, label_sep: str = "",
             split_ids: list[str] | None = None, keep_err: bool = False, batch_size: int = 256,
             lexicon: list[str] | None = None, log=print, decoder: str | None = None,
             words: list[str] | None = None, threads: int = 0, device: str = "cpu") -> dict:
    """Score ``checkpoint`` (a bundled model's name, a ``.pt``, ``.safetensors`` or ``.onnx``
    file) on every readable item of ``data`` and write the report to ``out``.

    ``decoder``: ``"greedy"``, ``"lexicon"`` (over the words of the ``lexicon`` files) or
    ``"lm"`` (a language model of the ``words`` files), each with the model's training labels
    added; by default lexicon with ``lexicon``, lm with ``words``, else the model's default
    (``Recognizer.default_decoder``: lm for the bundled handwriting models, else greedy). With
    another decoder than greedy, ``metrics.json`` also holds the greedy scores.

    Every report file is written to a temporary file and renamed into place, so a failure
    leaves the previous report as it was. File names that are not UTF-8 are written with
    their odd bytes as ``\\xNN``."""
    t0 = time.time()
    if batch_size < 1:
        raise ValueError(f"--batch-size {batch_size}: must be a whole number >= 1")
    decoder, lists = decoder_lists(decoder, lexicon, words)
    rec = Recognizer.load(checkpoint, threads, device=device, **lists)
    decoder = decoder or rec.default_decoder
    model, charset, d = rec.model, rec.charset, rec.config.data
    skipped = Skipped()
    _, note = evaluation_root(data)
    if note:
        log(f"note: {note}")
    items = evaluation_items(data, label_sep or d.label_sep, split_ids, keep_err, skipped)
    ds = load_items(items, d, skipped)
    if not len(ds.items):
        raise DataError(f"no readable images in {shown(data)} (skipped: {skipped.detail()})")
    read = infer(model, ds.images, charset, batch_size=batch_size, trim=d.trim_padding)
    pred, confidence = read.texts, read.confidences
    gold = [it.text for it in ds.items]
    result = metrics.scores(gold, pred)
    if decoder != "greedy":
        chosen = rec._decoder(decoder)
        read = infer(model, ds.images, charset, chosen, batch_size, trim=d.trim_padding)
        pred, confidence = read.texts, read.confidences
        how = f"lexicon of {len(chosen)} words" if isinstance(chosen, Lexicon) else "character language model"
        result = metrics.scores(gold, pred) | {"decoding": how, "greedy": result}
    result["calibration"] = metrics.calibration(gold, pred, confidence)
    if note:
        result["note"] = note
    result["skipped"] = dict(skipped)
    if ds.scaled_down:
        result["scaled_down_to_max_width"] = len(ds.scaled_down)
    result["unknown_characters"] = "".join(sorted(set().union(*(charset.unknown(g) for g in gold))))
    result["seconds"] = round(time.time() - t0, 2)

    write_outputs(Path(out), checkpoint, data, ds, pred, confidence, result)
    greedy = result.get("greedy")
    log(f"evaluated {result['n']} images ({decoder} decoder): word accuracy {100 * result['word_accuracy']:.2f}%, "
        f"CER {100 * result['cer']:.2f}%, WER {100 * result['wer']:.2f}%, char BLEU {bleu_text(result['bleu'])}"
        + (f"; greedy: {100 * greedy['word_accuracy']:.2f}%, CER {100 * greedy['cer']:.2f}%" if greedy else "")
        + (f"; skipped {skipped}" if skipped else "") + (f" ({note})" if note else ""))
    return result


def write_outputs(out_dir: Path, checkpoint: str | Path, data: str | Path, ds: Loaded, pred: list[str],
                  confidence: list[float], result: dict) -> None:
    """predictions.tsv, samples.png and confusion.png (with matplotlib), report.md and, last, metrics.json."""
    gold = [it.text for it in ds.items]
    out_dir.mkdir(parents=True, exist_ok=True)
    table = io.StringIO()
    w = csv.writer(table, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(["path", "gold", "prediction", "correct", "confidence"])
    for it, p, c in zip(ds.items, pred, confidence):
        w.writerow([unicode_text(it.path), unicode_text(it.text), unicode_text(p), int(it.text == p), f"{c:.4f}"])
    write_atomic(out_dir / "predictions.tsv", table.getvalue())
    errors = [i for i, (g, p) in enumerate(zip(gold, pred)) if g != p]
    grid = (errors[:8] + [i for i in range(len(gold)) if gold[i] == pred[i]][:8])[:16]
    if can_draw():
        from crnn_ocr.evaluation import plots

        plots.sample_grid(take(ds.images, grid), [gold[i] for i in grid], [pred[i] for i in grid],
                          out_dir / "samples.png", title="errors first (red), then correct")
        plots.confusion_matrix(metrics.confusions(gold, pred), out_dir / "confusion.png")
    write_report(out_dir, checkpoint, data, result, [(ds.items[i].path, gold[i], pred[i]) for i in errors[:20]])
    # metrics.json last: its presence says the whole report is there
    write_atomic(out_dir / "metrics.json", json.dumps(result, indent=2, ensure_ascii=False) + "\n")


def write_report(out_dir: Path, checkpoint: str | Path, data: str | Path, result: dict, errors: list[tuple]) -> None:
    skipped = ", ".join(f"{n} {reason}" for reason, n in result["skipped"].items())
    lines = [
        "# crnn-ocr evaluation", "",
        f"- checkpoint: {escape_md(Path(checkpoint).name)}",  # no code span: it would show the escapes
        f"- data: {escape_md(Path(data).name)} ({result['n']} images"
        + (f"; skipped: {escape_md(skipped)}" if skipped else "") + ")",
        *([f"- note: {escape_md(result['note'])}"] if result.get("note") else []), "",
        "| word accuracy | CER | WER | char BLEU |", "|---|---|---|---|",
        f"| {100 * result['word_accuracy']:.2f}% | {100 * result['cer']:.2f}% | {100 * result['wer']:.2f}% "
        f"| {bleu_text(result['bleu'])} |", "",
        "## Confidence", "", "How often a reading is right, by its confidence:", "",
        "| confidence | images | right |", "|---|---|---|",
        *[f"| {r['from']:.1f}-{r['to']:.1f} | {r['n']} | "
          + ("-" if r["correct"] is None else f"{100 * r['correct']:.1f}%") + " |" for r in result["calibration"]], "",
    ]
    if can_draw():
        lines += ["## Samples", "", "![samples](samples.png)", "",
                  "## Character confusions", "", "![confusion matrix](confusion.png)", ""]
    else:
        lines += ["No figures: they need matplotlib (pip install 'crnn-ocr[train]').", ""]
    if errors:
        lines += ["## First errors", "", "| image | gold | prediction |", "|---|---|---|"]
        lines += [f"| {escape_md(Path(p).name)} | {escape_md(g)} | {escape_md(q)} |" for p, g, q in errors]
    write_atomic(out_dir / "report.md", "\n".join(lines) + "\n")
