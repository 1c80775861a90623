"""Image in, array out: safe decoding, the ink settings, resize + left-aligned pad.

Two ways to make a model's input: a fixed canvas (``[data] width``, the default: every image
fits into height x width) or, with ``width = 0``, any width: each image keeps its own width
at the model's height (plus a small margin), up to ``max_width``.

Everything that touches pixels lives here, on numpy and Pillow only: reading never needs
PyTorch. ``load_array`` is what readers use; ``load_tensor`` is the same image as a torch
tensor, for training. Decoding failures raise ``BadImage`` with a short reason, so loaders
can skip and count an image instead of crashing on it.
"""
from __future__ import annotations

import io
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from crnn_ocr.config.sections import MAX_WIDTH

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
COLUMN_STRIDE = 4  # input pixels per output column: both backbones divide the width by 4 (the simple one
# by 8 with width_pool = 8: CRNN.column_stride)
MIN_WIDTH = 16  # the narrowest input: a trimmed batch or an any-width image is never cut narrower
TRIM_MARGIN = 8  # padding kept after an image's content: room for augmentation's shift and zoom


class BadImage(Exception):
    """An image that cannot be used; the message says why in a few words."""


def open_image(source: str | Path | bytes | Image.Image | np.ndarray) -> Image.Image:
    """Decode ``source`` (a path, encoded file bytes, a PIL image or a uint8 array HxW, HxWx1
    or HxWx3) into an ``L`` or ``RGB`` PIL image, white behind any transparency."""
    if isinstance(source, np.ndarray):
        source = Image.fromarray(source[:, :, 0] if source.ndim == 3 and source.shape[2] == 1 else source)
    if isinstance(source, Image.Image):
        return _normalise_mode(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise BadImage("empty file")
        return _decode(io.BytesIO(source))
    path = Path(source)
    try:
        mode = path.stat().st_mode  # follows links; a loop or an over-long name is an OSError
    except OSError as e:
        raise BadImage("file not found" if isinstance(e, FileNotFoundError) else
                       f"unreadable ({e.strerror or type(e).__name__})") from None
    if stat.S_ISDIR(mode):
        raise BadImage("is a directory")
    if not stat.S_ISREG(mode):
        raise BadImage("not a regular file")  # a fifo or device would block or never end
    if path.stat().st_size == 0:
        raise BadImage("empty file")
    return _decode(path)


def _decode(file: Path | io.BytesIO) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its pixel limit; treat any bomb as bad input.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as im:
                im.load()
                return _normalise_mode(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage("too many pixels (decompression-bomb limit)") from None
    except UnidentifiedImageError:
        raise BadImage("not an image") from None
    except Exception as e:  # truncated or corrupt data; Pillow's plugins raise any type (TypeError, ...)
        raise BadImage(unreadable(e)) from None


def unreadable(e: BaseException) -> str:
    """The reason for an image that failed to decode with exception ``e``."""
    if isinstance(e, OSError) and e.strerror:
        return f"unreadable ({e.strerror})"
    detail = str(e).splitlines()[0][:60] if str(e) else type(e).__name__
    return f"unreadable ({detail})"


def _normalise_mode(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        finite = a[np.isfinite(a)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        paper = float(np.median(finite)) if finite.size else 0.0  # most pixels are background, light or dark
        a = np.clip(np.where(np.isnan(a), paper, a), lo, hi)  # a float image's nan: the background; +-inf: the ends
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        return Image.fromarray(((a - lo) * scale).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):  # on white: pasting through the alpha channel, as alpha_composite
        im = im.convert("RGBA")            # would, at half its cost
        out = Image.new("RGB", im.size, (255, 255, 255))
        out.paste(im, mask=im.getchannel("A"))
        return out
    if im.mode not in ("L", "RGB"):
        im = im.convert("RGB")  # CMYK, YCbCr, 1-bit, ...
    return im


def fitted_size(w: int, h: int, height: int, width: int) -> tuple[int, int]:
    """The size a ``w`` x ``h`` image is resized to: aspect ratio kept, fitted into ``height``
    x ``width`` (a too-wide image is shrunk to fit the width)."""
    scale = min(height / h, width / w)
    return max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))


def upright(im: Image.Image) -> Image.Image:
    """``im`` turned as its EXIF orientation says."""
    return ImageOps.exif_transpose(im) if im.getexif() else im


def resize_and_pad(im: Image.Image, height: int, width: int, channels: int) -> np.ndarray:
    """The report's preprocessing: keep the aspect ratio, fit into ``height`` x ``width``,
    align left, centre vertically, pad with the image's own background colour.

    Returns a uint8 array (channels, height, width).
    """
    im = upright(im).convert("L" if channels == 1 else "RGB")
    nw, nh = fitted_size(*im.size, height, width)
    im = im.resize((nw, nh), Image.Resampling.BILINEAR)
    a = np.asarray(im)
    if a.ndim == 2:
        a = a[:, :, None]
    background = border_median(a)
    out = np.empty((height, width, channels), dtype=np.uint8)
    out[:] = background
    top = (height - nh) // 2
    out[top : top + nh, :nw] = a
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def border_median(a: np.ndarray) -> np.ndarray:
    """The median of an (H, W, C) uint8 image's border pixels per channel, rounded down: its
    background colour. (``np.median(...).astype(np.uint8)``, at half the cost per image.)"""
    border = np.sort(np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]]), axis=0)
    n = len(border)
    return ((border[(n - 1) // 2].astype(np.uint16) + border[n // 2]) // 2).astype(np.uint8)


def content_widths(images):
    """How many columns of each image of a ``resize_and_pad`` batch (N, C, H, W) hold the
    image: the padding on the right is every column equal to the bottom-right pixel. A numpy
    batch gives a numpy array, a torch batch (training's) a torch tensor."""
    if not isinstance(images, np.ndarray):
        import torch

        return torch.from_numpy(content_widths(images.cpu().numpy())).to(images.device)
    differs = (images != images[:, :, -1:, -1:]).any(axis=(1, 2))  # (N, W): a column with anything else
    return np.where(differs, np.arange(1, images.shape[3] + 1), 0).max(axis=1, initial=0)


def crop_width(content: int, full: int, stride: int = COLUMN_STRIDE) -> int:
    """The width to cut an image (or a batch) to: its (widest) content plus ``TRIM_MARGIN``,
    rounded up to a multiple of ``stride`` (the model's pixels per output column), at least
    ``MIN_WIDTH``, at most ``full``."""
    return min(full, max(MIN_WIDTH, -(-(int(content) + TRIM_MARGIN) // stride) * stride))


class ImageTooWide(UserWarning):
    """Any-width mode: an image wider than ``max_width`` at the model's height, scaled down."""


def own_width(w: int, h: int, height: int, max_width: int, name: str = "an image") -> int:
    """Any-width mode: the input width of a ``w`` x ``h`` image resized to ``height`` keeping its
    aspect ratio: its width then, plus the margin a trimmed image keeps (``crop_width``), at
    most ``max_width``. A wider image is scaled down to ``max_width`` (and so comes out less
    high, centred), with an ``ImageTooWide`` warning naming it (once per name)."""
    natural = round(w * height / h)
    if natural > max_width:
        warnings.warn(ImageTooWide(f"{name}: {natural} pixels wide at height {height}, scaled down to "
                                   f"max_width {max_width}"), stacklevel=3)
    return crop_width(fitted_size(w, h, height, max_width)[0], max_width)


FAINT = 100  # ink and paper fewer grey levels apart than this: faint text, stretched by ``ink_view``
PAPER, INK = 250, 50  # ... to these levels (IAM's word crops: paper at 251, the darkest 1% of ink at 51, medians)


def ink_view(im: Image.Image, levels: bool = False, crop: bool = False) -> tuple[Image.Image, int]:
    """``im`` as the models expect ink, and the number of source columns cut off on its left.

    ``levels``: light text on a dark background (the border median, the background, nearer the
    image's darkest pixels than its brightest, and below mid grey) is inverted to dark on
    light; then faint text (the darkest 1% of pixels fewer than ``FAINT`` grey levels below the
    paper, yet at least 20) is stretched linearly to ``INK`` on ``PAPER``. ``crop``: the image
    is cut to the box of its ink (pixels that differ from the background by more than a quarter
    of the image's contrast, at least 20 grey levels), as tight as IAM's word crops; an image
    with no such pixels is kept whole. Images under 16 pixels on a side are left as they are:
    a tight crop of a comma is mostly ink, and its border says nothing of the paper.
    """
    if not (levels or crop) or min(im.size) < 16:
        return im, 0
    grey = np.asarray(im.convert("L"))
    background = int(border_median(grey[:, :, None])[0])
    dark, light = (int(v) for v in np.percentile(grey, [0.5, 99.5]))  # the darkest and brightest 1%
    if levels and background < 128 and background - dark < light - background:
        im, grey, background = ImageOps.invert(im), 255 - grey, 255 - background
        dark, light = 255 - light, 255 - dark
    contrast = max(background - dark, light - background)
    if levels and 20 <= background - dark < FAINT:
        gain = (PAPER - INK) / (background - dark)
        lut = np.clip(np.rint(PAPER + (np.arange(256) - background) * gain), 0, 255).astype(np.uint8)
        im, grey = im.point(lut.tolist() * len(im.getbands())), lut[grey]
        background, contrast = PAPER, PAPER - INK
    if not crop:
        return im, 0
    ink = np.abs(grey.astype(np.int16) - background) > max(20, contrast // 4)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if not len(rows):
        return im, 0
    return im.crop((int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)), int(cols[0])


def load_array(source, height: int, width: int, channels: int, max_width: int = MAX_WIDTH,
               name: str | None = None, levels: bool = False, crop: bool = False) -> np.ndarray:
    """``open_image``, ``ink_view`` (``levels``, ``crop``), then ``resize_and_pad`` (``width``
    0: to the image's ``own_width``): uint8 (C, H, W); raises ``BadImage``."""
    return load_array_and_scale(source, height, width, channels, max_width, name, levels, crop)[0]


def load_tensor(source, height: int, width: int, channels: int, max_width: int = MAX_WIDTH,
                name: str | None = None, levels: bool = False, crop: bool = False):
    """``load_array`` as a torch tensor (training's datasets)."""
    import torch

    return torch.from_numpy(load_array(source, height, width, channels, max_width, name, levels, crop))


def load_tensor_and_scale(source, height: int, width: int, channels: int, max_width: int = MAX_WIDTH,
                          name: str | None = None, levels: bool = False, crop: bool = False):
    """``load_array_and_scale`` with the image as a torch tensor."""
    import torch

    array, *rest = load_array_and_scale(source, height, width, channels, max_width, name, levels, crop)
    return (torch.from_numpy(array), *rest)


def load_array_and_scale(source, height: int, width: int, channels: int, max_width: int = MAX_WIDTH,
                         name: str | None = None, levels: bool = False,
                         crop: bool = False) -> tuple[np.ndarray, float, int, int]:
    """``load_array``, plus the source's pixels per input pixel along x, its width (as shown
    upright) and the columns ``crop`` cut off on its left, to map positions in the input back
    to the source; raises ``BadImage``. ``name``: how an ``ImageTooWide`` warning names the
    image (default: its path).

    This is the one boundary where a single image is decoded: any failure (whatever
    exception Pillow, numpy or the resize raise) becomes ``BadImage``, so a caller skips and
    counts that image and goes on with the others."""
    try:
        im = upright(open_image(source))
        source_width = im.width
        if not (im.width and im.height):
            raise BadImage("empty image (0 pixels)")
        im, left = ink_view(im, levels, crop)
        w, h = im.size
        if not width:
            width = own_width(w, h, height, max_width, name or (str(source) if isinstance(source, (str, Path))
                                                                  else "an image"))
        return resize_and_pad(im, height, width, channels), w / fitted_size(w, h, height, width)[0], source_width, left
    except BadImage:
        raise
    except MemoryError:
        raise BadImage("too large to decode") from None
    except Exception as e:
        raise BadImage(unreadable(e)) from None
