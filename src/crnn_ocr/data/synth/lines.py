"""Synthetic printed text lines, drawn as documents make them, for a printed-text model.

``SyntheticLines(n, seed)`` is ``n`` labelled lines rendered only when asked for (the
trainer renders them on the fly, ``DataConfig.path = "synth:lines"``), the same for the same
seed on a machine with the same fonts. Each line is natural text (``random_line``: words as
often as running text has them, numbers, dates, prices, e-mail addresses, URLs, code-like
names, typographic quotes and dashes) in one printed family of ``fonts`` (every weight and
style; a few words now and then in the family's bold or italic), and looks like a line cut
from a scan (``render_line``): 8-16 pt at 150-300 dpi, cropped tightly or loosely with bits
of the lines above and below, ink and paper of varied greys, slight rotation, blur, noise,
JPEG, now and then binarised. Training lines are drawn in the training families and
validation lines (``fonts="held-out"``) in the held-out ones (``fonts.HELD_OUT``).
``write_lines_folder`` writes lines as a ``labels.tsv`` folder (``crnn-ocr prepare synth-lines``).

Finding fonts is ``fonts``; a line's text is ``line_text``'s.
"""
from __future__ import annotations

import io
import random
import sys
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from tqdm import tqdm

from crnn_ocr.data.items import DataError, Item
from crnn_ocr.data.synth.fonts import PRINTABLE, TYPOGRAPHIC, Face, font_split
from crnn_ocr.data.synth.line_text import MAX_CHARS, plain, random_line  # noqa: F401  (MAX_CHARS: the callers')

FONT_CHOICES = ("train", "held-out")
NAME_PREFIX = "synth-lines/"  # the display names of rendered lines (``Item.path``)
VAL_SEED = 1  # the held-out validation lines of ``synth:lines`` (and of ``prepare synth-lines --seed 1``)
# Word counts of English text (the handwriting model's lexicon, shipped with the package).
@cache
def _face(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _runs(text: str, faces: Sequence[Face], rng: random.Random) -> list[tuple[str, Face]]:
    """The line in pieces, each with its face: the family's regular face, and in one line of
    four a run of one to three words in one of its other faces (bold, italic, another weight)."""
    regular = [f for f in faces if not f.italic and 350 <= f.weight <= 500] or \
        [f for f in faces if not f.italic and not f.bold] or list(faces)
    main = rng.choice(regular) if rng.random() < 0.8 else rng.choice(faces)
    others = [f for f in faces if f != main]
    words_ = text.split(" ")
    if not others or len(words_) < 2 or rng.random() > 0.25:
        return [(text, main)]
    start = rng.randrange(len(words_))
    stop = min(len(words_), start + rng.randint(1, 3))
    other = rng.choice(others)
    pieces = [(" ".join(words_[:start]) + " " if start else "", main), (" ".join(words_[start:stop]), other),
              (" " + " ".join(words_[stop:]) if stop < len(words_) else "", main)]
    return [(t, f) for t, f in pieces if t]


def _draw_text(draw: ImageDraw.ImageDraw, x: float, baseline: float, runs, size: int, ink: int) -> float:
    """Draw ``runs`` from ``x`` on a baseline; returns where the text ends."""
    for text, face in runs:
        font = _face(face.path, size)
        draw.text((x, baseline), text, font=font, fill=ink, anchor="ls")
        x += font.getlength(text)
    return x


def render_line(text: str, faces: Sequence[Face], rng: random.Random, context: tuple[str, str] = ("", "")) -> Image.Image:
    """``text`` in a face of the family ``faces`` as a grayscale (``L``) image, as a line
    segmenter cuts it from a scan: the type size of 8-16 pt at 150-300 dpi in pixels, a tight
    or a loose crop (``context``: the lines above and below, of which bits show at a loose
    crop's edges), then ink and paper, rotation, blur, noise, JPEG or binarisation, each
    drawn from ``rng``."""
    size = max(10, round(rng.uniform(8, 16) * rng.uniform(150, 300) / 72))
    runs = _runs(text, faces, rng)
    font = _face(runs[0][1].path, size)
    ascent, descent = font.getmetrics()
    width = sum(_face(f.path, size).getlength(t) for t, f in runs)
    leading = size * rng.uniform(1.1, 1.6)
    margin = round(size * rng.uniform(0.2, 2.0))
    canvas_w, canvas_h = int(width + 2 * margin + 4), int(3 * leading + ascent + descent + 4)
    paper = rng.randint(170, 255) if rng.random() < 0.8 else 255
    ink = rng.randint(0, min(110, paper - 70))
    im = Image.new("L", (canvas_w, canvas_h), paper)
    draw = ImageDraw.Draw(im)
    baseline = leading + ascent + 2
    end = _draw_text(draw, margin, baseline, runs, size, ink)
    for line, offset in zip(context, (-leading, leading)):
        if line:
            _draw_text(draw, margin + rng.uniform(-0.5, 0.5) * size, baseline + offset, [(line, runs[0][1])], size, ink)
    # The crop: tight to the ink, the font's line box, or loose into the neighbours' space.
    ink_box = Image.new("L", im.size, 0)
    _draw_text(ImageDraw.Draw(ink_box), margin, baseline, runs, size, 255)
    left, top, right, bottom = ink_box.getbbox() or (margin, int(baseline - ascent), int(end), int(baseline + descent))
    kind = rng.random()
    if kind < 0.35:
        pad = [rng.uniform(0, 0.15) * size for _ in range(4)]
        box = (left - pad[0], top - pad[1], right + pad[2], bottom + pad[3])
    else:
        loose = 0.05 if kind < 0.7 else 0.45
        box = (left - rng.uniform(0, 1.0) * size, baseline - ascent - rng.uniform(-0.05, loose) * size,
               right + rng.uniform(0, 1.0) * size, baseline + descent + rng.uniform(-0.05, loose) * size)
    box = (max(0, int(box[0])), max(0, int(min(box[1], top))), min(canvas_w, int(box[2]) + 1),
           min(canvas_h, int(max(box[3], bottom)) + 1))
    im = im.crop(box)
    return degrade(im, paper, size, rng)


def degrade(im: Image.Image, paper: int, size: int, rng: random.Random) -> Image.Image:
    """A scan's faults on a rendered line: uneven light, slight rotation, ink spread, blur,
    lost resolution, noise, then binarisation or JPEG, each now and then."""
    if rng.random() < 0.2:  # light falling unevenly across the page
        ramp = np.linspace(0, rng.uniform(-40, 40), im.width)[None, :]
        im = Image.fromarray(np.clip(np.asarray(im, dtype=np.float32) + ramp, 0, 255).astype(np.uint8), mode="L")
    if rng.random() < 0.3:
        im = im.rotate(rng.uniform(-1.0, 1.0), resample=Image.Resampling.BILINEAR, expand=True, fillcolor=paper)
    if size >= 25 and rng.random() < 0.1:
        im = im.filter(ImageFilter.MinFilter(3) if rng.random() < 0.7 else ImageFilter.MaxFilter(3))
    if rng.random() < 0.35:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2) * size / 30))
    if rng.random() < 0.15:  # scanned at a lower resolution
        scale = rng.uniform(0.4, 0.8)
        small = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.BILINEAR)
        im = small.resize(im.size, Image.Resampling.BILINEAR)
    if rng.random() < 0.1:  # a binarised scan: black on white, no grey noise left
        cut = paper - (paper - min(im.getextrema()[0], paper - 1)) * rng.uniform(0.35, 0.65)
        return im.point(lambda v: 0 if v < cut else 255)
    if rng.random() < 0.35:
        rs = np.random.default_rng(rng.getrandbits(32))
        noisy = np.asarray(im, dtype=np.float32) + rs.normal(0, rng.uniform(3, 15), (im.height, im.width))
        if rng.random() < 0.2:  # dust and speckles
            spots = rs.random((im.height, im.width)) < rng.uniform(0.001, 0.006)
            noisy[spots] = rs.choice([0, 255], size=int(spots.sum()))
        im = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), mode="L")
    if rng.random() < 0.25:
        out = io.BytesIO()
        im.save(out, format="JPEG", quality=rng.randint(15, 75))
        im = Image.open(io.BytesIO(out.getvalue())).convert("L")
    return im


def _families(which: str, folder: str | Path | None = None) -> dict[str, tuple[Face, ...]]:
    if which not in FONT_CHOICES:
        raise ValueError(f"fonts must be one of {', '.join(FONT_CHOICES)}, not {which!r}")
    split = font_split(folder)
    families = split.train if which == "train" else split.held_out
    if not families:
        raise DataError(f"no {which} printed font family installed; on Debian: scripts/install_fonts.sh")
    return families


class SyntheticLines(Sequence):
    """``n`` printed lines, made on demand: a sequence of ``Item`` that holds only the texts
    (and each one's family), never the images; ``render(i)`` draws image ``i`` from its own
    seeded generator, the same in whichever loader process asks for it.

    Args:
        n: number of lines.
        seed: seeds every random choice (text, family, face, size, crop, faults).
        fonts: ``"train"`` (the training families) or ``"held-out"`` (``fonts.HELD_OUT``).
        cover_charset: let the first lines hold every printable ASCII and typographic
            character in a shuffled order, so that even a small set has each (a model's
            charset is read from its training texts).
        folder: where the fonts are (default: the system's font folders).

    Raises:
        ValueError: ``n`` below 1 or an unknown ``fonts``.
        DataError: no family of the chosen kind is installed.
    """

    def __init__(self, n: int, seed: int, fonts: str = "train", cover_charset: bool = True,
                 folder: str | Path | None = None):
        if n < 1:
            raise ValueError(f"the number of lines must be at least 1, not {n}")
        families = _families(fonts, folder)
        self.seed, self.families = seed, list(families.values())
        self.names = [name.replace(" ", "") for name in families]
        rng = random.Random(seed)
        first: list[str] = []
        if cover_charset:
            alphabet = list(PRINTABLE.strip() + TYPOGRAPHIC)
            rng.shuffle(alphabet)
            first = [" ".join("".join(alphabet[j : j + 6]) for j in range(i, min(i + 24, len(alphabet)), 6))
                     for i in range(0, len(alphabet), 24)]
        full = [k for k, faces in enumerate(self.families) if all(set(TYPOGRAPHIC) <= f.typographic for f in faces)]
        self.texts: list[str] = []
        self._family: list[int] = []
        self._context: list[tuple[str, str]] = []
        for i in range(n):
            k = rng.choice(full) if i < len(first) and full else rng.randrange(len(self.families))
            chars = frozenset.intersection(*(f.typographic for f in self.families[k]))
            text = first[i] if i < len(first) else random_line(rng)
            self.texts.append(plain(text, chars))
            self._family.append(k)
            self._context.append((plain(random_line(rng), chars), plain(random_line(rng), chars)))

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> Item:
        """Item ``i`` without its image (cheap: for charsets, label checks and counts)."""
        return Item(self.texts[i], f"{NAME_PREFIX}{i:06d}-{self.names[self._family[i]]}.png")

    def render(self, i: int) -> Image.Image:
        """Image ``i``, the same on every call."""
        return render_line(self.texts[i], self.families[self._family[i]], random.Random(self.seed * 1_000_003 + i),
                           self._context[i])


def iter_synthetic_lines(n: int, seed: int, fonts: str = "train", cover_charset: bool = True) -> Iterator[Item]:
    """``n`` rendered lines one at a time (``Item`` with an in-memory image, its path
    ``synth-lines/<index>-<family>.png``), the same for the same seed; the arguments are
    ``SyntheticLines``'s."""
    lines = SyntheticLines(n, seed, fonts, cover_charset)
    return (Item(it.text, it.path, lines.render(i)) for i, it in enumerate(lines))


def synthetic_lines(n: int, seed: int, fonts: str = "train", cover_charset: bool = True) -> list[Item]:
    """``iter_synthetic_lines`` as a list (hold only a few thousand lines in memory this way)."""
    return list(iter_synthetic_lines(n, seed, fonts, cover_charset))


def write_lines_folder(items, n: int, out: str | Path, progress: bool = True) -> int:
    """Write ``items`` (an iterable of ``n`` in-memory items) as ``out/labels.tsv`` +
    ``out/images/<name>.png``; returns the number written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output path is a file: {out}")
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for item in tqdm(items, total=n, desc="lines", unit="line", disable=not progress, file=sys.stderr):
        rel = f"images/{Path(item.path).name}"
        item.image.save(out / rel)
        rows.append(f"{rel}\t{item.text}\n")
    (out / "labels.tsv").write_text("".join(rows), encoding="utf-8")
    return len(rows)

