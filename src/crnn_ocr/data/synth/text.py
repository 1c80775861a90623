"""Synthetic word images rendered from the system's fonts, for pretraining without downloads.

``SyntheticWords(n, seed)`` is ``n`` labelled images, the same ones for the same seed (on a
machine with the same fonts), rendered only when asked for (the trainer renders them on the
fly, in a loader process); ``synthetic_words(n, seed)`` renders them all at once. Each is a
word, number or punctuation token in a printed or a handwriting-like font, dark ink on a
lighter background, with random gray levels, font size, stroke weight, shear, slight
rotation, blur and padding. The texts cover every printable ASCII
character, so a model pretrained on them has a classifier for IAM's alphabet and more.

Fonts are found with matplotlib's font manager (fontconfig on Linux); on Debian,
``apt-get install fonts-dejavu fonts-liberation fonts-freefont-ttf`` gives printed faces and
``fonts-comic-neue fonts-dkg-handwriting fonts-humor-sans fonts-kristi ...`` handwriting-like
ones. Words come from ``/usr/share/dict/words`` (Debian's ``wamerican``) when it exists.

This module only makes images; the training data hook is ``DataConfig.path = "synth:words"``
(see ``sources.training_items``), and ``crnn-ocr pretrain`` trains on it.
"""
from __future__ import annotations

import math
import random
import string
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import accumulate
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from crnn_ocr.data.items import Item

PRINTABLE = string.digits + string.ascii_letters + string.punctuation + " "  # the 95 printable ASCII characters
PUNCTUATION_TOKENS = [".", ",", "'", '"', "-", "!", "?", ":", ";", "(", ")", "&", "#", "/", "*", "+",
                      "'s", "'t", "'ll", "...", "--", '."', ',"', "'d"]  # IAM writes these as words of their own
WORD_LIST = Path("/usr/share/dict/words")
NAME_PREFIX = "synth-words/"  # the display names of rendered words (``Item.path``)
# Substrings of font file names that mark a handwriting-like face (Debian's font packages).
HANDWRITING_HINTS = ("hand", "script", "comic", "humor", "kristi", "breip", "femke", "dkg", "because",
                     "klee", "rufscript", "architect", "indie", "caveat", "marker", "felt")
# Fonts whose lowercase letters are small capitals: drawn for a lowercase label, they would teach
# the model capitals (Humor Sans and the "Because We Had To" hands of Debian's fonts-bwht).
CAPITALS_ONLY = ("humor-sans", "becausewe")
# Short words are most of running text (and of IAM); a word is drawn from these 3 times in 10.
COMMON_WORDS = ("the of and to a in that is was he for it with as his on be at by I had not are but from or "
                "have an they which one you were her all she there would their we him been has when who will "
                "more no if out so said what up its about into than them can only other new some could time "
                "these two may then do first any my now such like our over man me even most made after also "
                "did many before must through back years where much your way well down should because each "
                "just those people Mr Mrs how too little state good very make world still own see men work "
                "long get here between both life being under never day same another know while last might us "
                "great old year off come since against go came right used take three").split()


@dataclass(frozen=True)
class Font:
    """A font file, whether it looks handwritten, and the characters it has glyphs for."""

    path: str
    handwriting: bool
    chars: frozenset[str]


@cache
def system_fonts() -> tuple[Font, ...]:
    """Every TrueType/OpenType font of the system that has all ASCII letters and digits,
    sorted by path (so that a seed picks the same font on the same machine)."""
    from fontTools.ttLib import TTFont, TTLibError
    from matplotlib import font_manager

    fonts = []
    for path in sorted(font_manager.findSystemFonts(fontext="ttf")):
        if not path.lower().endswith((".ttf", ".otf")):
            continue  # .ttc collections and others: several faces per file, skip them
        try:
            cmap = TTFont(path, lazy=True).getBestCmap() or {}
        except (TTLibError, OSError, AssertionError, KeyError):
            continue
        chars = frozenset(c for c in PRINTABLE if ord(c) in cmap)
        if not set(string.ascii_letters + string.digits) <= chars:
            continue  # symbols, or another script
        name = Path(path).name.lower()
        if any(h in name for h in CAPITALS_ONLY):
            chars -= set(string.ascii_lowercase)  # keep it for capitals, digits and punctuation
        handwriting = any(h in name or h in Path(path).parent.name.lower() for h in HANDWRITING_HINTS)
        fonts.append(Font(path, handwriting, chars))
    return tuple(fonts)


@cache
def _truetype(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@cache
def word_list() -> tuple[str, ...]:
    """ASCII words of 1-14 letters from the system dictionary, or made-up syllable words."""
    if WORD_LIST.is_file():
        words = [w for w in WORD_LIST.read_text(encoding="utf-8", errors="ignore").split()
                 if w.isascii() and w.isalpha() and len(w) <= 14]
        if words:
            return tuple(words)
    rng = random.Random(0)
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + list("aeiou")
    return tuple("".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(20000))


@dataclass(frozen=True)
class Vocabulary:
    """The words synthetic texts are made of: ``words`` drawn uniformly, with ``COMMON_WORDS``
    mixed in 3 times in 10 (a plain dictionary), or by ``cum_weights`` (the running sum of a
    frequency list's counts: words as often as running text has them)."""
    words: tuple[str, ...]
    cum_weights: tuple[float, ...] | None = None

    def draw(self, rng: random.Random) -> str:
        if self.cum_weights is None:
            return rng.choice(COMMON_WORDS if rng.random() < 0.3 else self.words)
        return rng.choices(self.words, cum_weights=self.cum_weights)[0]


@cache
def vocabulary(path: str = "") -> Vocabulary:
    """``Vocabulary`` of a word list file (one word per line, or a word, a tab and its count:
    ``lexicon.read_word_counts``), drawn by count; its words of 1-14 printable ASCII
    characters without spaces. ``path`` "": the system dictionary (``word_list``), uniformly.
    ``ValueError`` if the file is unreadable or has no such word."""
    if not path:
        return Vocabulary(word_list())
    from crnn_ocr.decoding.lexicon import read_word_counts

    counts = read_word_counts([path])
    words = tuple(w for w in counts if w.isascii() and w.isprintable() and " " not in w and len(w) <= 14)
    if not words:
        raise ValueError(f"word list {path} has no word of 1-14 printable ASCII characters")
    return Vocabulary(words, tuple(accumulate(float(counts[w]) for w in words)))


def random_text(rng: random.Random, words: Vocabulary | None = None) -> str:
    """A word of ``words`` (default: the system dictionary) in lower, title or upper case,
    sometimes with punctuation stuck to it, two words, a number, a punctuation token, or a
    random string of printable characters."""
    words = words or vocabulary()

    def word() -> str:
        w = words.draw(rng)
        r = rng.random()
        return w.lower() if r < 0.6 else w.capitalize() if r < 0.85 else w.upper()

    kind = rng.random()
    if kind < 0.5:
        return word()
    if kind < 0.62:
        w = word()
        if rng.random() < 0.7:
            return w + rng.choice(".,;:!?'\")-") + ("" if rng.random() < 0.8 else rng.choice(".\"'"))
        return rng.choice("(\"'-#") + w
    if kind < 0.7:
        first, second = word(), rng.choice(COMMON_WORDS)
        return f"{first} {second}" if len(first) + len(second) < 16 else first
    if kind < 0.82:
        digits = "".join(rng.choice(string.digits) for _ in range(rng.randint(1, 6)))
        if len(digits) > 2 and rng.random() < 0.4:
            cut = rng.randrange(1, len(digits))
            digits = digits[:cut] + rng.choice(".,:/-") + digits[cut:]
        return digits
    if kind < 0.9:
        return rng.choice(PUNCTUATION_TOKENS)
    return "".join(rng.choice(PRINTABLE.strip()) for _ in range(rng.randint(1, 10)))


def render(text: str, font: Font, rng: random.Random) -> Image.Image:
    """``text`` in ``font`` as a grayscale (``L``) image, with random size, weight, gray
    levels, padding, shear, rotation and blur (a quarter of the images: out-of-focus scans and
    soft pencil) drawn from ``rng``."""
    size = rng.randint(18, 44)
    face = _truetype(font.path, size)
    stroke = 1 if size >= 26 and rng.random() < 0.2 else 0
    background = rng.randint(150, 255)
    ink = rng.randint(0, min(110, background - 70))
    left, top, right, bottom = face.getbbox(text, stroke_width=stroke)
    pad = [rng.randint(0, max(1, size // 4)) for _ in range(4)]
    w, h = max(1, right - left) + pad[0] + pad[2], max(1, bottom - top) + pad[1] + pad[3]
    im = Image.new("L", (w, h), background)
    ImageDraw.Draw(im).text((pad[0] - left, pad[1] - top), text, font=face, fill=ink, stroke_width=stroke,
                            stroke_fill=ink)
    shear = rng.uniform(-0.3, 0.3) if rng.random() < 0.4 else 0.0
    if shear:
        extra = math.ceil(abs(shear) * h)
        im = im.transform((w + extra, h), Image.Transform.AFFINE,
                          (1, shear, -extra if shear > 0 else 0, 0, 1, 0),
                          resample=Image.Resampling.BILINEAR, fillcolor=background)
    if rng.random() < 0.5:
        im = im.rotate(rng.uniform(-3, 3), resample=Image.Resampling.BILINEAR, expand=True, fillcolor=background)
    if rng.random() < 0.25:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.6) * size / 18))  # at most ~1/30 of the text height
    return im


class SyntheticWords(Sequence):
    """``n`` rendered words, made on demand: a sequence of ``Item`` that holds only the texts
    (and each one's font), never the images. ``render(i)`` draws image ``i`` from its own
    seeded random generator, so it is the same whenever and wherever (in whichever loader
    process) it is asked for, and memory does not grow with the number of images.

    Args:
        n: number of images.
        seed: seeds every random choice (text, font, size, colours, geometry).
        handwriting: share of images drawn in a handwriting-like font (when one is installed).
        words: a word list file to draw the words from (``vocabulary``); "" = the system dictionary.
        cover_charset: let the first few texts be pieces of a shuffled printable ASCII
            alphabet, so that even a small set has every character (a model's charset is
            read from its training texts).

    Raises:
        RuntimeError: no usable font is installed.
    """

    def __init__(self, n: int, seed: int, handwriting: float = 0.5, cover_charset: bool = True, words: str = ""):
        fonts, source = system_fonts(), vocabulary(words)
        if not fonts:
            raise RuntimeError("no TrueType/OpenType font with ASCII letters found; on Debian: "
                               "apt-get install fonts-dejavu fonts-liberation fonts-freefont-ttf")
        styles = {True: [f for f in fonts if f.handwriting], False: [f for f in fonts if not f.handwriting]}
        rng = random.Random(seed)
        first = []
        if cover_charset:
            alphabet = list(PRINTABLE.strip())
            rng.shuffle(alphabet)
            first = ["".join(alphabet[i : i + 8]) for i in range(0, len(alphabet), 8)][:n]
            first[0] = first[0][:4] + " " + first[0][4:]
        self.seed, self.fonts, self.texts, self._font = seed, fonts, [], array("H")
        for i in range(n):
            text = first[i] if i < len(first) else random_text(rng, source)
            pool = styles[rng.random() < handwriting] or fonts
            usable = [f for f in pool if set(text) <= f.chars] or [f for f in fonts if set(text) <= f.chars]
            while not usable:  # no installed font has every character of this text: draw another
                text = random_text(rng, source)
                usable = [f for f in fonts if set(text) <= f.chars]
            self.texts.append(text)
            self._font.append(fonts.index(rng.choice(usable)))

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> Item:
        """Item ``i`` without its image (cheap: for charsets, label checks and counts)."""
        return Item(self.texts[i], f"{NAME_PREFIX}{i:06d}.png")

    def render(self, i: int) -> Image.Image:
        """Image ``i``, the same on every call."""
        return render(self.texts[i], self.fonts[self._font[i]], random.Random(self.seed * 1_000_003 + i))


def synthetic_words(n: int, seed: int, handwriting: float = 0.5, cover_charset: bool = True,
                    words: str = "") -> list[Item]:
    """``n`` rendered words with their images in memory (``Item.image``), the same for the
    same seed; the arguments are ``SyntheticWords``'s."""
    words = SyntheticWords(n, seed, handwriting, cover_charset, words)
    return [Item(it.text, it.path, words.render(i)) for i, it in enumerate(words)]
