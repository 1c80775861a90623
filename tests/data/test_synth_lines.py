"""Synthetic printed lines: determinism, held-out families kept out of training lines, the
text mix, labels that say what was drawn, the new characters through charset, training labels, ONNX
and JSON output, the ``labels.tsv`` folder and ``crnn-ocr prepare synth-lines``."""
from __future__ import annotations

import random
import string
from pathlib import Path

import pytest
from PIL import Image

from crnn_ocr.cli.main import main
from crnn_ocr.data.datasets import RenderedDataset
from crnn_ocr.data.items import DataError, Skipped
from crnn_ocr.data.layouts import load_tsv
from crnn_ocr.data.synth import lines as synth_lines
from crnn_ocr.data.synth.fonts import TYPOGRAPHIC, font_split
from crnn_ocr.data.synth.line_text import MAX_CHARS, PLAIN, plain, random_line
from crnn_ocr.data.synth.lines import SyntheticLines, synthetic_lines
from crnn_ocr.model.charset import Charset

SPLIT = font_split()
PRINTABLE_AND_TYPOGRAPHIC = string.printable[:95] + TYPOGRAPHIC
pytestmark = pytest.mark.skipif(not SPLIT.train, reason="no printed font family installed "
                                "(Debian: scripts/install_fonts.sh, or apt-get install fonts-dejavu fonts-liberation)")
needs_held_out = pytest.mark.skipif(not SPLIT.held_out, reason="no held-out family installed "
                                    "(scripts/install_fonts.sh)")


def family_of(item) -> str:
    """The family, from the item's name ``synth-lines/<index>-<family>.png``."""
    return Path(item.path).stem.split("-", 1)[1]


def test_same_seed_gives_the_same_lines_and_another_seed_others():
    a, b, c = synthetic_lines(15, seed=4), synthetic_lines(15, seed=4), synthetic_lines(15, seed=5)
    assert [it.text for it in a] == [it.text for it in b] and [it.path for it in a] == [it.path for it in b]
    assert all(x.image.tobytes() == y.image.tobytes() for x, y in zip(a, b))
    assert [it.text for it in a] != [it.text for it in c]


def test_a_line_renders_the_same_whenever_it_is_asked_for():
    lines = SyntheticLines(30, seed=3)
    first = lines.render(17).tobytes()
    lines.render(3)
    assert lines.render(17).tobytes() == first


@needs_held_out
def test_held_out_families_never_draw_training_lines_and_draw_every_validation_line():
    held_out = {name.replace(" ", "") for name in SPLIT.held_out}
    train = synthetic_lines(200, seed=0)
    val = synthetic_lines(60, seed=1, fonts="held-out", cover_charset=False)
    assert not {family_of(it) for it in train} & held_out
    assert {family_of(it) for it in val} <= held_out and len({family_of(it) for it in val}) > 1


def test_every_label_character_has_a_glyph_in_every_face_of_its_family():
    """The label is what was drawn: no character the family lacks (it would be drawn as a box)."""
    lines = SyntheticLines(300, seed=2)
    for i, item in enumerate(lines):
        for face in lines.families[lines._family[i]]:
            missing = {c for c in item.text if c in TYPOGRAPHIC} - face.typographic
            assert not missing, (item.text, face.path)


def test_a_family_without_typographic_characters_gets_them_written_plainly():
    text = "“Don’t” – said he — it costs £5… or 3 € • 20°C ©"
    assert plain(text, frozenset(TYPOGRAPHIC)) == text
    flat = plain(text, frozenset())
    assert flat == "\"Don't\" - said he -- it costs GBP5... or 3 EUR * 20C (c)" and flat.isascii()
    assert set(PLAIN) == set(TYPOGRAPHIC)


def test_lines_are_grayscale_and_dark_ink_on_light_paper_with_single_spaces():
    for item in synthetic_lines(40, seed=2):
        im = item.image
        assert im.mode == "L" and 8 <= im.height <= 400 and im.width > im.height / 2
        lo, hi = im.getextrema()
        assert hi - lo >= 40, item.text
        assert item.text == item.text.strip() and "  " not in item.text and len(item.text) <= MAX_CHARS + 8


def test_the_first_training_lines_cover_every_printable_and_typographic_character():
    texts = [it.text for it in synthetic_lines(6, seed=3)]
    assert set(string.printable[:95].strip() + TYPOGRAPHIC) <= set("".join(texts))


def test_random_lines_mix_words_numbers_addresses_and_punctuation():
    rng = random.Random(0)
    lines = [random_line(rng) for _ in range(2000)]
    tokens = [t for line in lines for t in line.split(" ")]
    assert sum(t.isalpha() and t.islower() for t in tokens) > len(tokens) / 4
    assert sum(any(c.isdigit() for c in t) for t in tokens) > len(tokens) / 20
    assert sum(t[-1] in ",.;:!?" for t in tokens) > len(tokens) / 20
    assert sum("@" in t for t in tokens) > 10 and sum(t.startswith(("http", "www.")) for t in tokens) > 10
    assert any(c in "".join(lines) for c in "’“–…")
    lengths = [len(line) for line in lines]
    assert min(lengths) >= 1 and max(lengths) <= MAX_CHARS and sum(lengths) / len(lengths) > 20
    assert all(line == line.strip() and "  " not in line for line in lines)


def test_new_characters_round_trip_through_the_charset_and_a_training_label():
    lines = SyntheticLines(40, seed=3)
    charset = Charset.from_texts(it.text for it in lines)
    assert set(TYPOGRAPHIC) <= set(charset.chars)
    text = "“Don’t” – £5… 20°C • © —"
    assert charset.decode(charset.encode(text)) == text
    data = RenderedDataset(lines, 32, 1024, 1, Skipped(), charset, max_length=256)
    for i in range(3):
        image, label, _ = data[i]
        assert image.shape[-2:] == (32, 1024)
        assert charset.decode(label) == lines[data.index[i]].text


def test_prepare_synth_lines_writes_a_labels_tsv_folder(tmp_path, capsys):
    out = tmp_path / "printed"
    assert main(["prepare", "synth-lines", "--n", "12", "--out", str(out), "--seed", "7"]) == 0
    assert "12 lines written (train fonts)" in capsys.readouterr().out
    items = load_tsv(out)
    expected = synthetic_lines(12, seed=7)
    assert [it.text for it in items] == [it.text for it in expected]
    first = Image.open(items[0].path)
    assert first.format == "PNG" and first.mode == "L"
    assert first.tobytes() == expected[0].image.tobytes()


def test_bad_requests_are_one_line_errors(tmp_path, capsys):
    assert main(["prepare", "synth-lines", "--n", "0", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("crnn-ocr: error: ") and "at least 1" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ValueError, match="fonts must be one of"):
        synthetic_lines(1, seed=0, fonts="handwriting")


def test_no_held_out_family_installed_is_a_data_error(monkeypatch):
    monkeypatch.setattr(synth_lines, "font_split", lambda folder=None: type(SPLIT)(SPLIT.train, {}))
    with pytest.raises(DataError, match="no held-out printed font family installed"):
        synthetic_lines(1, seed=0, fonts="held-out")


@pytest.mark.parametrize("char", ["’", "€", "—"])
def test_a_new_character_comes_out_of_onnx_and_json_output_as_itself(char, tmp_path, capsys):
    """A model whose classifier always says ``char``: its ONNX file carries the whole charset,
    and ``crnn-ocr predict --format json`` writes the character itself."""
    import json

    import torch

    from crnn_ocr import CRNN, Config, Recognizer
    from crnn_ocr.model import checkpoint
    from crnn_ocr.model.export import export_onnx

    config = Config()
    config.data.height, config.data.width = 32, 128
    charset = Charset(PRINTABLE_AND_TYPOGRAPHIC)
    model = CRNN.from_config(config, charset)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.fill_(-10.0)
        model.fc.bias[charset.encode(char)[0]] = 10.0
    pt = tmp_path / "model.pt"
    checkpoint.save({"model": model.state_dict(), "config": config.to_dict(), "charset": charset.chars,
                     "epoch": 1}, pt)
    onnx_path = export_onnx(pt, tmp_path / "model.onnx")
    assert Recognizer.load(onnx_path).charset == charset
    image = tmp_path / "line.png"
    Image.new("L", (128, 32), 255).save(image)
    for path in (pt, onnx_path):
        assert main(["predict", "--model", str(path), "--format", "json", str(image)]) == 0
        assert json.loads(capsys.readouterr().out)[0]["text"] == char

