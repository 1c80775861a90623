"""Turning a page upright: which way its text lines run, its skew angle, and the rotation
that maps boxes found on the upright image back to the page as it was given.

The skew is the angle at which the rows of the ink mask are most uneven (text lines and the
gaps between them line up with the rows): a projection-profile search, coarse then fine, on
the ink points of a reduced copy of the mask turned by each angle (no image is resampled). Whether the text runs across or down the page (a page on its side)
is the same measure on rows against columns. Telling a page from one upside down needs a
reader; ``reader`` does that with the recognizer.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

MAX_SKEW = 10.0  # degrees either way searched for the skew
WORK_WIDTH = 800  # the mask is reduced to about this many columns for the searches


@dataclass(frozen=True)
class Rotation:
    """The rotation that made the upright working image from the page: ``matrix`` (2x3) maps
    page (x, y) to working (x, y); ``angle`` in degrees counter-clockwise (quarter turns
    included); ``size`` the working image's (width, height)."""

    matrix: np.ndarray
    angle: float
    size: tuple[int, int]

    def to_page(self, box: tuple[int, int, int, int], page_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """A box (x0, y0, x1, y1) on the working image as the box around it on the page."""
        if self.angle == 0:
            return box
        inverse = cv2.invertAffineTransform(self.matrix)
        x0, y0, x1, y1 = box
        corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], dtype=np.float64)
        xy = corners @ inverse.T
        w, h = page_size
        return (int(np.clip(np.floor(xy[:, 0].min()), 0, w)), int(np.clip(np.floor(xy[:, 1].min()), 0, h)),
                int(np.clip(np.ceil(xy[:, 0].max()), 0, w)), int(np.clip(np.ceil(xy[:, 1].max()), 0, h)))


def ink_points(mask: np.ndarray, width: int = WORK_WIDTH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ink of ``mask`` at about ``width`` columns (area averaging keeps thin strokes) as
    points: x, y (from the page's centre) and weight."""
    scale = min(1.0, width / mask.shape[1])
    small = mask.astype(np.float32)
    if scale < 1.0:
        small = cv2.resize(small, (max(1, round(mask.shape[1] * scale)), max(1, round(mask.shape[0] * scale))),
                           interpolation=cv2.INTER_AREA)
    ys, xs = np.nonzero(small > 0.05)
    return xs - small.shape[1] / 2, ys - small.shape[0] / 2, small[ys, xs]


def rotated_size(w: int, h: int, angle: float) -> tuple[int, int]:
    c, s = abs(np.cos(np.radians(angle))), abs(np.sin(np.radians(angle)))
    return int(np.ceil(w * c + h * s - 1e-6)), int(np.ceil(w * s + h * c - 1e-6))


def rotation_matrix(w: int, h: int, angle: float) -> tuple[np.ndarray, tuple[int, int]]:
    """The affine matrix (page -> canvas) of a rotation about the centre onto a grown canvas."""
    nw, nh = rotated_size(w, h, angle)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return m, (nw, nh)


def unevenness(points: tuple[np.ndarray, np.ndarray, np.ndarray], angle: float) -> float:
    """How uneven the row sums of the ink points are once turned ``angle`` degrees
    counter-clockwise, inside their inked rows: the squared coefficient of variation. High
    when text lines run along the rows, low when they run across them."""
    xs, ys, ws = points
    a = np.radians(angle)
    rows = ys * np.cos(a) - xs * np.sin(a)
    rows -= rows.min()
    below = np.floor(rows).astype(np.int64)
    share = rows - below  # each point shared between the two rows it falls between
    sums = np.bincount(below, ws * (1 - share), len(below) and below.max() + 2) + \
        np.bincount(below + 1, ws * share, len(below) and below.max() + 2)
    sums = gaussian_filter1d(sums, 1.0)  # the same blur at every angle: rows of a level page are not favoured
    inked = np.flatnonzero(sums > 0.01 * sums.max())
    if len(inked) < 3:
        return 0.0
    sums = sums[inked[0] : inked[-1] + 1]
    return float(sums.var() / max(sums.mean() ** 2, 1e-9))


def skew_angle(mask: np.ndarray, max_angle: float = MAX_SKEW) -> float:
    """The angle (degrees, counter-clockwise) that makes the text lines of ``mask`` level:
    a search over whole degrees, then tenths around the best."""
    points = ink_points(mask)
    if not len(points[0]):
        return 0.0
    def best(angles):
        return max(angles, key=lambda a: unevenness(points, a))
    coarse = best(np.arange(-max_angle, max_angle + 0.01, 1.0))
    return float(best(np.arange(coarse - 1.0, coarse + 1.01, 0.1)))


def runs_down(mask: np.ndarray, margin: float = 1.5) -> bool:
    """Whether the text of ``mask`` runs down the page (a page on its side): its columns are
    ``margin`` times more uneven than its rows, each at its best skew."""
    points = ink_points(mask)
    if not len(points[0]):
        return False
    across = max(unevenness(points, a) for a in range(-8, 9, 2))
    down = max(unevenness(points, 90 + a) for a in range(-8, 9, 2))
    return down > margin * across


def rotate_page(gray: np.ndarray, angle: float, paper: int = 255) -> tuple[np.ndarray, Rotation]:
    """``gray`` rotated ``angle`` degrees counter-clockwise (the new corners filled with
    ``paper``), and the ``Rotation`` to map boxes back. Quarter turns are exact."""
    h, w = gray.shape
    matrix, size = rotation_matrix(w, h, angle)
    if angle % 90 == 0:
        out = np.ascontiguousarray(np.rot90(gray, int(angle // 90) % 4))
        return out, Rotation(matrix, angle, (out.shape[1], out.shape[0]))
    out = cv2.warpAffine(gray, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=int(paper))
    return out, Rotation(matrix, angle, size)
