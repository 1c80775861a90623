"""Synthetic words from system fonts, the ``synth:words`` data path, ``crnn-ocr pretrain``
and fine-tuning from its ``backbone.safetensors``."""
import string
import time

import pytest
import torch
from safetensors import safe_open

from crnn_ocr.charset import Charset
from crnn_ocr.checkpoint import CheckpointError, load, load_pretrained
from crnn_ocr.model import CRNN
from crnn_ocr.cli import main
from crnn_ocr.config import Config, DataConfig
from crnn_ocr.data import Skipped, training_items
from crnn_ocr.synth_text import CAPITALS_ONLY, PRINTABLE, random_text, synthetic_words, system_fonts

pytestmark = pytest.mark.skipif(
    not system_fonts(), reason="no TrueType/OpenType font with ASCII letters installed "
    "(Debian: apt-get install fonts-dejavu fonts-liberation fonts-freefont-ttf)")

IAM_CHARACTERS = string.ascii_letters + string.digits + ".,'\"-!?:;()&#/*+ "


def test_same_seed_gives_the_same_images_and_another_seed_others():
    a, b, c = synthetic_words(20, seed=7), synthetic_words(20, seed=7), synthetic_words(20, seed=8)
    assert [it.text for it in a] == [it.text for it in b]
    assert all(x.image.tobytes() == y.image.tobytes() for x, y in zip(a, b))
    assert [it.text for it in a] != [it.text for it in c]


def test_images_are_grayscale_text_lines_with_dark_ink_on_a_light_background():
    items = synthetic_words(50, seed=1)
    light_border = 0
    for item in items:
        im = item.image
        assert im.mode == "L" and 8 <= im.height <= 120 and im.width >= 2
        lo, hi = im.getextrema()
        assert hi - lo >= 50, item.text  # ink and background differ
        assert item.text and item.path.endswith(".png")
        border = [im.getpixel((x, y)) for x in (0, im.width - 1) for y in range(im.height)]
        light_border += sorted(border)[len(border) // 2] > lo + 40
    assert light_border >= 45  # the background around the ink is lighter (ink may touch the edge)


def test_even_a_small_set_covers_every_printable_ascii_character():
    texts = [it.text for it in synthetic_words(12, seed=3)]
    assert Charset.from_texts(texts).chars == "".join(sorted(PRINTABLE))
    assert len(PRINTABLE) == 95 and set(IAM_CHARACTERS) <= set(PRINTABLE)


def test_fonts_with_small_capitals_never_draw_lowercase_labels():
    for font in system_fonts():
        if any(h in font.path.lower() for h in CAPITALS_ONLY):
            assert not set(string.ascii_lowercase) & font.chars and set(string.ascii_uppercase) <= font.chars


def test_random_texts_mix_words_numbers_and_iam_punctuation():
    import random

    rng = random.Random(0)
    texts = [random_text(rng) for _ in range(3000)]
    assert set(IAM_CHARACTERS) <= set("".join(texts))
    assert sum(t.isdigit() for t in texts) > 100 and sum(t.isalpha() for t in texts) > 1000
    assert sum(t.istitle() for t in texts) > 100 and sum(t.isupper() for t in texts) > 100
    assert max(len(t) for t in texts) <= 16


def test_rendering_takes_milliseconds():
    synthetic_words(20, seed=0)  # fonts found and opened
    start = time.perf_counter()
    synthetic_words(200, seed=1)
    assert (time.perf_counter() - start) / 200 < 0.02


def test_synth_words_path_makes_training_and_validation_words():
    data = DataConfig(path="synth:words", synthetic_train=30, synthetic_val=10)
    train, val = training_items(data, seed=0, skipped=Skipped())
    assert len(train) == 30 and len(val) == 10
    assert {it.text for it in train} != {it.text for it in val}
    assert all(it.image is not None for it in train + val)


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory):
    """A tiny pretraining run: 32 words, one epoch, one thread."""
    run = tmp_path_factory.mktemp("pretrain") / "run"
    assert main(["pretrain", "--out", str(run), "--images", "32", "--val-images", "8", "--epochs", "1",
                 "--threads", "1", "--backbone", "resnet18", "--rnn-hidden", "48", "--trim-padding"]) == 0
    return run


def test_pretrain_writes_a_checkpoint_and_float16_weights_with_the_full_ascii_charset(pretrained_run):
    ckpt = load(pretrained_run / "best.pt")
    assert ckpt["charset"] == "".join(sorted(PRINTABLE))
    assert ckpt["config"]["data"]["path"] == "synth:words" and ckpt["config"]["model"]["backbone"] == "resnet18"
    assert ckpt["config"]["model"]["rnn_hidden"] == 48 and ckpt["config"]["data"]["trim_padding"]
    weights = pretrained_run / "backbone.safetensors"
    assert weights.stat().st_size < 20e6
    with safe_open(str(weights), framework="pt") as f:
        meta = f.metadata()
        assert meta["charset"] == ckpt["charset"] and float(meta["val_cer"]) >= 0
        assert f.get_tensor("cnn.0.weight").dtype == torch.float16
        assert set(f.keys()) == set(ckpt["model"])


def test_pretrained_weights_load_into_a_model_for_another_charset(pretrained_run):
    config = Config()
    config.model.backbone, config.model.rnn_hidden = "resnet18", 48
    config.data.height, config.data.width = 32, 128  # the size the pretrained run used
    model = CRNN.from_config(config, Charset("0123456789"))
    copied, total, rows = load_pretrained(model, pretrained_run / "backbone.safetensors", Charset("0123456789"))
    assert copied == total - 2  # all but the classifier's weight and bias, which are mapped by character
    assert rows == 11  # the blank and the ten digits, all printable ASCII
    source = load(pretrained_run / "best.pt")["model"]
    own = model.state_dict()
    assert torch.allclose(own["cnn.0.weight"], source["cnn.0.weight"], atol=1e-3)
    assert own["fc.weight"].shape != source["fc.weight"].shape


def test_fine_tuning_starts_from_the_pretrained_weights(pretrained_run, tmp_path, capsys):
    config = tmp_path / "captchas.toml"
    config.write_text("[data]\nheight = 32\nwidth = 128\nsynthetic_train = 32\nsynthetic_val = 8\n"
                      "[train]\nepochs = 1\nbatch_size = 16\nthreads = 1\n")
    weights = pretrained_run / "backbone.safetensors"
    assert main(["train", "--config", str(config), "--backbone", "resnet18", "--pretrained", str(weights),
                 "--rnn-hidden", "48", "--out", str(tmp_path / "run")]) == 0
    assert f"pretrained: copied 106 of 108 tensors from {weights}" in capsys.readouterr().out
    assert load(tmp_path / "run" / "best.pt")["charset"] != load(pretrained_run / "best.pt")["charset"]


def test_a_damaged_weights_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not safetensors at all")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_pretrained(CRNN.from_config(Config(), Charset("ab")), bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_pretrained(CRNN.from_config(Config(), Charset("ab")), tmp_path / "missing.safetensors")
