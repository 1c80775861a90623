"""Image in, tensor out: every image mode decodes to one size, resize and pad, augmentation."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from crnn_ocr.data import OCRDataset, Skipped, load_folder
from crnn_ocr.images import augment_batch, border_median, open_image, resize_and_pad

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
    assert t[:, :5].float().mean() < 50  # the bar stays at the left
    assert (t[:, 70:] == 200).all()  # padding takes the background colour
    wide = resize_and_pad(Image.new("L", (1000, 10), 255), 32, 128, 1)  # too wide: shrunk to fit
    assert wide.shape == (1, 32, 128)


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
