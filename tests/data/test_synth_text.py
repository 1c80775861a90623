"""Synthetic words from system fonts and the ``synth:words`` data path."""
import string

import pytest
import torch

from conftest import text_image
from crnn_ocr.model.charset import Charset
from crnn_ocr.config.schema import Config
from crnn_ocr.config.sections import DataConfig
from crnn_ocr.data.items import Skipped
from crnn_ocr.data.sources import training_items
from crnn_ocr.data.synth import text as synth_text
from crnn_ocr.data.datasets import RenderedDataset
from crnn_ocr.training.data import load_training_data
from crnn_ocr.data.synth.text import CAPITALS_ONLY, PRINTABLE, SyntheticWords, random_text, synthetic_words, system_fonts


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


def test_words_are_rendered_only_when_asked_for_and_the_same_in_any_order(monkeypatch):
    words = SyntheticWords(5000, seed=2)
    calls = []
    original = synth_text.render
    monkeypatch.setattr(synth_text, "render", lambda *a: calls.append(a[0]) or original(*a))
    ds = RenderedDataset(words, 32, 128, 1, Skipped(), Charset.from_texts(it.text for it in words), max_length=32)
    assert len(ds) == 5000 and not calls  # texts are drawn up front; no image is made or held
    late = words.render(4321).tobytes()
    assert words.render(7).tobytes() == synthetic_words(8, seed=2)[7].image.tobytes()
    assert words.render(4321).tobytes() == late and calls == [words.texts[4321], words.texts[7],
                                                                  *words.texts[:8], words.texts[4321]]
    images, targets, lengths = ds.batch([4321, 7])
    assert images.shape == (2, 1, 32, 128) and images.dtype == torch.uint8
    assert ds.charset.decode(targets[: lengths[0]].tolist()) == words.texts[4321]


def test_training_renders_batches_in_a_loader_process():
    words = SyntheticWords(64, seed=4)
    ds = RenderedDataset(words, 32, 128, 1, Skipped(), Charset.from_texts(it.text for it in words))
    order = [[5, 9, 2], [60, 1, 33]]
    got = list(ds.batches(order))
    assert len(got) == 2 and all(torch.equal(a, b) for a, b in zip(got[1], ds.batch(order[1])))
    short = min(range(len(ds)), key=lambda i: len(words.texts[i]))
    trimmed, _, _ = next(ds.batches([[short]], trim=True))  # cut to its content once rendered
    full, _, _ = ds.batch([short])
    assert trimmed.shape[3] < 128 and torch.equal(trimmed, full[..., : trimmed.shape[3]])
    assert ds.widths[short] == len(words.texts[short])  # the sort key of width-bucketing


def test_synth_words_path_makes_training_and_validation_words():
    data = DataConfig(path="synth:words", synthetic_train=30, synthetic_val=10)
    train, val = training_items(data, seed=0, skipped=Skipped())
    assert len(train) == 30 and len(val) == 10
    assert {it.text for it in train} != {it.text for it in val}
    assert isinstance(train, SyntheticWords) and all(it.image is not None for it in val)  # training: on the fly
    data.width = 0  # any width: every image's width is needed up front
    train, _ = training_items(data, seed=0, skipped=Skipped())
    assert all(it.image is not None for it in train)


def test_words_of_a_frequency_list_are_drawn_as_often_as_it_counts_them(tmp_path):
    import random

    listing = tmp_path / "words.txt"
    listing.write_text("the\t900\nzebra\t100\nnot one word\t5000\n", encoding="utf-8")  # a phrase is no word
    source = synth_text.vocabulary(str(listing))
    assert source.words == ("the", "zebra")
    rng = random.Random(0)
    draws = [source.draw(rng) for _ in range(4000)]
    assert set(draws) == {"the", "zebra"} and 0.85 < draws.count("the") / len(draws) < 0.95
    texts = [random_text(rng, source).strip(".,;:!?'\")-(#").lower() for _ in range(1000)]
    words = [t for t in texts if t.isalpha()]  # also a few random letter strings
    assert words.count("the") > 0.8 * len(words) and "zebra" in words


def test_a_word_list_without_usable_words_is_a_clear_error(tmp_path):
    listing = tmp_path / "words.txt"
    listing.write_text("\u00e9t\u00e9\nfar too long a word to draw\n", encoding="utf-8")
    with pytest.raises(ValueError, match="has no word of 1-14 printable ASCII"):
        synth_text.vocabulary(str(listing))
    with pytest.raises(ValueError, match="no such file"):
        synth_text.vocabulary(str(tmp_path / "missing.txt"))


def test_synthetic_words_follow_the_configured_fonts_and_word_list(tmp_path):
    listing = tmp_path / "words.txt"
    listing.write_text("quill\t3\nparchment\t1\n", encoding="utf-8")
    data = DataConfig(path="synth:words", synthetic_train=60, synthetic_val=10, synthetic_handwriting=1.0,
                      synthetic_words=str(listing))
    train, val = training_items(data, seed=0, skipped=Skipped())
    words = [w for w in (it.text.strip(".,;:!?'\")-(#").lower() for it in train) if w.isalpha()]
    assert sum(w in ("quill", "parchment") for w in words) > 0.8 * len(words) > 20
    if any(f.handwriting for f in train.fonts):  # every text drawn in a handwriting-like font
        assert all(train.fonts[train._font[i]].handwriting for i in range(len(train)))


def test_synthetic_words_mixed_into_real_data_keep_its_alphabet_and_stay_out_of_its_vocabulary(tmp_path):
    root = tmp_path / "words"
    texts = {"train": ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog"], "val": ["cat"]}
    for split_name, words in texts.items():
        (root / split_name).mkdir(parents=True)
        for i, text in enumerate(words):
            text_image(text, (90, 32)).save(root / split_name / f"{i}.png")
        (root / split_name / "labels.tsv").write_text("".join(f"{i}.png\t{t}\n" for i, t in enumerate(words)))
    data = DataConfig(path=str(root), synthetic_mix=0.5)
    train, val = training_items(data, seed=0, skipped=Skipped())
    real, mixed = train[:8], train[8:]
    assert [it.text for it in real] == texts["train"] and [it.text for it in val] == ["cat"]
    assert 4 <= len(mixed) <= 8  # up to as many as the real words (a share of 0.5)
    assert all(set(it.text) <= set("".join(texts["train"])) and it.image is not None for it in mixed)
    again, _ = training_items(data, seed=0, skipped=Skipped())
    assert [it.text for it in again] == [it.text for it in train]  # seeded
    data.synthetic_mix = 0.0
    assert len(training_items(data, seed=0, skipped=Skipped())[0]) == 8

    lines = []
    config = Config.from_dict({"data": {"path": str(root), "height": 32, "width": 128, "synthetic_mix": 0.5},
                               "model": {"pretrained": "", "rnn_hidden": 16, "rnn_layers": 1}})
    loaded, _ = load_training_data(config, None, log=lines.append)
    assert loaded.vocabulary == sorted(texts["train"])  # rendered words are no lexicon
    assert f"{len(mixed)} of them synthetic words" in lines[-1]
