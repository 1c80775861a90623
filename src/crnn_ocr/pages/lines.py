"""Text lines in a block of ink: one band of blank-row-separated ink may hold several
handwritten lines that touch (a descender into the ascender of the line below).

The block's row profile (ink pixels per row, smoothed) has a peak at the core of each line;
each valley between two peaks is a cut. A component lies in the line that holds most of its
pixels, so a descender stays with its word; a component that reaches from one line's core to
the next (two words joined by a stroke) is cut at the valley row between them. A short line
tucked against a long one makes too small a peak to be found; its words, lying far from the
core of the line they fell to, are taken out into a line of their own (``split_strays``).
Printed lines are mostly one per band and come out whole.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

from .ink import Ink

# Chosen on the validation pages whose handwritten lines overlap (make_pages.py --gaps -30 5):
MIN_PEAK_SHARE = 0.1  # a line's core: a peak at least this share of the block's highest above its valleys
SMOOTHING = 0.35  # the profile's Gaussian smoothing, in component heights (``Ink.size``)
MIN_PITCH = 1.0  # line cores at least this many component heights apart
STRAY = 0.75  # a component centred this many line pitches from its line's core is a stray ...
MIN_STRAY_AREA = 0.5  # ... and strays with this many size**2 pixels of ink make a line of their own
ONE_LINE_PITCH = 3.0  # the line pitch of a block with one core found, in component heights


@dataclass
class LineRegion:
    """One text line found on the (upright) page: its ink as pieces of components
    ``(component index, first row, end row)`` and the box around them (x0, y0, x1, y1)."""

    pieces: list[tuple[int, int, int]] = field(default_factory=list)
    box: tuple[int, int, int, int] = (0, 0, 0, 0)
    area: int = 0
    core: float = 0.0  # the centre row of its densest rows (``layout.line_core``)


def line_cores(profile: np.ndarray, size: float) -> np.ndarray:
    """The rows of the line cores in a block's row profile (one peak per line)."""
    smooth = gaussian_filter1d(profile.astype(np.float64), max(1.0, SMOOTHING * size))
    if smooth.max() <= 0:
        return np.array([], dtype=np.int64)
    peaks, _ = find_peaks(np.pad(smooth, 1), distance=max(1.0, MIN_PITCH * size),
                          prominence=MIN_PEAK_SHARE * smooth.max())
    return peaks - 1


def valleys(profile: np.ndarray, cores: np.ndarray, size: float) -> list[int]:
    """The cut row between each two neighbouring cores: the emptiest row of the smoothed profile."""
    smooth = gaussian_filter1d(profile.astype(np.float64), max(1.0, 0.25 * size))
    return [int(a + np.argmin(smooth[a:b])) for a, b in zip(cores[:-1], cores[1:])]


def split_block(ids: np.ndarray, ink: Ink) -> list[LineRegion]:
    """The lines of a block (component indices ``ids``), top to bottom."""
    boxes, size = ink.boxes, ink.size
    x0, y0, x1, y1 = boxes[ids, 0].min(), boxes[ids, 1].min(), boxes[ids, 2].max(), boxes[ids, 3].max()
    whole = LineRegion([(int(i), int(boxes[i, 1]), int(boxes[i, 3])) for i in ids], (int(x0), int(y0), int(x1), int(y1)),
                       int(ink.areas[ids].sum()))
    if y1 - y0 < 2.2 * size:
        return [whole]
    region = ink.labels[y0:y1, x0:x1]
    inside = np.isin(region, ids + 1)
    cores = line_cores(inside.sum(axis=1), size)
    if len(cores) <= 1:
        core = y0 + (int(cores[0]) if len(cores) else (y1 - y0) // 2)
        return [with_box(line, ink) for line in split_strays([whole], [core], ink, ONE_LINE_PITCH * size)]
    cuts = [y0 + v for v in valleys(inside.sum(axis=1), cores, size)]
    edges = [int(y0)] + cuts + [int(y1)]
    cores = cores + y0
    lines = [LineRegion() for _ in cores]
    for i in ids:
        rows = component_rows(ink, int(i))
        counts = np.histogram(rows, bins=edges)[0]
        spans = (cores >= boxes[i, 1]) & (cores < boxes[i, 3])
        if spans.sum() >= 2:  # joins two line cores: cut at the valleys
            for k in np.flatnonzero(counts):
                lines[k].pieces.append((int(i), max(edges[k], int(boxes[i, 1])), min(edges[k + 1], int(boxes[i, 3]))))
                lines[k].area += int(counts[k])
        else:
            k = int(np.argmax(counts))
            lines[k].pieces.append((int(i), int(boxes[i, 1]), int(boxes[i, 3])))
            lines[k].area += int(counts.sum())
    found = [(line, core) for line, core in zip(lines, cores) if line.pieces]
    pitch = float(np.median(np.diff(cores)))
    return [with_box(line, ink) for line in split_strays(*map(list, zip(*found)), ink, pitch)]


def split_strays(lines: list[LineRegion], cores: list[int], ink: Ink, pitch: float) -> list[LineRegion]:
    """Each line with the whole components that lie more than ``STRAY`` line pitches above or
    below its core taken out into a line of their own, when they hold enough ink for one: a
    short line that overlaps a long one (a last word under a full line) makes too small a
    peak in the profile to be found as a core of its own. ``pitch``: the block's line pitch."""
    reach = STRAY * pitch
    out = []
    for line, core in zip(lines, cores):
        parts = {"above": LineRegion(), "kept": LineRegion(), "below": LineRegion()}
        for i, r0, r1 in line.pieces:
            top, bottom = ink.boxes[i, 1], ink.boxes[i, 3]
            whole, centre = r0 == top and r1 == bottom, (top + bottom) / 2
            side = "below" if whole and centre > core + reach else "above" if whole and centre < core - reach else "kept"
            parts[side].pieces.append((i, r0, r1))
            parts[side].area += int(ink.areas[i]) if side != "kept" else 0
        kept = parts["kept"]
        kept.area = line.area - parts["above"].area - parts["below"].area
        for side in ("above", "below"):
            if parts[side].pieces and parts[side].area < MIN_STRAY_AREA * ink.size ** 2:
                kept.pieces += parts[side].pieces
                kept.area += parts[side].area
                parts[side] = LineRegion()
        out += [part for part in parts.values() if part.pieces]
    return out


def component_rows(ink: Ink, i: int) -> np.ndarray:
    """The row of every pixel of component ``i``."""
    x0, y0, x1, y1 = ink.boxes[i]
    return np.nonzero(ink.labels[y0:y1, x0:x1] == i + 1)[0] + y0


def with_box(line: LineRegion, ink: Ink) -> LineRegion:
    """``line`` with the box around its pieces (a cut component: the rows of its piece)."""
    xs0, ys0, xs1, ys1 = [], [], [], []
    for i, r0, r1 in line.pieces:
        x0, y0, x1, y1 = ink.boxes[i]
        if r0 > y0 or r1 < y1:
            cols = np.nonzero((ink.labels[r0:r1, x0:x1] == i + 1).any(axis=0))[0]
            if not len(cols):
                continue
            x0, x1 = x0 + cols[0], x0 + cols[-1] + 1
        xs0.append(x0), ys0.append(r0), xs1.append(x1), ys1.append(r1)
    line.box = (int(min(xs0)), int(min(ys0)), int(max(xs1)), int(max(ys1))) if xs0 else (0, 0, 0, 0)
    return line
