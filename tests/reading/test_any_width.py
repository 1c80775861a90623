"""Any-width mode (``[data] width = 0``): each image is read at its own width at the model's
height, up to ``max_width``; training skips images too narrow for their label; PyTorch and
ONNX read a line alike, and a model of the fixed canvas is untouched."""
import os
import subprocess
import sys
import warnings

import pytest
import torch
from PIL import Image

from crnn_ocr.model import checkpoint
from crnn_ocr.model.charset import Charset
from crnn_ocr.config.fields import ConfigError
from crnn_ocr.config.schema import Config
from crnn_ocr.data.datasets import OCRDataset, pad_to_widest
from crnn_ocr.reading.images import MIN_WIDTH, ImageTooWide, load_tensor, load_tensor_and_scale
from crnn_ocr.reading.infer import batches, infer
from crnn_ocr.data.items import Item, Skipped
from crnn_ocr.model.crnn import CRNN
from crnn_ocr.reading.recognizer import Recognizer
from crnn_ocr.training.train import train

from conftest import text_image

CHARS = "0123456789abcdefghijklmnopqrstuvwxyz "


def any_width_config(max_width: int = 2048) -> Config:
    return Config.from_dict({"data": {"height": 32, "width": 0, "max_width": max_width}})


@pytest.fixture(scope="module")
def line_model(tmp_path_factory):
    """An untrained any-width model saved as a checkpoint, and the same exported to ONNX."""
    from crnn_ocr.model.export import export_onnx

    torch.manual_seed(0)
    config = any_width_config()
    folder = tmp_path_factory.mktemp("line")
    pt = folder / "line.pt"
    checkpoint.save({"model": CRNN.from_config(config, Charset(CHARS)).state_dict(), "config": config.to_dict(),
                     "charset": CHARS, "epoch": 1}, pt)
    return pt, export_onnx(pt, folder / "line.onnx")


def test_width_zero_is_any_width_and_max_width_is_checked():
    d = any_width_config().data
    assert d.any_width and d.widest == 2048
    assert not Config().data.any_width and Config().data.widest == 192  # the word canvas stays the default
    with pytest.raises(ConfigError, match=r"width = 8 .*must be 0 or a whole number >= 16"):
        Config.from_dict({"data": {"width": 8}})
    with pytest.raises(ConfigError, match=r"max_width = 0 "):
        Config.from_dict({"data": {"width": 0, "max_width": 0}})


def test_an_image_keeps_its_aspect_ratio_at_the_model_height_plus_the_margin():
    assert load_tensor(text_image("a line of text", (400, 40)), 32, 0, 1).shape == (1, 32, 328)  # 320 + 8
    assert load_tensor(text_image("x", (6, 40)), 32, 0, 1).shape == (1, 32, MIN_WIDTH)  # very narrow: padded


def test_an_over_wide_image_is_scaled_to_max_width_with_a_warning_naming_the_file(tmp_path):
    path = tmp_path / "very_long_line.png"
    text_image("a very long line " * 8, (1600, 40)).save(path)
    with pytest.warns(ImageTooWide, match=r"very_long_line\.png: 1280 pixels wide at height 32, scaled down to "
                                          r"max_width 256"):
        tensor, scale, width, left = load_tensor_and_scale(path, 32, 0, 1, max_width=256)
    assert tensor.shape == (1, 32, 256) and (width, left) == (1600, 0) and scale == pytest.approx(1600 / 256)
    with pytest.warns(ImageTooWide) as caught:  # a dataset names each image by its item's path
        ds = OCRDataset([Item("a", str(path), Image.open(path)), Item("b", "line-7", Image.open(path))],
                        32, 0, 1, Skipped(), max_width=256)
    assert [str(w.message).split(":")[0] for w in caught] == [str(path), "line-7"]
    assert ds.scaled_down == [str(path), "line-7"] and [im.shape[-1] for im in ds.images] == [256, 256]


def test_images_are_stored_at_their_own_widths_and_batches_padded_to_the_widest():
    items = [Item(t, f"{i}.png", text_image(t, (w, 40))) for i, (t, w) in enumerate([("ab", 40), ("abc def", 200)])]
    ds = OCRDataset(items, 32, 0, 1, Skipped(), Charset(CHARS), max_length=512)
    assert [im.shape for im in ds.images] == [(1, 32, 40), (1, 32, 168)] and ds.widths.tolist() == [40, 168]
    images, targets, lengths = ds.batch([0, 1])
    assert images.shape == (2, 1, 32, 168) and lengths.tolist() == [2, 7]
    assert torch.equal(images[0, :, :, :40], ds.images[0]) and (images[0, :, :, 40:] == 255).all()
    assert torch.equal(pad_to_widest([ds.images[1]])[0], ds.images[1])


def test_training_skips_and_counts_an_image_too_narrow_for_its_label():
    skipped = Skipped()
    items = [Item("abcdefghijkl", "narrow.png", text_image("abc", (30, 40))),  # 32 px: 8 columns for 12
             Item("abc", "wide.png", text_image("abc", (60, 40)))]
    ds = OCRDataset(items, 32, 0, 1, skipped, Charset(CHARS), max_length=512)
    assert [it.path for it in ds.items] == ["wide.png"] and len(ds.images) == 1
    assert skipped == {"image too narrow for its label": 1}
    assert len(OCRDataset(items, 32, 0, 1, Skipped())) == 2  # evaluation keeps (and reads) both


def test_any_width_batches_give_the_same_answers_as_one_image_at_a_time(line_model):
    rec = Recognizer.load(line_model[0])
    prepared = rec._prepare([text_image("w" * n, (12 * n + 30, 40)) for n in (1, 9, 3, 9, 20, 1)]
                            + [text_image("a", (3, 50))])
    images = rec._collate([p.image for p in prepared])
    assert isinstance(images, list) and len({im.shape[-1] for im in images}) == 5
    seen = sorted(i for index, _ in batches(images, 2) for i in index.tolist())
    assert seen == list(range(7))
    together = infer(rec.model, images, rec.charset, batch_size=3, details=True)
    for i, image in enumerate(images):
        alone = infer(rec.model, [image], rec.charset, details=True).hypotheses[0]
        assert together.hypotheses[i].text == alone.text
        assert together.hypotheses[i].confidence == pytest.approx(alone.confidence, rel=1e-4)


def test_a_line_is_read_at_its_own_width_in_pytorch_and_onnx_alike(line_model, tmp_path):
    line = text_image("reading a whole line of text at once", (1500, 48), font_size=30)
    line.save(tmp_path / "line.png")
    torch_rec, onnx_rec = Recognizer.load(line_model[0]), Recognizer.load(line_model[1], threads=1)
    assert onnx_rec.config.data.any_width and onnx_rec.config.data.max_width == 2048
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageTooWide)  # 1000 pixels at height 32: no scaling, no warning
        a = torch_rec.read([tmp_path / "line.png", line, b"not an image"], details=True)
        b = onnx_rec.read([tmp_path / "line.png", line, b"not an image"], details=True)
    assert [r.text for r in a] == [r.text for r in b] and a[0].text == a[1].text and a[2].error
    assert a[0].chars is not None and len(a[0].chars) == len(a[0].text)
    # T = (1000 + 8) / 4 columns; the last column ends beyond the line's 1500 pixels, capped there
    log_probs = torch_rec.model(torch.from_numpy(torch_rec._prepare(line)[0].image)[None].float() / 255)
    assert log_probs.shape[0] == 252
    for c in a[0].chars:
        assert c.x == (min(1500, round(c.columns[0] * 4 * 1.5)), min(1500, round(c.columns[1] * 4 * 1.5)))


def test_a_tiny_any_width_training_run_works_end_to_end(tmp_path):
    config = Config.from_dict({
        "data": {"path": "synth:words", "height": 32, "width": 0, "max_width": 512, "synthetic_train": 48,
                 "synthetic_val": 8, "augment": True},
        "model": {"rnn_hidden": 16, "rnn_layers": 1, "cnn_channels": [8, 8, 16, 16, 16]},
        "train": {"epochs": 1, "batch_size": 16, "threads": 1}})
    logs = []
    result = train(config, tmp_path / "run", log=logs.append)
    assert 0 <= result["val_cer"] and (tmp_path / "run" / "best.pt").is_file()
    rec = Recognizer.load(tmp_path / "run" / "best.pt")
    assert rec.config.data.any_width
    assert len(rec.read([text_image("word", (90, 40)), text_image("a much longer line", (400, 40))])) == 2


def test_predict_warns_of_an_over_wide_image_in_one_line(line_model, tmp_path):
    Image.new("L", (10_000, 10), 255).save(tmp_path / "wide.png")  # 32,000 pixels wide at height 32
    done = subprocess.run([sys.executable, "-m", "crnn_ocr", "predict", "--model", str(line_model[0]),
                           str(tmp_path / "wide.png")], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 1
    # was Python's format: ".../recognizer.py:249: ImageTooWide: ..." and the source line below it
    assert done.stderr.splitlines() == [f"crnn-ocr: warning: {tmp_path / 'wide.png'}: 32000 pixels wide at height 32, "
                                        "scaled down to max_width 2048"]
