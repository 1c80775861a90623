"""IAM text lines rebuilt from the word crops, written as a ``labels.tsv`` folder.

``words.txt`` gives every word's box on its form (x y w h), so pasting the word images of a
line onto a white canvas at those coordinates restores the line as it was written. The
conventions, fixed so that results on lines built here are comparable:

- the line id is the word id without its last field (``a01-000u-00-03`` -> ``a01-000u-00``);
- the label is the line's words in word-index order joined by single spaces, each word's
  ``words.txt`` transcription as it is (punctuation included);
- pixels lighter than the word's graylevel field are background (white, 255); where two word
  boxes overlap, the darker pixel wins;
- the canvas is the union of the line's word boxes plus a ``MARGIN`` of 12 pixels each side;
- a line is dropped when a word id is missing (its indices among the words ``words.txt``
  lists for it are not 0, 1, 2, ...), when a word is not marked ``ok``, or when a word image
  is missing. ``keep_incomplete`` (training only, off by default) keeps such lines with the
  words that are there; the gap is read as one space like any other word break.

A line belongs to a split when its words' ids are in the split's id lists; a line with only
some of its words in the lists is dropped. This module writes line images; reading them is
``layouts.load_tsv``'s job (``labels.tsv``: ``relative/path<TAB>text``).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from crnn_ocr.data.items import DataError, Skipped
from crnn_ocr.data.layouts import read_ids

MARGIN = 12  # white pixels around the line's words, each side
MAX_LINE_PIXELS = 2**25  # a line canvas beyond this (about four IAM form pages) comes from a damaged box


class LineTooLarge(ValueError):
    """A line whose word boxes (and margin) span more than ``MAX_LINE_PIXELS``."""


@dataclass(frozen=True)
class Word:
    """One ``words.txt`` entry: id, segmentation status, graylevel, box on the form, text."""

    id: str
    ok: bool
    graylevel: int
    x: int
    y: int
    w: int
    h: int
    text: str

    @property
    def line_id(self) -> str:
        return self.id.rsplit("-", 1)[0]

    @property
    def index(self) -> int:
        return int(self.id.rsplit("-", 1)[1])


@dataclass
class LineReport:
    """What a build did: lines written (``incomplete`` of them kept with a gap), lines dropped
    by reason, and the widths and label lengths of the written lines."""

    written: int = 0
    incomplete: int = 0
    dropped: Skipped = field(default_factory=Skipped)
    widths_at_48: list[float] = field(default_factory=list)
    label_lengths: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"{self.written} lines written" + (f" ({self.incomplete} with a gap)" if self.incomplete else "")
        if self.written:
            text += (f" (width at height 48: mean {np.mean(self.widths_at_48):.0f}, "
                     f"max {max(self.widths_at_48):.0f} px; label length: mean {np.mean(self.label_lengths):.1f})")
        dropped = sum(self.dropped.values())
        return text + (f"; {dropped} dropped: {self.dropped}" if dropped else "; none dropped")


def parse_word(line: str) -> Word | None:
    """A ``words.txt`` line as a ``Word``; ``None`` for a comment, a blank or a malformed line.
    The transcription is every field from index 8 on, joined by one space."""
    if line.startswith("#") or not line.strip():
        return None
    parts = line.split()
    if len(parts) < 9 or parts[1] not in ("ok", "err") or parts[0].count("-") != 3:
        return None
    try:
        graylevel, x, y, w, h = (int(v) for v in parts[2:7])
        int(parts[0].rsplit("-", 1)[1])
    except ValueError:
        return None
    return Word(parts[0], parts[1] == "ok", graylevel, x, y, w, h, " ".join(parts[8:]))


def read_lines(words_txt: str | Path, skipped: Skipped | None = None) -> dict[str, list[Word]]:
    """Every line of ``words_txt``: line id -> its words in word-index order."""
    skipped = Skipped() if skipped is None else skipped
    lines: dict[str, list[Word]] = {}
    with open(words_txt, encoding="utf-8", errors="replace") as f:
        for raw in f:
            word = parse_word(raw)
            if word is None:
                if raw.strip() and not raw.startswith("#"):
                    skipped["malformed words.txt line"] += 1
                continue
            lines.setdefault(word.line_id, []).append(word)
    for words in lines.values():
        words.sort(key=lambda wd: wd.index)
    return lines


def word_image_path(root: Path, word_id: str) -> Path:
    """``ROOT/words/a01/a01-000u/a01-000u-00-00.png``"""
    a, b = word_id.split("-")[:2]
    return root / "words" / a / f"{a}-{b}" / f"{word_id}.png"


def line_problem(words: list[Word], root: Path) -> str | None:
    """Why a line breaks the conventions (the first reason found), or ``None``."""
    if any(not wd.ok for wd in words):
        return "word not marked ok"
    if [wd.index for wd in words] != list(range(len(words))):
        return "missing word id"
    if any(not word_image_path(root, wd.id).is_file() for wd in words):
        return "word image missing"
    return None


def compose_line(words: list[Word], images: list[Image.Image], margin: int = MARGIN) -> Image.Image:
    """The words' images pasted on a white canvas at their ``words.txt`` boxes (grayscale).

    Pixels lighter than a word's graylevel become white; where boxes overlap the darker pixel
    wins. An image whose size differs from its box is pasted at the box's top left corner.
    """
    left = min(wd.x for wd in words) - margin
    top = min(wd.y for wd in words) - margin
    right = max(wd.x + im.width for wd, im in zip(words, images)) + margin
    bottom = max(wd.y + im.height for wd, im in zip(words, images)) + margin
    if (right - left) * (bottom - top) > MAX_LINE_PIXELS:
        raise LineTooLarge(f"{right - left}x{bottom - top} pixels")
    canvas = np.full((bottom - top, right - left), 255, dtype=np.uint8)
    for wd, im in zip(words, images):
        pixels = np.asarray(im.convert("L")).copy()
        pixels[pixels > wd.graylevel] = 255
        x, y = wd.x - left, wd.y - top
        region = canvas[y : y + pixels.shape[0], x : x + pixels.shape[1]]
        np.minimum(region, pixels, out=region)
    return Image.fromarray(canvas, mode="L")


def line_label(words: list[Word]) -> str:
    """The words' transcriptions in word-index order, joined by single spaces."""
    return " ".join(wd.text for wd in words)


def select_lines(lines: dict[str, list[Word]], ids: set[str], dropped: Skipped) -> dict[str, list[Word]]:
    """The lines whose words are all in ``ids``; lines with only some of them are dropped."""
    chosen = {}
    for line_id, words in lines.items():
        inside = sum(wd.id in ids for wd in words)
        if inside == len(words):
            chosen[line_id] = words
        elif inside:
            dropped["only some of its words in the id lists"] += 1
    return chosen


def check_inputs(root: Path, id_files: list[str], out: Path) -> None:
    """``build_iam_lines``' arguments, each refused with a one-line ``DataError``."""
    if not root.is_dir():
        raise DataError(f"IAM root not found: {root}")
    if not (root / "words.txt").is_file():
        raise DataError(f"no words.txt in {root}")
    if not (root / "words").is_dir():
        raise DataError(f"no words/ folder in {root}")
    if not id_files:
        raise DataError("give at least one word-id list (--ids FILE)")
    if out.exists() and not out.is_dir():
        raise DataError(f"output path is a file: {out}")


def build_iam_lines(root: str | Path, id_files: list[str], out: str | Path, margin: int = MARGIN,
                    keep_incomplete: bool = False, progress: bool = True) -> LineReport:
    """Rebuild the lines of the word ids in ``id_files`` from the IAM words root ``root`` and
    write ``out/labels.tsv`` and ``out/lines/<line id>.png``.

    Args:
        root: folder with ``words.txt`` and ``words/``.
        id_files: word-id lists (one id per line); a line is built when all its words are in them.
        out: output folder (created; ``labels.tsv`` and images of the same names are replaced).
        margin: white pixels around the words.
        keep_incomplete: keep lines with a missing word id, a word not marked ``ok`` or a
            missing image, with the words that are usable (for training data only).
        progress: show a progress bar on stderr.

    Raises:
        DataError: missing root, ``words.txt`` or ``words/``, unreadable id list, no line found,
            an output path that is a file.
    """
    root, out = Path(root), Path(out)
    if margin < 0:
        raise DataError(f"the margin must be 0 or more pixels, not {margin}")
    check_inputs(root, id_files, out)
    ids = read_ids(id_files)
    report = LineReport()
    lines = select_lines(read_lines(root / "words.txt", report.dropped), ids, report.dropped)
    if not lines:
        raise DataError(f"no line of {root / 'words.txt'} has its words in {', '.join(id_files)}")
    (out / "lines").mkdir(parents=True, exist_ok=True)
    rows = []
    for line_id in tqdm(sorted(lines), desc="lines", unit="line", disable=not progress, file=sys.stderr):
        words = lines[line_id]
        problem = line_problem(words, root)
        gap = bool(problem) and keep_incomplete
        if gap:
            words = [wd for wd in words if wd.ok and word_image_path(root, wd.id).is_file()]
            problem = None if words else "no usable word"
        if problem:
            report.dropped[problem] += 1
            continue
        try:
            images = [Image.open(word_image_path(root, wd.id)) for wd in words]
            image = compose_line(words, images, margin)
        except (UnidentifiedImageError, OSError):
            report.dropped["word image unreadable"] += 1
            continue
        except LineTooLarge:
            report.dropped["word boxes too far apart (words.txt damaged?)"] += 1
            continue
        rel = f"lines/{line_id}.png"
        image.save(out / rel)
        rows.append(f"{rel}\t{line_label(words)}\n")
        report.written += 1
        report.incomplete += gap
        report.widths_at_48.append(image.width * 48 / image.height)
        report.label_lengths.append(len(line_label(words)))
    (out / "labels.tsv").write_text("".join(rows), encoding="utf-8")
    return report
