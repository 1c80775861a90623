"""The training-data API in one import, for callers written before it was split up.

``items`` (Item, Skipped, DataError), ``layouts`` (folders on disk), ``synth_captcha`` and
``synth_text`` (generated data), ``sources`` (the items of a run) and ``dataset`` (decoded
in-memory data and training batches). New code imports from those modules.
"""
from .dataset import OCRDataset, collate, decode_images, width_bucketed
from .items import DataError, Item, Skipped
from .layouts import detect_layout, items_of, load_folder, load_iam, load_tsv, read_ids, sample, split
from .config import SYNTHETIC_WORDS
from .sources import evaluation_items, training_items
from .synth_captcha import CAPTCHA_ALPHABET, synthetic_captchas

__all__ = ["CAPTCHA_ALPHABET", "SYNTHETIC_WORDS", "DataError", "Item", "OCRDataset", "Skipped", "collate",
           "decode_images", "detect_layout", "evaluation_items", "items_of", "load_folder", "load_iam", "load_tsv",
           "read_ids", "sample", "split", "synthetic_captchas", "training_items", "width_bucketed"]
