"""Synthetic printed text lines rendered from the system's fonts, for pretraining and for a
printed-text model.

``synthetic_lines(n, seed)`` draws ``n`` labelled line images, the same for the same seed (on a
machine with the same fonts): a run of words, numbers and punctuation as in running text,
drawn in one of the printed (not handwriting-like) system fonts, dark ink on a lighter
background, with random size, gray levels, padding, a slight tilt and blur. A few named fonts
(``HELD_OUT_FONT_FILES``) are never used for training lines, so that reading them measures how a
model does on fonts it has not seen: ``fonts="held-out"`` draws validation lines in those only.
``write_lines_folder`` writes lines as a ``labels.tsv`` folder, the font's name in each file name.

Fonts, word list and the text pieces come from ``synth_text``; this module only composes lines.
"""
from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from tqdm import tqdm

from crnn_ocr.data.items import DataError, Item
from crnn_ocr.data.synth.text import COMMON_WORDS, PRINTABLE, Font, system_fonts, word_list

# Faces kept out of training (sans, serif and mono; regular, bold and italic) from Debian's
# fonts-dejavu, fonts-liberation and fonts-freefont-ttf; those installed are the held-out set.
HELD_OUT_FONT_FILES = ("DejaVuSansMono.ttf", "DejaVuSerifCondensed-Italic.ttf", "LiberationSans-Regular.ttf",
                       "LiberationSerif-Bold.ttf", "FreeSerifItalic.ttf", "FreeMonoBold.ttf")
FONT_CHOICES = ("train", "held-out")
MAX_CHARS = 64  # the longest line drawn


def printed_fonts() -> tuple[Font, ...]:
    """Every system font with all printable ASCII characters that does not look handwritten."""
    return tuple(f for f in system_fonts() if not f.handwriting and set(PRINTABLE) <= f.chars)


def held_out_fonts() -> tuple[Font, ...]:
    """The installed fonts of ``HELD_OUT_FONT_FILES``: for validation lines only."""
    return tuple(f for f in printed_fonts() if Path(f.path).name in HELD_OUT_FONT_FILES)


def training_fonts() -> tuple[Font, ...]:
    """The printed fonts that are not held out."""
    return tuple(f for f in printed_fonts() if Path(f.path).name not in HELD_OUT_FONT_FILES)


@cache
def _face(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _word(rng: random.Random, first: bool) -> str:
    w = rng.choice(COMMON_WORDS) if rng.random() < 0.45 else rng.choice(word_list())
    r = rng.random()
    if r < 0.04:
        return w.upper()
    if first or r < 0.12:
        return w.capitalize()
    return w if w == "I" or rng.random() < 0.9 else w.lower()  # the dictionary's proper nouns stay


def _number(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.35:
        return str(rng.randint(0, 999 if rng.random() < 0.7 else 99999))
    if kind < 0.5:
        return f"{rng.randint(0, 999)}.{rng.randint(0, 99):02d}"
    if kind < 0.6:
        return f"${rng.randint(1, 9999):,}" + (f".{rng.randint(0, 99):02d}" if rng.random() < 0.5 else "")
    if kind < 0.7:
        return f"{rng.randint(1, 100)}%"
    if kind < 0.8:
        return f"{rng.randint(1, 28)}/{rng.randint(1, 12)}/{rng.randint(1900, 2030)}"
    if kind < 0.9:
        return f"{rng.randint(0, 23)}:{rng.randint(0, 59):02d}"
    return f"{rng.randint(1, 9999):,}"


def random_line(rng: random.Random, max_chars: int = MAX_CHARS) -> str:
    """A line of running text: words (a capital after a full stop), numbers, punctuation stuck
    to words or standing alone, brackets and quotes, now and then a random symbol; between
    ``max_chars // 6`` and ``max_chars`` characters, single spaces between tokens."""
    target = rng.randint(max(1, max_chars // 6), max_chars)
    tokens: list[str] = []
    length, sentence_start = 0, rng.random() < 0.6
    while True:
        r = rng.random()
        if r < 0.78:
            token = _word(rng, sentence_start)
        elif r < 0.9:
            token = _number(rng)
        elif r < 0.95:
            token = rng.choice(["-", "--", "&", "/", "+", "=", "*", "#", "@", "|", "~", "^", "<", ">", "\\"])
        else:
            token = "".join(rng.choice(PRINTABLE.strip()) for _ in range(rng.randint(1, 6)))
        sentence_start = False
        p = rng.random()
        if p < 0.08:
            opening, closing = rng.choice(['""', "()", "''", "[]", "{}", "``"])
            token = opening + token + closing
        if rng.random() < 0.22:
            mark = rng.choice([",", ",", ",", ".", ".", ";", ":", "!", "?", "'s", "...", ".\"", "?'", ")."])
            token += mark
            sentence_start = mark[0] in ".!?"
        if length + len(token) + (1 if tokens else 0) > target:
            break
        tokens.append(token)
        length += len(token) + (1 if len(tokens) > 1 else 0)
    return " ".join(tokens) if tokens else token[:max_chars]


def render_line(text: str, font: Font, rng: random.Random) -> Image.Image:
    """``text`` in ``font`` as a grayscale (``L``) image with random size, gray levels,
    padding, a slight tilt, blur and noise drawn from ``rng``."""
    size = rng.randint(20, 40)
    face = _face(font.path, size)
    background = rng.randint(170, 255)
    ink = rng.randint(0, min(100, background - 80))
    left, top, right, bottom = face.getbbox(text)
    ascent, descent = face.getmetrics()  # every line gets room for ascenders and descenders
    top, bottom = min(top, 0), max(bottom, ascent + descent)
    pad_x = [rng.randint(2, size // 2) for _ in range(2)]
    pad_y = [rng.randint(1, size // 4) for _ in range(2)]
    w, h = right - left + sum(pad_x), bottom - top + sum(pad_y)
    im = Image.new("L", (w, h), background)
    ImageDraw.Draw(im).text((pad_x[0] - left, pad_y[0] - top), text, font=face, fill=ink)
    if rng.random() < 0.3:
        im = im.rotate(rng.uniform(-1, 1), resample=Image.Resampling.BILINEAR, expand=True, fillcolor=background)
    if rng.random() < 0.3:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
    if rng.random() < 0.3:
        noise = np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(3, 12), (im.height, im.width))
        im = Image.fromarray(np.clip(np.asarray(im) + noise, 0, 255).astype(np.uint8), mode="L")
    return im


def _fonts(which: str) -> tuple[Font, ...]:
    if which not in FONT_CHOICES:
        raise ValueError(f"fonts must be one of {', '.join(FONT_CHOICES)}, not {which!r}")
    fonts = training_fonts() if which == "train" else held_out_fonts()
    if not fonts:
        raise DataError(f"no {which} printed font installed; on Debian: apt-get install fonts-dejavu "
                           "fonts-liberation fonts-freefont-ttf")
    return fonts


def iter_synthetic_lines(n: int, seed: int, fonts: str = "train", cover_charset: bool = True) -> Iterator[Item]:
    """``n`` rendered lines one at a time (``Item`` with an in-memory image, its path
    ``synth-lines/<index>-<font>.png``), the same for the same seed.

    Args:
        n: number of lines.
        seed: seeds every random choice (text, font, size, colours, geometry).
        fonts: ``"train"`` (every printed font but the held-out ones) or ``"held-out"``.
        cover_charset: let the first lines hold the printable ASCII characters in a shuffled
            order, so that even a small set has every character (a model's charset is read
            from its training texts).

    Raises:
        ValueError: ``n`` below 1 or an unknown ``fonts``.
        DataError: no font of the chosen kind is installed.
    """
    if n < 1:
        raise ValueError(f"the number of lines must be at least 1, not {n}")
    return _lines(n, seed, _fonts(fonts), cover_charset)


def _lines(n: int, seed: int, pool: tuple[Font, ...], cover_charset: bool) -> Iterator[Item]:
    rng = random.Random(seed)
    texts = []
    if cover_charset:
        alphabet = list(PRINTABLE.strip())
        rng.shuffle(alphabet)
        texts = [" ".join("".join(alphabet[j : j + 6]) for j in range(i, min(i + 24, len(alphabet)), 6))
                 for i in range(0, len(alphabet), 24)]
    for i in range(n):
        text = texts[i] if i < len(texts) else random_line(rng)
        font = rng.choice(pool)
        yield Item(text, f"synth-lines/{i:06d}-{Path(font.path).stem}.png", render_line(text, font, rng))


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

