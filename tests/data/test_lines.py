"""IAM text lines rebuilt from word crops: positions, background, overlaps, labels, dropped
lines and the ``crnn-ocr prepare iam-lines`` command, on a tiny hand-made IAM root."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crnn_ocr.cli.main import main
from crnn_ocr.data.items import DataError
from crnn_ocr.data.layouts import load_tsv
from crnn_ocr.data.iam_lines import MARGIN, build_iam_lines, line_label, read_lines


def word_pixels(w: int, h: int, ink: int = 40, paper: int = 200) -> np.ndarray:
    """A word crop: ``paper`` everywhere but an ``ink`` bar across the middle row band."""
    a = np.full((h, w), paper, dtype=np.uint8)
    a[h // 3 : 2 * h // 3, 1 : w - 1] = ink
    return a


def write_root(root: Path, words: list[tuple], images: dict[str, np.ndarray | None]) -> Path:
    """``words``: (id, status, graylevel, x, y, w, h, text) rows of words.txt; ``images``: the
    word crops by id (a missing id or ``None``: no image file)."""
    rows = ["#--- a comment ---"] + [f"{i} {s} {g} {x} {y} {w} {h} XX {t}" for i, s, g, x, y, w, h, t in words]
    (root / "words").mkdir(parents=True, exist_ok=True)
    (root / "words.txt").write_text("\n".join(rows) + "\n")
    for word_id, pixels in images.items():
        if pixels is None:
            continue
        a, b = word_id.split("-")[:2]
        folder = root / "words" / a / f"{a}-{b}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels, mode="L").save(folder / f"{word_id}.png")
    return root


def ids_file(path: Path, ids: list[str]) -> str:
    path.write_text("\n".join(ids) + "\n")
    return str(path)


def image_of(out: Path, line_id: str) -> np.ndarray:
    im = Image.open(out / "lines" / f"{line_id}.png")
    assert im.mode == "L"
    return np.asarray(im)


# A form with five lines: a good one listed out of order (with punctuation and an overlap), one
# with an err word, one with a gap in its word indices, one whose first word id is missing and
# one with a missing image.
GOOD = [("a01-000-00-01", "ok", 150, 160, 110, 30, 20, "world"),
        ("a01-000-00-00", "ok", 150, 100, 100, 70, 30, "Hello"),  # overlaps word 01 at x 160..169
        ("a01-000-00-02", "ok", 150, 200, 105, 10, 25, ",")]
ERR = [("a01-000-01-00", "ok", 150, 100, 200, 40, 30, "a"), ("a01-000-01-01", "err", 150, 150, 200, 40, 30, "b")]
GAP = [("a01-000-02-00", "ok", 150, 100, 300, 40, 30, "one"), ("a01-000-02-02", "ok", 150, 150, 300, 40, 30, "three")]
NO_FIRST = [("a01-000-03-01", "ok", 150, 100, 400, 40, 30, "second")]
NO_IMAGE = [("a01-000-04-00", "ok", 150, 100, 500, 40, 30, "shown"),
            ("a01-000-04-01", "ok", 150, 150, 500, 40, 30, "lost")]
ALL = GOOD + ERR + GAP + NO_FIRST + NO_IMAGE


@pytest.fixture
def iam(tmp_path: Path) -> Path:
    images = {w[0]: word_pixels(w[5], w[6]) for w in ALL}
    images["a01-000-00-00"] = word_pixels(70, 30, ink=90)
    images["a01-000-00-01"] = word_pixels(30, 20, ink=10)
    images["a01-000-04-01"] = None
    return write_root(tmp_path / "iam", ALL, images)


def build(iam: Path, tmp_path: Path, ids: list[str] | None = None, **kwargs):
    ids = [w[0] for w in ALL] if ids is None else ids
    out = tmp_path / "out"
    return build_iam_lines(iam, [ids_file(tmp_path / "ids.txt", ids)], out, progress=False, **kwargs), out


def test_words_are_pasted_at_their_boxes_with_a_white_margin(iam, tmp_path):
    _, out = build(iam, tmp_path)
    line = image_of(out, "a01-000-00")
    # the union of the boxes: x 100..210, y 100..130, plus the margin each side
    assert line.shape == (30 + 2 * MARGIN, 110 + 2 * MARGIN)
    assert (line[:MARGIN] == 255).all() and (line[-MARGIN:] == 255).all()
    assert (line[:, :MARGIN] == 255).all() and (line[:, -MARGIN:] == 255).all()
    # word 00's ink bar: rows 10..19 of its 30-pixel crop, columns 1..68, at box (100, 100)
    top, left = MARGIN, MARGIN
    assert line[top + 10, left + 1] == 90 and line[top + 19, left + 55] == 90 and line[top + 10, left + 68] == 90
    assert line[top + 10, left] == 255 and line[top + 10, left + 69] == 255
    assert line[top + 9, left + 30] == 255 and line[top + 20, left + 30] == 255
    # word 01 (box at x 160, y 110): its ink rows 6..12, columns 1..28, lie at 70 px / 10 px offset
    assert line[top + 10 + 6, left + 60 + 15] == 10
    # word 02, the comma, at x 200, y 105 (25 pixels high: ink rows 8..15)
    assert line[top + 5 + 8, left + 100 + 5] == 40 and line[top + 5 + 7, left + 100 + 5] == 255


def test_pixels_lighter_than_the_graylevel_become_white_and_darker_ones_are_kept(tmp_path):
    crop = np.array([[149, 150, 151, 255], [0, 100, 200, 151]], dtype=np.uint8)
    iam = write_root(tmp_path / "iam", [("b01-000-00-00", "ok", 150, 10, 10, 4, 2, "x")], {"b01-000-00-00": crop})
    _, out = build(iam, tmp_path, ["b01-000-00-00"])
    inner = image_of(out, "b01-000-00")[MARGIN:-MARGIN, MARGIN:-MARGIN]
    assert inner.tolist() == [[149, 150, 255, 255], [0, 100, 255, 255]]


def test_the_darker_pixel_wins_where_word_boxes_overlap(iam, tmp_path):
    _, out = build(iam, tmp_path)
    line = image_of(out, "a01-000-00")
    # columns 160..169 of the form hold both word 00 (ink 90, rows 110..119) and word 01 (ink 10)
    overlap = line[MARGIN + 16, MARGIN + 61 : MARGIN + 69]
    assert (overlap == 10).all()
    # where word 01's crop is paper (lighter than the graylevel, so white), word 00's ink stays
    assert line[MARGIN + 12, MARGIN + 65] == 90


def test_label_is_the_words_in_index_order_joined_by_single_spaces(iam, tmp_path):
    _, out = build(iam, tmp_path)
    items = {Path(it.path).stem: it.text for it in load_tsv(out)}
    assert items["a01-000-00"] == "Hello world ,"  # punctuation as words.txt has it
    lines = read_lines(iam / "words.txt")
    assert [w.id for w in lines["a01-000-00"]] == ["a01-000-00-00", "a01-000-00-01", "a01-000-00-02"]
    assert line_label(lines["a01-000-00"]) == "Hello world ,"


def test_lines_with_an_err_word_a_missing_word_id_or_a_missing_image_are_dropped(iam, tmp_path):
    report, out = build(iam, tmp_path)
    assert report.written == 1 and report.incomplete == 0
    assert dict(report.dropped) == {"word not marked ok": 1, "missing word id": 2, "word image missing": 1}
    assert (out / "labels.tsv").read_text().splitlines() == ["lines/a01-000-00.png\tHello world ,"]
    assert sorted(p.name for p in (out / "lines").iterdir()) == ["a01-000-00.png"]


def test_keep_incomplete_keeps_the_usable_words_with_the_gap_read_as_one_space(iam, tmp_path):
    report, out = build(iam, tmp_path, keep_incomplete=True)
    items = {Path(it.path).stem: it.text for it in load_tsv(out)}
    assert items == {"a01-000-00": "Hello world ,", "a01-000-01": "a", "a01-000-02": "one three",
                     "a01-000-03": "second", "a01-000-04": "shown"}
    assert report.written == 5 and report.incomplete == 4 and not report.dropped
    # the err word's crop is left out of the image too: only word 00's box (40 wide) remains
    assert image_of(out, "a01-000-01").shape == (30 + 2 * MARGIN, 40 + 2 * MARGIN)


def test_only_lines_whose_words_are_all_in_the_id_lists_are_built(iam, tmp_path):
    report, out = build(iam, tmp_path, ["a01-000-00-00", "a01-000-00-01", "a01-000-00-02", "a01-000-02-00"])
    assert [Path(it.path).stem for it in load_tsv(out)] == ["a01-000-00"]
    assert dict(report.dropped) == {"only some of its words in the id lists": 1}


def test_a_damaged_word_box_drops_its_line_instead_of_filling_memory(tmp_path):
    far = [("a01-000-01-00", "ok", 150, 100, 200, 40, 30, "near"),
           ("a01-000-01-01", "ok", 150, 10**9, 200, 40, 30, "far")]  # a canvas of 10**9 x 54 pixels
    root = write_root(tmp_path / "iam", GOOD + far, {w[0]: word_pixels(w[5], w[6]) for w in GOOD + far})
    report, out = build(root, tmp_path, [w[0] for w in GOOD + far])
    assert report.written == 1 and dict(report.dropped) == {"word boxes too far apart (words.txt damaged?)": 1}
    assert (out / "labels.tsv").read_text().splitlines() == ["lines/a01-000-00.png\tHello world ,"]


def test_bad_input_is_a_data_error(iam, tmp_path):
    ids = ids_file(tmp_path / "ids.txt", ["a01-000-00-00"])
    with pytest.raises(DataError, match="IAM root not found"):
        build_iam_lines(tmp_path / "missing", [ids], tmp_path / "out")
    with pytest.raises(DataError, match="cannot read id list"):
        build_iam_lines(iam, [str(tmp_path / "no-such-list.txt")], tmp_path / "out")
    with pytest.raises(DataError, match="no line of"):
        build_iam_lines(iam, [ids_file(tmp_path / "other.txt", ["z09-999-00-00"])], tmp_path / "out")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(DataError, match="output path is a file"):
        build_iam_lines(iam, [ids], tmp_path / "a-file")


def test_prepare_iam_lines_command_writes_a_labels_tsv_folder(iam, tmp_path, capsys):
    half1 = ids_file(tmp_path / "part1.txt", ["a01-000-00-00", "a01-000-00-01"])
    half2 = ids_file(tmp_path / "part2.txt", ["a01-000-00-02", "a01-000-02-00", "a01-000-02-02"])
    out = tmp_path / "lines"
    assert main(["prepare", "iam-lines", "--iam", str(iam), "--ids", half1, half2, "--out", str(out)]) == 0
    summary = capsys.readouterr().out
    assert "1 lines written" in summary and "1 dropped: 1 missing word id" in summary
    items = load_tsv(out)
    assert [(Path(it.path).name, it.text) for it in items] == [("a01-000-00.png", "Hello world ,")]
    assert Image.open(items[0].path).format == "PNG"


@pytest.mark.parametrize("args, message", [
    (["--iam", "{tmp}/missing", "--ids", "{tmp}/ids.txt"], "IAM root not found"),
    (["--iam", "{tmp}/iam", "--ids", "{tmp}/missing.txt"], "cannot read id list"),
    (["--iam", "{tmp}/iam", "--ids", "{tmp}/ids.txt", "--margin", "-5"], "margin must be 0 or more"),
])
def test_prepare_iam_lines_reports_bad_input_in_one_line(iam, tmp_path, capsys, args, message):
    ids_file(tmp_path / "ids.txt", ["a01-000-00-00"])
    args = [a.format(tmp=tmp_path) for a in args]
    assert main(["prepare", "iam-lines", *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("crnn-ocr: error: ") and message in err and len(err.strip().splitlines()) == 1
