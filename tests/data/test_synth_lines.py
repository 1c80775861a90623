"""Synthetic printed lines: determinism, held-out fonts kept out of training lines, the text
mix, the ``labels.tsv`` folder and ``crnn-ocr prepare synth-lines``."""
from __future__ import annotations

import random
import string
from pathlib import Path

import pytest
from PIL import Image

from crnn_ocr.data.synth import lines as synth_lines
from crnn_ocr.cli.main import main
from crnn_ocr.data.items import DataError
from crnn_ocr.data.layouts import load_tsv
from crnn_ocr.data.synth.lines import (HELD_OUT_FONT_FILES, MAX_CHARS, held_out_fonts, random_line, synthetic_lines,
                                  training_fonts)

pytestmark = pytest.mark.skipif(
    not training_fonts(), reason="no printed TrueType/OpenType font with all printable ASCII installed "
    "(Debian: apt-get install fonts-dejavu fonts-liberation fonts-freefont-ttf)")
needs_held_out = pytest.mark.skipif(not held_out_fonts(), reason="none of the held-out fonts "
                                    f"({', '.join(HELD_OUT_FONT_FILES)}) is installed")


def font_of(item) -> str:
    """The font's file stem, from the item's name ``synth-lines/<index>-<font>.png``."""
    return Path(item.path).stem.split("-", 1)[1]


def test_same_seed_gives_the_same_lines_and_another_seed_others():
    a, b, c = synthetic_lines(15, seed=4), synthetic_lines(15, seed=4), synthetic_lines(15, seed=5)
    assert [it.text for it in a] == [it.text for it in b] and [it.path for it in a] == [it.path for it in b]
    assert all(x.image.tobytes() == y.image.tobytes() for x, y in zip(a, b))
    assert [it.text for it in a] != [it.text for it in c]


@needs_held_out
def test_held_out_fonts_never_draw_training_lines_and_draw_every_validation_line():
    held_out = {Path(f.path).stem for f in held_out_fonts()}
    assert held_out.isdisjoint(Path(f.path).stem for f in training_fonts())
    assert {Path(f.path).name for f in held_out_fonts()} <= set(HELD_OUT_FONT_FILES)
    train = synthetic_lines(200, seed=0)
    val = synthetic_lines(40, seed=1, fonts="held-out", cover_charset=False)
    assert not {font_of(it) for it in train} & held_out
    assert {font_of(it) for it in val} <= held_out and len({font_of(it) for it in val}) > 1


def test_lines_are_grayscale_dark_ink_on_light_background_with_single_spaces():
    for item in synthetic_lines(40, seed=2):
        im = item.image
        assert im.mode == "L" and 16 <= im.height <= 120 and im.width > im.height / 2
        lo, hi = im.getextrema()
        assert hi - lo >= 50, item.text
        assert item.text == item.text.strip() and "  " not in item.text and len(item.text) <= MAX_CHARS


def test_the_first_training_lines_cover_every_printable_character():
    texts = [it.text for it in synthetic_lines(4, seed=3)]
    assert set(string.printable[:95]) - set(string.whitespace) <= set("".join(texts))


def test_random_lines_mix_words_numbers_and_punctuation_in_varied_lengths():
    rng = random.Random(0)
    lines = [random_line(rng) for _ in range(2000)]
    tokens = [t for line in lines for t in line.split(" ")]
    assert sum(t.isalpha() and t.islower() for t in tokens) > len(tokens) / 3
    assert sum(any(c.isdigit() for c in t) for t in tokens) > len(tokens) / 20
    assert sum(t[-1] in ",.;:!?" for t in tokens) > len(tokens) / 20
    assert sum(t[0].isupper() for t in tokens) > len(tokens) / 20
    lengths = [len(line) for line in lines]
    assert min(lengths) >= 1 and max(lengths) <= MAX_CHARS and sum(lengths) / len(lengths) > 25
    assert all(line == line.strip() and "  " not in line for line in lines)


def test_prepare_synth_lines_writes_a_labels_tsv_folder(tmp_path, capsys):
    out = tmp_path / "printed"
    assert main(["prepare", "synth-lines", "--n", "12", "--out", str(out), "--seed", "7"]) == 0
    assert "12 lines written (train fonts)" in capsys.readouterr().out
    items = load_tsv(out)
    expected = synthetic_lines(12, seed=7)
    assert [it.text for it in items] == [it.text for it in expected]
    assert [Path(it.path).relative_to(out).as_posix() for it in items] == [
        f"images/{Path(it.path).name}" for it in expected]
    first = Image.open(items[0].path)
    assert first.format == "PNG" and first.mode == "L"
    assert first.tobytes() == expected[0].image.tobytes()


@needs_held_out
def test_prepare_synth_lines_renders_held_out_validation_lines(tmp_path, capsys):
    out = tmp_path / "val"
    assert main(["prepare", "synth-lines", "--n", "6", "--fonts", "held-out", "--out", str(out)]) == 0
    held_out = {Path(f.path).stem for f in held_out_fonts()}
    assert all(Path(it.path).stem.split("-", 1)[1] in held_out for it in load_tsv(out))


def test_bad_requests_are_one_line_errors(tmp_path, capsys):
    assert main(["prepare", "synth-lines", "--n", "0", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("crnn-ocr: error: ") and "at least 1" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ValueError, match="fonts must be one of"):
        synthetic_lines(1, seed=0, fonts="handwriting")


def test_no_held_out_font_installed_is_a_data_error(monkeypatch):
    monkeypatch.setattr(synth_lines, "held_out_fonts", lambda: ())
    with pytest.raises(DataError, match="no held-out printed font installed"):
        synthetic_lines(1, seed=0, fonts="held-out")
