"""Experiment configuration: three dataclasses, read from a TOML file, overridden by flags.

A config file has up to three tables, ``[data]``, ``[model]`` and ``[train]``, whose keys are
the fields below. Unknown keys are an error, so a typo never silently does nothing. Every field
carries its help text and allowed values (``option``): the command-line flags are generated
from them (``crnn_ocr.options``), and every value is checked when a config is built — from a
file, from a checkpoint's dict or from flags — with a one-line ``ConfigError`` naming the key,
the value and what is allowed (``config_fields``). Keys missing from a dict (an older
checkpoint) take their defaults, or with ``Config.saved`` their value from before they
existed. Pretraining is a preset (``Config.preset("pretrain")``).
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .config_fields import ConfigError, check, option
from .files import read_text_file
from .images import MAX_WIDTH
from .model import SIMPLE_CHANNELS

SYNTHETIC_WORDS = "synth:words"  # a DataConfig.path that means: words rendered from system fonts
SYNTHETIC_LINES = "synth:lines"  # ... printed lines rendered from the training font families (synth_lines)
MAX_CONFIG_BYTES = 2**20  # a config file is a few lines; /dev/zero is not one
PATH_KEYS = {"data": ("path", "train_ids", "val_ids", "synthetic_words"), "model": ("pretrained",)}
AUTO = "auto"  # [model] pretrained: the bundled synthetic-words model if it fits (checkpoint.auto_start)
NOT_PATHS = ("", "none", AUTO, SYNTHETIC_WORDS, SYNTHETIC_LINES, "imagenet")  # values of those keys that name no file
MIN_SIZE = 16  # both backbones divide the height by 16 and the width by 4


# Settings on by default that older models learnt without: what a saved config without them means.
PREDATED = {("data", "auto_levels"): False, ("data", "elastic"): 0.0}


@dataclass
class DataConfig:
    """Where the images come from and how they are turned into tensors."""

    path: str = option("", "dataset folder (split folders, captcha images, IAM root or labels.tsv); "
                       f"'' = synthetic captchas, '{SYNTHETIC_WORDS}' = words rendered from fonts, "
                       f"'{SYNTHETIC_LINES}' = printed lines (validated in held-out font families)", flag="--data")
    height: int = option(48, "images are resized to this height, keeping the aspect ratio", ge=MIN_SIZE)
    width: int = option(192, "... and left-aligned, padded (or shrunk) to this width; 0 = any width: each "
                        "image keeps its own (lines)", ge=MIN_SIZE, special=0)
    max_width: int = option(MAX_WIDTH, "width = 0: the widest input; a wider image is scaled down to it, "
                            "with a warning", ge=MIN_SIZE)
    channels: int = option(1, "1 = grayscale, 3 = RGB", choices=(1, 3))
    auto_levels: bool = option(True, "an image of light text on a dark background is first inverted to dark on "
                               "light, and one of faint text (ink and paper under 100 grey levels apart) "
                               "stretched to dark ink on white (training and reading)")
    crop_to_ink: bool = option(False, "each image is first cut to the box of its ink, as tight as IAM's "
                               "word crops, so margins around the text do not shrink it (training and reading)")
    label_sep: str = option("", "captcha folders: the label is the file stem up to this separator")
    train_ids: list[str] = option([], "IAM: word-id lists to train on")
    val_ids: list[str] = option([], "IAM: word-id lists to validate on")
    train_limit: int = option(0, "keep a seeded sample of this many training items; 0 = all", ge=0)
    val_limit: int = option(0, "the same for validation", ge=0)
    keep_err: bool = option(False, "IAM: keep words whose segmentation is marked err")
    augment: bool = option(True, "random affine, blur and noise on training batches")
    elastic: float = option(2.5, "augmentation: smooth random warp of about this many pixels; "
                            "0 = off", ge=0)
    degrade: float = option(0.0, "augmentation: this share of training images is also degraded as other scans "
                            "are: low contrast, low resolution or strong noise, one of them (0 = off)", ge=0, lt=1)
    erase: float = option(0.0, "augmentation: this share of training images each lose a random vertical strip "
                          "(up to half the height wide) to the paper's colour; 0 = off", ge=0, lt=1)
    trim_padding: bool = option(True, "batch images of similar width and cut off the padding "
                                "(training and reading)")
    synthetic_train: int = option(3000, "synthetic data: number of training images", ge=1, aliases=("--images",))
    synthetic_val: int = option(300, "synthetic data: number of validation images", ge=1,
                                aliases=("--val-images",))
    synthetic_handwriting: float = option(0.5, "synthetic words: share drawn in handwriting-like fonts "
                                          "(0-1)", ge=0, lt=1, special=1.0)
    synthetic_words: str = option("", "synthetic words: a word list to draw them from, one word or "
                                  "'word<TAB>count' per line, drawn by count; '' = the system dictionary")
    synthetic_mix: float = option(0.0, "a real dataset's training images are this share synthetic words "
                                  "(drawn as synthetic_handwriting and synthetic_words say, of the real "
                                  "labels' characters; rendered once, augmented like the rest); 0 = off; "
                                  "below 0.95 (19 rendered words per real one)", ge=0, lt=0.95)

    @property
    def any_width(self) -> bool:
        """Any-width mode: every image is read at its own width, up to ``max_width``."""
        return self.width == 0

    @property
    def widest(self) -> int:
        """The widest input the model reads: ``width``, or ``max_width`` in any-width mode."""
        return self.width or self.max_width


@dataclass
class ModelConfig:
    """The CRNN: a CNN backbone, a bidirectional GRU and a linear classifier."""

    backbone: str = option("simple", "the CNN", choices=("simple", "resnet18"))
    cnn_channels: list[int] = option(list(SIMPLE_CHANNELS), "simple backbone: its five channel widths", ge=1, length=5)
    cnn_blocks: list[int] = option([0, 0, 0, 0, 0], "simple backbone: residual blocks after each of its "
                                   "five conv blocks", ge=0, length=5)
    column_pool: str = option("flatten", "CNN columns to GRU: flatten the remaining height, or max over it",
                              choices=("flatten", "max"))
    ctc_shortcut: float = option(0.0, "weight of the training-only CTC shortcut head's loss (e.g. 0.1); "
                                 "0 = no head", ge=0)
    shortcut_pool: int = option(1, "the shortcut head reads the CNN's columns max-pooled by this factor "
                                "(2: a coarser CTC, which leaves the blank plateau sooner)", ge=1)
    width_pool: int = option(4, "simple backbone: one output column per this many pixels of width "
                             "(8: half the columns, a faster GRU, for short text)", choices=(4, 8))
    pretrained: str = option(AUTO, "what to start from: 'auto' = the bundled synthetic-words model when this CNN "
                             "is its (the simple backbone at its default widths, grayscale), else nothing; '' or "
                             "'none' = nothing (from scratch); 'imagenet' (torchvision weights); a bundled model's "
                             "name (`crnn-ocr models`); or a crnn-ocr checkpoint or .safetensors file")
    rnn_hidden: int = option(256, "GRU units per direction", ge=1)
    rnn_layers: int = option(2, "GRU layers", ge=1)
    dropout: float = option(0.2, "dropout before and after the GRU", ge=0, lt=1)


@dataclass
class TrainConfig:
    """The optimisation loop."""

    epochs: int = option(40, "passes over the training data", ge=1)
    batch_size: int = option(16, "images per step", ge=1)
    lr: float = option(1e-3, "peak learning rate after warm-up", gt=0)
    weight_decay: float = option(0.1, "AdamW weight decay (0.01 before it was measured on new handwriting)", ge=0)
    cnn_lr: float = option(1.0, "the CNN's learning rate as a share of lr (e.g. 0.1 to keep more of a "
                           "pretrained CNN); 1 = the same", gt=0)
    warmup_epochs: float = option(1.0, "linear warm-up, then cosine decay to lr * min_lr_ratio", ge=0)
    min_lr_ratio: float = option(0.01, "the last learning rate as a fraction of lr", ge=0, lt=1)
    grad_clip: float = option(5.0, "gradient norm clipping", gt=0)
    ema: float = option(0.0, "decay of a moving average of the weights (e.g. 0.999, reached after a "
                        "warm-up) that validation and best.pt use; 0 = off", ge=0, lt=1)
    patience: int = option(0, "early stopping after this many epochs without a better validation CER; "
                           "0 = never", ge=0)
    seed: int = option(0, "seeds the split, the sample, the order, the augmentation and the weights", ge=0,
                       lt=2**32)  # torch's generators take at most 64 bits, and the order's seed is seed * 100_003
    amp: bool = option(True, "mixed precision where the hardware has it: bfloat16 autocast (float16 with a "
                       "loss scaler on older GPUs; float32 on CPUs without native bfloat16); CTC stays in float32")
    channels_last: bool = option(True, "NHWC memory layout for the convolutions")
    threads: int = option(0, "torch threads; 0 = every core", ge=0)
    device: str = option("auto", "auto (CUDA if present, else CPU), cpu, cuda or mps",
                         choices=("auto", "cpu", "cuda", "mps"))
    tensorboard: bool = option(False, "also log scalars and samples to RUN/tensorboard")


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
PRESETS = {
    # Synthetic words rendered from the system's fonts (``crnn-ocr pretrain``); its warm-up is
    # min(1, epochs / 10) unless given (few long epochs want less than a whole one).
    # The values of the keys whose defaults changed since are pinned, so that the recreate
    # commands of pretrained/README.md still make the same runs.
    "pretrain": {"data": {"path": SYNTHETIC_WORDS, "height": 32, "width": 128, "synthetic_train": 20000,
                          "synthetic_val": 500, "trim_padding": False, "elastic": 0.0},
                 "model": {"backbone": "resnet18", "pretrained": "", "rnn_hidden": 128},
                 "train": {"epochs": 5, "batch_size": 32, "warmup_epochs": 0.5, "weight_decay": 0.01}},
}


def resolve_paths(raw: dict, folder: Path) -> dict:
    """The tables of a config file with the relative paths of ``PATH_KEYS`` joined to ``folder``
    (values of the wrong type are left for ``check`` to refuse)."""
    from .registry import models

    bundled = set(models())  # ``pretrained`` may name a bundled model: not a path either

    def resolved(value, key: str = ""):
        if not isinstance(value, str) or value in NOT_PATHS or Path(value).is_absolute() \
                or (key == "pretrained" and value in bundled):
            return value
        path = os.path.normpath(os.path.join(os.path.abspath(folder), value))
        if key == "pretrained" and os.sep not in value and "." not in value and not os.path.lexists(path):
            return value  # a bare name that is no file here: a misspelt model's name, reported as that
        return path

    for section, keys in PATH_KEYS.items():
        table, types = raw.get(section), {f.name: f.type for f in fields(SECTIONS[section])}
        for key in keys if isinstance(table, dict) else ():
            if key in table:
                value = table[key]
                table[key] = [resolved(v) for v in value] if isinstance(value, list) else \
                    resolved(value, key) if types[key] == "str" else value  # a text for a list: refused later
    return raw


def read_toml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """A config file's tables, its paths resolved (``resolve_paths``), laid over those of the
    file its top-level ``base`` key names, if any (a chain of bases is followed; a loop is an
    error): an experiment that differs from another in one key says only that key."""
    try:
        # utf-8-sig: a byte-order mark (Windows editors write one) is not TOML, but is no reason to refuse the file
        raw = tomllib.loads(read_text_file(path, "config file", MAX_CONFIG_BYTES).decode("utf-8-sig"))
    except OSError as e:
        raise ConfigError(str(e)) from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    base = raw.pop("base", None)
    raw = resolve_paths(raw, path.parent)
    if base is None:
        return raw
    if not isinstance(base, str) or not base:
        raise ConfigError(f"config file {path}: base must name another config file, not {base!r}")
    base_path, chain = path.parent / base, (*seen, path.resolve())
    if base_path.resolve() in chain:
        raise ConfigError(f"config file {path}: base {base!r} leads back to itself")
    merged = read_toml(base_path, chain)
    for section, table in raw.items():
        if isinstance(table, dict) and isinstance(merged.get(section), dict):
            merged[section] = {**merged[section], **table}
        else:
            merged[section] = table  # a new table, or a wrong type for from_dict to refuse
    return merged


def without_folders(config: dict) -> dict:
    """A config dict (``Config.to_dict``) whose file paths (the data, its id lists, the
    weights it started from) keep only their last name: what a released file records of the
    run, without the folders of the machine that trained it."""
    out = {section: dict(table) if isinstance(table, dict) else table for section, table in config.items()}
    for section, keys in PATH_KEYS.items():
        table = out.get(section)
        for key in keys if isinstance(table, dict) else ():
            value = table.get(key)
            if isinstance(value, list):
                table[key] = [Path(v).name for v in value]
            elif isinstance(value, str) and value not in NOT_PATHS:
                table[key] = Path(value).name
    return out


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> Config:
        """Check every value (see ``check``); returns the config, with ints made floats where
        a float is meant."""
        for section in SECTIONS:
            target = getattr(self, section)
            for f in fields(target):
                setattr(target, f.name, check(section, f, getattr(target, f.name)))
        if self.model.backbone == "resnet18" and self.model.width_pool != 4:
            raise ConfigError(f"[model] width_pool = {self.model.width_pool} needs the simple backbone "
                              "(resnet18 reduces the width by 4 only)")
        return self

    @classmethod
    def saved(cls, d: dict) -> Config:
        """A saved model's config (checkpoint, model file, ONNX metadata): ``from_dict``, except
        that a setting the model predates takes its value from before it existed (``PREDATED``),
        so an older model reads its images as it learnt them."""
        cfg = cls.from_dict(d)
        for (section, key), before in PREDATED.items():
            if key not in (d.get(section) or {}):
                setattr(getattr(cfg, section), key, before)
        return cfg

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        """A config from ``{"data": {...}, "model": {...}, "train": {...}}``: missing keys take
        their defaults, unknown ones and bad values raise ``ConfigError``."""
        cfg = cls()
        if not isinstance(d, dict):
            raise ConfigError(f"a config is a table of [data], [model] and [train] tables, not {d!r}")
        for section, values in d.items():
            if section not in SECTIONS:
                raise ConfigError(f"unknown config table [{section}] (expected data, model, train)")
            if not isinstance(values, dict):
                raise ConfigError(f"[{section}] must be a table of keys, not {values!r}")
            target = getattr(cfg, section)
            known = {f.name for f in fields(target)}
            for key, value in values.items():
                if key not in known:
                    raise ConfigError(f"unknown key {key!r} in [{section}]; known: {', '.join(sorted(known))}")
                setattr(target, key, value)
        return cfg.validate()

    @classmethod
    def from_toml(cls, path: str | Path) -> Config:
        """Read a config file. Relative paths in it (``[data] path``, ``train_ids``, ``val_ids``,
        ``[model] pretrained``) are relative to the file's folder, so a config works from any
        working folder; paths given as flags stay relative to the working folder. A top-level
        ``base = "other.toml"`` (relative to the file's folder) starts from that file's tables;
        the keys given here replace its keys one by one (``read_toml``)."""
        return cls.from_dict(read_toml(Path(path)))

    @classmethod
    def preset(cls, name: str) -> Config:
        """A named starting point (``"pretrain"``), to override like the defaults."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
        return cls.from_dict(PRESETS[name])
