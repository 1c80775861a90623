"""Run named experiments, evaluate each best checkpoint on a test location, tabulate.

    python experiments/run.py configs/report/captcha_*.toml configs/report/iam_report_*.toml \
        --captcha-test ../shared/data/captcha_v2/val \
        --iam-test ../shared/data/iam_words --iam-test-ids ../shared/data/iam_words/splits/val2.txt

The held-out test sets are not on this machine: pass validation data when running here, and
the real test location where it exists. Writes ``results/experiments/results.json`` and
``results/experiments/results.md`` (the table beside the report's numbers), and refreshes that table in
docs/results.md. A finished run (its
``best.pt`` and ``summary.json`` exist) is not trained again unless ``--retrain``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


from crnn_ocr import Config

from crnn_ocr.model import checkpoint
from crnn_ocr.model.pretrained import pretrained_start
from crnn_ocr.evaluation.evaluate import evaluate
from crnn_ocr.training.train import train

# The report's Tables 2 and 3: word accuracy / char BLEU on its test sets.
REPORT = {
    ("captcha", "resnet18", True): (53.27, 88.00), ("captcha", "resnet18", False): (49.07, 85.75),
    ("captcha", "simple", False): (0.00, 2.75),
    ("iam", "resnet18", True): (27.00, 57.81), ("iam", "resnet18", False): (21.60, 47.53),
    ("iam", "simple", False): (19.00, 41.13),
}


# Time-to-accuracy: the training wall time at which validation first reaches each threshold.
THRESHOLDS = {"iam": ("val_cer", [0.20, 0.15, 0.12, 0.10, 0.08]), "captcha": ("val_word_accuracy", [0.95, 0.99])}


def time_to(history: list[dict], kind: str) -> dict[str, float | None]:
    """Seconds of training (epochs and their validation, summed from the history) until the
    validation CER first falls to each threshold (IAM), or word accuracy first rises to it
    (captchas); None for a threshold never reached."""
    key, thresholds = THRESHOLDS[kind]
    reached, elapsed = {}, 0.0
    for row in history:
        elapsed += row["seconds"]
        for t in thresholds:
            good = row[key] <= t if key == "val_cer" else row[key] >= t
            if good and t not in reached:
                reached[t] = elapsed
    return {threshold_name(key, t): reached.get(t) for t in thresholds}


def threshold_name(key: str, t: float) -> str:
    return f"CER<={100 * t:g}%" if key == "val_cer" else f"acc>={100 * t:g}%"


def dataset_kind(cfg: Config) -> str:
    return "iam" if (Path(cfg.data.path) / "words.txt").is_file() else "captcha"


def run_one(config_path: Path, args) -> dict:
    name = config_path.stem
    cfg = Config.from_toml(config_path)
    if args.threads:
        cfg.train.threads = args.threads
    kind = dataset_kind(cfg)
    run_dir = Path(args.runs) / name
    summary_path = run_dir / "summary.json"
    finished = (run_dir / "best.pt").is_file() and (run_dir / "last.pt").is_file()
    if summary_path.is_file() and finished and not args.retrain:
        summary = json.loads(summary_path.read_text())
        print(f"[{name}] already trained ({summary['train_seconds']:.0f}s); evaluating again")
    else:
        t0 = time.time()
        if not finished or args.retrain:
            train(cfg, run_dir, overwrite=True)  # a retrain (or an unfinished run) starts afresh
            seconds = time.time() - t0
        else:  # trained by `crnn-ocr train --config` into this folder: time from its epochs
            print(f"[{name}] trained outside this script; summarising its history")
            seconds = None
        history = checkpoint.load(run_dir / "last.pt")["history"]
        best = min(history, key=lambda h: h["val_cer"])
        summary = {"train_seconds": seconds if seconds is not None else sum(h["seconds"] for h in history),
                   "best_epoch": best["epoch"], "epochs_run": len(history),
                   "img_per_s": sum(h["img_per_s"] for h in history) / len(history),
                   "val_word_accuracy": best["val_word_accuracy"], "val_cer": best["val_cer"],
                   "time_to": time_to(history, kind)}
        summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    if "time_to" not in summary:  # summarised before time-to-accuracy was recorded
        summary["time_to"] = time_to(checkpoint.load(run_dir / "last.pt")["history"], kind)

    test = args.captcha_test if kind == "captcha" else args.iam_test
    m = cfg.model
    start = pretrained_start(cfg)
    options = {"height": cfg.data.height, "column_pool": m.column_pool, "ctc_shortcut": m.ctc_shortcut,
               "shortcut_pool": m.shortcut_pool, "width_pool": m.width_pool, "cnn_blocks": sum(m.cnn_blocks),
               "pretrained": Path(start).name, "synthetic_mix": cfg.data.synthetic_mix,
               "train_images": cfg.data.train_limit or "all", "seed": cfg.train.seed,
               "erase": cfg.data.erase, "dropout": m.dropout, "lr": cfg.train.lr,
               "weight_decay": cfg.train.weight_decay, "cnn_lr": cfg.train.cnn_lr}
    result = {"config": name, "dataset": kind, "backbone": cfg.model.backbone,
              "pretrained": bool(start), "options": options, **summary}
    if test:
        ids = args.iam_test_ids if kind == "iam" else None
        metrics = evaluate(str(run_dir / "best.pt"), test, str(run_dir / "test"), split_ids=ids)
        result["test"] = {k: metrics[k] for k in ("n", "word_accuracy", "cer", "wer", "bleu")}
        result["test_location"] = Path(test).name + (f" ({', '.join(Path(i).name for i in ids)})" if ids else "")
        if kind == "iam" and args.lexicon:
            metrics = evaluate(str(run_dir / "best.pt"), test, str(run_dir / "test-lexicon"), split_ids=ids,
                               lexicon=args.lexicon)
            result["test_lexicon"] = {k: metrics[k] for k in ("n", "word_accuracy", "cer", "wer", "bleu")}
    return result


def markdown(results: list[dict]) -> str:
    lines = ["| config | backbone | pretrained | test on | word acc % | CER % | char BLEU | with lexicon: word acc % "
             "| report: word acc / BLEU | train time | img/s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: r["config"]):
        t, lex = r.get("test"), r.get("test_lexicon")
        report = REPORT.get((r["dataset"], r["backbone"], r["pretrained"]))
        scores = f"{100 * t['word_accuracy']:.2f} | {100 * t['cer']:.2f} | {t['bleu']:.2f}" if t else "- | - | -"
        lex_acc = f"{100 * lex['word_accuracy']:.2f}" if lex else "-"
        report_cell = f"{report[0]:.2f} / {report[1]:.2f}" if report else "-"
        lines.append(
            f"| {r['config']} | {r['backbone']} | {'yes' if r['pretrained'] else 'no'} | {r.get('test_location', '-')} "
            f"| {scores} | {lex_acc} | {report_cell} "
            f"| {r['train_seconds'] / 60:.1f} min | {r['img_per_s']:.0f} |")
    return "\n".join(lines) + "\n"


def minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f}"


def other(options: dict) -> str:
    """Dropout, learning rate and occlusion of a run, its weight decay where recorded and the
    CNN's share of the learning rate where not 1 ('-' for results recorded before they were)."""
    if "dropout" not in options:
        return "-"
    erase = f", erase {options['erase']:g}" if options["erase"] else ""
    decay = f", weight decay {options['weight_decay']:g}" if "weight_decay" in options else ""
    cnn_lr = f", CNN lr x{options['cnn_lr']:g}" if options.get("cnn_lr", 1) != 1 else ""
    return f"dropout {options['dropout']:g}, lr {options['lr']:g}{erase}{decay}{cnn_lr}"


def ablation_markdown(results: list[dict]) -> str:
    """One row per run with the options it sets, its scores and its time to each threshold."""
    kinds = sorted({r["dataset"] for r in results})
    parts = []
    for kind in kinds:
        runs = sorted((r for r in results if r["dataset"] == kind), key=lambda r: r["config"])
        keys = list(runs[0]["time_to"])
        parts += [f"### {kind}", "",
                  "| config | train images | synthetic mix | height | column pool | shortcut | res. blocks "
                  "| pretrained | other | seed | epochs (best) | scored on | word acc % | CER % | lexicon word acc % "
                  "| train min | "
                  + " | ".join(f"min to {k}" for k in keys) + " |",
                  "|" + "---|" * (16 + len(keys))]
        for r in runs:
            o, t, lex = r["options"], r.get("test") or {}, r.get("test_lexicon") or {}
            acc = f"{100 * t['word_accuracy']:.2f}" if t else f"{100 * r['val_word_accuracy']:.2f}"
            lex_acc = f"{100 * lex['word_accuracy']:.2f}" if lex else "-"
            err = f"{100 * t['cer']:.2f}" if t else f"{100 * r['val_cer']:.2f}"
            # Without a test location the scores are those of the validation the run trained with
            # (a sample, if the config sets val_limit): say so, as the two do not compare.
            scored = r.get("test_location") or "its training validation"
            shortcut = o["ctc_shortcut"] or "-"
            if o["ctc_shortcut"] and o.get("shortcut_pool", 1) > 1:  # older results have no shortcut_pool
                shortcut = f"{shortcut} (columns pooled by {o['shortcut_pool']})"
            epochs = f"{r['epochs_run']} ({r['best_epoch']})" if "epochs_run" in r else "-"
            columns = o["column_pool"] + (f", 1 per {o['width_pool']} px" if o.get("width_pool", 4) != 4 else "")
            parts.append(f"| {r['config']} | {o['train_images']} | {o.get('synthetic_mix') or '-'} "
                         f"| {o['height']} | {columns} "
                         f"| {shortcut} | {o['cnn_blocks'] or '-'} | {o['pretrained'] or '-'} | {other(o)} "
                         f"| {o['seed']} "
                         f"| {epochs} | {scored} | {acc} | {err} | {lex_acc} "
                         f"| {minutes(r['train_seconds'])} | "
                         + " | ".join(minutes(r["time_to"][k]) for k in keys) + " |")
        parts.append("")
    return "\n".join(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("configs", nargs="+", type=Path)
    p.add_argument("--captcha-test", help="folder of captcha test images (labels from file names)")
    p.add_argument("--iam-test", help="IAM root to test on")
    p.add_argument("--iam-test-ids", nargs="+", help="word-id lists of the IAM test split")
    p.add_argument("--lexicon", nargs="+", help="word lists for lexicon decoding of the IAM runs "
                   "(the training labels are added; never give test labels)")
    p.add_argument("--runs", default="runs/experiments", help="where the run folders go")
    p.add_argument("--out", default="results/experiments", help="where results.json and results.md go")
    p.add_argument("--threads", type=int, help="torch threads per run (default: the config's, else all cores)")
    p.add_argument("--page", default="docs/results.md", help="page whose results table to refresh ('' = none)")
    p.add_argument("--retrain", action="store_true", help="train again even if a run is finished")
    p.add_argument("--ablations", action="store_true", help="also add these runs to results/ablations/ablations.json "
                   "and write results/ablations/ablations.md (options, scores, time to each threshold)")
    args = p.parse_args()
    results = [run_one(c, args) for c in args.configs]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    merged = merge(out / "results.json", results)
    table = markdown(merged)
    (out / "results.md").write_text(table)
    if args.page:
        update_page(Path(args.page), table)
    print(table)
    if args.ablations:
        folder = out.parent / "ablations"
        folder.mkdir(exist_ok=True)
        ablations = ablation_markdown(merge(folder / "ablations.json", results))
        (folder / "ablations.md").write_text(ABLATIONS_HEADER + ablations)
        print(ablations)


ABLATIONS_HEADER = """# Ablations

Written by `experiments/run.py --ablations`. Validation data only (IAM: val1 + val2; captchas:
captcha_v2/val). "min to X": minutes of training (epochs and their validation) until the
validation CER first fell to X (IAM) or the word accuracy first rose to X (captchas); "-" = never.
"scored on": the words of the scores: the given test location (`--iam-test`, `--captcha-test`),
else the validation set the run trained with (for the report-scale arms, a 500-word sample of
val1 + val2), and the two do not compare. "other": dropout, learning rate and occlusion
(`erase`), weight decay where recorded and the CNN's share of the learning rate (`cnn_lr`)
where not 1, "-" for runs recorded before the table showed them.

"""


def merge(path: Path, results: list[dict]) -> list[dict]:
    """The runs recorded in ``path`` updated with ``results`` (by config name), written back."""
    old = json.loads(path.read_text()) if path.is_file() else []
    merged = list(({r["config"]: r for r in old} | {r["config"]: r for r in results}).values())
    path.write_text(json.dumps(merged, indent=2) + "\n")
    return merged


def update_page(path: Path, table: str) -> None:
    """Put ``table`` between the page's results markers (docs/results.md), so it shows what was run."""
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    text = path.read_text() if path.is_file() else ""
    if start not in text or end not in text:
        print(f"{path}: no {start} ... {end} markers; not updated")
        return
    head, rest = text.split(start, 1)
    path.write_text(head + start + "\n" + table + rest[rest.index(end):])


if __name__ == "__main__":
    main()
