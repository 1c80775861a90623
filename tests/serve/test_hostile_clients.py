"""``crnn-ocr serve`` under clients that do not play by the rules (issue 39), one test per
class: the pixel budget, clients that never finish their headers or body, clients that leave,
a worker process that dies, bodies over the limit, requests for another host, the browser's
security headers, and the API docs without a network. Behaviour only: what the client reads
and whether its connection is closed, never how fast."""
import base64
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from crnn_ocr.serve.app import Batching, Limits, create_app
from crnn_ocr.serve.connections import uvicorn_options
from crnn_ocr.serve.guard import SECURITY_HEADERS, hosts_of
from crnn_ocr.serve.options import ConnectionLimits

from conftest import text_image
from test_serve import checkpoint_path, recognizer  # noqa: F401  (fixtures: a tiny model, shared with test_serve)
from test_serve import GatedRecognizer, TestClient, free_port, png, upload, wait_for

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def word():
    return png(text_image("word", (100, 40)))


def running_server(app, connection: ConnectionLimits | None = None):
    """uvicorn serving ``app`` on a free localhost port in a thread, with ``connection``
    limits, logging to the root logger (so ``caplog`` sees it); (port, stop)."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, log_level="info",
                            **uvicorn_options(connection or ConnectionLimits()))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), "uvicorn to start")
    assert server.started

    def stop():
        server.should_exit = True
        thread.join(10)

    return port, stop


def exchange(port: int, data: bytes, more: bytes = b"") -> tuple[bytes, bool]:
    """Send ``data`` (then ``more`` while reading, ignoring a reset); everything read until the
    server closes the connection, and whether it did (10 s guard: a server that never closes)."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(data)
        s.settimeout(10)
        if more:
            try:
                s.sendall(more)
            except OSError:
                pass
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except TimeoutError:
            return answer, False
        except ConnectionResetError:
            pass
        return answer, True


def json_error(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]["code"]


# --- pixels ---------------------------------------------------------------------------------

def blank(size, mode="L", fmt="PNG", **save) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 255 if mode == "L" else 0).save(buf, fmt, **save)
    return buf.getvalue()  # a few KB for millions of pixels


def test_pixel_budget_per_request_and_per_image_is_read_from_the_headers(recognizer, word):
    limits = Limits(max_pixels=1_000_000, max_request_pixels=2_500_000)
    with TestClient(create_app({"tiny": recognizer}, limits)) as client:
        one_megapixel = blank((1000, 1000))
        assert client.post("/v1/recognize", files=upload(one_megapixel, one_megapixel)).status_code == 200
        over = client.post("/v1/recognize", files=upload(*[one_megapixel] * 3))  # each within, together not
        assert over.status_code == 413 and over.json()["error"]["code"] == "too_many_pixels"
        assert "per request" in over.json()["error"]["message"]
        # a 16-bit image decodes at 8 bytes a pixel: it counts 4 times
        sixteen_bit = client.post("/v1/recognize", files=upload(blank((600, 600), "I;16")))
        assert sixteen_bit.status_code == 413 and "I;16" in sixteen_bit.json()["error"]["message"]
        assert client.post("/v1/recognize", files=upload(blank((600, 600)))).status_code == 200
        # only the first frame of a many-frame image is read, and counted
        frames = blank((40, 40), fmt="TIFF", save_all=True, compression="tiff_adobe_deflate",
                       append_images=[Image.new("L", (3000, 3000))] * 3)
        assert client.post("/v1/recognize", files=upload(frames)).status_code == 200
        assert client.post("/v1/recognize", files=upload(word)).status_code == 200


class RecordingRecognizer:
    """A recognizer that records, at each ``_prepare``, how many images it was given and how
    many of the images it was given before still hold decoded pixels."""

    def __init__(self, recognizer):
        self.recognizer, self.calls, self.seen = recognizer, [], []

    def _prepare(self, images):
        still_decoded = sum(1 for im in self.seen if not closed(im))
        self.calls.append((len(images), still_decoded))
        self.seen += images
        return self.recognizer._prepare(images)

    def __getattr__(self, name):
        return getattr(self.recognizer, name)


def closed(im: Image.Image) -> bool:
    try:
        _ = im.im
    except ValueError:  # "Operation on closed image": its pixels are freed
        return True
    return False


def test_images_are_decoded_one_at_a_time_and_freed_once_reduced(recognizer):
    spy = RecordingRecognizer(recognizer)
    with TestClient(create_app({"tiny": spy})) as client:
        r = client.post("/v1/recognize", files=upload(*[png(text_image(w)) for w in ("ab", "cd", "ef", "gh")]))
    assert r.status_code == 200
    assert spy.calls == [(1, 0)] * 4  # one image at a time; none of the earlier ones still decoded
    assert all(closed(im) for im in spy.seen)


# --- clients that never finish ------------------------------------------------------------

SLOW_CLIENTS = {
    # what the client sends, then stops: (bytes, status answered, code)
    "headers never end": (b"POST /v1/recognize HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaa", 408, "header_timeout"),
    "one header line without end": (b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 100_000, 431,
                                    "headers_too_large"),
    "a header too large, sent whole": (b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 100_000
                                       + b"\r\n\r\n", 431, "headers_too_large"),
    "body never ends": (b"POST /v1/recognize HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\n"
                        b"content-length: 1000\r\n\r\n{\"images\": [", 408, "body_timeout"),
    "not HTTP": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n", 400, "bad_http"),
}


@pytest.fixture(scope="module")
def short_timeouts_server(recognizer):
    limits = ConnectionLimits(max_header_bytes=8192, header_timeout=0.3, body_timeout=0.3, keep_alive_timeout=0.3)
    port, stop = running_server(create_app({"tiny": recognizer}), limits)
    yield port
    stop()


@pytest.mark.parametrize("name", SLOW_CLIENTS)
def test_a_client_that_never_finishes_is_answered_and_cut_off(short_timeouts_server, word, name):
    sent, status, code = SLOW_CLIENTS[name]
    answer, was_closed = exchange(short_timeouts_server, sent)
    assert was_closed, "the server kept the connection open"
    assert json_error(answer) == (status, code)
    body = json.dumps({"images": [base64.b64encode(word).decode()]}).encode()
    request = urllib.request.Request(f"http://localhost:{short_timeouts_server}/v1/recognize", body,
                                     {"content-type": "application/json"})
    assert urllib.request.urlopen(request, timeout=10).status == 200  # the others are served


def test_connections_that_send_nothing_or_idle_after_an_answer_are_closed(short_timeouts_server):
    assert exchange(short_timeouts_server, b"") == (b"", True)
    answer, was_closed = exchange(short_timeouts_server, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200") and was_closed  # kept alive, then closed when idle


def test_connections_beyond_the_limit_are_answered_503_and_closed(recognizer):
    port, stop = running_server(create_app({"tiny": recognizer}), ConnectionLimits(max_connections=2))
    try:
        with socket.create_connection(("127.0.0.1", port)), socket.create_connection(("127.0.0.1", port)):
            answer, was_closed = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert json_error(answer) == (503, "too_many_connections") and was_closed
        request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nconnection: close\r\n\r\n"
        wait_for(lambda: exchange(port, request)[0].startswith(b"HTTP/1.1 200"), "a connection served again")
    finally:
        stop()


# --- clients that leave --------------------------------------------------------------------

def test_a_client_that_leaves_costs_one_log_line_and_its_queued_work_is_dropped(recognizer, word, caplog):
    gated = GatedRecognizer(recognizer)
    port, stop = running_server(create_app({"tiny": gated}, batching=Batching(max_wait_ms=0)))
    url = f"http://localhost:{port}"
    request = ("POST /v1/recognize HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\n"
               "connection: close\r\ncontent-length: {}\r\n\r\n")
    body = json.dumps({"images": [base64.b64encode(word).decode()]}).encode()
    whole = request.format(len(body)).encode() + body
    try:
        with caplog.at_level(logging.INFO):
            answers = []
            first = threading.Thread(target=lambda: answers.append(exchange(port, whole)))
            first.start()
            assert gated.started.wait(10)  # the model is busy with the first request
            with socket.create_connection(("127.0.0.1", port)) as leaves_mid_upload:
                leaves_mid_upload.sendall(whole[:len(whole) - 10])
            with socket.create_connection(("127.0.0.1", port)) as leaves_while_queued:
                leaves_while_queued.sendall(whole)
                wait_for(lambda: json.load(urllib.request.urlopen(f"{url}/healthz"))["queued"]["tiny"] == 1,
                         "the request to be queued")
            wait_for(lambda: json.load(urllib.request.urlopen(f"{url}/healthz"))["queued"]["tiny"] == 0,
                     "the queue to drop the request of the client that left")
            gated.gate.set()
            first.join(10)
            wait_for(lambda: sum("went away" in r.getMessage() for r in caplog.records) == 2, "the log lines")
    finally:
        stop()
    assert answers[0][0].startswith(b"HTTP/1.1 200")
    assert gated.batches == [1]  # the model read only the request whose client stayed
    assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert all(r.exc_info is None for r in caplog.records)


# --- a worker that dies ---------------------------------------------------------------------

def server_processes(pid: int) -> set[int]:
    """The worker processes of the ``crnn-ocr serve`` process ``pid`` (its spawned children
    other than multiprocessing's resource tracker)."""
    children = {int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()}
    return {c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()}


def gone(pid: int) -> bool:
    """Dead (a zombie, its sockets closed, or reaped)."""
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads worker processes from /proc (Linux)")
def test_a_worker_that_dies_is_logged_and_replaced_while_the_other_answers(evaluation_folder):
    port = free_port()  # the workers serve an evaluation folder only: no model to load, a quicker start
    command = [sys.executable, "-m", "crnn_ocr", "serve", "--browse", str(evaluation_folder), "--port", str(port),
               "--threads", "1", "--workers", "2"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=os.environ | {"OMP_NUM_THREADS": "1"})
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(server.stdout), daemon=True)
    reader.start()

    def answers() -> bool:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/evaluation", timeout=10).status == 200
        except OSError:
            return False

    try:
        started = lambda: sum("Application startup complete" in line for line in log)  # noqa: E731
        wait_for(lambda: started() == 2 or server.poll() is not None, "both workers to serve", timeout=180)
        assert answers()
        workers = server_processes(server.pid)
        assert len(workers) == 2
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: gone(victim), "the worker to die")  # (its requests in flight are lost with it)
        assert all(answers() for _ in range(6))  # the other one answers meanwhile
        wait_for(lambda: started() == 3, "the replacement to serve", timeout=120)  # two, then the replacement
        assert len(server_processes(server.pid) - workers) == 1
        assert answers()
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) in (0, -signal.SIGTERM)
        reader.join(10)
    finally:
        if server.poll() is None:
            server.kill()
    text = "".join(log)
    assert f"(pid {victim}) died: killed by SIGKILL; starting another" in text
    assert text.count("Finished server process") == 2 and "Traceback" not in text


# --- bodies over the limit ------------------------------------------------------------------

@pytest.mark.parametrize("close", [True, False], ids=["client asks to close", "keep-alive"])
def test_a_body_over_the_limit_gets_a_readable_413(recognizer, close):
    """The client sends its whole body before it reads (as urllib and most clients do); the
    answer was sent before the body was read, and still reaches it."""
    port, stop = running_server(create_app({"tiny": recognizer}, Limits(max_body_mb=0.25)))
    body = json.dumps({"images": ["A" * 3_000_000]}).encode()  # 12 times the limit
    head = (f"POST /v1/recognize HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n" + ("connection: close\r\n" if close else "") + "\r\n").encode()
    try:
        answer, was_closed = exchange(port, head, body)
        with pytest.raises(urllib.error.HTTPError) as refused:  # urllib asks to close, too
            urllib.request.urlopen(urllib.request.Request(f"http://localhost:{port}/v1/recognize", body,
                                                          {"content-type": "application/json"}), timeout=10)
    finally:
        stop()
    assert json_error(answer) == (413, "body_too_large") and was_closed
    assert refused.value.code == 413 and json.loads(refused.value.read())["error"]["code"] == "body_too_large"


def test_only_a_bounded_part_of_a_refused_body_is_read(recognizer):
    limits = ConnectionLimits(drain_mb=0.5)
    port, stop = running_server(create_app({"tiny": recognizer}, Limits(max_body_mb=0.25)), limits)
    head = (b"POST /v1/recognize HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\n"
            b"content-length: 1000000000\r\n\r\n")  # a gigabyte announced
    try:
        answer, was_closed = exchange(port, head, b"A" * 4_000_000)
    finally:
        stop()
    assert json_error(answer) == (413, "body_too_large") and was_closed  # closed without reading it all


# --- the browser ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_client(recognizer):
    with TestClient(create_app({"tiny": recognizer})) as client:
        yield client


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "localhost.evil.example", "127.0.0.2", ""])
def test_a_request_for_another_host_is_refused(local_client, host):
    r = local_client.get("/v1/models", headers={"host": host})
    assert r.status_code == 400 and r.json()["error"]["code"] == "host_not_allowed"
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST"])
def test_the_loopback_names_are_allowed_by_default(local_client, host):
    assert local_client.get("/v1/models", headers={"host": host}).status_code == 200


def test_allowed_hosts_are_the_bound_address_names_unless_given(recognizer):
    assert set(hosts_of("127.0.0.1")) == set(hosts_of("::1")) == {"localhost", "127.0.0.1", "::1"}
    assert {"localhost", socket.gethostname().lower()} <= set(hosts_of("0.0.0.0"))
    assert hosts_of("192.0.2.7") == ["192.0.2.7"]
    with TestClient(create_app({"tiny": recognizer}, allowed_hosts=["ocr.example"])) as client:
        assert client.get("/healthz", headers={"host": "ocr.example:443"}).status_code == 200
        assert client.get("/healthz").status_code == 400  # localhost is no longer one of its names
    with TestClient(create_app({"tiny": recognizer}, allowed_hosts=["*"])) as client:
        assert client.get("/healthz", headers={"host": "anything.example"}).status_code == 200


@pytest.mark.parametrize("path", ["/", "/docs", "/static/app.js", "/v1/models", "/healthz", "/nowhere",
                                  "/favicon.ico"])
def test_every_response_carries_the_security_headers(local_client, path):
    r = local_client.get(path)
    for name, value in SECURITY_HEADERS:
        assert r.headers[name.decode()] == value.decode()
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_models_list_each_models_decoder(local_client):
    assert [m["decoder"] for m in local_client.get("/v1/models").json()] == ["greedy"]


def test_docs_and_favicon_are_served_by_the_service_itself(local_client):
    import re

    page = local_client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls)  # no other origin
    for url in urls:
        assert local_client.get(url).status_code == 200, url
    assert "<script>" not in page.text  # no inline script: the policy would block it
    favicon = local_client.get("/favicon.ico")
    assert favicon.status_code == 200 and favicon.headers["content-type"].startswith("image/svg+xml")
