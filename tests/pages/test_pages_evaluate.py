"""Page CER and WER: whitespace collapsed on both sides, reading order scored; a folder's report."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from crnn_ocr.pages.evaluate import collapse, evaluate_pages, score_page
from crnn_ocr.pages.result import Line, Page


def test_line_breaks_and_runs_of_spaces_are_not_scored():
    s = score_page("p", "the cat\n  sat on\tthe mat\n", "the cat sat on the mat")
    assert (s.char_edits, s.word_edits, s.cer, s.wer) == (0, 0, 0.0, 0.0)
    assert collapse(" a \n\n b  c ") == "a b c"


def test_page_cer_and_wer_on_a_hand_made_example():
    s = score_page("p", "the cat sat\non the mat", "the bat sat\non the mat!")
    # gold "the cat sat on the mat": 22 characters, 6 words; c->b and an inserted "!" are 2 edits
    assert (s.chars, s.char_edits, s.cer) == (22, 2, pytest.approx(2 / 22))
    assert (s.words, s.word_edits, s.wer) == (6, 2, pytest.approx(2 / 6))


def test_reading_order_is_scored():
    assert score_page("p", "first line\nsecond line", "second line\nfirst line").cer > 0.3


def test_a_folder_is_scored_page_by_page_and_the_worst_page_drawn(tmp_path):
    pages = tmp_path / "pages"
    pages.mkdir()
    for name, gold in (("a", "hello world"), ("b", "good day to you")):
        Image.new("L", (200, 100), 255).save(pages / f"{name}.png")
        (pages / f"{name}.txt").write_text(gold + "\n")
    (pages / "c.png").write_bytes(b"")  # no .txt: not a page of the set
    answers = {(200, 100): iter(["hello world", "good dai to yo"])}

    def read(image):
        text = next(answers[image.size])
        return Page(200, 100, [Line(text, 0.9, (10, 10, 150, 40))])

    report = evaluate_pages(pages, read, out=tmp_path / "out")
    assert [p.name for p in report.pages] == ["a", "b"]
    assert report.pages[0].cer == 0 and report.pages[1].char_edits == 2
    assert report.cer == pytest.approx(2 / 26)
    assert report.worst().name == "b"
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["n"] == 2 and saved["pages"][1]["name"] == "b"
    assert Image.open(tmp_path / "out" / "worst.png").size == (200, 100)


def test_a_folder_without_pages_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no page images"):
        evaluate_pages(tmp_path, lambda im: Page(1, 1))
