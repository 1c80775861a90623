"""Run named experiments, evaluate each best checkpoint on a test location, tabulate.

    python experiments/run.py configs/captcha_*.toml configs/iam_report_*.toml \
        --captcha-test ../shared/data/captcha_v2/val \
        --iam-test ../shared/data/iam_words --iam-test-ids ../shared/data/iam_words/splits/val2.txt

The held-out test sets are not on this machine: pass validation data when running here, and
the real test location where it exists. Writes ``results/results.json`` and
``results/results.md`` (the table beside the report's numbers), and refreshes that table in
the README. A finished run (its
``best.pt`` and ``summary.json`` exist) is not trained again unless ``--retrain``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from crnn_ocr import Config, evaluate, train

# The report's Tables 2 and 3: word accuracy / char BLEU on its test sets.
REPORT = {
    ("captcha", "resnet18", True): (53.27, 88.00), ("captcha", "resnet18", False): (49.07, 85.75),
    ("captcha", "simple", False): (0.00, 2.75),
    ("iam", "resnet18", True): (27.00, 57.81), ("iam", "resnet18", False): (21.60, 47.53),
    ("iam", "simple", False): (19.00, 41.13),
}


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
            train(cfg, run_dir)
            seconds = time.time() - t0
        else:  # trained by `crnn-ocr train --config` into this folder: time from its epochs
            print(f"[{name}] trained outside this script; summarising its history")
            seconds = None
        history = torch.load(run_dir / "last.pt", weights_only=True)["history"]
        best = min(history, key=lambda h: h["val_cer"])
        summary = {"train_seconds": seconds if seconds is not None else sum(h["seconds"] for h in history),
                   "best_epoch": best["epoch"], "epochs_run": len(history),
                   "img_per_s": sum(h["img_per_s"] for h in history) / len(history),
                   "val_word_accuracy": best["val_word_accuracy"], "val_cer": best["val_cer"]}
        summary_path.write_text(json.dumps(summary, indent=2) + "\n")

    test = args.captcha_test if kind == "captcha" else args.iam_test
    result = {"config": name, "dataset": kind, "backbone": cfg.model.backbone,
              "pretrained": bool(cfg.model.pretrained), **summary}
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("configs", nargs="+", type=Path)
    p.add_argument("--captcha-test", help="folder of captcha test images (labels from file names)")
    p.add_argument("--iam-test", help="IAM root to test on")
    p.add_argument("--iam-test-ids", nargs="+", help="word-id lists of the IAM test split")
    p.add_argument("--lexicon", nargs="+", help="word lists for lexicon decoding of the IAM runs "
                   "(the training labels are added; never give test labels)")
    p.add_argument("--runs", default="runs/experiments", help="where the run folders go")
    p.add_argument("--out", default="results", help="where results.json and results.md go")
    p.add_argument("--threads", type=int, help="torch threads per run (default: the config's, else all cores)")
    p.add_argument("--readme", default="README.md", help="README whose results table to refresh ('' = none)")
    p.add_argument("--retrain", action="store_true", help="train again even if a run is finished")
    args = p.parse_args()
    results = [run_one(c, args) for c in args.configs]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    old = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else []
    merged = {r["config"]: r for r in old} | {r["config"]: r for r in results}
    (out / "results.json").write_text(json.dumps(list(merged.values()), indent=2) + "\n")
    table = markdown(list(merged.values()))
    (out / "results.md").write_text(table)
    if args.readme:
        update_readme(Path(args.readme), table)
    print(table)


def update_readme(path: Path, table: str) -> None:
    """Put ``table`` between the README's results markers, so the README shows what was run."""
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    text = path.read_text() if path.is_file() else ""
    if start not in text or end not in text:
        print(f"{path}: no {start} ... {end} markers; README not updated")
        return
    head, rest = text.split(start, 1)
    path.write_text(head + start + "\n" + table + rest[rest.index(end):])


if __name__ == "__main__":
    main()
