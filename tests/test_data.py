from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from crnn_ocr.charset import Charset
from crnn_ocr.config import DataConfig
from crnn_ocr.inference import batches, crop_width
from crnn_ocr.data import (DataError, OCRDataset, Skipped, collate, detect_layout,
                           evaluation_items, load_folder, load_iam, load_tsv, read_ids, split, synthetic_captchas,
                           training_items, width_bucketed)
from crnn_ocr.images import augment_batch, content_widths, resize_and_pad

from conftest import text_image


def test_captcha_folder_labels_come_from_file_names(captcha_folder):
    items = load_folder(captcha_folder)
    assert [it.text for it in items] == ["2b827", "3bnyf", "44c22", "5npdn", "6g45w", "7cgym"]
    assert detect_layout(captcha_folder) == "folder"


def test_label_separator_cuts_the_stem(tmp_path):
    text_image("1234").save(tmp_path / "1234-7.jpg")
    text_image("98").save(tmp_path / "98-0-1.png")
    assert sorted(it.text for it in load_folder(tmp_path, label_sep="-")) == ["1234", "98"]


def test_every_image_mode_decodes_to_the_same_fixed_size(captcha_folder):
    skipped = Skipped()
    ds = OCRDataset(load_folder(captcha_folder), 32, 128, 1, skipped)
    assert ds.images.shape == (6, 1, 32, 128) and ds.images.dtype == torch.uint8
    assert not skipped
    rgb = OCRDataset(load_folder(captcha_folder), 32, 100, 3, skipped)
    assert rgb.images.shape == (6, 3, 32, 100)


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


def test_training_filters_unknown_characters_and_too_long_labels(captcha_folder):
    skipped = Skipped()
    ds = OCRDataset(load_folder(captcha_folder), 32, 128, 1, skipped, charset=Charset("2345678bcdefgmpwx"),
                    max_length=5)
    # 44c22 needs 6 columns (two repeats); 3bnyf, 5npdn and 7cgym have n or y, outside the charset
    assert sorted(it.text for it in ds.items) == ["2b827", "6g45w"]
    assert skipped == {"label too long for the model's output": 1, "label with characters outside the charset": 3}
    images, targets, lengths, index = collate([ds[0], ds[1]])
    assert images.shape == (2, 1, 32, 128) and lengths.tolist() == [5, 5] and len(targets) == 10


def test_resize_keeps_aspect_ratio_left_aligned_and_pads_with_background():
    im = Image.fromarray(np.full((20, 40), 200, dtype=np.uint8))
    im.paste(0, (0, 0, 4, 20))  # a dark bar at the left edge
    t = resize_and_pad(im, 32, 128, 1)[0]
    assert t.shape == (32, 128)
    assert t[:, :5].float().mean() < 50  # the bar stays at the left
    assert (t[:, 70:] == 200).all()  # padding takes the background colour
    wide = resize_and_pad(Image.new("L", (1000, 10), 255), 32, 128, 1)  # too wide: shrunk to fit
    assert wide.shape == (1, 32, 128)


def word_images(widths: list[int], height: int = 32, width: int = 128) -> torch.Tensor:
    """White images with a dark bar over the first ``w`` pixels, padded like real ones."""
    out = []
    for w in widths:
        im = Image.new("L", (width, height), 255)
        im.paste(0, (0, 8, w, 24))
        out.append(resize_and_pad(im.crop((0, 0, w + 2, height)), height, width, 1))
    return torch.stack(out)


def test_content_width_is_where_the_padding_starts():
    images = word_images([10, 50, 120])
    assert content_widths(images).tolist() == [10, 50, 120]
    assert crop_width(2, 128) == 16 and crop_width(10, 128) == 20 and crop_width(50, 128) == 60
    assert crop_width(121, 128) == 128  # never wider than the images


@pytest.mark.parametrize("width", [192, 40])  # a full-width and a trimmed batch
def test_augmentation_is_seeded_keeps_shape_and_range_and_keeps_the_word(width):
    words = ["hello", "MOVE", "to", "Gaitskell"]
    # Large, bold letters: thin strokes could vanish under the stroke-thinning.
    x = torch.stack([resize_and_pad(text_image(w, (30 * len(w) + 10, 48), font_size=36, stroke=2, at=(5, 4)),
                                    48, width, 1) for w in words]).float() / 255

    def augment(seed, elastic):
        return augment_batch(x.clone(), torch.Generator().manual_seed(seed), elastic)

    plain, warped = augment(0, 0.0), augment(0, 3.0)
    assert torch.equal(warped, augment(0, 3.0)) and not torch.equal(warped, augment(1, 3.0))
    assert not torch.equal(plain, warped)
    def ink_centre(images):  # (N, 2): the mean column and row of the ink, in pixels
        ink = (images[:, 0] < 0.6).float()  # the noise stays far above this
        ink = ink / ink.sum((1, 2), keepdim=True)
        rows, cols = torch.meshgrid(torch.arange(48.0), torch.arange(float(width)), indexing="ij")
        return torch.stack([(ink * cols).sum((1, 2)), (ink * rows).sum((1, 2))], 1)

    for out in (plain, warped):
        assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
        shift = (ink_centre(out) - ink_centre(x)).abs()  # a small warp: the word stays where it was
        assert (shift[:, 0] < 10).all() and (shift[:, 1] < 6).all(), shift


def test_trimmed_batches_cut_every_image_to_its_own_width_and_cover_each_once():
    images = word_images([90, 12, 60, 20, 100, 14, 59, 89])
    seen = []
    for index, batch in batches(images, 2, trim=True):
        seen += index.tolist()
        assert all(crop_width(w, 128) == batch.shape[3] for w in content_widths(images[index]).tolist())
        assert torch.equal(batch, images[index, :, :, : batch.shape[3]])
    assert sorted(seen) == list(range(8))
    assert seen[:2] == [1, 5] and seen[-1] == 4  # narrowest first, widest last
    assert [b.shape[3] for _, b in batches(images, 4)] == [128, 128]  # untrimmed: as they are


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
