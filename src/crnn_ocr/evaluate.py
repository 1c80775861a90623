"""Score a checkpoint on a dataset and write the evaluation report.

The images are read by ``inference.infer``, like everywhere else; the report is
``metrics.json``, ``predictions.tsv``, ``samples.png``, ``confusion.png`` and ``report.md``
showing them together.
"""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from . import metrics, plots
from .checkpoint import load, model_of
from .dataset import OCRDataset
from .inference import infer
from .items import DataError, Skipped
from .lexicon import Lexicon
from .sources import evaluation_items


def escape_md(text: str) -> str:
    """Text safe inside a Markdown table cell: HTML and Markdown specials escaped."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for c in "\\`*_[]|#!":
        text = text.replace(c, "\\" + c)
    return text.replace("\n", " ")


def evaluate(checkpoint: str | Path, data: str | Path, out: str | Path, label_sep: str = "",
             split_ids: list[str] | None = None, keep_err: bool = False, batch_size: int = 256,
             lexicon: list[str] | None = None, log=print) -> dict:
    """Score ``checkpoint`` on every readable item of ``data`` and write the report to ``out``.

    With ``lexicon`` (word-list files), predictions are lexicon-decoded over those words plus
    the checkpoint's training labels; ``metrics.json`` then also holds the greedy scores."""
    t0 = time.time()
    if batch_size < 1:
        raise ValueError(f"--batch-size {batch_size}: must be a whole number >= 1")
    ckpt = load(checkpoint)
    model, charset, config = model_of(ckpt, checkpoint)
    d = config.data
    skipped = Skipped()
    items = evaluation_items(data, label_sep or d.label_sep, split_ids, keep_err, skipped)
    ds = OCRDataset(items, d.height, d.width, d.channels, skipped)
    if not len(ds):
        raise DataError(f"no readable images in {data} (skipped: {skipped})")
    read = infer(model, ds.images, charset, batch_size=batch_size, trim=d.trim_padding)
    pred, confidence = read.texts, read.confidences
    gold = [it.text for it in ds.items]
    result = metrics.scores(gold, pred)
    if lexicon:
        words = Lexicon.from_files(lexicon, extra=ckpt.get("vocabulary", []))
        read = infer(model, ds.images, charset, words, batch_size, trim=d.trim_padding)
        pred, confidence = read.texts, read.confidences
        result = metrics.scores(gold, pred) | {"decoding": f"lexicon of {len(words)} words", "greedy": result}
    result["skipped"] = dict(skipped)
    result["unknown_characters"] = "".join(sorted(set().union(*(charset.unknown(g) for g in gold))))
    result["seconds"] = round(time.time() - t0, 2)

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    with open(out_dir / "predictions.tsv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        w.writerow(["path", "gold", "prediction", "correct", "confidence"])
        for it, p, c in zip(ds.items, pred, confidence):
            w.writerow([it.path, it.text, p, int(it.text == p), f"{c:.4f}"])
    errors = [i for i, (g, p) in enumerate(zip(gold, pred)) if g != p]
    shown = (errors[:8] + [i for i in range(len(gold)) if gold[i] == pred[i]][:8])[:16]
    plots.sample_grid(ds.images[shown], [gold[i] for i in shown], [pred[i] for i in shown],
                      out_dir / "samples.png", title="errors first (red), then correct")
    plots.confusion_matrix(metrics.confusions(gold, pred), out_dir / "confusion.png")
    write_report(out_dir, checkpoint, data, result, [(ds.items[i].path, gold[i], pred[i]) for i in errors[:20]])
    log(f"evaluated {result['n']} images: word accuracy {100 * result['word_accuracy']:.2f}%, "
        f"CER {100 * result['cer']:.2f}%, WER {100 * result['wer']:.2f}%, char BLEU {result['bleu']:.2f}"
        + (f"; skipped {skipped}" if skipped else ""))
    return result


def write_report(out_dir: Path, checkpoint: str | Path, data: str | Path, result: dict, errors: list[tuple]) -> None:
    lines = [
        "# crnn-ocr evaluation", "",
        f"- checkpoint: {escape_md(Path(checkpoint).name)}",  # no code span: it would show the escapes
        f"- data: {escape_md(Path(data).name)} ({result['n']} images"
        + (f"; skipped: {escape_md(', '.join(f'{n} {r}' for r, n in result['skipped'].items()))}" if result["skipped"] else "")
        + ")", "",
        "| word accuracy | CER | WER | char BLEU |", "|---|---|---|---|",
        f"| {100 * result['word_accuracy']:.2f}% | {100 * result['cer']:.2f}% | {100 * result['wer']:.2f}% "
        f"| {result['bleu']:.2f} |", "",
        "## Samples", "", "![samples](samples.png)", "",
        "## Character confusions", "", "![confusion matrix](confusion.png)", "",
    ]
    if errors:
        lines += ["## First errors", "", "| image | gold | prediction |", "|---|---|---|"]
        lines += [f"| {escape_md(Path(p).name)} | {escape_md(g)} | {escape_md(q)} |" for p, g, q in errors]
    (out_dir / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
