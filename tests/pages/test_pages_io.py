"""Page inputs: image files, multi-page TIFFs, PDFs made here, and the refusals."""
from __future__ import annotations

import pytest
from PIL import Image

from crnn_ocr.pages.io import PageError, load_pages
from pagedraw import draw_lines, text_line


def test_a_two_page_pdf_gives_two_pages_at_the_dpi_asked(tmp_path):
    pytest.importorskip("pypdfium2", reason="PDF pages need pypdfium2")
    first, second = draw_lines([text_line(0)], size=(400, 300)), draw_lines([text_line(1)], size=(300, 400))
    pdf = tmp_path / "two.pdf"
    first.save(pdf, save_all=True, append_images=[second], resolution=100)  # 4 x 3 inches, then 3 x 4
    pages = load_pages(pdf, dpi=150)
    assert len(pages) == 2
    for page, (w, h) in zip(pages, [(600, 450), (450, 600)]):  # pdfium rounds a pixel either way
        assert abs(page.width - w) <= 1 and abs(page.height - h) <= 1
    assert all(p.mode == "L" for p in pages)
    assert pages[0].getextrema()[0] < 100  # the text came through


def test_a_multi_page_tiff_gives_each_page(tmp_path):
    pages = [draw_lines([text_line(i)], size=(300, 200)) for i in range(3)]
    tiff = tmp_path / "three.tif"
    pages[0].save(tiff, save_all=True, append_images=pages[1:])
    assert len(load_pages(tiff)) == 3


def test_png_and_jpeg_give_one_page_each(tmp_path):
    page = draw_lines([text_line(0)], size=(300, 200)).convert("RGB")
    for name in ("a.png", "b.jpg"):
        page.save(tmp_path / name)
        (loaded,) = load_pages(tmp_path / name)
        assert loaded.size == (300, 200)


def test_a_page_over_the_pixel_limit_is_refused_in_one_line(tmp_path):
    Image.new("L", (400, 300), 255).save(tmp_path / "big.png")
    with pytest.raises(PageError) as e:
        load_pages(tmp_path / "big.png", max_pixels=100_000)
    assert "over the page limit" in str(e.value) and "\n" not in str(e.value)


def test_a_pdf_page_over_the_pixel_limit_is_refused_before_it_is_rendered(tmp_path):
    pytest.importorskip("pypdfium2", reason="PDF pages need pypdfium2")
    Image.new("L", (400, 300), 255).save(tmp_path / "a.pdf", resolution=72)
    with pytest.raises(PageError, match="page 1: 2778x2083 pixels is over the page limit"):
        load_pages(tmp_path / "a.pdf", dpi=500, max_pixels=5_000_000)


@pytest.mark.parametrize("content", [b"", b"not an image at all"], ids=["empty", "text"])
def test_a_file_that_is_no_page_is_refused(tmp_path, content):
    (tmp_path / "x.png").write_bytes(content)
    with pytest.raises(PageError, match="x.png"):
        load_pages(tmp_path / "x.png")


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(PageError, match="no such file"):
        load_pages(tmp_path / "nope.png")
