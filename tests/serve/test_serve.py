"""``crnn-ocr serve``: answers in order and equal to the Python API's, bad requests refused with
a JSON 4xx (and the service still serving after each), micro-batching, the 503 of a full queue,
the evaluation browser, and a clean exit on SIGTERM."""
import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import warnings

import pytest
from PIL import Image

from crnn_ocr.reading.recognizer import Recognizer
from crnn_ocr.serve.app import Batching, Limits, create_app

from conftest import text_image, tiny_checkpoint

with warnings.catch_warnings():  # Starlette asks for the httpx2 fork; httpx works the same
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient as _TestClient


def TestClient(app, **kwargs):
    """Starlette's test client, as a browser on this machine: Host ``localhost``, one of the
    names the service answers by default."""
    return _TestClient(app, base_url="http://localhost", **kwargs)

WORDS = ["ab12", "xyz", "hello", "7q", "serve", "c0de", "batch", "ocr9"]


def png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def upload(*images: bytes) -> list:
    return [("images", (f"{i}.png", data, "image/png")) for i, data in enumerate(images)]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoint_path(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("serve") / "tiny.pt")


@pytest.fixture(scope="module")
def recognizer(checkpoint_path):
    return Recognizer.load(checkpoint_path)


@pytest.fixture(scope="module")
def images():
    return [png(text_image(w, (40 + 20 * len(w), 40))) for w in WORDS]


@pytest.fixture(scope="module")
def expected(recognizer, images):
    """What the Python API reads, one image at a time."""
    return [recognizer.read([Image.open(io.BytesIO(b))])[0] for b in images]


@pytest.fixture(scope="module")
def client(recognizer):
    limits = Limits(max_body_mb=0.2, max_images=8, max_pixels=1_000_000)
    app = create_app({"tiny": recognizer, "other": recognizer}, limits)
    with TestClient(app) as c:
        yield c


def assert_same(results, expected):
    assert [r["text"] for r in results] == [e.text for e in expected]
    assert [r["confidence"] for r in results] == pytest.approx([e.confidence for e in expected], abs=1e-4)


def test_multipart_results_come_in_order_and_match_the_python_api(client, images, expected):
    r = client.post("/v1/recognize", files=upload(*images))
    assert r.status_code == 200
    assert r.json()["model"] == "tiny"
    results = r.json()["results"]
    assert_same(results, expected)
    assert all(set(x) == {"text", "confidence"} for x in results)
    assert any(x["text"] for x in results), "an untrained model still emits characters"


def test_json_base64_gives_the_same_answers_as_multipart(client, images, expected):
    encoded = [base64.b64encode(b).decode() for b in images]
    encoded[1] = "data:image/png;base64," + encoded[1]  # a browser's data URL works too
    r = client.post("/v1/recognize", json={"images": encoded})
    assert r.status_code == 200
    assert_same(r.json()["results"], expected)


def test_details_give_each_characters_confidence_and_x_range(client, images, expected):
    r = client.post("/v1/recognize?details=true", files=upload(*images[:3]))
    assert r.status_code == 200
    for result, image in zip(r.json()["results"], images):
        width = Image.open(io.BytesIO(image)).width
        assert "".join(c["char"] for c in result["chars"]) == result["text"]
        for c in result["chars"]:
            assert 0 <= c["x"][0] < c["x"][1] <= width
            assert c["columns"][0] < c["columns"][1]
            assert 0 < c["confidence"] <= 1
    assert_same(r.json()["results"], expected[:3])


def test_model_is_chosen_by_name(client, images):
    r = client.post("/v1/recognize?model=other", files=upload(images[0]))
    assert r.status_code == 200 and r.json()["model"] == "other"


def test_models_healthz_docs_and_pages(client):
    models = client.get("/v1/models").json()
    assert [m["name"] for m in models] == ["tiny", "other"]
    assert models[0]["default"] and not models[1]["default"]
    assert models[0]["height"] == 32 and models[0]["backend"] == "pytorch"
    assert client.get("/healthz").json() == {"status": "ok", "queued": {"tiny": 0, "other": 0},
                                            "preparing": {"tiny": 0, "other": 0}, "pages": 0}
    assert "/v1/recognize" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/v1/evaluation").status_code == 404  # no --browse folder


def big_png(width: int, height: int) -> bytes:
    return png(Image.new("L", (width, height), 255))  # compresses to a few KB


BAD_REQUESTS = {
    "not an image": (dict(files=upload(b"this is text, not a PNG")), 400, "not_an_image"),
    "truncated image": (dict(files=upload(png(text_image("cut"))[:60])), 400, "not_an_image"),
    "too many pixels": (dict(files=upload(big_png(2000, 1000))), 413, "too_many_pixels"),
    "body too large": (dict(files=upload(os.urandom(300_000))), 413, "body_too_large"),
    "body too large, streamed": (dict(content=(b"x" * 10_000 for _ in range(30)),
                                      headers={"content-type": "application/json"}), 413, "body_too_large"),
    "too many images": (dict(files=upload(*[png(text_image("a"))] * 9)), 413, "too_many_images"),
    "no images": (dict(files=[("other", ("a.png", b"x", "image/png"))]), 400, "no_images"),
    "images as text fields": (dict(data={"images": "abc"}, files=[("x", ("x.png", b"x", "image/png"))]), 400,
                              "bad_multipart"),
    "multipart without a boundary": (dict(content=b"--x\r\n", headers={"content-type": "multipart/form-data"}), 400,
                                     "bad_multipart"),
    "a flood of multipart fields": (dict(data={f"f{i}": "x" for i in range(40)}, files=upload(b"x")), 413,
                                    "too_many_images"),
    "unknown model": (dict(files=upload(b"x"), params={"model": "nope"}), 404, "unknown_model"),
    "bad base64": (dict(json={"images": ["not base64!"]}), 400, "bad_base64"),
    "base64 of a non-image": (dict(json={"images": [base64.b64encode(b"hello").decode()]}), 400, "not_an_image"),
    "invalid JSON": (dict(content=b"{images:", headers={"content-type": "application/json"}), 400, "bad_json"),
    "JSON nested too deep": (dict(content=b"[" * 50_000 + b"]" * 50_000, headers={"content-type": "application/json"}),
                             400, "bad_json"),
    "JSON of the wrong shape": (dict(json={"images": "abc"}), 400, "bad_json"),
    "JSON list of numbers": (dict(json={"images": [1, 2]}), 400, "bad_json"),
    "wrong content type": (dict(content=b"abc", headers={"content-type": "text/plain"}), 415,
                           "unsupported_media_type"),
    "no content type": (dict(content=b"abc"), 415, "unsupported_media_type"),
    "details not a boolean": (dict(files=upload(b"x"), params={"details": "maybe"}), 422, "invalid_parameter"),
}


@pytest.mark.parametrize("name", BAD_REQUESTS)
def test_bad_request_gets_a_json_4xx_and_the_service_keeps_serving(client, images, expected, name):
    kwargs, status, code = BAD_REQUESTS[name]
    r = client.post("/v1/recognize", **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert "Traceback" not in r.text
    after = client.post("/v1/recognize", files=upload(images[0]))
    assert after.status_code == 200
    assert_same(after.json()["results"], expected[:1])


def test_one_bad_image_names_its_index(client, images):
    r = client.post("/v1/recognize", files=upload(images[0], b"GIF89a nonsense", images[1]))
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("image 1:")


def test_wrong_method_and_path_get_json_errors(client):
    assert client.get("/v1/recognize").json()["error"]["code"] == "http_error"
    r = client.get("/nowhere")
    assert r.status_code == 404 and "error" in r.json()


class GatedRecognizer:
    """A recognizer whose reading waits until the test opens the gate, recording each batch:
    makes "requests arrive while the model is busy" deterministic."""

    def __init__(self, recognizer):
        self.recognizer, self.batches = recognizer, []
        self.started, self.gate = threading.Event(), threading.Event()

    def _read_prepared(self, images, details=False):
        self.batches.append(len(images))
        self.started.set()
        assert self.gate.wait(10), "the test never opened the gate"
        return self.recognizer._read_prepared(images, details=details)

    def __getattr__(self, name):
        return getattr(self.recognizer, name)


def wait_for(condition, what: str, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def post_in_thread(client, files, answers, i):
    thread = threading.Thread(target=lambda: answers.__setitem__(i, client.post("/v1/recognize", files=files)))
    thread.start()
    return thread


def test_requests_that_arrive_while_the_model_is_busy_are_read_in_one_batch(recognizer, images, expected):
    gated = GatedRecognizer(recognizer)
    with TestClient(create_app({"tiny": gated}, batching=Batching(max_batch=32, max_wait_ms=0))) as client:
        answers = [None] * len(images)
        threads = [post_in_thread(client, upload(images[0]), answers, 0)]
        assert gated.started.wait(10)  # the first request is being read
        threads += [post_in_thread(client, upload(images[i]), answers, i) for i in range(1, len(images))]
        wait_for(lambda: client.get("/healthz").json()["queued"]["tiny"] == len(images) - 1, "the queue to fill")
        gated.gate.set()
        for t in threads:
            t.join(10)
    assert gated.batches == [1, len(images) - 1]
    assert [a.status_code for a in answers] == [200] * len(images)
    assert_same([a.json()["results"][0] for a in answers], expected)


def test_max_batch_1_reads_one_request_at_a_time(recognizer, images, expected):
    gated = GatedRecognizer(recognizer)
    gated.gate.set()
    with TestClient(create_app({"tiny": gated}, batching=Batching(max_batch=1))) as client:
        answers = [None] * 4
        for t in [post_in_thread(client, upload(images[i]), answers, i) for i in range(4)]:
            t.join(10)
    assert gated.batches == [1, 1, 1, 1]
    assert_same([a.json()["results"][0] for a in answers], expected[:4])


def test_a_full_queue_answers_503_and_recovers(recognizer, images, expected):
    gated = GatedRecognizer(recognizer)
    app = create_app({"tiny": gated}, Limits(max_images=4), Batching(max_batch=4, max_wait_ms=0, max_queue=4))
    with TestClient(app) as client:
        answers = [None] * 2
        first = post_in_thread(client, upload(*images[:4]), answers, 0)
        assert gated.started.wait(10)  # taken from the queue: the queue is empty, the model busy
        second = post_in_thread(client, upload(*images[4:8]), answers, 1)
        wait_for(lambda: client.get("/healthz").json()["queued"]["tiny"] == 4, "the queue to fill")
        refused = client.post("/v1/recognize", files=upload(images[0]))
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "queue_full"
        gated.gate.set()
        first.join(10)
        second.join(10)
        assert client.post("/v1/recognize", files=upload(images[0])).status_code == 200
    assert [a.status_code for a in answers] == [200, 200]
    assert_same(answers[0].json()["results"] + answers[1].json()["results"], expected)


def test_a_request_with_an_image_that_cannot_be_decoded_is_refused_before_the_model_reads(recognizer, images):
    gated = GatedRecognizer(recognizer)
    gated.gate.set()
    truncated = images[1][:len(images[1]) // 2]  # its header opens; its pixels do not decode
    with TestClient(create_app({"tiny": gated})) as client:
        r = client.post("/v1/recognize", files=upload(images[0], truncated))
        assert r.status_code == 400 and r.json()["error"]["message"].startswith("image 1:")
        assert client.get("/healthz").json() == {"status": "ok", "queued": {"tiny": 0}, "preparing": {"tiny": 0},
                                                 "pages": 0}
        assert client.post("/v1/recognize", files=upload(images[0])).status_code == 200
    assert gated.batches == [1]  # only the good request reached the model


def test_queue_must_hold_a_full_request(recognizer):
    with pytest.raises(ValueError, match="max_queue"):
        create_app({"tiny": recognizer}, Limits(max_images=64), Batching(max_queue=8))


def test_evaluation_browser_lists_predictions_and_serves_only_their_images(recognizer, evaluation_folder):
    with TestClient(create_app({"tiny": recognizer}, browse=evaluation_folder)) as client:
        assert client.get("/browse").status_code == 200
        evaluation = client.get("/v1/evaluation").json()
        assert evaluation["metrics"]["n"] == 3
        assert [(p["gold"], p["prediction"], p["correct"]) for p in evaluation["predictions"]] == [
            ("ab", "ab", True), ("cd", "cb", False), ("ef", "ef", True)]
        image = client.get("/v1/evaluation/images/1")
        assert image.status_code == 200 and Image.open(io.BytesIO(image.content)).size == (120, 40)
        assert client.get("/v1/evaluation/images/2").status_code == 404  # listed, but missing
        assert client.get("/v1/evaluation/images/3").status_code == 404
        assert client.get("/v1/evaluation/images/..%2Fpredictions.tsv").status_code in (404, 422)


def test_browse_needs_an_evaluation_folder(recognizer, tmp_path):
    with pytest.raises(ValueError, match="predictions.tsv"):
        create_app({"tiny": recognizer}, browse=tmp_path)


@pytest.mark.parametrize("predictions, metrics", [
    ("a\tb\n1\t2\n", None),  # other columns: was "unexpected KeyError: 'path'"
    ("path\tgold\tprediction\tcorrect\tconfidence\nx.png\ta\tb\t0\thigh\n", None),
    ("path\tgold\tprediction\tcorrect\tconfidence\nx.png\ta\n", None),  # a short row
    (b"path\tgold\n\xff\xfe\n", None),  # not UTF-8
    ("path\tgold\tprediction\tcorrect\tconfidence\n", "{bad"),
])
def test_browse_refuses_a_damaged_evaluation_folder_naming_it(recognizer, tmp_path, predictions, metrics):
    data = predictions if isinstance(predictions, bytes) else predictions.encode()
    (tmp_path / "predictions.tsv").write_bytes(data)
    if metrics is not None:
        (tmp_path / "metrics.json").write_text(metrics)
    with pytest.raises(ValueError, match="is not as `crnn-ocr evaluate` writes them") as e:
        create_app({"tiny": recognizer}, browse=tmp_path)
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("workers", [1])  # 2: test_hostile_clients' worker test
def test_cli_serves_until_sigterm_and_exits_cleanly(checkpoint_path, recognizer, images, workers):
    port = free_port()
    command = [sys.executable, "-m", "crnn_ocr", "serve", "--checkpoint", f"tiny={checkpoint_path}",
               "--port", str(port), "--threads", "1", "--workers", str(workers)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180  # importing torch on a busy machine
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1)
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        body = json.dumps({"images": [base64.b64encode(images[0]).decode()]}).encode()
        request = urllib.request.Request(f"{url}/v1/recognize", body, {"content-type": "application/json"})
        expected = [recognizer.read([images[0]])[0].text]
        for _ in range(4):  # whichever process answers, the answer is the Python API's
            assert [r["text"] for r in json.load(urllib.request.urlopen(request, timeout=10))["results"]] == expected
        models = json.load(urllib.request.urlopen(f"{url}/v1/models", timeout=10))
        assert [m["backend"] for m in models] == ["onnx"]  # the default: the .pt exported at start-up
        server.send_signal(signal.SIGTERM)
        # uvicorn finishes the requests in progress, then ends by the signal it was sent
        assert server.wait(60) in (0, -signal.SIGTERM)
        log = server.stdout.read()
        assert log.count("Started server process") == workers and log.count("Finished server process") == workers
        assert "Shutting down" in log
        assert "POST /v1/recognize" not in log  # no access log unless --access-log
    finally:
        if server.poll() is None:
            server.kill()


def test_workers_that_cannot_listen_stop_with_a_one_line_error(evaluation_folder, capfd, monkeypatch):
    from crnn_ocr.cli import serve as cli_serve
    from crnn_ocr.cli.main import main

    monkeypatch.setattr(cli_serve, "check_can_listen", lambda host, port: None)  # taken after the check
    with socket.socket() as taken:  # a port held without SO_REUSEPORT: no worker can bind it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", "--browse", str(evaluation_folder), "--threads", "1", "--workers", "2",  # no model:
                     "--port", str(port)])  # a quicker start
    err = capfd.readouterr().err
    assert code == 1 and "crnn-ocr serve worker: error:" in err and "Traceback" not in err


@pytest.mark.parametrize("flags, logged, backend", [([], False, "onnx"),
                                                    (["--access-log", "--backend", "pytorch"], True, "pytorch")])
def test_the_access_log_is_off_unless_asked_for(checkpoint_path, monkeypatch, flags, logged, backend):
    import uvicorn

    from crnn_ocr.cli.main import main

    runs = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: runs.append((app, options)))
    assert main(["serve", "--checkpoint", str(checkpoint_path), "--threads", "1", *flags]) == 0
    app, options = runs[0]
    assert options["access_log"] is logged and options["host"] == "127.0.0.1"
    with TestClient(app) as client:
        assert [m["backend"] for m in client.get("/v1/models").json()] == [backend]


@pytest.mark.parametrize("flags, message", [
    (["--port", "70000"], "[serve] port = 70000 (--port): must be a whole number >= 0 and < 65536"),  # would bind 4464
    (["--port", "-1"], "[serve] port = -1"), (["--threads", "-1"], "[serve] threads = -1"),
    (["--workers", "0"], "[serve] workers = 0"),
    (["--max-wait-ms", "inf"], "[serve] max_wait_ms = inf"),  # every request would wait for a full batch
    (["--max-body-mb", "nan"], "[serve] max_body_mb = nan"), (["--max-images", "0"], "[serve] max_images = 0"),
    (["--max-pixels", "-5"], "[serve] max_pixels = -5"), (["--max-batch", "0"], "[serve] max_batch = 0"),
    (["--header-timeout", "0"], "[serve] header_timeout = 0"), (["--max-header-bytes", "12"], "[serve] max_header_bytes = 12"),
    (["--workers", "two"], "[serve] workers = 'two'"),
])
def test_serve_numbers_out_of_range_are_a_one_line_error_before_serving(checkpoint_path, monkeypatch, capsys,
                                                                        flags, message):
    import uvicorn

    from crnn_ocr.cli.main import main

    runs = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: runs.append(options))
    assert main(["serve", "--model", str(checkpoint_path), "--threads", "1", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"crnn-ocr: error: {message}") and len(err.splitlines()) == 1 and not runs


@pytest.mark.parametrize("host", ["127.0.0.1", "no-such-host.invalid"])
def test_a_port_in_use_or_a_bad_host_is_a_one_line_error_before_serving(checkpoint_path, monkeypatch, capsys, host):
    import uvicorn

    from crnn_ocr.cli.main import main

    runs = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: runs.append(options))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--model", str(checkpoint_path), "--host", host, "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"crnn-ocr: error: cannot listen on {host}:{port}: ") and len(err.splitlines()) == 1
    assert not runs
