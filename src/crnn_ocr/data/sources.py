"""Which items a run trains, validates or is evaluated on, for a ``DataConfig`` or a path.

Without a path, synthetic captchas (``synth_captcha``); with the path ``synth:words``, word
images rendered from the system's fonts (``synth_text``; on the fly for a fixed width); with
``synth:lines``, printed lines (``synth_lines``; on the fly, validated in held-out families);
otherwise a dataset folder in any layout of ``layouts``, split 70/20/10 (seeded) when it has
no split folders.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from crnn_ocr.config.sections import SYNTHETIC_LINES, SYNTHETIC_WORDS, DataConfig
from crnn_ocr.data.items import DataError, Item, Skipped
from crnn_ocr.data.layouts import detect_layout, items_of, load_iam, read_ids, sample, split, split_folder
from crnn_ocr.data.synth.captcha import synthetic_captchas
from crnn_ocr.data.synth.lines import VAL_SEED, SyntheticLines, synthetic_lines
from crnn_ocr.data.synth.text import SyntheticWords, synthetic_words
from crnn_ocr.utils.files import shown

MIX_SEED = 7_919  # the synthetic words mixed into real data draw from their own random stream


def training_items(data: DataConfig, seed: int, skipped: Skipped) -> tuple[Sequence[Item], list[Item]]:
    """Training and validation items for a ``DataConfig``. Synthetic words for a fixed-width
    input are a ``SyntheticWords`` (images rendered when asked for: training renders them on
    the fly); every other item list holds its images or their paths."""
    layout = None if data.path in ("", SYNTHETIC_WORDS, SYNTHETIC_LINES) else detect_layout(data.path)
    if (data.train_ids or data.val_ids) and layout != "iam":
        # a warning, not an error: an IAM config's lists cannot be cleared from the command line
        warnings.warn(f"{not_iam(data.path or 'synthetic captchas', '--train-ids and --val-ids')}: ignored")
    if not data.path:
        return synthetic_captchas(data.synthetic_train, seed), synthetic_captchas(data.synthetic_val, seed + 1)
    if data.path == SYNTHETIC_WORDS:
        style = {"handwriting": data.synthetic_handwriting, "words": data.synthetic_words}
        val = synthetic_words(data.synthetic_val, seed + 1, cover_charset=False, **style)
        if data.any_width:  # each image's width must be known before batching: render them now
            return synthetic_words(data.synthetic_train, seed, **style), val
        return SyntheticWords(data.synthetic_train, seed, **style), val
    if data.path == SYNTHETIC_LINES:  # validation: the held-out families, the same lines for every seed
        val = synthetic_lines(data.synthetic_val, VAL_SEED, fonts="held-out", cover_charset=False)
        return SyntheticLines(data.synthetic_train, seed), val
    root = Path(data.path)
    if layout == "splits":
        train, val = items_of(root / "train", data.label_sep, skipped), items_of(split_folder(root, "val"),
                                                                                 data.label_sep, skipped)
    elif layout == "iam" and (data.train_ids or data.val_ids):
        if not (data.train_ids and data.val_ids):
            raise DataError("an IAM root needs both --train-ids and --val-ids (or neither, for a 70/20/10 split)")
        train = load_iam(root, read_ids(data.train_ids), data.keep_err, skipped)
        val = load_iam(root, read_ids(data.val_ids), data.keep_err, skipped)
    else:
        items = (load_iam(root, None, data.keep_err, skipped) if layout == "iam"
                 else items_of(root, data.label_sep, skipped))
        train, val, _ = split(items, seed)
    train, val = sample(train, data.train_limit, seed), sample(val, data.val_limit, seed + 1)
    if data.synthetic_mix and train:
        train = train + mixed_in(train, data, seed)
    if not train:
        raise DataError(f"no usable training images in {shown(data.path)}"
                        + (f" (skipped: {skipped.detail()})" if skipped else ""))
    if not val:
        few = (": too few usable images to leave any for validation after the 70/20/10 split "
               "(or give a train/ and a val/ folder)" if layout != "splits" and not data.val_ids else "")
        raise DataError(f"no usable validation images in {shown(data.path)}{few}"
                        + (f" (skipped: {skipped.detail()})" if skipped else ""))
    return train, val


def not_iam(path: str | Path, flags: str) -> DataError:
    """The error for IAM word-id lists given with data that is not an IAM root."""
    return DataError(f"{flags} choose words of an IAM root (words.txt + words/), and {shown(path)} is not one")


def mixed_in(real: list[Item], data: DataConfig, seed: int) -> list[Item]:
    """Synthetic words to add to ``real`` so that they are ``data.synthetic_mix`` of the whole:
    only texts written with the real labels' characters (the model's alphabet stays the data's),
    rendered now (about a millisecond each) with their own seed."""
    chars = set("".join(it.text for it in real))
    wanted = round(len(real) * data.synthetic_mix / (1 - data.synthetic_mix))
    words = SyntheticWords(2 * wanted + 100, seed + MIX_SEED, data.synthetic_handwriting, cover_charset=False,
                           words=data.synthetic_words)
    kept = [(i, it) for i, it in enumerate(words) if set(it.text) <= chars][:wanted]
    return [Item(it.text, it.path, words.render(i)) for i, it in kept]


def evaluation_root(path: str | Path) -> tuple[Path, str]:
    """The folder ``evaluation_items`` reads for ``path``, and a note when it is not the one
    asked for (a split layout is scored on its ``test/`` folder, else on its validation one)."""
    root = Path(path)
    if detect_layout(root) != "splits":
        return root, ""
    if (root / "test").is_dir():
        return root / "test", ""
    val = split_folder(root, "val")
    return val, f"{shown(root)} has no test/ folder: scored its {val.name}/ split"


def evaluation_items(path: str, label_sep: str = "", split_ids: list[str] | None = None,
                     keep_err: bool = False, skipped: Skipped | None = None) -> list[Item]:
    """Every readable item of ``path`` (its ``test/`` folder for a split layout, or its
    validation folder when there is none: see ``evaluation_root``)."""
    skipped = Skipped() if skipped is None else skipped
    root, _ = evaluation_root(path)
    layout = detect_layout(root)
    if layout == "iam":
        items = load_iam(root, read_ids(split_ids) if split_ids else None, keep_err, skipped)
    elif split_ids:
        raise not_iam(path, "--split-ids")
    else:
        items = items_of(root, label_sep, skipped)
    if not items:
        detail = f" (skipped: {skipped.detail()})" if skipped else ""
        raise DataError(f"no labelled images found in {shown(path)}{detail}")
    return items
