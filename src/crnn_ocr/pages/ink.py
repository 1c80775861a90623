"""Ink on a page: the grayscale page, its paper level, the binarised ink mask and its
connected components, with the noise and the rules taken out.

``Ink.of(gray)`` is the page's ink as the layout sees it. Otsu's threshold (scikit-image)
splits ink from paper; a page whose two classes are fewer than ``MIN_CONTRAST`` grey levels
apart is blank (its "ink" is paper grain or scanner noise). Components are OpenCV's (8-connected).
``size`` is the median component height: the page's own unit for every distance the layout uses.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIN_CONTRAST = 50  # grey levels between paper and the ink class's mean: less is a blank page
MIN_AREA = 4  # pixels: smaller components are specks


@dataclass
class Ink:
    """A page's ink: ``labels`` (component id per pixel, 0 = paper), ``boxes`` (N, 4) of
    x0, y0, x1, y1 (exclusive ends) and ``areas`` per kept component (its id is its index + 1),
    the ``paper`` grey level and ``size``, the median component height in pixels."""

    labels: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray
    paper: int
    size: float

    @property
    def mask(self) -> np.ndarray:
        return self.labels > 0

    @classmethod
    def of(cls, gray: np.ndarray) -> Ink:
        """The ink of a uint8 grayscale page (dark ink on light paper)."""
        mask, paper = binarise(gray)
        return cls.from_mask(mask, paper)

    @classmethod
    def from_mask(cls, mask: np.ndarray, paper: int = 255) -> Ink:
        """The letters of an ink mask: its components, less the specks (under ``MIN_AREA``
        pixels) and the rules, frames, pictures and page borders (``is_rule_or_picture``)."""
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        boxes = np.stack([stats[1:, 0], stats[1:, 1], stats[1:, 0] + stats[1:, 2], stats[1:, 1] + stats[1:, 3]], 1)
        areas = stats[1:, 4]
        keep = areas >= MIN_AREA
        heights = boxes[keep, 3] - boxes[keep, 1]
        size = float(np.median(heights)) if keep.any() else 0.0
        if keep.any():
            keep &= ~is_rule_or_picture(boxes, size, mask.shape)
        # renumber the kept components 1..K, in the order of their ids
        remap = np.zeros(n, dtype=np.int32)
        remap[1:][keep] = np.arange(1, int(keep.sum()) + 1)
        kept_heights = boxes[keep, 3] - boxes[keep, 1]
        size = float(np.median(kept_heights)) if keep.any() else 0.0
        return cls(remap[labels], boxes[keep].astype(np.int64), areas[keep].astype(np.int64), paper, size)

    def __len__(self) -> int:
        return len(self.boxes)


def is_rule_or_picture(boxes: np.ndarray, size: float, shape: tuple[int, int]) -> np.ndarray:
    """Components that are not letters: rules (long and thin), frames and pictures (far taller
    than the page's letters), or a border along the page's edge."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    rule = (w > 25 * size) & (h < 0.6 * size)
    big = h > 10 * max(size, 1)
    edge = (boxes[:, 0] == 0) | (boxes[:, 1] == 0) | (boxes[:, 2] == shape[1]) | (boxes[:, 3] == shape[0])
    return rule | big | (edge & ((w > 0.5 * shape[1]) | (h > 0.5 * shape[0])))


def paper_level(gray: np.ndarray) -> int:
    """The paper's grey level: the median pixel (most of a page is paper)."""
    return int(np.median(gray[:: max(1, gray.shape[0] // 400), :: max(1, gray.shape[1] // 400)]))


def flatten_illumination(gray: np.ndarray, scale: int = 8) -> np.ndarray:
    """``gray`` divided by its paper (the page's brightest surroundings at each place: a grey
    dilation of an eighth-size copy, which wipes out the strokes), so that a shadow or a
    gradient across the scan leaves the paper white and one threshold fits the whole page."""
    h, w = gray.shape
    if min(h, w) < 8 * scale:
        return gray
    small = cv2.resize(gray, (max(1, w // scale), max(1, h // scale)), interpolation=cv2.INTER_AREA)
    paper = cv2.medianBlur(cv2.dilate(small, np.ones((7, 7), np.uint8)), 5)
    paper = cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    return np.clip(gray.astype(np.float32) * 255.0 / np.maximum(paper, 1.0), 0, 255).astype(np.uint8)


def dark_on_light(gray: np.ndarray) -> np.ndarray:
    """``gray`` as dark ink on light paper: a page of light text on dark paper is inverted."""
    return 255 - gray if paper_level(gray) < 128 else gray


def binarise(gray: np.ndarray) -> tuple[np.ndarray, int]:
    """The ink mask of a grayscale page of dark ink on light paper by Otsu's threshold (on a
    lightly smoothed copy, so that scanner noise does not speckle the paper) and the paper
    level; all False for a page without enough contrast."""
    from skimage.filters import threshold_otsu

    paper = paper_level(gray)
    smooth = cv2.GaussianBlur(gray, (0, 0), 0.8)
    if int(smooth.max()) - int(smooth.min()) < MIN_CONTRAST:
        return np.zeros(gray.shape, dtype=bool), paper
    threshold = threshold_otsu(smooth)
    mask = smooth < threshold
    if not mask.any() or paper - float(smooth[mask].mean()) < MIN_CONTRAST:
        return np.zeros(gray.shape, dtype=bool), paper
    return mask, paper
