"""``crnn-ocr serve --workers N``: N server processes on one port, each with a socket of its own.

Each process binds its own socket with ``SO_REUSEPORT``, and the kernel spreads connections
over the listening ones by a hash of each client's address and port. The processes start
listening together, once every one has loaded its models: with uvicorn's own ``workers`` (one
shared socket, each process accepting as soon as it is up), all 32 keep-alive connections of a
benchmark burst went to the first process up and stayed there (benchmarks/serve.py). The parent
starts the processes (``spawn``: nothing of its torch state is inherited), replaces one that
dies (its socket closes with it, and the kernel sends new connections to the others until the
replacement listens), forwards SIGINT and SIGTERM to them and waits; each answers its requests
in progress before it ends.
``SO_REUSEPORT`` is Linux and BSD; elsewhere run one process.

It is not the place for the app itself (``serve.create_app``).
"""
from __future__ import annotations

import multiprocessing
import signal
import socket
import sys
import threading
from dataclasses import asdict
from pathlib import Path

from crnn_ocr.serve.app import UVICORN_OPTIONS, create_app, load_recognizers
from crnn_ocr.serve.connections import uvicorn_options
from crnn_ocr.serve.guard import hosts_of
from crnn_ocr.serve.options import Batching, ConnectionLimits, Limits


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` that other processes may bind too (``SO_REUSEPORT``)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock


def worker_app(settings: dict):
    """The app of one process, from the settings ``run_workers`` gave it."""
    return create_app(load_recognizers(settings["models"], settings["threads"], settings["backend"]),
                      Limits(**settings["limits"]), Batching(**settings["batching"]), settings["browse"],
                      settings["allowed_hosts"])


def _worker(settings: dict, host: str, port: int, access_log: bool, ready, listening) -> None:
    import uvicorn

    try:
        app = worker_app(settings)
        # Listen only once every process has loaded its models: keep-alive connections made
        # while one process was still loading would all stay with the others.
        if ready is not None:
            ready.wait()
        sock = listening_socket(host, port)
    except threading.BrokenBarrierError:  # another process failed to start, and said why
        sys.exit(1)
    except Exception as e:  # the boundary of a process: one line, and the parent stops the others
        print(f"crnn-ocr serve worker: error: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
              file=sys.stderr, flush=True)
        sys.exit(1)
    listening.set()
    config = uvicorn.Config(app, host=host, port=port, access_log=access_log, **UVICORN_OPTIONS,
                            **uvicorn_options(ConnectionLimits(**settings["connection"])))
    uvicorn.Server(config).run(sockets=[sock])


def how_it_ended(exitcode: int) -> str:
    """``'exit code 3'`` or ``'killed by SIGKILL'``."""
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def run_workers(n: int, models: list[str], threads: int = 0, backend: str = "onnx", limits: Limits | None = None,
                batching: Batching | None = None, browse: str | Path | None = None, host: str = "127.0.0.1",
                port: int = 8000, access_log: bool = False, connection: ConnectionLimits | None = None,
                allowed_hosts: list[str] | None = None) -> int:
    """Run ``n`` server processes until SIGINT or SIGTERM, each loading ``models``
    (``serve.load_recognizers`` specs, with ``threads`` and ``backend``) and batching its own
    requests; the other arguments are ``serve.serve``'s. A process that dies while serving
    (killed, out of memory, a crash) is logged, with how it ended, and replaced; the others
    answer meanwhile. 0 when they all ended cleanly, else 1 (a process that fails to start,
    the first time or as a replacement, stops the others: it would fail again). One process
    parses requests and decodes images under one Python lock (the GIL); a second one doubles
    that, which is what a small model on a 2-core machine is short of at high concurrency
    (benchmarks/serve.py)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("--workers needs SO_REUSEPORT (Linux or BSD); run one process here")
    settings = {"models": models, "threads": threads, "backend": backend, "limits": asdict(limits or Limits()),
                "batching": asdict(batching or Batching()), "browse": None if browse is None else str(browse),
                "connection": asdict(connection or ConnectionLimits()),
                "allowed_hosts": hosts_of(host) if allowed_hosts is None else allowed_hosts}
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(n)
    stopping = threading.Event()

    def start(i: int, barrier):
        listening = context.Event()
        p = context.Process(target=_worker, args=(settings, host, port, access_log, barrier, listening),
                            name=f"crnn-ocr-serve-{i}")
        p.start()
        return p, listening

    def stop(signum=None, frame=None):
        stopping.set()
        ready.abort()  # processes still loading stop there
        for p, _ in workers:
            if p.is_alive():
                p.terminate()  # SIGTERM: uvicorn's graceful shutdown

    workers: list = []
    handlers = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        workers += [start(i, ready) for i in range(n)]
        failed = False
        while any(p.is_alive() for p, _ in workers):
            for i, (p, listening) in enumerate(workers):
                p.join(0.2 / n)
                if p.exitcode is None or stopping.is_set():
                    continue
                if not listening.is_set():  # ended before it served: a replacement would fail the same way
                    if p.exitcode not in (0, -signal.SIGTERM, -signal.SIGINT) and not failed:
                        failed = True
                        stop()
                    continue
                print(f"crnn-ocr serve: worker {i} (pid {p.pid}) died: {how_it_ended(p.exitcode)}; starting "
                      "another (the others answer meanwhile)", file=sys.stderr, flush=True)
                workers[i] = start(i, None)  # listens as soon as it has loaded the models
        return 1 if failed else 0
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
