"""The printed fonts that synthetic lines are drawn in, grouped by family.

``font_families(folder)`` reads every TrueType/OpenType file under a folder (by default the
system's font folders), names each face by its family from the font's own name table
(typographic family first), and keeps the families of printed Latin text: faces with every
printable ASCII character whose lowercase letters are not capitals, that are not handwriting,
script, symbol or display faces, and that are not in ``NEVER_USE``. ``split_families`` then
puts whole families aside for validation (``HELD_OUT``), so that a model is measured on
designs it has never seen, not on a sibling weight of a training face.

Held-out families (one of each kind, chosen to be unlike each other; from Debian packages):

- EB Garamond (``fonts-ebgaramond``): an old-style book serif;
- Charis SIL (``fonts-sil-charis``): a sturdy transitional serif (Bitstream Charter's design);
- Lato (``fonts-lato``): a humanist sans, nine weights with italics;
- League Spartan (``fonts-league-spartan``): a geometric sans (Futura-like ``a``, ``t``);
- Yanone Kaffeesatz (``fonts-yanone-kaffeesatz``): a condensed sans;
- JetBrains Mono (``fonts-jetbrains-mono``): a monospace for code;
- Courier Prime (``fonts-courier-prime``): a slab-serif typewriter face.

Never used, for training or validation (``NEVER_USE``, matched in file paths and family
names, whether installed or not): URW base35 (``fonts-urw-base35``, ``gsfonts``: Nimbus,
URW, C059, P052, Z003, D050000L, Standard Symbols), TeX Gyre (the same designs), Crosextra
Carlito and Caladea, Roboto (every file with Roboto in its name). The project keeps them for
its independent test. ``scripts/install_fonts.sh`` installs the families trained on.

This module only finds and sorts fonts; drawing lines is ``synth_lines``.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PRINTABLE = string.digits + string.ascii_letters + string.punctuation + " "  # every face has all of these
TYPOGRAPHIC = "’‘“”–—…•€£°©"  # drawn only in faces that have them
SYSTEM_FOLDERS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
HELD_OUT = ("EB Garamond", "Charis SIL", "Lato", "League Spartan", "Yanone Kaffeesatz", "JetBrains Mono",
            "Courier Prime")
# Lowercase substrings of a file path or family name that mark a face never to use.
NEVER_USE = ("urw", "nimbus", "gsfonts", "c059", "p052", "z003", "d050000l", "standard symbols",
             "century schoolbook l", "gyre", "carlito", "caladea", "roboto")
# Lowercase substrings of a family name or file name that mark a face that is not printed text:
# handwriting and script, symbols and mathematics, display faces, small capitals.
NOT_TEXT = ("hand", "script", "comic", "humor", "kristi", "breip", "femke", "dkg", "because", "klee",
            "architect", "indie", "caveat", "marker", "felt", "dancing", "kaushan", "lobster", "isabella",
            "symbol", "math", "emoji", "dingbat", "ornament", "icon", "braille", "music", "fallback", "sortsmill",
            "smallcaps", "small caps", " sc", "capitals", "initials", "display", "stix-word", "ocr")
PANOSE_NOT_TEXT = (3, 4, 5)  # OS/2 panose family kind: script, decorative, pictorial


@dataclass(frozen=True)
class Face:
    """One font file: its family and style names, weight class (400 regular, 700 bold),
    whether it is italic, and which of ``TYPOGRAPHIC`` it has."""

    path: str
    family: str
    style: str
    weight: int
    italic: bool
    typographic: frozenset[str]

    @property
    def bold(self) -> bool:
        return self.weight >= 600


def never_use(path: str, family: str) -> bool:
    """Whether a face belongs to a family kept out of training and validation (``NEVER_USE``)."""
    text = f"{path} {family}".lower()
    return any(n in text for n in NEVER_USE)


def _name(font, *ids: int) -> str:
    for i in ids:
        name = font["name"].getDebugName(i)
        if name:
            return name.strip()
    return ""


def read_face(path: str | Path) -> Face | None:
    """The ``Face`` of a font file, or ``None`` when it is not a printed Latin text face
    (unreadable, missing a printable ASCII character, capitals for lowercase, a script,
    symbol or display face, or never to use)."""
    from fontTools.ttLib import TTFont, TTLibError

    path = str(path)
    try:
        font = TTFont(path, lazy=True, fontNumber=0)
        cmap = font.getBestCmap() or {}
        family, style = _name(font, 16, 1), _name(font, 17, 2) or "Regular"
        os2 = font.get("OS/2")
    except (TTLibError, OSError, AssertionError, KeyError, ValueError, TypeError):
        return None
    if not family or never_use(path, family) or any(ord(c) not in cmap for c in PRINTABLE):
        return None
    names = f" {family} {style} {Path(path).name}".lower()
    if any(h in names for h in NOT_TEXT):
        return None
    if os2 is not None and getattr(os2, "panose", None) is not None \
            and os2.panose.bFamilyType in PANOSE_NOT_TEXT:
        return None
    if cmap[ord("a")] == cmap[ord("A")] or not _lowercase_is_small(path):
        return None
    weight = int(getattr(os2, "usWeightClass", 400)) if os2 is not None else 400
    italic = bool(os2 is not None and os2.fsSelection & 1) or any(s in style.lower() for s in ("italic", "oblique"))
    return Face(path, family, style, weight, italic, frozenset(c for c in TYPOGRAPHIC if ord(c) in cmap))


def _lowercase_is_small(path: str) -> bool:
    """``x`` drawn lower than ``X`` and ``d`` taller than ``x`` (not a capitals-only or
    small-capitals face, whose ``d`` is as short as its ``x``)."""
    from PIL import ImageFont

    try:
        face = ImageFont.truetype(path, 40)
        x, d, cap = (face.getbbox(c) for c in "xdX")
    except OSError:
        return False
    x_height, d_height, cap_height = (box[3] - box[1] for box in (x, d, cap))
    return x_height < 0.85 * cap_height and d_height > 1.15 * x_height


def font_files(folders: tuple[str | Path, ...] = SYSTEM_FOLDERS) -> list[Path]:
    """Every ``.ttf`` and ``.otf`` file under ``folders`` (missing folders are skipped), sorted."""
    files = set()
    for folder in folders:
        root = Path(folder).expanduser()
        if root.is_dir():
            files |= {p for p in root.rglob("*") if p.suffix.lower() in (".ttf", ".otf") and p.is_file()}
    return sorted(files)


@cache
def font_families(folders: tuple[str | Path, ...] = SYSTEM_FOLDERS) -> dict[str, tuple[Face, ...]]:
    """The printed Latin families under ``folders``: family name -> its faces (every weight and
    style), both sorted, so a seed picks the same face on a machine with the same fonts. A
    family must have an upright face that is not bold (it draws the line; its other faces the
    bold and italic runs). A face whose family and style repeat one already read (the same
    font in .ttf and .otf) is read once."""
    families: dict[str, dict[str, Face]] = {}
    for path in font_files(folders):
        face = read_face(path)
        if face is not None:
            families.setdefault(face.family, {}).setdefault(face.style, face)
    return {name: tuple(sorted(faces.values(), key=lambda f: f.path)) for name, faces in sorted(families.items())
            if any(not f.italic and not f.bold for f in faces.values())}


@dataclass(frozen=True)
class FontSplit:
    """Families to train on and families held out for validation (``HELD_OUT`` that are installed)."""

    train: dict[str, tuple[Face, ...]]
    held_out: dict[str, tuple[Face, ...]]


def split_families(families: dict[str, tuple[Face, ...]], held_out: tuple[str, ...] = HELD_OUT) -> FontSplit:
    """Whole families apart: those named in ``held_out`` for validation, the rest for training.
    Their variants ("Courier Prime Sans", "Lato Light" in older name tables) are in neither:
    not trained on, and not counted as designs of their own in validation."""
    def variant(name: str) -> bool:
        return any(name.startswith(h + " ") for h in held_out)

    return FontSplit({k: v for k, v in families.items() if k not in held_out and not variant(k)},
                     {k: v for k, v in families.items() if k in held_out})


def font_split(folder: str | Path | None = None) -> FontSplit:
    """Training and held-out families of the fonts under ``folder`` (default: the system's)."""
    return split_families(font_families((str(folder),) if folder is not None else SYSTEM_FOLDERS))
