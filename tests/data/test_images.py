"""Image in, array out: every image mode decodes to one size, resize and pad, augmentation."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from crnn_ocr.data.datasets import OCRDataset

from crnn_ocr.data.items import Skipped

from crnn_ocr.data.layouts import load_folder
from crnn_ocr.data.augment import augment_batch, erase_strips
from crnn_ocr.reading.images import (INK, PAPER, border_median, ink_view, load_tensor, load_tensor_and_scale,
                              open_image, resize_and_pad)

from conftest import text_image


def test_every_image_mode_decodes_to_the_same_fixed_size(captcha_folder):
    skipped = Skipped()
    ds = OCRDataset(load_folder(captcha_folder), 32, 128, 1, skipped)
    assert ds.images.shape == (6, 1, 32, 128) and ds.images.dtype == torch.uint8
    assert not skipped
    rgb = OCRDataset(load_folder(captcha_folder), 32, 100, 3, skipped)
    assert rgb.images.shape == (6, 3, 32, 100)


def test_resize_keeps_aspect_ratio_left_aligned_and_pads_with_background():
    im = Image.fromarray(np.full((20, 40), 200, dtype=np.uint8))
    im.paste(0, (0, 0, 4, 20))  # a dark bar at the left edge
    t = resize_and_pad(im, 32, 128, 1)[0]
    assert t.shape == (32, 128)
    assert t[:, :5].mean() < 50  # the bar stays at the left
    assert (t[:, 70:] == 200).all()  # padding takes the background colour
    wide = resize_and_pad(Image.new("L", (1000, 10), 255), 32, 128, 1)  # too wide: shrunk to fit
    assert wide.shape == (1, 32, 128)


@pytest.mark.parametrize("width", [192, 40])  # a full-width and a trimmed batch
def test_augmentation_is_seeded_keeps_shape_and_range_and_keeps_the_word(width):
    words = ["hello", "MOVE", "to", "Gaitskell"]
    # Large, bold letters: thin strokes could vanish under the stroke-thinning.
    x = torch.from_numpy(np.stack([resize_and_pad(text_image(w, (30 * len(w) + 10, 48), font_size=36, stroke=2,
                                                          at=(5, 4)), 48, width, 1) for w in words])).float() / 255

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


def test_degrading_changes_only_that_share_of_a_batch_and_nothing_when_off():
    x = torch.full((400, 1, 32, 96), 0.6)  # grey paper: the noise is not clipped at white
    x[:, :, 8:20, 10:80] = 0.1  # dark ink

    def augment(degrade):
        return augment_batch(x.clone(), torch.Generator().manual_seed(5), 0.0, degrade)

    def step(out):  # paper minus ink: 0.5 in x, at least 0.35 after a contrast of 0.7-1.1
        return out[:, 0, 24:].mean((1, 2)) - out[:, 0, 12:16, 20:70].mean((1, 2))

    def noise(out):  # the paper's standard deviation: at most 0.06 x 1.1 without degrading
        return out[:, 0, 24:].std((1, 2))

    plain, some = augment(0.0), augment(0.5)
    assert torch.equal(plain, augment(0.0))
    assert (step(plain) > 0.32).all() and (noise(plain) < 0.075).all()
    faint = (step(some) < 0.31).float().mean()  # contrast 0.3-0.6: a sixth of the images
    assert 0.1 < faint < 0.25, faint
    assert (noise(some) > 0.075).sum() >= 5  # strong noise, sigma 0.06-0.1
    assert some.min() >= 0 and some.max() <= 1 and some.shape == x.shape


def test_erasing_paints_one_strip_of_paper_in_that_share_of_a_batch():
    x = torch.rand(400, 1, 32, 96, generator=torch.Generator().manual_seed(1))
    assert torch.equal(erase_strips(x, torch.Generator().manual_seed(2), 0.0), x)
    out = erase_strips(x, torch.Generator().manual_seed(2), 0.3)
    changed = (out != x).flatten(1).any(dim=1)
    assert 0.22 < changed.float().mean() < 0.38
    for i in changed.nonzero().flatten().tolist():
        paper = x[i].median()
        hidden = (out[i, 0] != x[i, 0]).any(dim=0).nonzero().flatten()  # the columns it changed
        assert 1 <= len(hidden) <= 16 and int(hidden[-1] - hidden[0]) + 1 == len(hidden)  # one strip
        assert (out[i, 0, :, hidden] == paper).all()  # painted the paper's colour, top to bottom
    plain = augment_batch(x[:8].clone(), torch.Generator().manual_seed(5))
    assert not torch.equal(plain, augment_batch(x[:8].clone(), torch.Generator().manual_seed(5), erase=0.5))


def test_the_background_is_the_median_of_the_border_rounded_down():
    rng = np.random.default_rng(0)
    for _ in range(300):
        a = rng.integers(0, 256, (int(rng.integers(1, 40)), int(rng.integers(1, 60)), int(rng.choice([1, 3]))),
                         dtype=np.uint8)
        border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
        assert (border_median(a) == np.median(border, axis=0).astype(np.uint8)).all()
    two = np.array([[[100], [100]], [[201], [201]]], dtype=np.uint8)  # an even border: 100 x 4, 201 x 4
    assert border_median(two).tolist() == [150]


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparent_images_are_read_on_white_as_alpha_compositing_gives(mode):
    rng = np.random.default_rng(1)
    im = Image.fromarray(rng.integers(0, 256, (30, 70, 4), dtype=np.uint8), "RGBA").convert(mode)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    white = Image.new("RGBA", im.size, (255, 255, 255, 255))
    expected = np.asarray(Image.alpha_composite(white, im.convert("RGBA")).convert("RGB"))
    assert np.array_equal(np.asarray(open_image(buf.getvalue())), expected)


def word_on(paper: int, ink: int, margin: int = 0) -> Image.Image:
    """A 'word' (two ink bars) on a page, with ``margin`` pixels of paper around its ink."""
    a = np.full((40 + 2 * margin, 100 + 2 * margin), paper, dtype=np.uint8)
    a[margin:margin + 40, margin:margin + 30] = ink
    a[margin + 10:margin + 30, margin + 60:margin + 100] = ink
    return Image.fromarray(a)


def test_light_text_on_dark_is_inverted_and_faint_text_stretched():
    im, left = ink_view(word_on(20, 230, margin=10), levels=True)
    a = np.asarray(im)
    assert left == 0 and a[0, 0] == 235 and a[15, 15] == 25  # paper light, ink dark, the contrast kept
    dark_on_light = word_on(250, 10, 10)
    assert ink_view(dark_on_light, levels=True)[0] is dark_on_light
    for paper, ink in ((100, 30), (190, 140), (240, 200)):  # faint ink, on grey or white paper
        a = np.asarray(ink_view(word_on(paper, ink, 10), levels=True)[0])
        assert (a[0, 0], a[15, 15]) == (PAPER, INK)  # stretched: dark ink on white
    barely = word_on(200, 185, 10)  # paper and a smudge 15 levels apart: no text to stretch
    assert ink_view(barely, levels=True)[0] is barely
    rgb = ink_view(word_on(190, 140, 10).convert("RGB"), levels=True)[0]
    assert rgb.mode == "RGB" and rgb.getpixel((15, 15)) == (INK,) * 3
    assert ink_view(word_on(20, 230, 10))[0].getpixel((0, 0)) == 20  # off by default
    tiny = word_on(20, 230).resize((12, 8))
    assert ink_view(tiny, levels=True, crop=True) == (tiny, 0)  # under 16 pixels: left as it is


def test_crop_to_ink_cuts_the_margins_and_says_how_much_it_cut_on_the_left():
    tight = word_on(250, 10)
    im, left = ink_view(word_on(250, 10, margin=25), crop=True)
    assert left == 25 and im.size == tight.size and (np.asarray(im) == np.asarray(tight)).all()
    im, left = ink_view(word_on(20, 230, margin=25), levels=True, crop=True)  # inverted, then cut
    assert left == 25 and im.size == (100, 40) and im.getpixel((0, 0)) == 25
    blank = Image.new("L", (50, 30), 200)
    assert ink_view(blank, levels=True, crop=True) == (blank, 0)  # no ink: kept whole
    noisy = np.asarray(word_on(250, 10, margin=25)).astype(float)
    noisy += np.random.default_rng(0).normal(0, 12, noisy.shape)  # scanner noise is no ink
    assert ink_view(Image.fromarray(noisy.clip(0, 255).astype(np.uint8)), crop=True)[1] == 25


def test_a_cropped_image_fills_the_models_height_and_maps_back_to_the_source():
    wide = word_on(250, 10, margin=40)  # 180 x 120: the ink alone is 100 x 40
    t, scale, width, left = load_tensor_and_scale(wide, 32, 128, 1, crop=True)
    assert (width, left) == (180, 40) and scale == 40 / 32
    assert (t == load_tensor(word_on(250, 10), 32, 128, 1)).all()
    assert load_tensor_and_scale(wide, 32, 128, 1)[1:] == (120 / 32, 180, 0)  # off by default
