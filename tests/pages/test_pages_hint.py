"""The warning for a page given to the crop reader."""
from __future__ import annotations

import pytest
from PIL import Image

pytest.importorskip("cv2", reason="the page layout needs opencv-python-headless")
pytest.importorskip("skimage", reason="the page layout needs scikit-image")

from crnn_ocr.pages.hint import crop_warning  # noqa: E402
from pagedraw import draw_lines, text_line  # noqa: E402


def test_a_page_of_lines_names_the_page_command():
    page = draw_lines([text_line(i) for i in range(4)], size=(700, 300))
    message = crop_warning(page, 32, 1600, "page.png")
    assert message == "page.png holds 4 text lines, and this model reads one: read pages with `crnn-ocr read`"


def test_a_line_crop_gets_no_warning():
    assert crop_warning(draw_lines([text_line(0)], size=(700, 60), at=(10, 10)), 32, 1600) is None
    assert crop_warning(draw_lines([text_line(0)], size=(700, 120), at=(10, 40)), 32, 1600) is None


def test_an_image_far_wider_than_the_model_reads_is_named():
    message = crop_warning(Image.new("L", (20000, 40), 255), 32, 1600, "strip.png")
    assert message.startswith("strip.png is 16000 pixels wide") and "crnn-ocr read" in message
