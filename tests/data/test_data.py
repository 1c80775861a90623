"""Datasets: layouts on disk, splits, synthetic captchas, the decoded training dataset."""
from pathlib import Path

import numpy as np
import pytest
import torch

from crnn_ocr.model.charset import Charset
from crnn_ocr.config.schema import Config
from crnn_ocr.config.sections import DataConfig
from crnn_ocr.data.datasets import OCRDataset, collate, width_bucketed
from crnn_ocr.data.items import DataError, Skipped
from crnn_ocr.data.layouts import detect_layout, load_folder, load_iam, load_tsv, read_ids, split
from crnn_ocr.data.sources import evaluation_items, training_items
from crnn_ocr.data.synth.captcha import synthetic_captchas
from crnn_ocr.training.data import load_training_data

from conftest import text_image


def test_captcha_folder_labels_come_from_file_names(captcha_folder):
    items = load_folder(captcha_folder)
    assert [it.text for it in items] == ["2b827", "3bnyf", "44c22", "5npdn", "6g45w", "7cgym"]
    assert detect_layout(captcha_folder) == "folder"


def test_label_separator_cuts_the_stem(tmp_path):
    text_image("1234").save(tmp_path / "1234-7.jpg")
    text_image("98").save(tmp_path / "98-0-1.png")
    assert sorted(it.text for it in load_folder(tmp_path, label_sep="-")) == ["1234", "98"]


def test_iam_loader_joins_fields_skips_err_missing_and_malformed_lines(iam_root):
    skipped = Skipped()
    items = load_iam(iam_root, skipped=skipped)
    assert [it.text for it in items] == ["A", "MOVE", "two words", "Peers"]
    assert skipped == {"segmentation marked err": 1, "image missing": 1, "malformed words.txt line": 1}
    assert Path(items[-1].path).parts[-3:] == ("b02", "b02-010", "b02-010-01-00.png")
    kept = load_iam(iam_root, keep_err=True)
    assert "to" in [it.text for it in kept]
    assert detect_layout(iam_root) == "iam"


def test_iam_id_lists_select_words(iam_root, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("a01-000u-00-01\nb02-010-01-00\n\n")
    assert read_ids([str(ids)]) == {"a01-000u-00-01", "b02-010-01-00"}
    items = evaluation_items(str(iam_root), split_ids=[str(ids)])
    assert [it.text for it in items] == ["MOVE", "Peers"]


def test_labels_tsv_handles_crlf_blank_lines_missing_tabs_and_bad_bytes(tsv_folder):
    skipped = Skipped()
    items = load_tsv(tsv_folder, skipped)
    assert [it.text for it in items] == ["hello", "wörld", "a b"]
    assert skipped == {"labels.tsv line without a tab": 1, "labels.tsv line not UTF-8": 1}
    assert detect_layout(tsv_folder) == "tsv"


def test_labels_tsv_skips_a_third_column_and_drops_empty_trailing_ones(tmp_path):
    (tmp_path / "labels.tsv").write_text("a.png\tone\t\t\nb.png\ttwo\t0.93\nc.png\t\t\nd.png\tfour words here\n"
                                         "e.png\t   \n")
    skipped = Skipped()
    items = load_tsv(tmp_path, skipped)
    assert [(Path(it.path).name, it.text) for it in items] == [("a.png", "one"), ("d.png", "four words here")]
    assert skipped == {"labels.tsv line with more than two columns": 1, "empty label": 2}  # c, and e's spaces


def test_split_folders_are_used_as_given(captcha_folder, tmp_path):
    root = tmp_path / "splits"
    for name in ("train", "val"):
        (root / name).mkdir(parents=True)
        for p in list(captcha_folder.iterdir())[:3]:
            (root / name / p.name).write_bytes(p.read_bytes())
    train, val = training_items(DataConfig(path=str(root)), 0, Skipped())
    assert detect_layout(root) == "splits"
    assert len(train) == len(val) >= 2


def test_seeded_split_is_deterministic_70_20_10(captcha_folder):
    items = load_folder(captcha_folder) * 10  # 60 items
    a, b = split(items, seed=3), split(items, seed=3)
    assert [len(p) for p in a] == [42, 12, 6]
    assert [[it.text for it in p] for p in a] == [[it.text for it in p] for p in b]


def test_missing_and_empty_datasets_raise_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        detect_layout(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no labelled images"):
        evaluation_items(str(tmp_path / "empty"))


def test_half_a_split_layout_too_few_images_and_a_broken_labels_link_are_data_errors(tmp_path):
    (tmp_path / "halves" / "train").mkdir(parents=True)
    text_image("ab", (64, 32)).save(tmp_path / "halves" / "train" / "ab.png")
    with pytest.raises(DataError, match="has train/ but no val/"):
        detect_layout(tmp_path / "halves")
    text_image("cd", (64, 32)).save(tmp_path / "halves" / "cd.png")
    assert detect_layout(tmp_path / "halves") == "folder"  # images beside it: a folder of images as before
    (tmp_path / "valonly" / "valid").mkdir(parents=True)
    with pytest.raises(DataError, match="has valid/ but no train/"):
        evaluation_items(str(tmp_path / "valonly"))
    (tmp_path / "two").mkdir()
    for name in ("ab", "cd"):
        text_image(name, (64, 32)).save(tmp_path / "two" / f"{name}.png")
    with pytest.raises(DataError, match="too few usable images to leave any for validation after the 70/20/10"):
        training_items(DataConfig(path=str(tmp_path / "two")), 0, Skipped())
    (tmp_path / "linked").mkdir()
    text_image("ab", (64, 32)).save(tmp_path / "linked" / "ab.png")
    (tmp_path / "linked" / "labels.tsv").symlink_to(tmp_path / "gone.tsv")  # not read as a folder of file names
    with pytest.raises(OSError, match="cannot read labels.tsv"):
        evaluation_items(str(tmp_path / "linked"))


def test_training_filters_unknown_characters_and_too_long_labels(captcha_folder):
    skipped = Skipped()
    ds = OCRDataset(load_folder(captcha_folder), 32, 128, 1, skipped, charset=Charset("2345678bcdefgmpwx"),
                    max_length=5)
    # 44c22 needs 6 columns (two repeats); 3bnyf, 5npdn and 7cgym have n or y, outside the charset
    assert sorted(it.text for it in ds.items) == ["2b827", "6g45w"]
    assert skipped == {"label too long for the model's output": 1, "label with characters outside the charset": 3}
    images, targets, lengths, index = collate([ds[0], ds[1]])
    assert images.shape == (2, 1, 32, 128) and lengths.tolist() == [5, 5] and len(targets) == 10


def test_a_trimmed_batch_keeps_room_for_its_labels_at_the_models_column_stride():
    from crnn_ocr.data.items import Item

    blank = np.full((32, 128), 255, dtype=np.uint8)  # no content: only the labels' room is kept
    items = [Item("abcabcab", "x.png", blank), Item("ab", "y.png", blank)]
    for stride in (4, 8):
        ds = OCRDataset(items, 32, 128, 1, Skipped(), charset=Charset("abc"), max_length=32, stride=stride)
        assert ds.widths[0] >= 8 * stride and ds.widths[1] >= 2 * stride
        images, _, _ = ds.batch([0], trim=True)
        assert images.shape[3] // stride >= 8  # the model's columns still fit the 8-character label


def test_width_bucketed_order_is_a_seeded_permutation_of_similar_width_batches():
    widths = torch.tensor([5, 100, 7, 90, 6, 95, 8, 80, 50])
    order = list(range(9))
    out = width_bucketed(order, widths, batch_size=2, seed=3)
    assert sorted(out) == order and out == width_bucketed(order, widths, batch_size=2, seed=3)
    assert out[-1] == 1  # the short batch (the widest image left over) stays last
    for b in range(0, 8, 2):
        pair = widths[out[b : b + 2]]
        assert (pair < 10).all() or (pair >= 50).all()


def test_synthetic_captchas_are_repeatable_and_shaped_like_the_kaggle_set():
    a, b = synthetic_captchas(3, seed=7), synthetic_captchas(3, seed=7)
    assert [it.text for it in a] == [it.text for it in b]
    assert np.array_equal(np.asarray(a[0].image), np.asarray(b[0].image))
    assert a[0].image.size == (200, 50) and len(a[0].text) == 5
    assert set("".join(it.text for it in a)) <= set("2345678bcdefgmnpwxy")


def test_training_data_keeps_each_label_as_often_as_it_occurs(tmp_path):
    root = tmp_path / "words"
    for split_name, texts in (("train", ["the", "the", "cat", "the"]), ("val", ["cat"])):
        (root / split_name).mkdir(parents=True)
        for i, text in enumerate(texts):
            text_image(text, (90, 32)).save(root / split_name / f"{i}.png")
        (root / split_name / "labels.tsv").write_text("".join(f"{i}.png\t{t}\n" for i, t in enumerate(texts)))
    config = Config.from_dict({"data": {"path": str(root), "height": 32, "width": 128},
                               "model": {"pretrained": "", "rnn_hidden": 16, "rnn_layers": 1}})
    data, _ = load_training_data(config, None, log=lambda *a: None)
    # the language model weighs a word by how often it was seen
    assert data.vocabulary == ["cat", "the", "the", "the"]
