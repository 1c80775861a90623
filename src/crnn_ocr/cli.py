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
    g.add_argument("--elastic", type=float, metavar="PIXELS",
                   help="augmentation: smooth random warp of about this many pixels (handwriting: 2.5; 0 = off)")
    g.add_argument("--trim-padding", action=argparse.BooleanOptionalAction, default=None,
                   help="batch images of similar width and cut off the padding (words of varied length)")
    g.add_argument("--train-limit", type=int, help="use a seeded sample of this many training items")
    g.add_argument("--val-limit", type=int, help="use a seeded sample of this many validation items")
    g = p.add_argument_group("model (override the config)")
    g.add_argument("--backbone", choices=("simple", "resnet18"))
    g.add_argument("--pretrained", help="'imagenet' (torchvision weights) or a crnn-ocr checkpoint")
    g.add_argument("--cnn-channels", type=int, nargs=5, metavar="C", help="simple backbone: its five channel widths")
    g.add_argument("--cnn-blocks", type=int, nargs=5, metavar="N",
                   help="simple backbone: residual blocks after each of its five conv blocks")
    g.add_argument("--column-pool", choices=("flatten", "max"),
                   help="CNN columns to GRU: flatten the remaining height, or max over it")
    g.add_argument("--ctc-shortcut", type=float, metavar="WEIGHT",
                   help="weight of the training-only CTC shortcut head's loss (e.g. 0.1; 0 = off)")
    g.add_argument("--rnn-hidden", type=int)
    g.add_argument("--rnn-layers", type=int)
    g.add_argument("--dropout", type=float)
    g = p.add_argument_group("training (override the config)")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--ema", type=float, metavar="DECAY", help="validate and keep a moving average of the "
                   "weights, e.g. 0.999 (0 = off)")
    g.add_argument("--patience", type=int, help="early stopping after this many epochs without a better CER")
    g.add_argument("--seed", type=int)
    g.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    g.add_argument("--device", help="auto (CUDA if present, else CPU), cpu, cuda or mps")
    g.add_argument("--no-amp", dest="amp", action="store_false", default=None,
                   help="train in float32 (default: bfloat16 autocast, or float16 with a loss scaler on older GPUs)")
    g.add_argument("--tensorboard", action="store_true", default=None,
                   help="also log to RUN/tensorboard (needs the tensorboard package)")


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
            # a folder named like an image is kept, to be reported and counted as a bad input
            paths += sorted(str(q) for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
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
             keep_err=args.keep_err, batch_size=args.batch_size, lexicon=args.lexicon)
    print(f"report written to {Path(args.out) / 'report.md'}")
    return 0


def cmd_predict(args) -> int:
    import torch

    from .recognizer import Recognizer

    if args.threads:
        torch.set_num_threads(args.threads)
    rec = Recognizer.load(args.checkpoint, threads=args.threads)
    paths = image_paths(args.paths)
    done = bad = 0
    for start in range(0, len(paths), args.batch_size):
        good, tensors = [], []
        for p in paths[start : start + args.batch_size]:
            try:
                tensors.append(rec.load_image(p))
                good.append(p)
            except BadImage as e:
                print(f"crnn-ocr: skipping {p}: {e}", file=sys.stderr)
                bad += 1
        if not good:
            continue
        for p, (t, c) in zip(good, rec.recognize(torch.stack(tensors), args.batch_size)):
            print(f"{p}\t{t}\t{c:.4f}")
        done += len(good)
    if bad:
        print(f"crnn-ocr: {bad} of {len(paths)} inputs skipped", file=sys.stderr)
    if not done:
        print("crnn-ocr: error: no readable image among the inputs", file=sys.stderr)
        return 2
    return 0


def cmd_export(args) -> int:
    from .export import export_onnx

    print(f"wrote {export_onnx(args.checkpoint, args.onnx)}")
    return 0


def cmd_pretrain(args) -> int:
    from .pretrain import pretrain, pretrain_config

    # every pretrain flag but --out is a pretrain_config argument of the same name
    cfg = pretrain_config(**{k: v for k, v in vars(args).items() if k not in ("command", "func", "out")})
    result = pretrain(cfg, args.out)
    return 130 if result.get("interrupted") else 0


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


def cmd_prepare_iam_lines(args) -> int:
    from .lines import build_iam_lines

    report = build_iam_lines(args.iam, args.ids, args.out, margin=args.margin, keep_incomplete=args.keep_incomplete)
    print(f"{args.out}: {report}")
    return 0


def cmd_serve(args) -> int:
    import torch

    from .serve import Batching, Limits, load_recognizers, serve

    if not args.checkpoint and not args.browse:
        raise ValueError("give a model (--checkpoint) or an evaluation folder (--browse)")
    if args.threads:
        torch.set_num_threads(args.threads)
    limits = Limits(max_body_bytes=int(args.max_body_mb * 1024 * 1024), max_images=args.max_images,
                    max_pixels=args.max_pixels)
    batching = Batching(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue)
    serve(load_recognizers(args.checkpoint or [], args.threads), args.host, args.port, limits, batching, args.browse)
    return 0


def cmd_prepare_synth_lines(args) -> int:
    from .synth_lines import iter_synthetic_lines, write_lines_folder

    lines = iter_synthetic_lines(args.n, args.seed, fonts=args.fonts, cover_charset=args.fonts == "train")
    print(f"{args.out}: {write_lines_folder(lines, args.n, args.out)} lines written ({args.fonts} fonts)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crnn-ocr", description="Train, evaluate and run CRNN text recognizers.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a recognizer", description="Train a CRNN; writes best.pt, last.pt, "
                       "history.csv, loss.png and per-epoch samples to --out.")
    add_train_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("pretrain", help="pretrain on word images rendered from system fonts (offline)",
                       description="Train a CRNN on synthetic words (every printable ASCII character) and write "
                       "best.pt and a small float16 backbone.safetensors to --out; start from either with "
                       "`crnn-ocr train --pretrained`.")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--backbone", choices=("simple", "resnet18"), default="resnet18")
    p.add_argument("--images", type=int, default=20000, help="rendered training images (default: %(default)s)")
    p.add_argument("--val-images", type=int, default=500, help="rendered validation images (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--height", type=int, default=32, help="input size; fine-tuning must use the same")
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--channels", type=int, choices=(1, 3), default=1)
    p.add_argument("--rnn-hidden", type=int, default=128, help="GRU width; fine-tuning must use the same "
                   "to start from the GRU too (default: %(default)s)")
    p.add_argument("--trim-padding", action="store_true", help="batch words of similar width and cut off "
                   "the padding: about half the work at the same results")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("evaluate", help="score a checkpoint on a dataset and write a report")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="dataset folder; every readable item is used")
    p.add_argument("--out", required=True, help="folder for metrics.json, predictions.tsv, PNGs and report.md")
    p.add_argument("--label-sep", help="captcha folders: label = file stem up to this separator")
    p.add_argument("--split-ids", nargs="+", metavar="FILE", help="IAM: evaluate only these word ids")
    p.add_argument("--keep-err", action="store_true", help="IAM: keep words marked err")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lexicon", nargs="+", metavar="FILE",
                   help="word lists (one word per line) to decode into, with the training labels")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("demo", help="train on synthetic captchas, evaluate, write a report (offline)")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--epochs", type=int, default=12, help="about 4 minutes on 2 CPU cores (default: %(default)s)")
    p.add_argument("--test-images", type=int, default=200)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("predict", help="print path<TAB>text<TAB>confidence for images")
    p.add_argument("--checkpoint", required=True, help="a .pt checkpoint or a .onnx file from `crnn-ocr export`")
    p.add_argument("paths", nargs="+", help="image files or folders of images")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: all cores)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", help="write a checkpoint as a self-contained ONNX file",
                       description="Export to ONNX (dynamic batch and width) with the charset and "
                       "preprocessing settings stored in the file's metadata.")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--onnx", required=True, help="output file, e.g. model.onnx")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("prepare", help="write a dataset folder (labels.tsv + images)")
    prepare = p.add_subparsers(dest="dataset", required=True)
    p = prepare.add_parser("iam-lines", help="rebuild IAM text lines from the word crops",
                           description="Paste each line's word images at their words.txt boxes and write "
                           "labels.tsv + lines/*.png. A line is built when all its words are in the id lists; "
                           "lines with a missing word id, a word not marked ok or a missing image are dropped.")
    p.add_argument("--iam", required=True, metavar="ROOT", help="IAM words root (words.txt and words/)")
    p.add_argument("--ids", required=True, nargs="+", metavar="FILE", help="word-id lists (e.g. splits/train.txt)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--margin", type=int, default=12, help="white pixels around the words (default: %(default)s)")
    p.add_argument("--keep-incomplete", action="store_true",
                   help="training data only: keep lines with missing or err words, the gap read as one space")
    p.set_defaults(func=cmd_prepare_iam_lines)

    p = prepare.add_parser("synth-lines", help="render printed text lines from the system fonts",
                           description="Lines of words, numbers and punctuation in the printed system fonts, "
                           "written as labels.tsv + images/*.png (the font's name in each file name). A few "
                           "fonts are held out of training: --fonts held-out renders validation lines in those.")
    p.add_argument("--n", type=int, default=20000, help="number of lines (default: %(default)s)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--fonts", choices=("train", "held-out"), default="train",
                   help="the training fonts or the held-out ones (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same lines (default: %(default)s)")
    p.set_defaults(func=cmd_prepare_synth_lines)

    p = sub.add_parser("serve", help="an HTTP API and web page for recognizers (Ctrl-C or SIGTERM stops it)",
                       description="Serve POST /v1/recognize, GET /v1/models, GET /healthz, the page / and the "
                       "API docs /docs; with --browse, the page /browse for an `evaluate` output folder.")
    p.add_argument("--checkpoint", action="append", metavar="[NAME=]PATH",
                   help="a .pt or .onnx model, repeatable; the first is the default (name: the file's stem, "
                   "or its folder's name for best.pt / last.pt)")
    p.add_argument("--browse", metavar="EVAL_DIR", help="an output folder of `crnn-ocr evaluate` to browse")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: all cores)")
    g = p.add_argument_group("micro-batching")
    g.add_argument("--max-batch", type=int, default=32, help="images per forward pass; 1 = one request at a time "
                   "(default: %(default)s)")
    g.add_argument("--max-wait-ms", type=float, default=2.0,
                   help="how long a request waits for others to join its batch (default: %(default)s)")
    g.add_argument("--max-queue", type=int, default=256, help="images waiting; beyond, 503 (default: %(default)s)")
    g = p.add_argument_group("request limits (beyond: 413)")
    g.add_argument("--max-images", type=int, default=64, help="per request (default: %(default)s)")
    g.add_argument("--max-pixels", type=int, default=16_000_000, help="per image (default: %(default)s)")
    g.add_argument("--max-body-mb", type=float, default=8.0, help="per request (default: %(default)s)")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DataError, CheckpointError, BadImage, ValueError, OSError) as e:  # OSError: unreadable or unwritable paths
        print(f"crnn-ocr: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("crnn-ocr: interrupted", file=sys.stderr)
        return 130
