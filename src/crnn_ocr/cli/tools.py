"""The ``crnn-ocr prepare`` and ``crnn-ocr serve`` commands: dataset builders and the HTTP
service, each a thin layer over its module (``lines``, ``synth_lines``, ``serve``)."""
from __future__ import annotations

import argparse
import math
import socket


def cmd_prepare_iam_lines(args) -> int:
    from crnn_ocr.data.iam_lines import build_iam_lines

    report = build_iam_lines(args.iam, args.ids, args.out, margin=args.margin, keep_incomplete=args.keep_incomplete)
    print(f"{args.out}: {report}")
    return 0


def cmd_serve(args) -> int:
    from crnn_ocr.cli.models import check_numbers
    from crnn_ocr.serve.app import Batching, Limits, load_recognizers, serve

    if not args.checkpoint and not args.browse:
        raise ValueError("give a model (--model) or an evaluation folder (--browse)")
    check_numbers(args, SERVE_NUMBERS)
    check_can_listen(args.host, args.port)
    limits = Limits(max_body_bytes=int(args.max_body_mb * 1024 * 1024), max_images=args.max_images,
                    max_pixels=args.max_pixels)
    batching = Batching(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue)
    # Loaded here even for --workers: a bad model name or file fails now, with its one-line error.
    recognizers = load_recognizers(args.checkpoint or [], args.threads, args.backend)
    if args.workers > 1:  # each process loads its own
        from crnn_ocr.serve.workers import run_workers

        return run_workers(args.workers, args.checkpoint or [], args.threads, args.backend, limits, batching,
                           args.browse, args.host, args.port, args.access_log)
    serve(recognizers, args.host, args.port, limits, batching, args.browse, args.access_log)
    return 0


# serve's numbers, checked before serving (a port above 65535 would bind another one; a limit
# of 0 would refuse every request; an endless wait would hold every request)
SERVE_NUMBERS = {  # flag: (lowest, highest) allowed
    "port": (0, 65535), "threads": (0, math.inf), "workers": (1, math.inf), "max_batch": (1, math.inf),
    "max_wait_ms": (0, 60_000), "max_queue": (1, math.inf), "max_images": (1, math.inf),
    "max_pixels": (1, math.inf), "max_body_mb": (0.001, math.inf)}


def check_can_listen(host: str, port: int) -> None:
    """A one-line ``ValueError`` if ``host``:``port`` cannot be listened on (in use, not this
    machine's address, a name that does not resolve), found before any model loads rather than
    as uvicorn's own log line after."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            sock.bind(address)
    except OSError as e:
        raise ValueError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def cmd_prepare_synth_lines(args) -> int:
    from crnn_ocr.data.synth.lines import iter_synthetic_lines, write_lines_folder

    lines = iter_synthetic_lines(args.n, args.seed, fonts=args.fonts, cover_charset=args.fonts == "train")
    print(f"{args.out}: {write_lines_folder(lines, args.n, args.out)} lines written ({args.fonts} fonts)")
    return 0


def add_prepare_parser(sub: argparse._SubParsersAction) -> None:
    """``crnn-ocr prepare iam-lines | synth-lines``."""
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


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    """``crnn-ocr serve``."""
    p = sub.add_parser("serve", help="an HTTP API and web page for recognizers (Ctrl-C or SIGTERM stops it)",
                       description="Serve POST /v1/recognize, GET /v1/models, GET /healthz, the page / and the "
                       "API docs /docs; with --browse, the page /browse for an `evaluate` output folder.")
    p.add_argument("--model", "--checkpoint", dest="checkpoint", action="append", metavar="[NAME=]MODEL",
                   help="a bundled model's name (`crnn-ocr models`) or a .pt, .safetensors or .onnx file, "
                   "repeatable; the first is the default (name: the bundled name, the file's stem, or its "
                   "folder's name for best.pt / last.pt)")
    p.add_argument("--browse", metavar="EVAL_DIR", help="an output folder of `crnn-ocr evaluate` to browse")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: the cores the machine can give)")
    p.add_argument("--backend", choices=("onnx", "pytorch"), default="onnx",
                   help="what runs the models: ONNX Runtime (a .pt or .safetensors model is exported in memory at "
                   "start-up; two to three times faster on a CPU) or PyTorch (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1,
                   help="server processes sharing the port, each with its own copy of the models and its own "
                   "batches; on a 2-core machine, 2 gave up to 20%% more throughput and a lower p99 latency at 32 "
                   "concurrent clients (benchmarks/serve.py) (default: %(default)s)")
    p.add_argument("--access-log", action="store_true", help="log one line per request to stderr (off by default: "
                   "at hundreds of requests per second it costs a noticeable share of the CPU)")
    g = p.add_argument_group("micro-batching")
    g.add_argument("--max-batch", type=int, default=16, help="images per forward pass; 1 = one request at a time "
                   "(default: %(default)s)")
    g.add_argument("--max-wait-ms", type=float, default=2.0,
                   help="how long a request waits for others to join its batch (default: %(default)s)")
    g.add_argument("--max-queue", type=int, default=256, help="images waiting; beyond, 503 (default: %(default)s)")
    g = p.add_argument_group("request limits (beyond: 413)")
    g.add_argument("--max-images", type=int, default=64, help="per request (default: %(default)s)")
    g.add_argument("--max-pixels", type=int, default=16_000_000, help="per image (default: %(default)s)")
    g.add_argument("--max-body-mb", type=float, default=8.0, help="per request (default: %(default)s)")
    p.set_defaults(func=cmd_serve)
