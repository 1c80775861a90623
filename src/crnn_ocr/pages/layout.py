"""Layout analysis: a page image in, its text lines out, upright and in reading order.

``segment(image)`` runs the steps, each in its own module: the ink (``ink``: Otsu's
binarisation, connected components), the page turned upright (``deskew``: a page on its side,
the skew), the reading order (``order``: bands, columns) and the lines in each block
(``lines``: touching lines cut at the valleys of the row profile). ``Layout.crop(k)`` cuts
line ``k`` from the upright page with margins, the ink of every other line painted out, as
the line models were trained to read it. This module knows nothing of recognition.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from .deskew import Rotation, rotate_page, runs_down, skew_angle
from .ink import Ink, binarise, dark_on_light, flatten_illumination
from .lines import LineRegion, split_block
from .order import band_height, gutter_width, reading_blocks

MIN_LINE_AREA = 0.5  # a line with less ink than this many size**2 pixels is a speck, not text


@dataclass(frozen=True)
class Margins:
    """How a line is cut, in shares of the page's median line height ``H``: ``x`` of paper left
    and right; ``y`` above and below the line's ink, or, when ``centred``, the half-height of a
    window centred on the line's core (its densest rows, the x-height band), so that every line
    of a size is cut to the same height whatever its ascenders and descenders, as the printed
    lines were rendered (the font's full ascent and descent plus up to a quarter of its size).
    IAM's handwritten lines were cut 12 pixels (about a tenth of a line) around their words."""

    x: float = 0.1
    y: float = 0.1
    centred: bool = False


# Chosen on the validation pages (experiments/make_pages.py): page CER 0.20% for printed-en with
# these (a window 0.6 or 0.8 high: 0.57%, 0.33%), 6.1% for handwriting-lines-en (0.2 around: 7.7%).
PRINTED = Margins(x=0.3, y=0.7, centred=True)
HANDWRITTEN = Margins(x=0.1, y=0.1)


@dataclass
class Layout:
    """The lines of one page: ``gray`` the page turned upright (uint8), ``rotation`` the turn
    that made it (page -> upright), ``lines`` in reading order, ``line_labels`` (line index + 1
    of every inked pixel that belongs to a line), ``paper`` its grey level, ``size`` the median
    component height, ``page_size`` (width, height) of the page as given."""

    gray: np.ndarray
    rotation: Rotation
    lines: list[LineRegion]
    line_labels: np.ndarray
    paper: int
    size: float
    page_size: tuple[int, int]

    def line_height(self) -> float:
        """The median height of the page's lines (0 without lines)."""
        return float(np.median([ln.box[3] - ln.box[1] for ln in self.lines])) if self.lines else 0.0

    def crop_box(self, k: int, margins: Margins = Margins()) -> tuple[int, int, int, int]:
        """Line ``k``'s box on the upright page grown by the margins and clipped to the page."""
        x0, y0, x1, y1 = self.lines[k].box
        height = max(self.line_height(), 1.0)
        if margins.centred:  # a line of larger type (a heading) gets a window of its own size
            half = margins.y * max(height, y1 - y0)
            core = self.lines[k].core
            top, bottom = min(y0, round(core - half)), max(y1, round(core + half))
        else:
            top, bottom = y0 - round(margins.y * height), y1 + round(margins.y * height)
        mx = round(margins.x * height)
        h, w = self.gray.shape
        return max(0, x0 - mx), max(0, top), min(w, x1 + mx), min(h, bottom)

    def crop(self, k: int, margins: Margins = Margins()) -> tuple[Image.Image, tuple[int, int, int, int]]:
        """Line ``k`` cut from the upright page with ``margins``, the ink of other lines in the
        box painted over with paper, and the box it was cut at (upright-page pixels)."""
        x0, y0, x1, y1 = box = self.crop_box(k, margins)
        region = self.gray[y0:y1, x0:x1].copy()
        labels = self.line_labels[y0:y1, x0:x1]
        others = (labels > 0) & (labels != k + 1)
        if others.any():
            others = cv2.dilate(others.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            region[others & (labels != k + 1)] = self.paper
        return Image.fromarray(region, "L"), box

    def to_page(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """A box on the upright page as the box around it on the page as given."""
        return self.rotation.to_page(box, self.page_size)


def grayscale(image: Image.Image | np.ndarray) -> np.ndarray:
    """A PIL image or an array as a uint8 grayscale array, dark ink on white paper (the
    illumination flattened: ``ink.flatten_illumination``)."""
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("L"))
    elif image.ndim == 3:
        image = cv2.cvtColor(image[:, :, :3], cv2.COLOR_RGB2GRAY) if image.shape[2] >= 3 else image[:, :, 0]
    return flatten_illumination(dark_on_light(np.ascontiguousarray(image, dtype=np.uint8)))


def page_angle(mask: np.ndarray) -> float:
    """The turn (degrees counter-clockwise) that makes the text of an ink mask level: a
    quarter turn for a page on its side, plus the skew."""
    quarter = 90.0 if runs_down(mask) else 0.0
    if quarter:
        mask = np.ascontiguousarray(np.rot90(mask))
    return quarter + skew_angle(mask)


def segment(image: Image.Image | np.ndarray, angle: float | None = None, min_skew: float = 0.05) -> Layout:
    """The text lines of a page in reading order.

    Args:
        image: the page (PIL image or uint8 array, grayscale or colour).
        angle: the turn to make it upright, degrees counter-clockwise; None: found here (a page
            on its side and the skew; a page upside down is left to the caller, ``reader``).
        min_skew: turns smaller than this are not made (no resampling of a straight scan).
    """
    gray = grayscale(image)
    page_size = (gray.shape[1], gray.shape[0])
    mask, paper = binarise(gray)
    if angle is None:  # measured on the letters only: a picture, a frame or a rule would sway it
        angle = page_angle(Ink.from_mask(mask, paper).mask) if mask.any() else 0.0
    if abs(angle) < min_skew:
        angle = 0.0
    if angle:
        gray, rotation = rotate_page(gray, angle, paper)
        mask, paper = binarise(gray)
    else:
        rotation = Rotation(np.array([[1.0, 0, 0], [0, 1.0, 0]]), 0.0, page_size)
    ink = Ink.from_mask(mask, paper)
    lines = find_lines(ink, gray.shape[1])
    line_labels = paint_lines(lines, ink)
    for k, line in enumerate(lines):
        line.core = line_core(line_labels, k, line.box)
    return Layout(gray, rotation, lines, line_labels, paper, ink.size, page_size)


def find_lines(ink: Ink, page_width: int) -> list[LineRegion]:
    """The page's lines in reading order, specks dropped."""
    if not len(ink):
        return []
    ids = np.arange(len(ink))
    gutter = gutter_width(ink.size, page_width, band_height(ids, ink.boxes, ink.size))
    blocks = reading_blocks(ids, ink.boxes, ink.size, gutter)
    lines = [line for block in blocks for line in split_block(block, ink)]
    return [line for line in lines if line.area >= MIN_LINE_AREA * ink.size ** 2]


def line_core(line_labels: np.ndarray, k: int, box: tuple[int, int, int, int]) -> float:
    """The centre row of line ``k``'s core: the rows holding at least half as much of its ink
    as its densest row (for print, the x-height band between the baseline and the mean line)."""
    x0, y0, x1, y1 = box
    rows = (line_labels[y0:y1, x0:x1] == k + 1).sum(axis=1)
    if not rows.any():
        return (y0 + y1) / 2
    core = np.flatnonzero(rows >= 0.5 * rows.max())
    return y0 + (core[0] + core[-1] + 1) / 2


def paint_lines(lines: list[LineRegion], ink: Ink) -> np.ndarray:
    """Line index + 1 at every pixel of each line's pieces, 0 elsewhere."""
    out = np.zeros(ink.labels.shape, dtype=np.int32)
    for k, line in enumerate(lines):
        for i, r0, r1 in line.pieces:
            x0, _, x1, _ = ink.boxes[i]
            view = out[r0:r1, x0:x1]
            view[ink.labels[r0:r1, x0:x1] == i + 1] = k + 1
    return out
