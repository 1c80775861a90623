"""``crnn-ocr serve``: the HTTP service's flags (generated from ``serve.options``) and its
start; the service itself is ``crnn_ocr.serve``."""
from __future__ import annotations

import argparse
import socket
from dataclasses import fields

from crnn_ocr.serve.options import Batching, ConnectionLimits, Limits, ServerOptions

# serve's option groups, in the order cmd_serve unpacks them; their titles in --help
SERVE_OPTIONS = {ServerOptions: None, Limits: "request limits (beyond: 413)",
                 ConnectionLimits: "connection limits (beyond: the connection is answered and closed)",
                 Batching: "micro-batching"}


def cmd_serve(args) -> int:
    from crnn_ocr.serve.app import load_recognizers, serve

    if not args.checkpoint and not args.browse:
        raise ValueError("give a model (--model) or an evaluation folder (--browse)")
    server, limits, connection, batching = (serve_options(args, cls) for cls in SERVE_OPTIONS)
    check_can_listen(args.host, server.port)
    # Loaded here even for --workers: a bad model name or file fails now, with its one-line error.
    recognizers = load_recognizers(args.checkpoint or [], server.threads, args.backend)
    if server.workers > 1:  # each process loads its own
        from crnn_ocr.serve.workers import run_workers

        del recognizers  # they only showed that the models load (the supervisor's memory stays near its peak)

        return run_workers(server.workers, args.checkpoint or [], server.threads, args.backend, limits, batching,
                           args.browse, args.host, server.port, args.access_log, connection, args.allowed_hosts)
    serve(recognizers, args.host, server.port, limits, batching, args.browse, args.access_log, connection,
          args.allowed_hosts)
    return 0


def _number(text: str):
    """A flag's text as an int or float; other text is kept, for ``check`` to refuse."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def add_option_flags(parser: argparse.ArgumentParser, cls, title: str | None = None) -> None:
    """One flag per field of the options dataclass ``cls`` (``serve.options``): ``--`` + its
    name with dashes, its help, what it allows and its default from the field's metadata."""
    from crnn_ocr.config.fields import describe

    group = parser.add_argument_group(title) if title else parser
    for f in fields(cls):
        help_text = f"{f.metadata['help']} ({describe(f)}; default: {f.default:,})".replace("%", "%%")
        group.add_argument(f.metadata["flag"] or "--" + f.name.replace("_", "-"), dest=f.name, type=_number,
                           default=f.default, metavar=f.name.upper(), help=help_text)


def serve_options(args, cls):
    """The options dataclass ``cls`` from ``args``, each value checked by ``config.fields.check``
    (a one-line ``ConfigError`` naming the flag)."""
    from crnn_ocr.config.fields import check

    return cls(**{f.name: check("serve", f, getattr(args, f.name)) for f in fields(cls)})


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
    p.add_argument("--allowed-hosts", nargs="+", metavar="NAME",
                   help="names a request's Host header may give (DNS rebinding protection); * for any (default: "
                   "the names of --host: for loopback localhost, 127.0.0.1 and ::1; for 0.0.0.0 or ::, those and "
                   "this machine's name and addresses)")
    p.add_argument("--backend", choices=("onnx", "pytorch"), default="onnx",
                   help="what runs the models: ONNX Runtime (a .pt or .safetensors model is exported in memory at "
                   "start-up; two to three times faster on a CPU) or PyTorch (default: %(default)s)")
    p.add_argument("--access-log", action="store_true", help="log one line per request to stderr (off by default: "
                   "at hundreds of requests per second it costs a noticeable share of the CPU)")
    for cls, title in SERVE_OPTIONS.items():
        add_option_flags(p, cls, title)
    p.set_defaults(func=cmd_serve)
