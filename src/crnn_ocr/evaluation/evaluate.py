"""Score a checkpoint on a dataset and write the evaluation report.

The images are read by ``inference.infer``, like everywhere else; the report is
``metrics.json``, ``predictions.tsv``, ``samples.png``, ``confusion.png`` and ``report.md``
showing them together.
"""
from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

from crnn_ocr.evaluation import metrics, plots
from crnn_ocr.data.datasets import OCRDataset
from crnn_ocr.utils.files import shown, unicode_text, write_atomic
from crnn_ocr.reading.infer import infer, take
from crnn_ocr.data.items import DataError, Skipped
from crnn_ocr.decoding.lexicon import Lexicon
from crnn_ocr.reading.recognizer import Recognizer, decoder_lists
from crnn_ocr.data.sources import evaluation_items, evaluation_root


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
    ds = OCRDataset(items, d.height, d.width, d.channels, skipped, max_width=d.max_width, levels=d.auto_levels,
                    crop=d.crop_to_ink)
    if not len(ds):
        raise DataError(f"no readable images in {shown(data)} (skipped: {skipped.detail()})")
    read = infer(model, ds.images, charset, batch_size=batch_size, trim=d.trim_padding)
    pred, confidence = read.texts, read.confidences
    gold = [it.text for it in ds.items]
    result = metrics.scores(gold, pred)
    if decoder != "greedy":
        chosen = rec.decoder(decoder)
        read = infer(model, ds.images, charset, chosen, batch_size, trim=d.trim_padding)
        pred, confidence = read.texts, read.confidences
        how = f"lexicon of {len(chosen)} words" if isinstance(chosen, Lexicon) else "character language model"
        result = metrics.scores(gold, pred) | {"decoding": how, "greedy": result}
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
        f"CER {100 * result['cer']:.2f}%, WER {100 * result['wer']:.2f}%, char BLEU {result['bleu']:.2f}"
        + (f"; greedy: {100 * greedy['word_accuracy']:.2f}%, CER {100 * greedy['cer']:.2f}%" if greedy else "")
        + (f"; skipped {skipped}" if skipped else "") + (f" ({note})" if note else ""))
    return result


def write_outputs(out_dir: Path, checkpoint: str | Path, data: str | Path, ds: OCRDataset, pred: list[str],
                  confidence: list[float], result: dict) -> None:
    """predictions.tsv, samples.png, confusion.png, report.md and, last, metrics.json."""
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
        f"| {result['bleu']:.2f} |", "",
        "## Samples", "", "![samples](samples.png)", "",
        "## Character confusions", "", "![confusion matrix](confusion.png)", "",
    ]
    if errors:
        lines += ["## First errors", "", "| image | gold | prediction |", "|---|---|---|"]
        lines += [f"| {escape_md(Path(p).name)} | {escape_md(g)} | {escape_md(q)} |" for p, g, q in errors]
    write_atomic(out_dir / "report.md", "\n".join(lines) + "\n")
