"""The layout on small pages drawn here: lines in order, columns, a blank page, a tilted page,
a page on its side, touching lines."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("cv2", reason="the page layout needs opencv-python-headless")
pytest.importorskip("skimage", reason="the page layout needs scikit-image")
pytest.importorskip("scipy", reason="the page layout needs scipy")

from crnn_ocr.pages.layout import PRINTED, segment  # noqa: E402
from pagedraw import draw_lines, noisy, text_line  # noqa: E402


def centres_y(layout) -> list[float]:
    return [(ln.box[1] + ln.box[3]) / 2 for ln in layout.lines]


def test_lines_are_found_top_to_bottom_one_per_text_line():
    page = draw_lines([text_line(i) for i in range(6)])
    layout = segment(page)
    assert len(layout.lines) == 6
    ys = centres_y(layout)
    assert ys == sorted(ys)
    for i, y in enumerate(ys):  # each box sits on its drawn line (font 28 drawn from y = 60 + 48 i)
        assert 60 + 48 * i <= y <= 60 + 48 * i + 34
    assert layout.rotation.angle == 0


def test_two_columns_are_read_left_column_first_after_the_heading():
    page = Image.new("L", (1400, 800), 255)
    draw_lines(["A HEADING ACROSS THE PAGE"], at=(60, 40), font_size=40, page=page)
    draw_lines([text_line(i, 5) for i in range(8)], at=(60, 130), page=page)
    draw_lines([text_line(i + 8, 5) for i in range(8)], at=(760, 130), page=page)
    layout = segment(page)
    boxes = [ln.box for ln in layout.lines]
    assert len(boxes) == 17
    assert boxes[0][1] < 100  # the heading first
    left, right = boxes[1:9], boxes[9:]
    assert all(b[2] < 720 for b in left) and all(b[0] > 720 for b in right)
    assert [b[1] for b in left] == sorted(b[1] for b in left)
    assert [b[1] for b in right] == sorted(b[1] for b in right)


def test_aligned_word_gaps_in_two_lines_do_not_make_columns():
    lines = ["aaaa bbbb cccc" + " " * 12 + "dddd eeee", "ffff gggg hhhh" + " " * 12 + "iiii jjjj"]
    layout = segment(draw_lines(lines, leading=60))
    assert len(layout.lines) == 2


@pytest.mark.parametrize("page", [Image.new("L", (800, 600), 255), noisy(Image.new("L", (800, 600), 235), 8.0)],
                         ids=["white", "grey with scanner noise"])
def test_a_blank_page_has_no_lines(page):
    assert segment(page).lines == []


def test_a_tilted_page_is_straightened_and_its_boxes_map_back_onto_it():
    page = draw_lines([text_line(i) for i in range(6)], size=(1100, 800), at=(120, 120))
    tilted = page.rotate(3, resample=Image.Resampling.BILINEAR, fillcolor=255, expand=True)
    layout = segment(tilted)
    assert len(layout.lines) == 6
    assert layout.rotation.angle == pytest.approx(-3, abs=0.3)
    ink = np.asarray(tilted) < 128
    for line in layout.lines:
        x0, y0, x1, y1 = layout.to_page(line.box)
        assert 0 <= x0 < x1 <= tilted.width and 0 <= y0 < y1 <= tilted.height
        assert ink[y0:y1, x0:x1].sum() > 200  # the box on the page as given holds the line's ink


def test_a_page_on_its_side_is_turned_a_quarter():
    page = draw_lines([text_line(i) for i in range(6)])
    layout = segment(page.rotate(90, expand=True))
    assert layout.rotation.angle % 180 == pytest.approx(90, abs=0.5)
    assert len(layout.lines) == 6


def test_touching_lines_are_cut_apart_at_the_valley_between_them():
    page = draw_lines([text_line(i) for i in range(4)], leading=40, font_size=34)
    draw = ImageDraw.Draw(page)
    for x in (200, 420, 640):  # long strokes from each line's core into the next one's
        draw.line([(x, 75), (x + 12, 165)], fill=20, width=4)
    layout = segment(page)
    assert len(layout.lines) == 4
    tops = [ln.box[1] for ln in layout.lines]
    assert tops == sorted(tops)
    for line in layout.lines:  # a cut stroke leaves no line much taller than one line of text
        assert line.box[3] - line.box[1] < 80


def test_a_line_is_cut_with_the_other_lines_ink_painted_out():
    page = draw_lines([text_line(i) for i in range(3)], leading=40, font_size=34)
    layout = segment(page)
    crop, box = layout.crop(1, PRINTED)
    assert box[1] < layout.lines[1].box[1] and box[3] > layout.lines[1].box[3]
    a = np.asarray(crop)
    top, bottom = layout.lines[1].box[1] - box[1], layout.lines[1].box[3] - box[1]
    assert (a[:top] < 128).sum() == 0 and (a[bottom:] < 128).sum() == 0  # no ink of lines 0 and 2
    assert (a[top:bottom] < 128).sum() > 300


def test_a_shadow_across_the_page_does_not_hide_its_lines():
    page = draw_lines([text_line(i, 10) for i in range(6)], size=(1000, 400), at=(60, 40), leading=56)
    shade = np.linspace(1.0, 0.45, page.width)[None, :]  # paper from white to dark grey, left to right
    shaded = Image.fromarray((np.asarray(page, dtype=np.float64) * shade).astype(np.uint8), "L")
    layout, clean = segment(shaded), segment(page)
    assert len(layout.lines) == 6
    for line, same in zip(layout.lines, clean.lines):  # each line found to its end, in the shadow
        assert np.abs(np.subtract(line.box, same.box)).max() <= 3


@pytest.mark.parametrize("left, right", [(8, 5), (5, 8)])
def test_columns_of_unequal_length_are_each_read_to_their_end(left, right):
    page = Image.new("L", (1400, 600), 255)
    draw_lines([text_line(i, 5) for i in range(left)], at=(60, 40), page=page)
    draw_lines([text_line(i + 8, 5) for i in range(right)], at=(760, 40), page=page)
    draw_lines(["a closing line right across both columns of the page"], at=(60, 480), font_size=40, page=page)
    xs = [ln.box[0] for ln in segment(page).lines]
    assert len(xs) == left + right + 1
    assert all(x < 720 for x in xs[:left]) and all(x > 720 for x in xs[left:left + right])
    assert xs[-1] < 100  # the line across the page last


def test_a_picture_beside_the_text_is_no_line_and_does_not_turn_the_page():
    page = draw_lines([text_line(i, 5) for i in range(6)], size=(1200, 500), at=(40, 40))
    ImageDraw.Draw(page).rectangle((700, 40, 1100, 400), fill=60)
    layout = segment(page)
    assert layout.rotation.angle == 0
    assert len(layout.lines) == 6 and all(ln.box[2] < 700 for ln in layout.lines)


def test_a_one_word_line_tucked_under_a_long_line_is_a_line_of_its_own():
    page = Image.new("L", (1400, 400), 255)
    draw = ImageDraw.Draw(page)
    for k in range(8):  # a long line of "words", every other one with a descender reaching the next line
        x = 40 + 160 * k
        draw.ellipse((x, 60, x + 120, 100), outline=0, width=6)
        if k % 2:
            draw.line((x + 100, 80, x + 100, 170), fill=0, width=6)
    draw.ellipse((80, 150, 200, 190), outline=0, width=6)  # one word under it, no blank row between
    lines = segment(page).lines
    assert len(lines) == 2
    assert lines[1].box == (80, 150, 201, 191)
