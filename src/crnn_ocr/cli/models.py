"""The ``crnn-ocr predict``, ``models`` and ``release`` commands: reading images with a model
(output other programs can consume) and the bundled models (``registry``).

``predict`` takes files, folders (``--recursive``), glob patterns and ``-`` (paths on stdin,
one per line) and writes TSV, a JSON array or JSON lines to stdout or, atomically, to
``--output``. The reading itself is ``Recognizer.read``; nothing here decodes or infers.
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import json
import math
import os
import subprocess
import sys
from pathlib import Path

from crnn_ocr.reading.images import IMAGE_SUFFIXES
from crnn_ocr.decoding.ctc import DECODER_NAMES
from crnn_ocr.utils.files import atomic_target, named_as, shown, tsv_field, unicode_text

FORMATS = ("tsv", "json", "jsonl")
PROGRESS_MIN = 200  # a progress bar for lists longer than this (and only on a terminal)


def add_model_arg(p: argparse.ArgumentParser, what: str = "a .pt, .safetensors or .onnx file") -> None:
    """``--model NAME|FILE`` (alias ``--checkpoint``): a bundled model's name or a file."""
    p.add_argument("--model", "--checkpoint", dest="model", required=True, metavar="NAME|FILE",
                   help=f"a bundled model (see `crnn-ocr models`) or {what}")


def add_reading_args(p: argparse.ArgumentParser, batch_size: int) -> None:
    """The decoder, device, thread and batch options of ``predict`` and ``evaluate``."""
    p.add_argument("--decoder", choices=DECODER_NAMES,
                   help="greedy (best path); lexicon: the closest likely word of --lexicon; lm: beam search with a "
                   "character language model of --words (default: lexicon with --lexicon, lm with --words, else "
                   "the model's own: lm for the bundled handwriting models, else greedy)")
    p.add_argument("--lexicon", nargs="+", metavar="FILE",
                   help="word lists (one word per line) for --decoder lexicon, with the model's training labels")
    p.add_argument("--words", nargs="+", metavar="FILE",
                   help="word lists for --decoder lm's language model, with the model's training labels")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default: %(default)s; ONNX: cpu only)")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads (default: the cores the machine can give: usable cores less the load average)")
    p.add_argument("--batch-size", type=int, default=batch_size, help="images per forward pass (default: %(default)s)")


def check_numbers(args, ranges: dict[str, tuple[float, float]]) -> None:
    """A one-line ``ValueError`` for the first of a command's own flags (``ranges``: its
    attribute name -> lowest and highest allowed) whose value is out of its range or nan."""
    for name, (low, high) in ranges.items():
        value = getattr(args, name)
        if not low <= value <= high:  # also false for nan
            allowed = f"from {low} to {high}" if high < math.inf else f"{low} or more"
            raise ValueError(f"--{name.replace('_', '-')} {value}: must be {allowed}")


def reading_options(args) -> dict:
    """``Recognizer.load`` keywords from the reading options (``Recognizer.load`` sets the threads)."""
    from crnn_ocr.reading.recognizer import decoder_lists

    check_numbers(args, {"batch_size": (1, math.inf), "threads": (0, math.inf)})
    args.decoder, lists = decoder_lists(args.decoder, args.lexicon, args.words)  # None: the model's default
    return {"threads": args.threads, "device": args.device, **lists}


def image_paths(inputs: list[str], recursive: bool = False, stdin=None) -> list[str]:
    """Files as given; folders expanded to their image files (sorted; ``recursive``: all the
    way down); glob patterns to the image files they match; ``-`` to the paths on ``stdin``,
    one per line. A pattern that matches nothing is kept, to be reported as not found."""
    paths = []
    for s in inputs:
        if s == "-":
            paths += [line.rstrip("\r\n") for line in (stdin or sys.stdin) if line.strip()]
        elif s and is_folder(s):  # "" is no folder (Path("") would be the current one): reported as not found
            # a folder named like an image is kept, to be reported and counted as a bad input
            try:
                found = Path(s).rglob("*") if recursive else Path(s).iterdir()
                paths += sorted(str(q) for q in found if q.suffix.lower() in IMAGE_SUFFIXES)
            except OSError:  # an unreadable folder: reported and counted like a bad image
                paths.append(s)
        elif not os.path.lexists(s) and glob.has_magic(s):
            matches = sorted(glob.glob(s, recursive=True))
            paths += [m for m in matches if Path(m).suffix.lower() in IMAGE_SUFFIXES] or [s]
        else:
            paths.append(s)
    return paths


def is_folder(path: str) -> bool:
    """Whether ``path`` is a folder; False for a path that cannot even be looked at (a name
    too long, a loop of links): that one is read, reported and counted like a bad image."""
    try:
        return Path(path).is_dir()
    except OSError:
        return False


@contextlib.contextmanager
def output_file(path: str | None):
    """stdout, or a temporary file beside ``path`` renamed into place once everything is
    written (a failed run leaves no half-written file)."""
    if path is None:
        yield sys.stdout
        return
    special = os.path.exists(path) and not os.path.isfile(path)  # /dev/null, a fifo: written to, never replaced
    if special and os.path.isdir(path):
        raise ValueError(f"--output {shown(path)} is a folder")
    tmp, target = (Path(path), None) if special else atomic_target(path)
    with named_as(path):
        # surrogateescape: a file name that is not UTF-8 is written back as its own bytes, as on stdout
        f = open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="\n")
    try:
        with f:
            yield f
        if target:
            with named_as(path):
                os.replace(tmp, target)
    except BaseException:
        if target:
            tmp.unlink(missing_ok=True)
        raise


def record(fmt: str, path: str, reading, first: bool) -> str:
    """One image's output: a TSV line (none for an unreadable image), a JSON line, or an
    element of the JSON array (``first``: the array's first)."""
    if fmt == "tsv":
        return "" if reading.error else f"{tsv_field(path)}\t{tsv_field(reading.text)}\t{reading.confidence:.4f}\n"
    text = json.dumps({"path": unicode_text(path)} | reading.to_dict(), ensure_ascii=False)
    return text + "\n" if fmt == "jsonl" else ("\n" if first else ",\n") + text


def cmd_predict(args) -> int:
    from crnn_ocr.cli.pages import warn_if_pages
    from crnn_ocr.reading.recognizer import Recognizer

    if args.details and args.format == "tsv":
        raise ValueError("--details needs --format json or jsonl")
    rec = Recognizer.load(args.model, **reading_options(args))
    paths = image_paths(args.paths, args.recursive)
    if not paths:
        raise ValueError("no images among the inputs")
    warn_if_pages(paths, rec.config)
    if args.output and os.path.isfile(args.output):
        output = os.stat(args.output)
        for path in paths:
            with contextlib.suppress(OSError):  # an unreadable path is reported when read
                if os.path.samestat(os.stat(path), output):
                    raise ValueError(f"--output {shown(args.output)} is one of the images to read")
    bad = 0
    with output_file(args.output) as out, progress_bar(len(paths)) as progress:
        out.write("[" if args.format == "json" else "")
        for start in range(0, len(paths), args.batch_size):
            chunk = paths[start : start + args.batch_size]
            for i, (path, reading) in enumerate(zip(chunk, rec.read(chunk, args.details, args.decoder,
                                                                     args.batch_size))):
                bad += reading.error is not None
                if reading.error is not None and args.format == "tsv":
                    print(f"crnn-ocr: skipping {shown(path)}: {reading.error}", file=sys.stderr)
                out.write(record(args.format, path, reading, first=start + i == 0))
            progress.update(len(chunk))
        out.write("\n]\n" if args.format == "json" else "")
    if bad:
        print(f"crnn-ocr: {bad} of {len(paths)} inputs skipped", file=sys.stderr)
    if bad == len(paths):
        print("crnn-ocr: error: no readable image among the inputs", file=sys.stderr)
        return 2
    return 0


def progress_bar(total: int):
    """A tqdm bar on stderr, shown for lists longer than ``PROGRESS_MIN`` on a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True,
                disable=total < PROGRESS_MIN or not sys.stderr.isatty())


def cmd_models(args) -> int:
    from crnn_ocr.hub import registry

    if args.name:
        print(registry.card_text(args.name))
    elif not registry.models():
        print("no bundled models")
    elif args.details:
        print("\n\n".join(registry.card_text(name) for name in registry.models()))
    else:
        print(registry.table())
        print("\ndetails: crnn-ocr models NAME (or --details for every model)")
    return 0


def git_commit() -> str:
    """The current commit's short hash, or '' outside a git checkout."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def cmd_release(args) -> int:
    from crnn_ocr.hub import registry
    from crnn_ocr.model.checkpoint import load, model_of
    from crnn_ocr.training.release import release

    ckpt = load(args.checkpoint)
    _, charset, config = model_of(ckpt, args.checkpoint)
    metrics = {}
    if args.metrics_from:
        scores = json.loads(Path(args.metrics_from).read_text(encoding="utf-8"))
        metrics = {k: round(scores[k], 4) for k in ("n", "word_accuracy", "cer", "wer", "bleu")
                   if scores.get(k) is not None}
    metrics |= dict(args.metric or [])
    info = registry.ModelInfo(name=args.name, file=f"{args.name}.onnx", reads=args.reads,
                              charset=charset.chars, height=config.data.height, width=config.data.width,
                              data=args.data, licence=args.licence, config=args.config or "", commit=git_commit(),
                              metrics=metrics, speed=dict(args.speed or []), recreate=args.recreate or "",
                              lm_weights=dict(zip(("alpha", "beta"), args.lm_weights or ())), decoder=args.decoder,
                              parity=args.parity)
    out = release(args.checkpoint, info, args.word_list)
    Path(args.docs).parent.mkdir(parents=True, exist_ok=True)
    Path(args.docs).write_text(registry.cards_markdown(), encoding="utf-8")
    print(f"released {args.name}: {out} ({out.stat().st_size / 1e6:.1f} MB); model cards: {args.docs}")
    return 0


def key_value(text: str) -> tuple[str, str]:
    """``--speed 'ONNX Runtime=1.4 ms'`` (or ``--metric``) -> ("ONNX Runtime", "1.4 ms")."""
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WHAT=VALUE, e.g. 'ONNX Runtime=1.4 ms'")
    return key.strip(), value.strip()


def add_model_parsers(sub: argparse._SubParsersAction) -> None:
    """``crnn-ocr predict``, ``crnn-ocr models`` and ``crnn-ocr release``."""
    p = sub.add_parser("predict", help="read images: TSV, JSON or JSON lines of path, text and confidence",
                       description="Read every image of the inputs. TSV (the default) prints "
                       "path<TAB>text<TAB>confidence with tab, newline and backslash escaped as \\t, \\n, \\\\; "
                       "json and jsonl write {\"path\", \"text\", \"confidence\"} per image, plus \"error\" for an "
                       "image that could not be read and \"chars\" with --details.")
    add_model_arg(p)
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="image files, folders, glob patterns ('scans/*.png') or - for paths on stdin, one per line")
    p.add_argument("--recursive", "-r", action="store_true", help="read folders' subfolders too")
    p.add_argument("--format", choices=FORMATS, default="tsv", help="output format (default: %(default)s)")
    p.add_argument("--output", "-o", metavar="FILE", help="write here (complete or not at all) instead of stdout")
    p.add_argument("--details", action="store_true",
                   help="json/jsonl: each character's confidence, output columns [start, end) and pixels [x0, x1)")
    add_reading_args(p, batch_size=64)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("models", help="list the bundled models",
                       description="The models shipped in the package: use one with --model NAME.")
    p.add_argument("name", nargs="?", metavar="NAME", help="show this model's card: data, licence, metrics, speed")
    p.add_argument("--details", action="store_true", help="show every model's card")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("release", help="bundle a trained checkpoint as a named model (for maintainers)",
                       description="Write the checkpoint as src/crnn_ocr/hub/models/NAME.onnx (float16 weights; "
                       "config, charset and training labels in its metadata), add it to models.json and rewrite the "
                       "model cards (docs/models.md).")
    p.add_argument("--checkpoint", required=True, help="a .pt checkpoint, e.g. RUN/best.pt (or a model file)")
    p.add_argument("--name", required=True, help="the model's name, e.g. captcha-v2")
    p.add_argument("--reads", required=True, help="what it reads, e.g. 'handwritten English words (IAM style)'")
    p.add_argument("--data", required=True, help="the training data")
    p.add_argument("--licence", required=True, help="the training data's licence")
    p.add_argument("--config", help="the config file it was trained with (and any flags)")
    p.add_argument("--metrics-from", metavar="METRICS_JSON", help="validation scores: an evaluate metrics.json")
    p.add_argument("--speed", type=key_value, action="append", metavar="WHAT=VALUE",
                   help="a speed measurement, repeatable, e.g. 'ONNX Runtime, batch 1, 1 thread=1.4 ms'")
    p.add_argument("--word-list", metavar="FILE", help="words shipped beside the model for --decoder lexicon / lm")
    p.add_argument("--lm-weights", type=float, nargs=2, metavar=("ALPHA", "BETA"),
                   help="the weights of --decoder lm for this model, chosen on validation data "
                   "(experiments/decoders.py; default: 1.0 0.0)")
    p.add_argument("--metric", type=key_value, action="append", metavar="WHAT=VALUE",
                   help="another validation score for the card, repeatable, e.g. 'with the language model=87%%'")
    p.add_argument("--decoder", choices=DECODER_NAMES, default="greedy",
                   help="what predict, evaluate, serve and Recognizer.read use unless told, as measured "
                   "(default: %(default)s)")
    p.add_argument("--parity", default="", help="how the ONNX file was checked against the PyTorch model, for its "
                   "card (benchmarks/onnx_parity.py), e.g. 'same greedy texts on 214 val images'")
    p.add_argument("--recreate", help="the commands that make the model again, for its card")
    p.add_argument("--docs", default="docs/models.md", help="the model cards to rewrite (default: %(default)s)")
    p.set_defaults(func=cmd_release)
