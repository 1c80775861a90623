"""Reading whole pages: layout, then each line cut and read by a line model, then the result.

``read_page(image, recognizer)`` and ``read_document(path, recognizer)`` are the Python API
(the CLI, the service and ``evaluate`` call them). The recognizer is any object with
``read(images, details=True, batch_size=...)`` returning readings with per-character pixel
ranges, as ``crnn_ocr.Recognizer`` does; ``load_recognizer`` loads one by name (the import of
torch happens there, not when this module is imported).

A page upside down is found by reading: the longest few lines are read as cut and turned half
round; if the turned ones read clearly better, the whole page is read turned.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .io import DEFAULT_DPI, MAX_PIXELS, load_pages
from .layout import HANDWRITTEN, PRINTED, Layout, Margins, segment
from .result import Line, Page, Word

# How each bundled line model wants its lines cut (as its training lines were); other models: PRINTED.
MARGINS = {"printed-en": PRINTED, "handwriting-lines-en": HANDWRITTEN}
ORIENTATION_LINES = 3  # lines read both ways up to tell a page from one upside down
ORIENTATION_MARGIN = 0.03  # mean character confidence the turned lines must gain to turn the page


def load_recognizer(model: str | Path = "printed-en", threads: int = 1, backend: str = "onnx", **kwargs: Any):
    """A ``crnn_ocr.Recognizer`` for a line model (a bundled name or a file), with
    ``page_margins``: how its lines are cut (``MARGINS``). ``backend="onnx"`` (the default
    here) reads lines three to four times faster on a CPU than PyTorch; ``kwargs`` go to
    ``Recognizer.load``."""
    from crnn_ocr import Recognizer  # torch is loaded only when a model is

    recognizer = Recognizer.load(model, threads=threads, backend=backend, **kwargs)
    recognizer.page_margins = margins_for(model)
    return recognizer


def margins_for(model: str | Path) -> Margins:
    """How the line model ``model`` (a bundled name) wants its lines cut; ``PRINTED`` for others."""
    return MARGINS.get(str(model), PRINTED)


def read_page(image: Image.Image | np.ndarray | str | Path, recognizer, margins: Margins | None = None,
              orientation: bool = True, decoder: str | None = None, batch_size: int = 16,
              number: int = 1) -> Page:
    """Read one page: its lines in reading order with words, boxes and confidences.

    Args:
        image: the page: a PIL image, an array or an image file's path (its first page).
        recognizer: a line model (``load_recognizer``).
        margins: how each line is cut (default: the recognizer's ``page_margins``, else
            ``layout.PRINTED``).
        orientation: check whether the page is upside down (a few more lines read).
        decoder: the recognizer's decoder by name (None: its default).
        batch_size: lines read at once.
        number: the page's number in its document (1-based).
    """
    if isinstance(image, (str, Path)):
        image = load_pages(image)[0]
    margins = margins or getattr(recognizer, "page_margins", PRINTED)
    layout = segment(image)
    if orientation and layout.lines and upside_down(layout, recognizer, margins):
        layout = segment(image, angle=layout.rotation.angle + 180)
    angle = (layout.rotation.angle + 180) % 360 - 180
    crops = [layout.crop(k, margins) for k in range(len(layout.lines))]
    readings = recognizer.read([c for c, _ in crops], details=True, decoder=decoder, batch_size=batch_size) \
        if crops else []
    lines = [page_line(layout, k, box, r) for k, ((_, box), r) in enumerate(zip(crops, readings))]
    width, height = layout.page_size
    return Page(width, height, [ln for ln in lines if ln is not None], angle=angle, number=number,
                flags=turn_flags(angle))


def turn_flags(angle: float) -> list[str]:
    """What the output says of a page that was read turned by quarter turns (none for a skew)."""
    quarters = round(angle / 90) % 4
    if quarters == 2:
        return ["upside down: read turned half round"]
    if quarters:
        return [f"on its side: read turned {90 * quarters} degrees counter-clockwise"]
    return []


def read_document(path: str | Path, recognizer, dpi: int = DEFAULT_DPI, max_pixels: int = MAX_PIXELS,
                  **kwargs: Any) -> list[Page]:
    """Read every page of an image file (a multi-page TIFF: each page) or a PDF (rasterised
    at ``dpi``); ``kwargs`` go to ``read_page``. Raises ``io.PageError`` (one line) for a file
    that cannot be read or a page over ``max_pixels``."""
    return [read_page(im, recognizer, number=i + 1, **kwargs)
            for i, im in enumerate(load_pages(path, dpi, max_pixels))]


@lru_cache(maxsize=4)
def cached_recognizer(model: str, threads: int = 1, backend: str = "onnx"):
    """``load_recognizer``, once per model name, threads and backend in this process."""
    return load_recognizer(model, threads=threads, backend=backend)


def read_pages(source: str | Path | Image.Image, model: str = "printed-en", threads: int = 1,
               **kwargs: Any) -> list[Page]:
    """The one call: a file (image, multi-page TIFF, PDF) or a PIL image in, its pages read by
    the line model ``model`` (loaded once per process) out; ``page.to_dict()`` is the JSON.
    ``kwargs`` go to ``read_document`` (``dpi``, ``max_pixels``, ``margins``, ...)."""
    recognizer = cached_recognizer(str(model), threads)
    if isinstance(source, Image.Image):
        return [read_page(source, recognizer, **kwargs)]
    return read_document(source, recognizer, **kwargs)


def upside_down(layout: Layout, recognizer, margins: Margins) -> bool:
    """Whether the page's longest lines read clearly better turned half round: their
    characters' mean confidence is higher and its shortfall from 1 less than half as large."""
    widths = [ln.box[2] - ln.box[0] for ln in layout.lines]
    longest = sorted(range(len(widths)), key=lambda k: -widths[k])[:ORIENTATION_LINES]
    crops = [layout.crop(k, margins)[0] for k in longest]
    both = recognizer.read(crops + [c.rotate(180) for c in crops], details=True, decoder="greedy",
                           batch_size=2 * len(crops))
    upright, turned = (char_confidence(both[: len(crops)]), char_confidence(both[len(crops):]))
    return turned > upright + ORIENTATION_MARGIN and 1 - turned < 0.5 * (1 - upright)


def char_confidence(readings) -> float:
    """The mean confidence of every character of ``readings`` (0 without characters)."""
    values = [c.confidence for r in readings for c in (r.chars or [])]
    return float(np.mean(values)) if values else 0.0


def page_line(layout: Layout, k: int, box: tuple[int, int, int, int], reading) -> Line | None:
    """Line ``k`` as read from the crop at ``box`` (upright-page pixels), its words boxed on
    the page; None when nothing was read."""
    text = reading.text.strip()
    if not text or reading.error:
        return None
    own = layout.line_labels[box[1] : box[3], box[0] : box[2]] == k + 1
    words = [Word(t, c, layout.to_page(offset(b, box))) for t, c, b in word_spans(reading.chars or [], own)]
    line_box = layout.to_page(layout.lines[k].box)
    return Line(text, float(reading.confidence), line_box, words)


def offset(b: tuple[int, int, int, int], box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    return b[0] + box[0], b[1] + box[1], b[2] + box[0], b[3] + box[1]


def word_spans(chars, own: np.ndarray) -> list[tuple[str, float, tuple[int, int, int, int]]]:
    """The words of a line reading (``chars`` with pixel ranges in the crop) with their mean
    character confidence and box in the crop: the line's own ink between the spaces around
    the word (a space's pixel range lies in the gap between two words)."""
    words, current, bounds = [], [], [0]
    for c in chars:
        if c.char == " ":
            if current:
                words.append(current)
                bounds.append((c.x[0] + c.x[1]) // 2)
            current = []
        else:
            current.append(c)
    if current:
        words.append(current)
    bounds = bounds[: len(words)] + [own.shape[1]]
    out = []
    for i, word in enumerate(words):
        x0, x1 = bounds[i], max(bounds[i + 1], bounds[i] + 1)
        out.append(("".join(c.char for c in word), float(np.mean([c.confidence for c in word])),
                    ink_box(own, x0, x1, (word[0].x[0], word[-1].x[1]))))
    return out


def ink_box(own: np.ndarray, x0: int, x1: int, fallback: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box of the ink of ``own`` between columns ``x0`` and ``x1``; without ink there, the
    characters' own range ``fallback`` over the crop's height."""
    part = own[:, x0:x1]
    cols, rows = np.flatnonzero(part.any(axis=0)), np.flatnonzero(part.any(axis=1))
    if not len(cols):
        return fallback[0], 0, max(fallback[1], fallback[0] + 1), own.shape[0]
    return x0 + int(cols[0]), int(rows[0]), x0 + int(cols[-1]) + 1, int(rows[-1]) + 1
