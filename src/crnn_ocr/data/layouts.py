"""Dataset layouts on disk: find the labelled images of a folder.

Four layouts are recognised by their content (``detect_layout``): split folders (``train/``,
``val/``, ``test/``), a folder of images labelled by their file names (the captcha set), an
IAM root (``words.txt`` + ``words/``) and a folder with ``labels.tsv``. Bad items are skipped
and counted in a ``Skipped`` tally; unusable input raises ``DataError``. Nothing here decodes
an image (``dataset``) or chooses the splits of a run (``sources``).
"""
from __future__ import annotations

import os
import random
from pathlib import Path

from crnn_ocr.data.items import DataError, Item, Skipped
from crnn_ocr.reading.images import IMAGE_SUFFIXES
from crnn_ocr.utils.files import read_text_file, shown, unicode_text

VAL_NAMES = ("val", "valid", "validation")  # the validation folder of a split layout, by any of its usual names


def detect_layout(path: str | Path) -> str:
    """``"splits"``, ``"iam"``, ``"tsv"`` or ``"folder"``, by what ``path`` contains."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"dataset path does not exist: {path}")
    if not p.is_dir():
        raise DataError(f"dataset path is not a folder: {path}")
    train, val = (p / "train").is_dir(), split_folder(p, "val")
    if train and val:
        return "splits"
    if (p / "words.txt").exists() and (p / "words").is_dir():
        return "iam"
    if os.path.lexists(p / "labels.tsv"):  # one that is not a regular file (or a broken link) is refused when read
        return "tsv"
    if (train or val) and not any(q.suffix.lower() in IMAGE_SUFFIXES for q in p.iterdir()):
        # half a split layout, and no image beside it: say so rather than find no images
        has, missing = ("train", "val/ (or valid/, validation/)") if train else (val.name, "train/")
        raise DataError(f"{shown(p)} has {has}/ but no {missing} beside it: a split layout needs both")
    return "folder"


def split_folder(root: Path, name: str) -> Path | None:
    """The ``name`` folder (``"val"``: also ``valid/`` or ``validation/``) of a split layout, if any."""
    for candidate in VAL_NAMES if name == "val" else (name,):
        if (root / candidate).is_dir():
            return root / candidate
    return None


def index_file(folder: Path, name: str) -> Path:
    """The index file ``name`` of a dataset folder; ``DataError`` for a missing path, a file,
    or a folder without it."""
    detect_layout(folder)
    if not os.path.lexists(folder / name):  # a broken link is refused when read, with its reason
        raise DataError(f"no {name} in {shown(folder)}")
    return folder / name


def load_folder(folder: str | Path, label_sep: str = "", skipped: Skipped | None = None) -> list[Item]:
    """Every image file of ``folder`` (not recursive); the label is the file name stem,
    cut at the first ``label_sep`` if one is given (``1234-7.jpg`` -> ``1234``)."""
    skipped = Skipped() if skipped is None else skipped
    detect_layout(folder)  # DataError for a missing path or a file
    items = []
    try:
        names = sorted(Path(folder).iterdir())
    except OSError as e:
        raise DataError(f"cannot list {shown(folder)}: {e.strerror}") from None
    for p in names:
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if not p.is_file():
            skipped.add("not a file", shown(p.name))
            continue
        text = p.stem.split(label_sep)[0] if label_sep else p.stem
        if not text:
            skipped.add("empty label", shown(p.name))
            continue
        if unicode_text(text) != text:  # bytes that are not UTF-8: the label cannot be known
            skipped.add("file name not UTF-8 (no label)", shown(p.name))
            continue
        items.append(Item(text, str(p)))
    return items


def load_tsv(folder: str | Path, skipped: Skipped | None = None) -> list[Item]:
    """``labels.tsv`` lines ``relative/path<TAB>text`` (UTF-8, any line ending). Lines without a
    tab, with an empty label or with a third column are skipped and counted."""
    skipped = Skipped() if skipped is None else skipped
    folder = Path(folder)
    items = []
    index = index_file(folder, "labels.tsv")
    for number, raw in enumerate(read_text_file(index, "labels.tsv").splitlines(), 1):
        try:
            line = raw.decode("utf-8").rstrip("\r").lstrip("\ufeff")  # a BOM from Windows editors
        except UnicodeDecodeError:
            skipped.add("labels.tsv line not UTF-8", f"labels.tsv line {number}")
            continue
        if not line.strip():
            continue
        if "\t" not in line:
            skipped.add("labels.tsv line without a tab", f"labels.tsv line {number}")
            continue
        rel, text = line.split("\t", 1)
        text = text.rstrip("\t")  # empty columns after the label, as a spreadsheet exports them
        if not text.strip():  # nothing, or only spaces: nothing to read
            skipped.add("empty label", f"labels.tsv line {number}")
            continue
        if "\t" in text:  # a third column: which part is the label is not known
            skipped.add("labels.tsv line with more than two columns", f"labels.tsv line {number}")
            continue
        items.append(Item(text, str(folder / rel)))
    return items


def read_ids(files: list[str]) -> set[str]:
    """Word ids from one or more files, one id per line."""
    ids: set[str] = set()
    for f in files:
        try:
            text = read_text_file(f, "id list").decode("utf-8", errors="replace")
        except OSError as e:
            raise DataError(str(e)) from None
        ids.update(line.strip() for line in text.splitlines() if line.strip())
    return ids


def load_iam(root: str | Path, ids: set[str] | None = None, keep_err: bool = False,
             skipped: Skipped | None = None) -> list[Item]:
    """IAM words from the official ``words.txt``; ``ids`` restricts to those word ids.

    The transcription is every field from index 8 on, joined by one space. Lines marked
    ``err`` are skipped unless ``keep_err``; missing images are skipped and counted.
    """
    skipped = Skipped() if skipped is None else skipped
    root = Path(root)
    items = []
    text = read_text_file(index_file(root, "words.txt"), "words.txt").decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split()
        if len(parts) < 9 or parts[1] not in ("ok", "err") or parts[0].count("-") < 3:
            skipped.add("malformed words.txt line", f"words.txt line {number}")
            continue
        word_id = parts[0]
        if ids is not None and word_id not in ids:
            continue
        if parts[1] == "err" and not keep_err:
            skipped["segmentation marked err"] += 1
            continue
        a, b = word_id.split("-")[:2]
        path = root / "words" / a / f"{a}-{b}" / f"{word_id}.png"
        try:
            found = path.is_file()
        except OSError:  # a name too long for the file system, say
            found = False
        if not found:
            skipped.add("image missing", word_id)
            continue
        items.append(Item(" ".join(parts[8:]), str(path)))
    return items


def split(items: list[Item], seed: int = 0, fractions=(0.7, 0.2, 0.1)) -> tuple[list[Item], ...]:
    """Deterministic seeded train/val/test split (70/20/10 by default, as in the report)."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n_train = round(fractions[0] * len(items))
    n_val = round(fractions[1] * len(items))
    cut = [order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]]
    return tuple([items[i] for i in part] for part in cut)


def sample(items: list[Item], n: int, seed: int) -> list[Item]:
    """A seeded sample of ``n`` items (all of them if ``n`` is 0 or too large)."""
    if not n or n >= len(items):
        return items
    return random.Random(seed).sample(items, n)


def items_of(path: Path, label_sep: str, skipped: Skipped) -> list[Item]:
    """The items of a folder in whichever layout it has but split folders."""
    layout = detect_layout(path)
    if layout == "tsv":
        return load_tsv(path, skipped)
    if layout == "iam":
        return load_iam(path, skipped=skipped)
    return load_folder(path, label_sep, skipped)
