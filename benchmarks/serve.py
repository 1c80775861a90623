r"""``crnn-ocr serve`` under load: a script, not a test (CI never runs it).

1, 8 and 32 clients on localhost, each sending one real captcha image per request and the
next as soon as the answer is in, against

- ``crnn-ocr serve`` with micro-batching (the default: up to 16 images per forward pass),
  in one process and with ``--workers 2`` (two processes sharing the port),
- ``crnn-ocr serve --max-batch 1`` (one request at a time),
- ddddocr behind the same kind of minimal FastAPI + uvicorn handler (``--ddddocr-server``
  below), run by the Python of the peers' environment (``benchmarks/setup_peers.sh``, or just
  ``pip install ddddocr fastapi uvicorn[standard] python-multipart`` into ``.venv-peers``).

    .venv/bin/python benchmarks/serve.py --data ../shared/data/captcha_v2/val \
        [--model captcha-v2] [--seconds 10] [--threads 1]

Each server is its own process, started by this script, with ``--threads`` CPU threads for its
model; the clients are one asyncio process speaking plain HTTP/1.1 with keep-alive (light, so
that the measurement is the server's work and not the client's). Every level is run for
``--seconds`` after a warm-up. The images are read from ``--data`` at run time; the labels
(file stems) give each system's word accuracy on the answers, as a check that the answers are
real. The server's CPU time per answered image (from /proc) is reported too: unlike the
throughput and latencies, it hardly depends on what else the machine is running. ddddocr reads
one image at a time behind a lock: called from several threads at once, it answers wrongly.
Writes ``serve.json`` and ``serve.md`` to ``--out-dir`` and prints the table.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from fastapi import Request  # at module level: FastAPI resolves the handlers' annotations here

BOUNDARY = "crnn-ocr-benchmark"
BATCHING = ("crnn-ocr serve", "crnn-ocr serve --workers 2")  # the micro-batching servers, checked against the targets



def stop(server: subprocess.Popen, seconds: float) -> None:
    """SIGTERM the service and wait for it to end; kill it after ``seconds``."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(seconds)
    except subprocess.TimeoutExpired:
        server.kill()

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def multipart_request(image: bytes, port: int) -> bytes:
    """One complete HTTP/1.1 request uploading ``image`` as the field ``images``."""
    body = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="images"; filename="x.png"\r\n'
            "Content-Type: image/png\r\n\r\n").encode() + image + f"\r\n--{BOUNDARY}--\r\n".encode()
    head = (f"POST /v1/recognize HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def client(port: int, requests: list[bytes], labels: list[str], first: int, stop_at: float,
                 measure_from: float, out: dict) -> None:
    """Send requests back to back on one connection until ``stop_at``; record the latency and
    answer of those sent after ``measure_from``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = first
    try:
        while (start := time.perf_counter()) < stop_at:
            k = i % len(requests)
            i += 1
            try:
                writer.write(requests[k])
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                status = int(lines[0].split()[1])
                length = next(int(v) for h in lines[1:] if h for n, v in [h.split(":", 1)]
                              if n.lower() == "content-length")
                body = await reader.readexactly(length)
                out["answered"] += 1
            except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration) as e:
                out["errors"] += start >= measure_from
                out["first_error"] = out["first_error"] or f"{type(e).__name__}: {e}"[:200]
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            if start < measure_from:
                continue
            out["latencies"].append(time.perf_counter() - start)
            if status != 200:
                out["errors"] += 1
                out["first_error"] = out["first_error"] or f"HTTP {status}: {body[:150].decode(errors='replace')}"
                continue
            text = json.loads(body)["results"][0]["text"]
            out["correct"] += text == labels[k]
    finally:
        writer.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its living children so far (Linux): a server
    with --workers is a supervisor and its worker processes."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
                for c in (task / "children").read_text().split()]
    return own + sum(cpu_seconds(c) for c in children)


async def load(port: int, requests: list[bytes], labels: list[str], clients: int, seconds: float,
               warmup: float, pid: int) -> dict:
    out = {"latencies": [], "errors": 0, "correct": 0, "first_error": None, "answered": 0}
    now = time.perf_counter()
    measure_from, stop_at = now + warmup, now + warmup + seconds
    spread = len(requests) // clients
    cpu = cpu_seconds(pid)
    await asyncio.gather(*(client(port, requests, labels, c * spread, stop_at, measure_from, out)
                           for c in range(clients)))
    cpu_ms = 1000 * (cpu_seconds(pid) - cpu) / max(out["answered"], 1)
    lat = sorted(out["latencies"])
    n = len(lat)
    return {"clients": clients, "requests": n + out["errors"], "errors": out["errors"],
            "images_per_s": round(n / seconds, 1),
            "p50_ms": round(1000 * statistics.median(lat), 2) if lat else None,
            "p99_ms": round(1000 * lat[min(n - 1, int(0.99 * n))], 2) if lat else None,
            "word_accuracy": round(out["correct"] / n, 4) if n else None, "server_cpu_ms_per_image": round(cpu_ms, 2),
            "first_error": out["first_error"]}


def wait_until_up(port: int, server: subprocess.Popen, timeout: float = 600) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start (exit code {server.poll()})") from None
            time.sleep(0.3)


def run_system(name: str, command: list[str], port: int, requests: list[bytes], labels: list[str],
               args, env: dict) -> dict:
    print(f"{name}: starting", flush=True)
    log = tempfile.TemporaryFile("w+")  # the servers' logs (start-up and errors; no access log)
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        try:
            wait_until_up(port, server)
        except RuntimeError as e:
            server.kill()
            log.seek(0)
            return {"system": name, "skipped": f"{e}: {log.read()[-300:]}"}
        levels = []
        for clients in args.clients:
            level = asyncio.run(load(port, requests, labels, clients, args.seconds, args.warmup, server.pid))
            print(f"  {clients:>3} clients: {level['images_per_s']:8.1f} images/s, p50 {level['p50_ms']} ms, "
                  f"p99 {level['p99_ms']} ms, errors {level['errors']}, word accuracy {level['word_accuracy']}, "
                  f"server CPU {level['server_cpu_ms_per_image']} ms/image", flush=True)
            levels.append(level)
        return {"system": name, "command": " ".join(Path(c).name if "/" in c else c for c in command),
                "levels": levels}
    finally:
        stop(server, 30)
        log.close()


def ddddocr_server(port: int, threads: int, alphabet: str) -> None:
    """ddddocr behind a minimal FastAPI handler answering like ``crnn-ocr serve``, limited to
    the captchas' alphabet as ``benchmarks/peers.py`` runs it."""
    import ddddocr
    import onnxruntime as ort
    import uvicorn
    from fastapi import FastAPI
    from starlette.concurrency import run_in_threadpool

    original = ort.InferenceSession

    def session(path, sess_options=None, *a, **kw):  # ddddocr does not let its caller pick the threads
        sess_options = sess_options or ort.SessionOptions()
        sess_options.intra_op_num_threads, sess_options.inter_op_num_threads = threads, 1
        return original(path, sess_options, *a, **kw)

    ort.InferenceSession = session
    ocr = ddddocr.DdddOcr(show_ad=False)
    ort.InferenceSession = original
    ocr.set_ranges(alphabet)
    lock = threading.Lock()
    app = FastAPI()

    @app.post("/v1/recognize")
    async def recognize(request: Request):
        images = [await f.read() for f in (await request.form()).getlist("images")]
        texts = await run_in_threadpool(classify, images)
        return {"results": [{"text": t} for t in texts]}

    def classify(images: list[bytes]) -> list[str]:
        with lock:  # concurrent classification() calls give wrong answers (ddddocr 1.6: 97% -> 64% at 32)
            return [ocr.classification(im) for im in images]

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info", access_log=False)  # as crnn-ocr serve logs


def gunicorn_app():
    """The app for the ``gunicorn`` system (``serve:gunicorn_app()``): the model in
    ``CRNN_OCR_BENCH_MODEL``, one thread, as ``crnn-ocr serve`` loads it."""
    import torch

    from crnn_ocr.serve.app import create_app, load_recognizers

    torch.set_num_threads(1)
    return create_app(load_recognizers([os.environ["CRNN_OCR_BENCH_MODEL"]], 1, "onnx"))


try:  # gunicorn's worker running uvicorn with the service's connection limits (the gunicorn system)
    from uvicorn.workers import UvicornWorker

    from crnn_ocr.serve.connections import uvicorn_options
    from crnn_ocr.serve.options import ConnectionLimits

    class GuardedUvicornWorker(UvicornWorker):
        CONFIG_KWARGS = {"loop": "auto", **uvicorn_options(ConnectionLimits()), "log_level": "info",
                         "access_log": False}
except ImportError:
    pass


def table(runs: list[dict]) -> str:
    lines = ["| system | clients | images/s | p50 ms | p99 ms | errors | word acc % | server CPU ms/image |",
             "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        if "skipped" in run:
            lines.append(f"| {run['system']} | - | skipped: {run['skipped'][:80]} | | | | | |")
            continue
        for lv in run["levels"]:
            acc = "-" if lv["word_accuracy"] is None else f"{100 * lv['word_accuracy']:.1f}"
            lines.append(f"| {run['system']} | {lv['clients']} | {lv['images_per_s']:.0f} | {lv['p50_ms']} | "
                         f"{lv['p99_ms']} | {lv['errors']} | {acc} | {lv['server_cpu_ms_per_image']} |")
    return "\n".join(lines)


def targets(runs: list[dict]) -> dict:
    """The issue's targets, checked on each micro-batching server at the most clients."""
    by_name = {r["system"]: r for r in runs if "levels" in r}
    result = {}
    for name in BATCHING:
        if (batched := by_name.get(name)) is None:
            continue
        one, top = batched["levels"][0], batched["levels"][-1]
        speed_up = round(top["images_per_s"] / one["images_per_s"], 2)
        checks = {f"speed-up at {top['clients']} clients over 1 (>= 3)": speed_up,
                  f"p99 at {top['clients']} clients, ms (<= 100)": top["p99_ms"],
                  "errors (0)": sum(lv["errors"] for lv in batched["levels"])}
        if (peer := by_name.get("ddddocr")) is not None:
            best_peer = max(lv["images_per_s"] for lv in peer["levels"])
            checks["throughput over ddddocr's best (>= 5)"] = round(top["images_per_s"] / best_peer, 2)
        result[name] = checks
    return result


# --- the fault run (issue 39) ---------------------------------------------------------------

def process_tree(pid: int) -> list[int]:
    """``pid`` and its living descendants (Linux)."""
    try:
        children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
                    for c in (task / "children").read_text().split()]
    except OSError:
        return []
    return [pid] + [p for c in children for p in process_tree(c)]


def rss_by_process(pid: int) -> dict[int, float]:
    """Resident memory, MB, of ``pid`` and of each of its descendants."""
    sizes = {}
    for p in process_tree(pid):
        try:
            sizes[p] = next(int(line.split()[1]) for line in Path(f"/proc/{p}/status").read_text().splitlines()
                            if line.startswith("VmRSS:")) / 1024
        except (OSError, StopIteration):
            pass
    return sizes


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, MB."""
    return sum(rss_by_process(pid).values())


def png_bytes(image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def garbage_requests(port: int) -> list[tuple[str, bytes]]:
    """(name, raw bytes) of malformed or hostile requests, each sent on a connection of its own."""
    import base64
    import io

    from PIL import Image

    host = f"Host: 127.0.0.1:{port}\r\n"

    def post(body: bytes, kind: str = "application/json", extra: str = "") -> bytes:
        return (f"POST /v1/recognize HTTP/1.1\r\n{host}Content-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                f"{extra}\r\n").encode() + body

    def images(*encoded: bytes) -> bytes:
        return post(json.dumps({"images": [base64.b64encode(e).decode() for e in encoded]}).encode())

    wide = io.BytesIO()
    Image.new("I;16", (4000, 4000)).save(wide, "TIFF", compression="tiff_adobe_deflate")
    white = png_bytes(Image.new("L", (1900, 1900), 255))
    return [("random bytes", os.urandom(2000)),
            ("another Host", "GET /v1/models HTTP/1.1\r\nHost: evil.example\r\n\r\n".encode()),
            ("bad base64", post(b'{"images": ["not base64!"]}')),
            ("not JSON", post(b"{images: [")),
            ("text as an image", images(b"hello, not an image")),
            ("truncated PNG", images(white[:200])),
            ("3000x3000 PNG (over the per-image budget)", images(png_bytes(Image.new("L", (3000, 3000), 255)))),
            ("5 x 1900x1900 PNG (over the request budget)", images(*[white] * 5)),
            ("16-bit 4000x4000 TIFF", images(wide.getvalue())),
            ("9 MB body", post(b"A" * 9_000_000)),
            ("100 KB header", f"GET /healthz HTTP/1.1\r\n{host}X-Big: {'a' * 100_000}\r\n\r\n".encode()),
            ("wrong content type", post(b"abc", "text/plain"))]


async def send_raw(port: int, data: bytes, timeout: float = 60) -> str:
    """Send ``data`` on a new connection; the answer's status, or how the connection ended."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as e:
        return f"connect {type(e).__name__}"
    try:
        writer.write(data)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        return head.split()[1].decode()
    except asyncio.IncompleteReadError:
        return "closed"
    except (OSError, asyncio.LimitOverrunError, TimeoutError) as e:
        return type(e).__name__
    finally:
        writer.close()


async def slow_client(port: int, stop_at: float, body: bool, out: dict) -> None:
    """Start a request and never finish it (its headers, or with ``body`` its body), a byte
    every half second; record how long the server kept each such connection."""
    while time.perf_counter() < stop_at:
        start = time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            head = f"POST /v1/recognize HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            writer.write((head + "Content-Length: 100000\r\n\r\n{" if body else head).encode())
            while time.perf_counter() < stop_at:
                writer.write(b" " if body else b"x")  # a header line that never ends
                try:
                    if await asyncio.wait_for(reader.read(65536), 0.5) == b"":
                        break
                except TimeoutError:
                    continue
                except OSError:  # reset: the server closed with the rest unread
                    break
                break  # answered (408): the server closes next
            else:
                writer.close()
                return  # the run ended first
            out["slow_body_cut" if body else "slow_headers_cut"].append(time.perf_counter() - start)
            writer.close()
        except OSError:
            await asyncio.sleep(0.2)


async def garbage_client(port: int, stop_at: float, out: dict) -> None:
    cases = garbage_requests(port)
    i = 0
    while time.perf_counter() < stop_at:
        name, data = cases[i % len(cases)]
        i += 1
        status = await send_raw(port, data)
        out["garbage"].setdefault(name, {}).setdefault(status, 0)
        out["garbage"][name][status] += 1
        await asyncio.sleep(0.05)


async def abandoning_client(port: int, stop_at: float, request: bytes, out: dict) -> None:
    """Send a heavy request whole (or half of it) and leave at once, again and again."""
    half = False
    while time.perf_counter() < stop_at:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request[:len(request) // 2] if half else request)
            await writer.drain()
            writer.close()
            out["abandoned"] += 1
        except OSError:
            pass
        half = not half
        await asyncio.sleep(0.2)


async def kill_a_worker(server_pid: int, at: float, out: dict) -> None:
    await asyncio.sleep(max(0.0, at - time.perf_counter()))
    workers = [p for p in process_tree(server_pid)[1:] if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
    os.kill(min(workers), signal.SIGKILL)
    out["killed"] = {"pid": min(workers), "at": time.perf_counter()}


async def memory_sampler(server_pid: int, stop_at: float, out: dict) -> None:
    while time.perf_counter() < stop_at:
        sizes = rss_by_process(server_pid)
        out["memory_mb"].append(sum(sizes.values()))
        for p, mb in sizes.items():
            out["process_peak_mb"][p] = max(mb, out["process_peak_mb"].get(p, 0))
        await asyncio.sleep(0.25)


async def good_client(port: int, requests: list[bytes], reference: list[str], first: int, stop_at: float,
                      out: dict) -> None:
    """A well-formed client: one captcha per request, back to back on a keep-alive connection
    (a new one after an error); each answer checked against the one given before the run."""
    i = first
    connection = None
    while (start := time.perf_counter()) < stop_at:
        k = i % len(requests)
        i += 1
        try:
            if connection is None:
                connection = await asyncio.open_connection("127.0.0.1", port)
            reader, writer = connection
            writer.write(requests[k])
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            length = next(int(v) for h in lines[1:] if h for n, v in [h.split(":", 1)] if n.lower() == "content-length")
            body = await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration, TimeoutError) as e:
            out["connection_errors"].append((time.perf_counter(), f"{type(e).__name__}: {e}"[:120]))
            if connection is not None:
                connection[1].close()
            connection = None
            await asyncio.sleep(0.05)
            continue
        out["latencies"].append(time.perf_counter() - start)
        if status != 200:
            out["statuses"][status] = out["statuses"].get(status, 0) + 1
            continue
        out["answered_at"].append(time.perf_counter())
        text = json.loads(body)["results"][0]["text"]
        out["correct"] += text == reference[k]
        out["wrong"] += text != reference[k]
    if connection is not None:
        connection[1].close()


async def fault_load(port: int, server_pid: int, requests: list[bytes], reference: list[str], abandon: bytes,
                     args) -> dict:
    out = {"latencies": [], "answered_at": [], "connection_errors": [], "statuses": {}, "correct": 0, "wrong": 0,
           "garbage": {}, "slow_headers_cut": [], "slow_body_cut": [], "abandoned": 0, "memory_mb": [],
           "killed": None, "process_peak_mb": {}}
    start = time.perf_counter()
    stop_at = start + args.seconds
    spread = max(1, len(requests) // args.fault_clients)
    tasks = [good_client(port, requests, reference, c * spread, stop_at, out) for c in range(args.fault_clients)]
    tasks += [garbage_client(port, stop_at, out), memory_sampler(server_pid, stop_at, out),
              kill_a_worker(server_pid, start + args.seconds / 3, out)]
    tasks += [slow_client(port, stop_at, body=i % 2 == 1, out=out) for i in range(args.slow_clients)]
    tasks += [abandoning_client(port, stop_at, abandon, out) for _ in range(2)]
    await asyncio.gather(*tasks)
    out["start"], out["stop"] = start, stop_at
    return out


def fault_run(args, images: list[bytes], labels: list[str], env: dict) -> dict:
    """``crnn-ocr serve --workers 2`` under well-formed clients, a garbage client, slow and
    abandoned requests and one worker killed a third of the way in: the numbers of issue 39's targets."""
    import base64
    import urllib.request

    from PIL import Image

    port = free_port()
    command = [sys.executable, "-m", "crnn_ocr", "serve", "--model", f"captcha={args.checkpoint}", "--backend",
               args.backend, "--threads", str(args.threads), "--workers", "2", "--port", str(port)]
    log = tempfile.TemporaryFile("w+")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_up(port, server)
        deadline = time.monotonic() + 300
        while True:  # both workers listening
            log.seek(0)
            if log.read().count("Application startup complete") >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        requests = [multipart_request(im, port) for im in images]
        reference = []
        for request in requests:  # each image's answer from the idle service: what every later answer must be
            body = request.split(b"\r\n\r\n", 1)[1]
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/recognize", body,
                                         {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
            reference.append(json.load(urllib.request.urlopen(req, timeout=30))["results"][0]["text"])
        time.sleep(1)
        idle_by_process = rss_by_process(server.pid)
        idle_mb = sum(idle_by_process.values())
        load_before = os.getloadavg()
        word = png_bytes(Image.new("L", (700, 700), 255))  # 16 of them: 7.8 M pixels, within the budgets
        abandon = (f"POST /v1/recognize HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                   "Content-Length: {}\r\n\r\n")
        abandon_body = json.dumps({"images": [base64.b64encode(word).decode()] * 16}).encode()
        abandon = abandon.format(len(abandon_body)).encode() + abandon_body
        out = asyncio.run(fault_load(port, server.pid, requests, reference, abandon, args))
        alive_after = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).status
    finally:
        stop(server, 60)
        log.seek(0)
        server_log = log.read()
        log.close()
    # each worker's peak over its idle figure (a replacement's over the largest idle worker's)
    worker_idle = max(mb for p, mb in idle_by_process.items() if p != server.pid)
    worst = max(mb / idle_by_process.get(p, worker_idle) for p, mb in out["process_peak_mb"].items()
                if p != server.pid and mb > 100)  # (not the small resource tracker)
    result = summarize_faults(out, idle_mb, server_log, alive_after, labels, reference, command)
    return result | {"worst_process_peak_over_idle": round(worst, 2), "load_average_before": load_before,
                     "memory_idle_by_process_mb": {("server" if p == server.pid else str(p)): round(mb, 1)
                                                   for p, mb in idle_by_process.items()}}


def summarize_faults(out: dict, idle_mb: float, server_log: str, alive_after: int, labels: list[str],
                     reference: list[str], command: list[str]) -> dict:
    killed_at = out["killed"]["at"] if out["killed"] else None
    lost = [t for t, _ in out["connection_errors"] if killed_at is not None and killed_at <= t <= killed_at + 1]
    other = [e for t, e in out["connection_errors"] if not (killed_at is not None and killed_at <= t <= killed_at + 1)]
    lat = sorted(out["latencies"])
    answered = sorted(out["answered_at"])
    gaps = [b - a for a, b in zip([out["start"]] + answered, answered + [out["stop"]])]
    five_xx = sum(n for status, n in out["statuses"].items() if status >= 500)
    cut = lambda xs: round(statistics.median(xs), 1) if xs else None  # noqa: E731
    died = [line for line in server_log.splitlines() if "died" in line]
    return {
        "command": " ".join(Path(c).name if "/" in c else c for c in command),
        "well_formed_requests": len(lat) + len(out["connection_errors"]),
        "answered_200": len(answered), "wrong_answers": out["wrong"],
        "reference_word_accuracy": round(sum(r == g for r, g in zip(reference, labels)) / len(labels), 4),
        "5xx_to_well_formed": five_xx, "other_statuses": {str(k): v for k, v in out["statuses"].items() if k < 500},
        "connection_errors_in_the_second_after_the_kill": len(lost), "other_connection_errors": len(other),
        "first_other_error": other[0] if other else None,
        "connection_errors_s_after_the_kill": [round(t - killed_at, 2) for t, _ in out["connection_errors"]]
        if killed_at is not None else None,
        "p50_ms": round(1000 * statistics.median(lat), 1) if lat else None,
        "p99_ms": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1) if lat else None,
        "longest_gap_without_an_answer_ms": round(1000 * max(gaps), 1) if gaps else None,
        "garbage": out["garbage"], "abandoned_requests": out["abandoned"],
        "slow_header_connections_cut": len(out["slow_headers_cut"]), "slow_header_cut_after_s": cut(out["slow_headers_cut"]),
        "slow_body_connections_cut": len(out["slow_body_cut"]), "slow_body_cut_after_s": cut(out["slow_body_cut"]),
        "worker_killed": bool(out["killed"]), "supervisor_log": died[:2],
        "workers_started": server_log.count("Application startup complete"),
        "tracebacks_in_log": server_log.count("Traceback"), "healthz_after": alive_after,
        "memory_idle_mb": round(idle_mb, 1), "memory_peak_mb": round(max(out["memory_mb"]), 1),
        "memory_peak_over_idle": round(max(out["memory_mb"]) / idle_mb, 2),
    }


def fault_markdown(result: dict, args) -> str:
    r = result
    garbage = "; ".join(f"{name}: " + ", ".join(f"{s} x{n}" for s, n in statuses.items())
                        for name, statuses in r["garbage"].items())
    rows = [("well-formed requests (32 clients, one captcha each)", r["well_formed_requests"], ""),
            ("answered 200", r["answered_200"], ""),
            ("wrong answers (not the idle service's answer)", r["wrong_answers"], "0"),
            ("5xx to well-formed requests", r["5xx_to_well_formed"], "0"),
            ("other statuses to well-formed requests", r["other_statuses"] or 0, ""),
            ("connection errors in the second after the kill (the killed worker's connections)",
             r["connection_errors_in_the_second_after_the_kill"], ""),
            ("other connection errors", r["other_connection_errors"], "0"),
            ("p50 / p99 latency, ms", f"{r['p50_ms']} / {r['p99_ms']}", ""),
            ("longest time without an answer, ms", r["longest_gap_without_an_answer_ms"], "answering throughout"),
            ("slow headers: connections cut / after (median, s)",
             f"{r['slow_header_connections_cut']} / {r['slow_header_cut_after_s']}", "seconds"),
            ("slow bodies: connections cut / after (median, s)",
             f"{r['slow_body_connections_cut']} / {r['slow_body_cut_after_s']}", "seconds"),
            ("abandoned heavy requests (16 x 700x700, whole or half sent)", r["abandoned_requests"], ""),
            ("workers started (2 + the replacement)", r["workers_started"], "3"),
            ("tracebacks in the server's log", r["tracebacks_in_log"], "0"),
            ("memory idle / peak, MB (server and workers)", f"{r['memory_idle_mb']} / {r['memory_peak_mb']}", ""),
            ("memory peak / idle", r["memory_peak_over_idle"], "<= 1.5"),
            ("one worker's memory peak / its idle figure, the worst", r["worst_process_peak_over_idle"], "<= 1.5")]
    table = ["| measure | value | target |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join([
        "## Fault run (issue 39)\n",
        f"    nice -n 19 python benchmarks/serve.py --data {args.data} --fault-run --seconds {args.seconds:g} "
        f"--threads {args.threads}\n",
        f"`{r['command']}`, {args.seconds:g} s, nice 19, {args.fault_clients} well-formed clients, one garbage client "
        f"(a new connection per case, in turn), {args.slow_clients} slow clients (half never finish their headers, half "
        f"their body), 2 clients abandoning heavy requests, one worker killed (SIGKILL) a third of the way in; "
        f"{r['reference_word_accuracy'] * 100:.1f}% of the reference answers match the labels; load average before: "
        f"{', '.join(f'{x:.2f}' for x in r['load_average_before'])} (2 CPUs, other jobs running).\n",
        *table, "", f"Supervisor: {' '.join(r['supervisor_log']) or '(nothing logged)'}", "",
        f"Garbage client, answers by case: {garbage}.", ""])


def write_fault_results(result: dict, args) -> None:
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "serve.json", out / "serve.md"
    data = json.loads(json_path.read_text()) if json_path.exists() else {}
    data["fault_run"] = result
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    md = md_path.read_text() if md_path.exists() else "# crnn-ocr serve under load\n"
    md = md.split("## Fault run (issue 39)")[0].rstrip() + "\n\n" + fault_markdown(result, args)
    md_path.write_text(md)
    print(fault_markdown(result, args))


def arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", "--checkpoint", dest="checkpoint", default="captcha-v2",
                   help="a bundled model's name or a .pt, .safetensors or .onnx file (default: %(default)s)")
    p.add_argument("--data", help="folder of captcha images labelled by file name")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--seconds", type=float, default=10.0, help="measured time per level (default: %(default)s)")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=1, help="CPU threads for each server's model")
    p.add_argument("--backend", choices=("onnx", "pytorch"), default="onnx",
                   help="crnn-ocr serve --backend (default: %(default)s, as the command's own default)")
    p.add_argument("--max-wait-ms", type=float, default=2.0, help="crnn-ocr serve --max-wait-ms")
    p.add_argument("--max-batch", type=int, default=16, help="crnn-ocr serve --max-batch of the batching server")
    p.add_argument("--systems", nargs="+", choices=("batching", "two-workers", "gunicorn", "one-at-a-time", "ddddocr"),
                   default=["batching", "two-workers", "one-at-a-time", "ddddocr"], help="the servers to measure")
    p.add_argument("--peers-python", default=".venv-peers/bin/python", help="the Python that has ddddocr")
    p.add_argument("--out-dir", default="results/serve")
    p.add_argument("--fault-run", action="store_true",
                   help="instead of the load levels: the fault run of issue 39 (--workers 2 under well-formed, "
                   "garbage, slow and abandoning clients, one worker killed), its section of serve.md")
    p.add_argument("--fault-clients", type=int, default=32, help="well-formed clients of the fault run")
    p.add_argument("--slow-clients", type=int, default=8, help="slow clients of the fault run")
    p.add_argument("--ddddocr-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    p.add_argument("--alphabet", help=argparse.SUPPRESS)
    args = p.parse_args()
    if not args.data and not args.ddddocr_server:
        p.error("--data is required")
    return args


def server_commands(args, labels: list[str]) -> list[tuple[str, list[str]]]:
    """(name, command without its port) of each server to measure, in order."""
    serve = [sys.executable, "-m", "crnn_ocr", "serve", "--model", f"captcha={args.checkpoint}",
             "--backend", args.backend, "--threads", str(args.threads), "--max-wait-ms", str(args.max_wait_ms)]
    systems = [(BATCHING[0], serve + ["--max-batch", str(args.max_batch)]),
               (BATCHING[1], serve + ["--max-batch", str(args.max_batch), "--workers", "2"]),
               ("crnn-ocr serve --max-batch 1", serve + ["--max-batch", "1"])]
    # the same app in two uvicorn workers under gunicorn's supervisor, sharing one socket
    systems.append(("gunicorn -w 2 (uvicorn workers)", [
        sys.executable, "-m", "gunicorn", "--chdir", str(Path(__file__).parent), "-w", "2",
        "-k", "serve.GuardedUvicornWorker", "--graceful-timeout", "10", "serve:gunicorn_app()", "--bind"]))
    kinds = dict(zip(("batching", "two-workers", "one-at-a-time", "gunicorn"), systems))
    systems = [kinds[kind] for kind in args.systems if kind in kinds]  # in the order asked for
    if "ddddocr" in args.systems and Path(args.peers_python).exists():
        alphabet = "".join(sorted(set("".join(labels))))
        systems.append(("ddddocr", [args.peers_python, str(Path(__file__).resolve()), "--alphabet", alphabet,
                                    "--threads", str(args.threads), "--ddddocr-server"]))
    return systems


def write_results(result: dict, args) -> None:
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "serve.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [f"# crnn-ocr serve under load\n",
          f"{result['images']} captcha images, one per request, {args.seconds:g} s per level after a warm-up; "
          f"crnn-ocr served with {args.backend}, --max-batch {args.max_batch}, --max-wait-ms {args.max_wait_ms:g}; "
          f"{args.threads} model thread(s) per server; {result['machine']}; load average before: "
          f"{', '.join(f'{x:.2f}' for x in result['load_average'])}.\n", table(result["runs"]), "",
          *(f"Targets, {name}: " + "; ".join(f"{k}: {v}" for k, v in checks.items())
            for name, checks in result["targets"].items()), ""]
    (out / "serve.md").write_text("\n".join(md))
    print("\n".join(md))


def main() -> None:
    args = arguments()
    if args.ddddocr_server:
        return ddddocr_server(args.ddddocr_server, args.threads, args.alphabet)
    files = sorted(f for f in Path(args.data).iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg"))
    labels = [f.stem.split("-")[0] for f in files]
    images = [f.read_bytes() for f in files]
    env = os.environ | {"OMP_NUM_THREADS": str(args.threads), "PYTHONUNBUFFERED": "1",
                        "CRNN_OCR_BENCH_MODEL": f"captcha={args.checkpoint}"}
    if args.fault_run:
        return write_fault_results(fault_run(args, images, labels, env), args)
    runs = []
    for name, command in server_commands(args, labels):
        port = free_port()
        command = command + [str(port)] if command[-1] == "--ddddocr-server" else \
            command + [f"127.0.0.1:{port}"] if command[-1] == "--bind" else command + ["--port", str(port)]
        requests = [multipart_request(im, port) for im in images]
        runs.append(run_system(name, command, port, requests, labels, args, env))
    if "ddddocr" in args.systems and not Path(args.peers_python).exists():
        runs.append({"system": "ddddocr", "skipped": f"no {args.peers_python} (run benchmarks/setup_peers.sh)"})
    write_results({"images": len(images), "seconds_per_level": args.seconds, "threads": args.threads,
                   "max_wait_ms": args.max_wait_ms, "max_batch": args.max_batch,
                   "model": Path(args.checkpoint).name, "backend": args.backend,
                   "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "load_average": os.getloadavg(),
                   "runs": runs, "targets": targets(runs)}, args)

if __name__ == "__main__":
    main()
