"""Time-to-accuracy of a captcha config from scratch, over several seeds.

    python experiments/captcha_minute.py configs/studies/captcha_fast.toml --seeds 0 1 2 --threads 2

Trains the config once per seed (no pretrained weights: the config must say
``pretrained = ""``) and reports, per seed, the training wall time (epochs and their
validation, from the run's history) at which the validation word accuracy first reached 95%
and 99%. Writes ``results/captcha_minute/captcha_minute.json`` and ``.md``. Run it on a quiet machine: the
times are wall-clock seconds.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from run import time_to  # experiments/run.py: the same thresholds as results/ablations/ablations.md

from crnn_ocr import Config

from crnn_ocr.model import checkpoint
from crnn_ocr.model.pretrained import pretrained_start
from crnn_ocr.training.train import train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config", type=Path)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--budget", type=float, default=60.0, help="seconds allowed to reach 99%%")
    p.add_argument("--runs", type=Path, default=Path("runs/captcha_minute"))
    p.add_argument("--out", type=Path, default=Path("results/captcha_minute"))
    args = p.parse_args()
    rows = []
    for seed in args.seeds:
        cfg = Config.from_toml(args.config)
        if pretrained_start(cfg):
            raise SystemExit(f"{args.config}: starts from pretrained weights; this measures training from scratch")
        cfg.train.seed, cfg.train.threads = seed, args.threads
        run_dir = args.runs / f"{args.config.stem}_seed{seed}"
        train(cfg, run_dir, overwrite=True)
        history = checkpoint.load(run_dir / "last.pt")["history"]
        reached = time_to(history, "captcha")
        best = max(history, key=lambda h: h["val_word_accuracy"])
        rows.append({"seed": seed, "epochs": len(history), "seconds": sum(h["seconds"] for h in history),
                     "best_word_accuracy": best["val_word_accuracy"], "best_epoch": best["epoch"], **reached})
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"config": args.config.stem, "threads": args.threads, "budget_seconds": args.budget, "runs": rows}
    (args.out / "captcha_minute.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"{args.config.stem}, {args.threads} threads, from scratch (validation: captcha_v2/val)", "",
             "| seed | s to 95% | s to 99% | within budget | best word acc | epochs | s in all |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        t95, t99 = r["acc>=95%"], r["acc>=99%"]
        ok = t99 is not None and t99 <= args.budget
        lines.append(f"| {r['seed']} | {'-' if t95 is None else f'{t95:.0f}'} | {'-' if t99 is None else f'{t99:.0f}'} "
                     f"| {'yes' if ok else 'no'} | {100 * r['best_word_accuracy']:.2f}% | {r['epochs']} "
                     f"| {r['seconds']:.0f} |")
    (args.out / "captcha_minute.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
