"""The reading API: ``Recognizer.load`` and ``Recognizer.read``; ``read`` takes every kind of
image, reports bad ones in place and gives per-character details in the original image's pixels."""
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from crnn_ocr.model import checkpoint
from crnn_ocr.model.charset import Charset
from crnn_ocr.config.schema import Config
from crnn_ocr.decoding.lexicon import Lexicon
from crnn_ocr.model.crnn import CRNN
from crnn_ocr.reading.recognizer import CharInfo, Reading, Recognizer

from conftest import text_image

CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(scope="module")
def rec(tmp_path_factory) -> Recognizer:
    """An untrained 32x128 model: it emits some characters, which is all these tests need."""
    torch.manual_seed(0)
    config = Config()
    config.data.height, config.data.width = 32, 128
    charset = Charset(CHARS)
    path = tmp_path_factory.mktemp("rec") / "tiny.pt"
    checkpoint.save({"model": CRNN.from_config(config, charset).state_dict(), "config": config.to_dict(),
                     "charset": CHARS, "epoch": 1, "vocabulary": ["ab12"]}, path)
    return Recognizer.load(path)


def png_bytes(im) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, "PNG")
    return buffer.getvalue()


def test_every_kind_of_image_reads_the_same(rec, tmp_path):
    im = text_image("ab12", (160, 40))
    im.save(tmp_path / "a.png")
    gray = np.asarray(im)
    kinds = [str(tmp_path / "a.png"), tmp_path / "a.png", png_bytes(im), im, gray, gray[:, :, None],
             np.asarray(im.convert("RGB"))]
    readings = rec.read(kinds)
    assert len(readings) == len(kinds) and all(r.error is None for r in readings)
    assert len({r.text for r in readings}) == 1
    assert all(r.confidence == pytest.approx(readings[0].confidence, rel=1e-5) for r in readings)
    assert rec.read(im) == rec.read([im])[:1]  # one image, not a list: a list of one reading


def test_a_bad_image_gets_an_error_in_its_place_and_the_others_are_read(rec, tmp_path):
    good = text_image("ab12", (160, 40))
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    readings = rec.read([good, b"\x89PNG broken", tmp_path / "bad.png", tmp_path / "missing.png", b"",
                         np.zeros((4, 4, 7), dtype=np.uint8), good])
    assert [r.error is None for r in readings] == [True, False, False, False, False, False, True]
    assert readings[0] == readings[-1]
    assert readings[2].error == "not an image" and readings[3].error == "file not found"
    assert readings[1].to_dict() == {"text": "", "confidence": 0.0, "error": readings[1].error}


@pytest.mark.parametrize("batch_size", [0, -1, 2.5])
def test_a_batch_size_below_one_is_a_clear_value_error(rec, batch_size):
    with pytest.raises(ValueError, match="batch_size .*: must be a whole number >= 1"):  # was range()'s or None.spans
        rec.read([text_image("ab12", (160, 40))], batch_size=batch_size)


def test_read_is_prepare_then_read_prepared_in_any_grouping(rec):
    images = [text_image("ab12", (160, 40)), b"broken", text_image("9z", (90, 40))]
    prepared = rec._prepare(images)  # serve's two halves of read
    assert prepared[1].error is not None and prepared[0].image.dtype == np.uint8
    whole = rec.read(images, details=True)
    assert rec._read_prepared(prepared, details=True) == whole
    assert rec._read_prepared(prepared[:2], details=True) + rec._read_prepared(prepared[2:], details=True) == whole
    assert rec.read([]) == []


def test_the_public_surface_is_load_and_read():
    public = {name for name in vars(Recognizer) if not name.startswith("_")}
    assert public == {"load", "read"}


def test_details_place_each_character_in_the_original_image(rec):
    im = text_image("ab1 xy", (180, 60), font_size=30)  # resized to 96x32: 4 columns per 7.5 original pixels
    (r,) = rec.read(im, details=True)
    assert r.chars and "".join(c.char for c in r.chars) == r.text
    scale = 60 / 32
    for c in r.chars:
        start, end = c.columns
        assert 0 <= start < end <= 32 and c.x[1] <= 180
        assert c.x == (round(start * 4 * scale), min(180, round(end * 4 * scale)))
        assert 0 < c.confidence <= 1
    d = r.to_dict()
    assert set(d) == {"text", "confidence", "chars"}
    assert set(d["chars"][0]) == {"char", "confidence", "columns", "x"}
    json.dumps(d)  # JSON-ready
    assert rec.read(im)[0].chars is None and "chars" not in rec.read(im)[0].to_dict()


def test_a_model_that_reads_tight_crops_reads_a_word_with_margins_as_without(rec):
    from PIL import ImageOps

    im = text_image("ab1", (120, 40), font_size=30)
    tight = im.crop(ImageOps.invert(im.convert("L")).getbbox())
    framed = ImageOps.expand(tight, (50, 20, 30, 10), fill="white")
    dark = ImageOps.invert(framed.convert("L"))
    config = Config.from_dict(rec.config.to_dict())
    config.data.crop_to_ink = True
    cropping = Recognizer(rec.model, rec.charset, config)
    a, b, c = (cropping._prepare(x)[0] for x in (tight, framed, dark))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.image, c.image)  # the model sees the same
    assert (a.left, b.left, c.left) == (0, 50, 50) and b.scale == a.scale
    (ra,), (rb,) = cropping.read(tight, details=True), cropping.read(framed, details=True)
    shifted = [x + 50 for ch in ra.chars for x in ch.x]  # the framed word's boxes: 50 pixels to the right,
    boxes = [x for ch in rb.chars for x in ch.x]           # the last one clamped to the image, not the word
    assert boxes[:-1] == shifted[:-1] and boxes[-1] >= shifted[-1]
    assert rec.config.data.auto_levels and not rec.config.data.crop_to_ink  # the defaults
    assert np.array_equal(rec._prepare(dark)[0].image, rec._prepare(framed)[0].image)  # inverted back, not cropped
    assert not np.array_equal(rec._prepare(framed)[0].image, a.image)


def test_decoders_are_chosen_by_name(rec, tmp_path):
    with pytest.raises(ValueError, match="no decoder 'lexicon'"):
        rec.read(text_image("ab12"), decoder="lexicon")
    with_lexicon = Recognizer(rec.model, rec.charset, rec.config, {"lexicon": Lexicon(["ab12", "zz99"])})
    (r,) = with_lexicon.read(text_image("ab12"), decoder="lexicon", details=True)
    assert r.text in ("ab12", "zz99") and "".join(c.char for c in r.chars) == r.text


def test_reading_imports_no_training_module():
    code = ("import sys, crnn_ocr.reading.recognizer, crnn_ocr; "
            "print(sorted(m for m in sys.modules if m.startswith('crnn_ocr') or m == 'torch'))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for module in ("data.datasets", "data.sources", "data.layouts", "training", "evaluation", "model.crnn"):
        assert f"'crnn_ocr.{module}" not in loaded, module
    assert "'torch'" not in loaded


def test_a_reading_is_plain_data():
    r = Reading("ab", 0.5, [CharInfo("a", 0.9, (0, 2), (0, 10)), CharInfo("b", 0.6, (3, 4), (15, 20))])
    assert r.to_dict() == {"text": "ab", "confidence": 0.5, "chars": [
        {"char": "a", "confidence": 0.9, "columns": [0, 2], "x": [0, 10]},
        {"char": "b", "confidence": 0.6, "columns": [3, 4], "x": [15, 20]}]}


def test_character_boxes_follow_the_models_column_stride():
    from crnn_ocr.decoding.ctc import Hypothesis, Span
    from crnn_ocr.reading.recognizer import reading_of

    h = Hypothesis("ab", 0.9, [Span("a", 0.9, 0, 3), Span("b", 0.8, 3, 5)])
    assert [c.x for c in reading_of(h, 0.5, 100).chars] == [(0, 6), (6, 10)]  # 4 input pixels per column
    assert [c.x for c in reading_of(h, 0.5, 100, stride=8).chars] == [(0, 12), (12, 20)]
    assert reading_of(h, 2.0, 50, stride=8).chars[1].x == (48, 50)  # never past the image
