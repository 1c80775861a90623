"""The ``crnn-ocr`` command: a thin layer of argparse over the Python API.

Exit codes: 0 on success (warnings included), 2 for unusable input (with a one-line
message, never a traceback), 130 when interrupted.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .checkpoint import CheckpointError
from .config import Config
from .data import DataError
from .images import IMAGE_SUFFIXES, BadImage


def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="dataset folder (split folders, captcha images, IAM root or labels.tsv); "
                   "default: synthetic captchas")
    p.add_argument("--out", default="runs/train", help="run folder for checkpoints and plots (default: %(default)s)")
    p.add_argument("--config", help="TOML file with [data], [model] and [train] tables; flags override it")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    g = p.add_argument_group("data (override the config)")
    g.add_argument("--label-sep", help="captcha folders: label = file stem up to this separator")
    g.add_argument("--train-ids", nargs="+", metavar="FILE", help="IAM: word-id lists to train on")
    g.add_argument("--val-ids", nargs="+", metavar="FILE", help="IAM: word-id lists to validate on")
    g.add_argument("--keep-err", action="store_true", default=None, help="IAM: keep words marked err")
    g.add_argument("--height", type=int)
    g.add_argument("--width", type=int)
    g.add_argument("--channels", type=int, choices=(1, 3))
    g.add_argument("--no-augment", dest="augment", action="store_false", default=None,
                   help="turn training augmentation off")
    g.add_argument("--train-limit", type=int, help="use a seeded sample of this many training items")
    g.add_argument("--val-limit", type=int, help="use a seeded sample of this many validation items")
    g = p.add_argument_group("model (override the config)")
    g.add_argument("--backbone", choices=("simple", "resnet18"))
    g.add_argument("--pretrained", help="'imagenet' (torchvision weights) or a crnn-ocr checkpoint")
    g.add_argument("--rnn-hidden", type=int)
    g.add_argument("--rnn-layers", type=int)
    g.add_argument("--dropout", type=float)
    g = p.add_argument_group("training (override the config)")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--patience", type=int, help="early stopping after this many epochs without a better CER")
    g.add_argument("--seed", type=int)
    g.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    g.add_argument("--device", help="auto, cpu, cuda or mps")


def config_from_args(args: argparse.Namespace) -> Config:
    """The config file (or the defaults, or the resumed run's own config), with every flag
    that was given written over it."""
    if args.config:
        cfg = Config.from_toml(args.config)
    elif getattr(args, "resume", False):
        from .checkpoint import load

        cfg = Config.from_dict(load(Path(args.out) / "last.pt")["config"])
    else:
        cfg = Config()
    if args.data is not None:
        cfg.data.path = args.data
    for section in (cfg.data, cfg.model, cfg.train):
        for name in vars(section):
            value = getattr(args, name, None)
            if value is not None and name != "path":
                setattr(section, name, value)
    return cfg


def image_paths(inputs: list[str]) -> list[str]:
    """Files as given; folders expanded to their image files, sorted."""
    paths = []
    for s in inputs:
        p = Path(s)
        if p.is_dir():
            paths += sorted(str(q) for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
        else:
            paths.append(s)
    return paths


def cmd_train(args) -> int:
    from .train import train

    result = train(config_from_args(args), args.out, resume=args.resume)
    return 130 if result.get("interrupted") else 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate

    evaluate(args.checkpoint, args.data, args.out, label_sep=args.label_sep or "", split_ids=args.split_ids,
             keep_err=args.keep_err, batch_size=args.batch_size)
    print(f"report written to {Path(args.out) / 'report.md'}")
    return 0


def cmd_predict(args) -> int:
    from .recognizer import Recognizer

    rec = Recognizer.load(args.checkpoint)
    paths = image_paths(args.paths)
    done = bad = 0
    for start in range(0, len(paths), args.batch_size):
        good, tensors = [], []
        d = rec.config.data
        for p in paths[start : start + args.batch_size]:
            try:
                from .images import load_tensor

                tensors.append(load_tensor(p, d.height, d.width, d.channels))
                good.append(p)
            except BadImage as e:
                print(f"crnn-ocr: skipping {p}: {e}", file=sys.stderr)
                bad += 1
        if not good:
            continue
        import torch

        from .evaluate import recognize

        texts, conf, _ = recognize(rec.model, torch.stack(tensors), rec.charset)
        for p, t, c in zip(good, texts, conf):
            print(f"{p}\t{t}\t{c:.4f}")
        done += len(good)
    if bad:
        print(f"crnn-ocr: {bad} of {len(paths)} inputs skipped", file=sys.stderr)
    if not done:
        print("crnn-ocr: error: no readable image among the inputs", file=sys.stderr)
        return 2
    return 0


def cmd_demo(args) -> int:
    """Train on synthetic captchas, evaluate on fresh ones written to disk, print the report."""
    from .data import synthetic_captchas
    from .evaluate import evaluate
    from .train import train

    out = Path(args.out)
    test_dir = out / "synthetic-test"
    test_dir.mkdir(parents=True, exist_ok=True)
    for item in synthetic_captchas(args.test_images, seed=12345):
        item.image.save(test_dir / f"{item.text}-{Path(item.path).stem.split('-')[0]}.png")
    cfg = Config()
    cfg.train.epochs = args.epochs
    train(cfg, out / "run")
    evaluate(str(out / "run" / "best.pt"), str(test_dir), str(out / "eval"), label_sep="-")
    print(f"demo done: report {out / 'eval' / 'report.md'}, training curve {out / 'run' / 'loss.png'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crnn-ocr", description="Train, evaluate and run CRNN text recognizers.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a recognizer", description="Train a CRNN; writes best.pt, last.pt, "
                       "history.csv, loss.png and per-epoch samples to --out.")
    add_train_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a checkpoint on a dataset and write a report")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="dataset folder; every readable item is used")
    p.add_argument("--out", required=True, help="folder for metrics.json, predictions.tsv, PNGs and report.md")
    p.add_argument("--label-sep", help="captcha folders: label = file stem up to this separator")
    p.add_argument("--split-ids", nargs="+", metavar="FILE", help="IAM: evaluate only these word ids")
    p.add_argument("--keep-err", action="store_true", help="IAM: keep words marked err")
    p.add_argument("--batch-size", type=int, default=256)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("demo", help="train on synthetic captchas, evaluate, write a report (offline)")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--epochs", type=int, default=Config().train.epochs)
    p.add_argument("--test-images", type=int, default=200)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("predict", help="print path<TAB>text<TAB>confidence for images")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("paths", nargs="+", help="image files or folders of images")
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(func=cmd_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DataError, CheckpointError, BadImage, ValueError) as e:
        print(f"crnn-ocr: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("crnn-ocr: interrupted", file=sys.stderr)
        return 130
