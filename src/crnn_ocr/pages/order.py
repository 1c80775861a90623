"""Reading order: a page's ink split into blocks, read top to bottom, and the blocks that
stand side by side split into columns, read left to right.

The page is cut at every row of blank paper into bands (a band is a text line, or lines that
touch). Consecutive bands that leave the same vertical strip of paper blank — a gutter at
least ``gutter`` pixels wide — form a group; a group of two or more bands is split at its
gutters into columns, and each column is ordered the same way in turn. A heading across the
columns crosses the gutter, so it stays a band of its own, read before them. Word gaps in a
single line never make columns: a gutter must hold across three bands or more, and be wider
than a line is high.
"""
from __future__ import annotations

import numpy as np

Interval = tuple[int, int]


MIN_COLUMN_BANDS = 3  # a gutter must keep this many bands apart (two lines' word gaps can line up)


def gutter_width(size: float, page_width: int, line_height: float = 0.0) -> float:
    """The narrowest blank strip taken for a gutter between columns: wider than word gaps,
    which in handwriting reach most of a line's height."""
    return max(2.5 * size, 0.03 * page_width, 1.2 * line_height)


def band_height(ids: np.ndarray, boxes: np.ndarray, size: float) -> float:
    """The median height of the bands of ``ids`` (a line's height, where lines do not touch)."""
    heights = [boxes[b, 3].max() - boxes[b, 1].min() for b in merge_small_bands(bands(ids, boxes), boxes, size)]
    return float(np.median(heights)) if heights else 0.0


def free_intervals(starts: np.ndarray, ends: np.ndarray, min_gap: float) -> list[Interval]:
    """The gaps at least ``min_gap`` wide between the union of intervals [start, end)
    (gaps inside the union's extent only)."""
    if len(starts) == 0:
        return []
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], np.maximum.accumulate(ends[order])
    gaps = []
    for i in range(1, len(s)):
        if s[i] - e[i - 1] >= min_gap:
            gaps.append((int(e[i - 1]), int(s[i])))
    return gaps


def bands(ids: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
    """``ids`` (component indices) grouped into bands split at blank rows, top to bottom."""
    order = ids[np.argsort(boxes[ids, 1], kind="stable")]
    out, current, bottom = [], [], -1
    for i in order:
        if current and boxes[i, 1] >= bottom:
            out.append(np.array(current))
            current = []
        current.append(i)
        bottom = max(bottom, boxes[i, 3]) if len(current) > 1 else boxes[i, 3]
    if current:
        out.append(np.array(current))
    return out


def merge_small_bands(band_list: list[np.ndarray], boxes: np.ndarray, size: float) -> list[np.ndarray]:
    """Bands less than ``0.6 * size`` high (the dots over a line of short letters, a row of
    accents) joined to the nearer of their neighbours."""
    out = list(band_list)
    i = 0
    while len(out) > 1 and i < len(out):
        top, bottom = boxes[out[i], 1].min(), boxes[out[i], 3].max()
        if bottom - top >= 0.6 * size:
            i += 1
            continue
        above = top - boxes[out[i - 1], 3].max() if i > 0 else np.inf
        below = boxes[out[i + 1], 1].min() - bottom if i + 1 < len(out) else np.inf
        j = i - 1 if above < below else i + 1
        out[min(i, j)] = np.concatenate([out[min(i, j)], out[max(i, j)]])
        del out[max(i, j)]
        i = min(i, j)
    return out


def still_free(gutters: list[Interval], ids: np.ndarray, boxes: np.ndarray, min_gap: float) -> list[Interval]:
    """The parts of ``gutters`` at least ``min_gap`` wide that the components ``ids`` leave blank."""
    out = []
    for a, b in gutters:
        inside = ids[(boxes[ids, 2] > a) & (boxes[ids, 0] < b)]
        inked_s, inked_e = np.maximum(boxes[inside, 0], a), np.minimum(boxes[inside, 2], b)
        out.extend(blank_pieces(a, b, inked_s, inked_e, min_gap))
    return out


def blank_pieces(a: int, b: int, inked_s: np.ndarray, inked_e: np.ndarray, min_gap: float) -> list[Interval]:
    """The pieces of [a, b) at least ``min_gap`` wide that no inked interval covers."""
    pieces, at = [], a
    for s, e in sorted(zip(inked_s.tolist(), inked_e.tolist())):
        if s - at >= min_gap:
            pieces.append((at, s))
        at = max(at, e)
    if b - at >= min_gap:
        pieces.append((at, b))
    return pieces


def group_bands(band_list: list[np.ndarray], boxes: np.ndarray, min_gap: float) -> list[tuple[list, list]]:
    """Consecutive bands that keep a common gutter blank, with their gutters (empty for a band
    that stands alone)."""
    groups: list[tuple[list, list]] = []
    for band in band_list:
        if groups and groups[-1][1]:
            kept = still_free(groups[-1][1], band, boxes, min_gap)
            if kept:
                groups[-1][0].append(band)
                groups[-1] = (groups[-1][0], kept)
                continue
        groups.append(([band], free_intervals(boxes[band, 0], boxes[band, 2], min_gap)))
    return groups


def columns(ids: np.ndarray, boxes: np.ndarray, gutters: list[Interval]) -> list[np.ndarray]:
    """``ids`` split at the gutters, left to right (each component by its centre)."""
    centres = (boxes[ids, 0] + boxes[ids, 2]) / 2
    cuts = sorted((a + b) / 2 for a, b in gutters)
    which = np.searchsorted(cuts, centres)
    return [ids[which == k] for k in range(len(cuts) + 1) if (which == k).any()]


def reading_blocks(ids: np.ndarray, boxes: np.ndarray, size: float, min_gap: float,
                   depth: int = 0) -> list[np.ndarray]:
    """The components ``ids`` as blocks in reading order: each block a band of one or a few
    touching lines; columns of a group left to right, each read top to bottom."""
    out: list[np.ndarray] = []
    for group, gutters in group_bands(merge_small_bands(bands(ids, boxes), boxes, size), boxes, min_gap):
        if len(group) >= MIN_COLUMN_BANDS and gutters and depth < 4:
            for column in columns(np.concatenate(group), boxes, gutters):
                out.extend(reading_blocks(column, boxes, size, min_gap, depth + 1))
        else:
            out.extend(group)
    return out
