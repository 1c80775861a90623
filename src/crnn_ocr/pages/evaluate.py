"""Scoring pages: page CER and WER against each page's gold text, per page and over a folder.

A folder holds ``NAME.png`` (or ``.jpg``, ``.jpeg``, ``.tif``, ``.tiff``) with ``NAME.txt``,
the page's lines in reading order. Whitespace is collapsed to single spaces on both sides
before scoring, so line breaks are not scored but reading order is. CER is the summed
Levenshtein distance (rapidfuzz) over the summed gold length, WER the same on words; the
folder's figures are over all its pages' characters (a long page weighs more). The worst page
is drawn with its line and word boxes (``draw_boxes``) for a look at what went wrong.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw
from rapidfuzz.distance import Levenshtein

from .io import load_pages
from .result import Page

PAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def collapse(text: str) -> str:
    """``text`` with every run of whitespace (line breaks included) made one space, ends stripped."""
    return " ".join(text.split())


@dataclass
class PageScore:
    """One page's edits against its gold text, and the seconds its reading took."""

    name: str
    char_edits: int
    chars: int
    word_edits: int
    words: int
    seconds: float = 0.0

    @property
    def cer(self) -> float:
        return self.char_edits / max(1, self.chars)

    @property
    def wer(self) -> float:
        return self.word_edits / max(1, self.words)

    def to_dict(self) -> dict:
        return {**asdict(self), "cer": round(self.cer, 5), "wer": round(self.wer, 5)}


def score_page(name: str, gold: str, predicted: str, seconds: float = 0.0) -> PageScore:
    """The edits of ``predicted`` against ``gold``, whitespace collapsed on both sides."""
    g, p = collapse(gold), collapse(predicted)
    return PageScore(name, Levenshtein.distance(g, p), len(g), Levenshtein.distance(g.split(), p.split()),
                     len(g.split()), seconds)


@dataclass
class PagesReport:
    """The scores of a folder of pages: ``pages`` one by one and the totals over them."""

    pages: list[PageScore] = field(default_factory=list)

    @property
    def cer(self) -> float:
        return sum(p.char_edits for p in self.pages) / max(1, sum(p.chars for p in self.pages))

    @property
    def wer(self) -> float:
        return sum(p.word_edits for p in self.pages) / max(1, sum(p.words for p in self.pages))

    @property
    def seconds_per_page(self) -> float:
        return sum(p.seconds for p in self.pages) / max(1, len(self.pages))

    def worst(self) -> PageScore | None:
        return max(self.pages, key=lambda p: p.cer, default=None)

    def to_dict(self) -> dict:
        return {"n": len(self.pages), "cer": round(self.cer, 5), "wer": round(self.wer, 5),
                "seconds_per_page": round(self.seconds_per_page, 3), "pages": [p.to_dict() for p in self.pages]}


def page_files(folder: str | Path) -> list[tuple[Path, Path]]:
    """Every page image of ``folder`` that has a ``.txt`` beside it, by name."""
    folder = Path(folder)
    pairs = []
    for image in sorted(folder.iterdir()):
        if image.suffix.lower() in PAGE_SUFFIXES and image.with_suffix(".txt").is_file():
            pairs.append((image, image.with_suffix(".txt")))
    return pairs


def evaluate_pages(folder: str | Path, read: Callable[[Image.Image], Page], out: str | Path | None = None,
                   limit: int = 0) -> PagesReport:
    """Read every page of ``folder`` with ``read`` (an image -> ``Page``, e.g.
    ``lambda im: read_page(im, recognizer)``) and score it; with ``out``, write
    ``out/report.json`` and ``out/worst.png`` (the worst page with its boxes).

    Raises:
        FileNotFoundError: no page image with its ``.txt`` in ``folder``.
    """
    pairs = page_files(folder)[: limit or None]
    if not pairs:
        raise FileNotFoundError(f"no page images with a .txt beside them in {folder}")
    report, results = PagesReport(), {}
    for image_path, text_path in pairs:
        image = load_pages(image_path)[0]
        start = time.perf_counter()
        page = read(image)
        seconds = time.perf_counter() - start
        report.pages.append(score_page(image_path.stem, text_path.read_text(encoding="utf-8"), page.text(), seconds))
        results[image_path.stem] = (image, page)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(report.to_dict(), indent=1) + "\n", encoding="utf-8")
        worst = report.worst()
        draw_boxes(*results[worst.name]).save(out / "worst.png")
    return report


def draw_boxes(image: Image.Image, page: Page, words: bool = True) -> Image.Image:
    """``image`` in colour with each line's box (red, its number beside it) and each word's (blue)."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    width = max(1, round(max(out.size) / 1000))
    for k, line in enumerate(page.lines):
        if words:
            for word in line.words:
                draw.rectangle(word.box, outline=(40, 90, 255), width=1)
        draw.rectangle(line.box, outline=(230, 20, 20), width=width + 1)
        draw.text((max(0, line.box[0] - 8 * len(str(k + 1)) - 4), line.box[1]), str(k + 1), fill=(230, 20, 20))
    return out
