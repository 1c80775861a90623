"""Reading whole pages with the bundled printed line model: text in reading order, words with
boxes inside their lines, a blank page, a page upside down, a PDF of two pages."""
from __future__ import annotations

import json

import pytest
from PIL import Image
from rapidfuzz.distance import Levenshtein

pytest.importorskip("cv2", reason="the page layout needs opencv-python-headless")
pytest.importorskip("skimage", reason="the page layout needs scikit-image")
pytest.importorskip("torch", reason="reading needs torch")

from crnn_ocr.pages import load_recognizer, read_document, read_page  # noqa: E402
from pagedraw import draw_lines, text_line  # noqa: E402

LINES = [text_line(i, 6) for i in range(5)]


@pytest.fixture(scope="module")
def recognizer():
    return load_recognizer("printed-en", threads=1, backend="pytorch")


@pytest.fixture(scope="module")
def page_image() -> Image.Image:
    return draw_lines(LINES, size=(1000, 400), at=(50, 50), leading=56, font_size=30)


def cer(gold: str, pred: str) -> float:
    g, p = " ".join(gold.split()), " ".join(pred.split())
    return Levenshtein.distance(g, p) / len(g)


def test_a_page_is_read_line_by_line_in_order(recognizer, page_image):
    page = read_page(page_image, recognizer)
    assert len(page.lines) == 5
    assert cer("\n".join(LINES), page.text()) < 0.03
    assert (page.width, page.height, page.flags) == (1000, 400, [])


def test_words_come_from_the_line_with_boxes_inside_it(recognizer, page_image):
    page = read_page(page_image, recognizer)
    for line in page.lines:
        assert [w.text for w in line.words] == line.text.split()
        x0, y0, x1, y1 = line.box
        previous_end = x0
        for w in line.words:
            assert x0 <= w.box[0] < w.box[2] <= x1 and y0 <= w.box[1] < w.box[3] <= y1
            assert w.box[0] >= previous_end  # words left to right, not overlapping
            previous_end = w.box[2]
            assert 0 < w.confidence <= 1
    json.dumps(page.to_dict())  # JSON-ready


def test_a_blank_page_gives_empty_text(recognizer):
    page = read_page(Image.new("L", (800, 600), 255), recognizer)
    assert page.text() == "" and page.lines == []


def test_a_page_upside_down_is_turned_and_flagged(recognizer, page_image):
    page = read_page(page_image.rotate(180), recognizer)
    assert page.flags and "upside down" in page.flags[0]
    assert abs(page.angle) == pytest.approx(180, abs=1)
    assert cer("\n".join(LINES), page.text()) < 0.03
    top = page.lines[0].box  # boxes are on the page as given: the first line is now at the bottom
    assert top[1] > 250


def test_a_pdf_of_two_pages_is_read_page_by_page(recognizer, page_image, tmp_path):
    pytest.importorskip("pypdfium2", reason="PDF pages need pypdfium2")
    second = draw_lines(LINES[:2], size=(1000, 400), at=(50, 50), leading=56, font_size=30)
    page_image.save(tmp_path / "two.pdf", save_all=True, append_images=[second], resolution=200)
    pages = read_document(tmp_path / "two.pdf", recognizer, dpi=200)
    assert [p.number for p in pages] == [1, 2]
    assert [len(p.lines) for p in pages] == [5, 2]
    assert cer("\n".join(LINES[:2]), pages[1].text()) < 0.03


@pytest.mark.parametrize("turn", [90, 270])
def test_a_page_on_its_side_is_read_either_way_round(recognizer, page_image, turn):
    page = read_page(page_image.rotate(turn, expand=True), recognizer)
    assert cer("\n".join(LINES), page.text()) < 0.03
    assert (page.width, page.height) == (400, 1000)
    assert page.flags == [f"on its side: read turned {360 - turn} degrees counter-clockwise"]


def test_one_call_reads_a_file_into_the_json_structure(page_image, tmp_path):
    from crnn_ocr.pages import read_pages

    page_image.save(tmp_path / "page.png")
    (page,) = read_pages(tmp_path / "page.png", model="printed-en")
    d = page.to_dict()
    assert d["page"] == 1 and len(d["lines"]) == 5 and d["lines"][0]["words"]
    assert cer("\n".join(LINES), d["text"]) < 0.03
