"""The ``crnn-ocr`` command: a thin layer of argparse over the Python API.

Exit codes: 0 on success (warnings included), 2 for unusable input (with a one-line
message, never a traceback) and for a command whose extra is not installed (``EXTRAS``),
130 when interrupted; 0 too when the reader of the output goes away (`crnn-ocr predict ... | head`).

Each command imports what it uses when it runs: ``--help``, ``models`` and ``predict`` with
a bundled model never load PyTorch (a core install has none).
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import warnings
from pathlib import Path

from crnn_ocr.cli.models import add_model_arg, add_model_parsers, add_reading_args, check_numbers, reading_options
from crnn_ocr.cli.options import add_config_flags, apply_flags, given_flags
from crnn_ocr.cli.prepare import add_prepare_parser
from crnn_ocr.cli.serve import add_serve_parser
from crnn_ocr.config.schema import Config
from crnn_ocr.reading.images import BadImage
from crnn_ocr.data.items import DataError
from crnn_ocr.cli.pages import add_read_parser, evaluate_pages
from crnn_ocr.model.errors import CheckpointError
from crnn_ocr.utils.files import shown  # also registers the "crnn_ocr.shown" error handler

# The commands that need an extra (pyproject's optional dependencies): its name and the
# modules it brings that the command imports. The others run on the core install.
TRAIN = ("train", ("torch", "torchvision", "onnx", "safetensors"))
EXTRAS = {"train": TRAIN, "pretrain": TRAIN, "demo": TRAIN, "export": TRAIN, "release": TRAIN,
          "serve": ("serve", ("fastapi", "uvicorn", "multipart")), "read": ("pages", ("cv2", "scipy", "skimage"))}
EXTRA_OF_MODULE = {"torch": "train", "torchvision": "train", "onnx": "train", "safetensors": "train",
                   "matplotlib": "train", "sacrebleu": "train", "captcha": "train", "fontTools": "train",
                   "fastapi": "serve", "uvicorn": "serve", "multipart": "serve", "pypdfium2": "pdf",
                   "cv2": "pages", "scipy": "pages", "skimage": "pages"}
EXTRA_NAMES = {"train": "the training extra", "serve": "the serving extra", "pdf": "the PDF extra",
               "pages": "the pages extra"}


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (found without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def missing_extra(command: str, module: str | None = None) -> str:
    """The one line for a command whose extra is not installed ("" if it is, or none is
    needed): checked before it runs (``EXTRAS``) or from the ``module`` it failed to import."""
    extra = EXTRA_OF_MODULE.get((module or "").split(".")[0])
    if module is None and command in EXTRAS:
        name, modules = EXTRAS[command]
        extra = name if not all(installed(m) for m in modules) else None
    if extra is None:
        return ""
    return f"crnn-ocr: error: `{command}` needs {EXTRA_NAMES[extra]}: pip install 'crnn-ocr[{extra}]'"

PRETRAIN_FLAGS = ("backbone", "synthetic_train", "synthetic_val", "epochs", "batch_size", "lr", "warmup_epochs",
                  "threads", "seed", "height", "width", "channels", "rnn_hidden", "trim_padding")


def add_run_folder_args(p: argparse.ArgumentParser, out: str | None) -> None:
    """``--out`` (required when ``out`` is None), ``--resume`` and ``--overwrite``: a run's folder."""
    p.add_argument("--out", default=out, required=out is None,
                   help="run folder for checkpoints and plots" + (" (default: %(default)s)" if out else ""))
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt (give the "
                   "same flags; --epochs may change, and the schedule then follows the new number)")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in an --out that holds a run (its checkpoints, history and figures are removed)")


def add_train_args(p: argparse.ArgumentParser) -> None:
    add_run_folder_args(p, "runs/train")
    p.add_argument("--config", help="TOML file with [data], [model] and [train] tables; flags override it")
    add_config_flags(p)


def config_from_args(args: argparse.Namespace) -> Config:
    """The config file (or the defaults, or the resumed run's own config), with every flag
    that was given written over it; every value checked."""
    if args.config:
        cfg = Config.from_toml(args.config)
    elif getattr(args, "resume", False):
        from crnn_ocr.model.checkpoint import load

        cfg = Config.saved(load(Path(args.out) / "last.pt")["config"])
    else:
        cfg = Config()
    return apply_flags(cfg, args)


def cmd_train(args) -> int:
    from crnn_ocr.training.train import train

    result = train(config_from_args(args), args.out, resume=args.resume, overwrite=args.overwrite)
    if result.get("interrupted"):
        print(f"continue it with: crnn-ocr train --resume --out {args.out} (and the same config)")
        return 130
    return 0


def cmd_evaluate(args) -> int:
    from crnn_ocr.evaluation.evaluate import evaluate

    if args.pages:
        return evaluate_pages(args)
    reading_options(args)  # checks the values, sets the threads and the decoder
    evaluate(args.model, args.data, args.out, label_sep=args.label_sep or "", split_ids=args.split_ids,
             keep_err=args.keep_err, batch_size=args.batch_size, decoder=args.decoder, lexicon=args.lexicon,
             words=args.words, threads=args.threads, device=args.device)
    print(f"report written to {Path(args.out) / 'report.md'}")
    return 0


def cmd_export(args) -> int:
    from crnn_ocr.model.export import export_onnx

    print(f"wrote {export_onnx(args.model, args.onnx)}")
    return 0


def cmd_pretrain(args) -> int:
    from crnn_ocr.training.pretrain import pretrain, pretrain_config

    given = {name: value for values in given_flags(args).values() for name, value in values.items()}
    cfg = pretrain_config(**given)
    result = pretrain(cfg, args.out, resume=args.resume, overwrite=args.overwrite)
    return 130 if result.get("interrupted") else 0


def cmd_demo(args) -> int:
    """Train on synthetic captchas, evaluate on fresh ones written to disk, print the report."""
    from crnn_ocr.evaluation.evaluate import evaluate
    from crnn_ocr.data.synth.captcha import synthetic_captchas
    from crnn_ocr.training.train import train

    check_numbers(args, {"epochs": (1, math.inf), "test_images": (1, math.inf)})
    out = Path(args.out)
    test_dir = out / "synthetic-test"
    test_dir.mkdir(parents=True, exist_ok=True)
    for item in synthetic_captchas(args.test_images, seed=12345):
        item.image.save(test_dir / f"{item.text}-{Path(item.path).stem.split('-')[0]}.png")
    cfg = Config.preset("demo")
    cfg.train.epochs = args.epochs
    cfg.train.threads = args.threads
    if train(cfg, out / "run", overwrite=True).get("interrupted"):  # the demo's own run folder: always afresh
        print("demo stopped: nothing evaluated; `crnn-ocr demo` starts it afresh")
        return 130
    evaluate(str(out / "run" / "best.pt"), str(test_dir), str(out / "eval"), label_sep="-")
    print(f"demo done: report {out / 'eval' / 'report.md'}, training curve {out / 'run' / 'loss.png'}")
    return 0


class Parser(argparse.ArgumentParser):
    """argparse's parser, a wrong flag or value told in one line (not after the whole usage);
    the subcommands' parsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {shown(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="crnn-ocr", description="Train, evaluate and run CRNN text recognizers.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a recognizer", description="Train a CRNN; writes best.pt, last.pt, "
                       "history.csv, loss.png and per-epoch samples to --out.")
    add_train_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("pretrain", help="pretrain on word images rendered from system fonts (offline)",
                       description="Train a CRNN on synthetic words (every printable ASCII character) and write "
                       "best.pt and a small float16 backbone.safetensors to --out; start from either with "
                       "`crnn-ocr train --pretrained`.")
    add_run_folder_args(p, None)
    add_config_flags(p, Config.preset("pretrain"), only=PRETRAIN_FLAGS)
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("evaluate", help="score a model on a dataset and write a report")
    add_model_arg(p)
    p.add_argument("--data", required=True, help="dataset folder; every readable item is used")
    p.add_argument("--out", required=True, help="folder for metrics.json, predictions.tsv, PNGs and report.md")
    p.add_argument("--label-sep", help="captcha folders: label = file stem up to this separator")
    p.add_argument("--split-ids", nargs="+", metavar="FILE", help="IAM: evaluate only these word ids")
    p.add_argument("--keep-err", action="store_true", help="IAM: keep words marked err")
    p.add_argument("--pages", action="store_true", help="--data holds whole pages (NAME.png / NAME.jpg with "
                   "NAME.txt): page CER and WER, whitespace collapsed (crnn-ocr read)")
    add_reading_args(p, batch_size=256)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("demo", help="train on synthetic captchas, evaluate, write a report (offline)")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--epochs", type=int, default=5, help="passes over 3,000 synthetic captchas (default: %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: 0 = chosen for this machine)")
    p.add_argument("--test-images", type=int, default=200)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("export", help="write a checkpoint as a self-contained ONNX file",
                       description="Export to ONNX (dynamic batch and width) with the charset and "
                       "preprocessing settings stored in the file's metadata.")
    add_model_arg(p, "a .pt or .safetensors file")
    p.add_argument("--onnx", required=True, help="output file, e.g. model.onnx")
    p.set_defaults(func=cmd_export)

    add_model_parsers(sub)
    add_prepare_parser(sub)
    add_serve_parser(sub)
    add_read_parser(sub)
    return parser


def safe_streams() -> None:
    """Let any text reach the terminal: the bytes of a file name that is not UTF-8 are printed
    as ``\\xe9``, as in every file the commands write (``files.shown``). Each line is written
    at once, also to a file or pipe: ``crnn-ocr train > log`` shows every epoch as it ends."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="crnn_ocr.shown", line_buffering=True)


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """A warning on stderr as one ``crnn-ocr: warning:`` line (e.g. ``ImageTooWide``), not
    Python's two lines with the source file and line that issued it."""
    return f"crnn-ocr: warning: {shown(str(message) or category.__name__)}\n"  # shown: one line


def error_text(e: Exception) -> str:
    """An error's one line: an operating-system error as "FILE: reason" (not Python's
    "[Errno 17] File exists: 'FILE'"), file names ``shown`` so that a newline in one stays on the line."""
    if isinstance(e, OSError) and e.strerror and e.filename is not None:
        return f"{shown(e.filename)}: {e.strerror[0].lower() + e.strerror[1:]}"
    return shown(e)


def main(argv: list[str] | None = None) -> int:
    safe_streams()
    previous, warnings.formatwarning = warnings.formatwarning, one_line_warning
    try:
        return run(argv)
    finally:  # a program that calls main() keeps its own warning format afterwards
        warnings.formatwarning = previous


def run(argv: list[str] | None) -> int:
    """Parse ``argv``, run its command and turn every failure into one ``crnn-ocr: error:`` line."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # told with the command's own help, not the top-level one
        command = " ".join(filter(None, ["crnn-ocr", args.command, getattr(args, "dataset", None)]))
        parser.exit(2, f"{command}: error: unrecognized arguments: {shown(' '.join(extra))} (see {command} --help)\n")
    if missing_extra(args.command):
        print(missing_extra(args.command), file=sys.stderr)
        return 2
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, so that a closed pipe is caught below and not at exit
        return code
    except BrokenPipeError:
        # The reader went away (`crnn-ocr predict ... | head`): end quietly, as Python's docs
        # recommend: point stdout at devnull so the flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (DataError, CheckpointError, BadImage, ValueError, OSError) as e:  # OSError: unreadable or unwritable paths
        print(f"crnn-ocr: error: {error_text(e)}", file=sys.stderr)
        return 2
    except Exception as e:  # nothing foreseen: still one line (CRNN_OCR_TRACEBACK=1 shows the traceback)
        if isinstance(e, ModuleNotFoundError) and missing_extra(args.command, e.name):  # an optional dependency
            print(missing_extra(args.command, e.name), file=sys.stderr)
            return 2
        if os.environ.get("CRNN_OCR_TRACEBACK"):
            raise
        print(f"crnn-ocr: error: unexpected {type(e).__name__}: {shown(str(e)[:200])}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("crnn-ocr: interrupted", file=sys.stderr)
        return 130
