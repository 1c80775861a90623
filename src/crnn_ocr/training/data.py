"""A run's data and model, set up together: the model's output columns decide which labels
can be learnt, so the model is built (once) between reading the items and decoding them.

The label-length rule is an explicit step (``check_label_lengths``): a few labels too long
for the model's columns are skipped and counted, more than 1% stop the run with the fix.
"""
from __future__ import annotations

from dataclasses import dataclass

from crnn_ocr.config.schema import Config
from crnn_ocr.config.sections import DataConfig
from crnn_ocr.data.datasets import OCRDataset, RenderedDataset
from crnn_ocr.data.items import DataError, Item, Skipped
from crnn_ocr.data.sources import training_items
from crnn_ocr.data.synth.lines import SyntheticLines
from crnn_ocr.data.synth.text import NAME_PREFIX, SyntheticWords
from crnn_ocr.decoding.ctc import required_length
from crnn_ocr.model.charset import Charset
from crnn_ocr.model.crnn import CRNN, too_few_columns

TOO_MANY_LONG_LABELS = 0.01  # more than this share of training labels too long: refuse to train


@dataclass
class TrainingData:
    """Decoded training and validation sets with what validation compares against."""

    train: OCRDataset | RenderedDataset
    val: OCRDataset
    charset: Charset
    val_targets: list[list[int]]  # the validation labels' encodable characters, for the CTC loss
    val_gold: list[str]
    vocabulary: list[str]  # the training labels (with repeats), kept in checkpoints for the lexicon and LM
    skipped: Skipped


def check_label_lengths(items: list[Item], columns: int, d: DataConfig) -> None:
    """Refuse to train when more than 1% of the labels need more CTC columns than the model
    has (a few are skipped and counted later)."""
    needed = [required_length(it.text) for it in items]
    if sum(n > columns for n in needed) > TOO_MANY_LONG_LABELS * len(items):
        raise too_few_columns(d.height, d.widest, columns, max(needed))


def load_training_data(config: Config, charset_chars: str | None, log) -> tuple[TrainingData, CRNN]:
    """The run's data and its model (training heads included). ``charset_chars``: a resumed
    run's alphabet; else the training labels' characters."""
    d, skipped = config.data, Skipped()
    log("loading data: " + (d.path or f"{d.synthetic_train} + {d.synthetic_val} synthetic captchas"))
    train_items, val_items = training_items(d, config.train.seed, skipped)
    charset = Charset(charset_chars) if charset_chars else Charset.from_texts(it.text for it in train_items)
    imagenet = config.model.pretrained == "imagenet" and not charset_chars
    model = CRNN.from_config(config, charset, imagenet=imagenet, training=True)
    check_label_lengths(train_items, model.columns, d)
    if isinstance(train_items, (SyntheticWords, SyntheticLines)):
        train_ds = RenderedDataset(train_items, d.height, d.width, d.channels, skipped, charset, model.columns,
                                   stride=model.column_stride, levels=d.auto_levels, crop=d.crop_to_ink)
    else:
        train_ds = OCRDataset(train_items, d.height, d.width, d.channels, skipped, charset, model.columns,
                              max_width=d.max_width, stride=model.column_stride, levels=d.auto_levels,
                              crop=d.crop_to_ink)
    val_ds = OCRDataset(val_items, d.height, d.width, d.channels, skipped, max_width=d.max_width,
                        levels=d.auto_levels, crop=d.crop_to_ink)
    scaled_down = len(train_ds.scaled_down) + len(val_ds.scaled_down)
    val_targets = [charset.encode("".join(c for c in it.text if not charset.unknown(c))) for it in val_ds.items]
    # Random synthetic texts are no lexicon (and could be millions): only real labels are kept,
    # each as often as it occurs (the language model weighs a word by how often it was seen).
    vocabulary = sorted(it.text for it in train_ds.items if not it.path.startswith(NAME_PREFIX)) \
        if isinstance(train_ds, OCRDataset) else []
    synthetic = len(train_ds) - len(vocabulary)
    mixed = f" ({synthetic} of them synthetic words)" if vocabulary and synthetic else ""
    log(f"{len(train_ds)} training{mixed} and {len(val_ds)} validation images, {len(charset) - 1} characters"
        + (f"; skipped: {skipped}" if skipped else "")
        + (f"; {scaled_down} images wider than max_width {d.max_width} scaled down" if scaled_down else ""))
    if not len(train_ds):
        raise DataError("no usable training images left")
    if not len(val_ds):
        raise DataError("no usable validation images left")
    return TrainingData(train_ds, val_ds, charset, val_targets, [it.text for it in val_ds.items], vocabulary,
                        skipped), model
