"""``POST /v1/page``: a page drawn in the test read by the bundled line model, as the Python
API reads it; a word model, a page over the pixel budget and a service without the layout's
libraries refused with a JSON error, and the service serving after each."""
import base64
import io
import sys
import threading
import warnings
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("cv2", reason="the page layout needs opencv-python-headless")
pytest.importorskip("scipy", reason="the page layout needs SciPy")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pages"))
from pagedraw import draw_lines, text_line  # noqa: E402

from crnn_ocr import pages as P  # noqa: E402
from crnn_ocr.reading.recognizer import Recognizer  # noqa: E402
from crnn_ocr.serve.app import Batching, Limits, create_app, load_recognizers  # noqa: E402

from conftest import tiny_checkpoint  # noqa: E402

with warnings.catch_warnings():  # Starlette asks for the httpx2 fork; httpx works the same
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

LINES = [text_line(i, 6) for i in range(3)]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def page_png() -> bytes:
    return png(draw_lines(LINES, size=(900, 260)))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The tiny fixed-width word model first (the service's default), then printed-en."""
    words = Recognizer.load(tiny_checkpoint(tmp_path_factory.mktemp("page") / "tiny.pt"))
    return {"words": words, **load_recognizers(["printed-en"], threads=1, backend="pytorch")}


@pytest.fixture(scope="module")
def client(models):
    app = create_app(models, Limits(max_page_pixels=400_000))
    with TestClient(app, base_url="http://localhost") as c:
        yield c


def test_a_page_is_answered_with_its_lines_boxes_and_text_as_the_python_api_reads_it(client, models, page_png):
    r = client.post("/v1/page", files={"image": ("page.png", page_png, "image/png")})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["model"] == "printed-en"  # the first line model, though not the service's default
    page = answer["page"]
    assert (page["width"], page["height"]) == (900, 260)
    assert len(page["lines"]) == len(LINES)
    assert sum(line["text"] == gold for line, gold in zip(page["lines"], LINES)) >= 2
    tops = [line["box"][1] for line in page["lines"]]
    assert tops == sorted(tops)  # reading order: top to bottom
    for line in page["lines"]:
        x0, y0, x1, y1 = line["box"]
        assert 0 <= x0 < x1 <= 900 and 0 <= y0 < y1 <= 260
        assert line["words"] and 0 <= line["confidence"] <= 1
    expected = P.read_page(Image.open(io.BytesIO(page_png)), models["printed-en"]).to_dict()
    assert page == expected  # a thin layer: the same answer as the Python API


def test_json_base64_and_the_images_field_give_the_same_page(client, page_png):
    first = client.post("/v1/page?model=printed-en", files={"images": ("p.png", page_png, "image/png")}).json()
    second = client.post("/v1/page", json={"image": base64.b64encode(page_png).decode()}).json()
    assert first == second and first["page"]["lines"]


def test_a_blank_page_has_no_lines(client):
    r = client.post("/v1/page", files={"image": ("blank.png", png(Image.new("L", (600, 400), 255)), "image/png")})
    assert r.status_code == 200 and r.json()["page"]["lines"] == [] and r.json()["page"]["text"] == ""


REFUSED = {
    "a fixed-width word model": (dict(params={"model": "words"}), 400, "not_a_line_model"),
    "an unknown model": (dict(params={"model": "nope"}), 404, "unknown_model"),
    "a page over --max-page-pixels": (dict(image=Image.new("L", (1000, 500), 255)), 413, "too_many_pixels"),
    "two pages": (dict(files=[("image", ("a.png", b"x", "image/png"))] * 2), 413, "too_many_images"),
    "no page": (dict(files=[("other", ("a.png", b"x", "image/png"))]), 400, "no_images"),
    "not an image": (dict(files={"image": ("a.png", b"not a page", "image/png")}), 400, "not_an_image"),
    "JSON without an image": (dict(json={"page": "x"}), 400, "bad_json"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_refused_page_gets_a_json_error_and_the_service_keeps_reading(client, page_png, case):
    kwargs, status, code = REFUSED[case]
    kwargs = dict(kwargs)
    if "image" in kwargs:
        kwargs["files"] = {"image": ("big.png", png(kwargs.pop("image")), "image/png")}
    if "json" not in kwargs:
        kwargs.setdefault("files", {"image": ("page.png", page_png, "image/png")})
    r = client.post("/v1/page", **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and "Traceback" not in r.text
    assert client.post("/v1/page", files={"image": ("page.png", page_png, "image/png")}).status_code == 200


def test_a_service_of_word_models_only_says_it_has_no_line_model(models, page_png):
    with TestClient(create_app({"words": models["words"]}), base_url="http://localhost") as c:
        r = c.post("/v1/page", files={"image": ("page.png", page_png, "image/png")})
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_line_model"


class GatedLineModel:
    """A line model whose reading waits until the test opens the gate: "a page is being read"
    made deterministic."""

    def __init__(self, recognizer):
        self.recognizer, self.started, self.gate = recognizer, threading.Event(), threading.Event()

    def read(self, *args, **kwargs):
        self.started.set()
        assert self.gate.wait(60)
        return self.recognizer.read(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.recognizer, name)


def test_pages_beyond_the_page_queue_get_503_while_one_is_read(models, page_png):
    gated = GatedLineModel(models["printed-en"])
    files = {"image": ("page.png", page_png, "image/png")}
    with TestClient(create_app({"printed-en": gated}, batching=Batching(max_page_queue=1)),
                    base_url="http://localhost") as c:
        answers = []
        first = threading.Thread(target=lambda: answers.append(c.post("/v1/page", files=files)))
        first.start()
        assert gated.started.wait(30)  # the first page is being read
        assert c.get("/healthz").json()["pages"] == 1
        refused = c.post("/v1/page", files=files)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "queue_full"
        gated.gate.set()
        first.join(60)
        assert answers[0].status_code == 200 and answers[0].json()["page"]["lines"]
        assert c.post("/v1/page", files=files).status_code == 200
        assert c.get("/healthz").json()["pages"] == 0


def test_without_the_layout_libraries_the_page_endpoint_answers_501_naming_them(client, page_png, monkeypatch):
    for name in [m for m in sys.modules if m.startswith("crnn_ocr.pages.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    r = client.post("/v1/page", files={"image": ("page.png", page_png, "image/png")})
    assert r.status_code == 501
    error = r.json()["error"]
    assert error["code"] == "pages_unavailable" and "crnn-ocr[pages]" in error["message"]
    assert "cv2" in error["message"]


def test_recognize_reads_a_line_image_with_the_same_line_model(client, models):
    line = draw_lines([LINES[0]], size=(700, 60), at=(10, 10))
    r = client.post("/v1/recognize?model=printed-en", files=[("images", ("line.png", png(line), "image/png"))])
    assert r.status_code == 200
    assert r.json()["results"][0]["text"] == models["printed-en"].read([line])[0].text
