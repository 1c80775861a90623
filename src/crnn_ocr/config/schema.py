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

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from crnn_ocr.config.fields import ConfigError, check
from crnn_ocr.config.files import read_toml
from crnn_ocr.config.sections import (
    PREDATED,
    SECTIONS,
    SYNTHETIC_WORDS,
    DataConfig,
    ModelConfig,
    TrainConfig,
    check_backbone,
)

PRESETS = {
    # ``crnn-ocr demo``: synthetic captchas (path ""). The defaults suit handwriting and cost the
    # captcha demo several times its speed: a slimmer network, one column per 8 pixels, no warp,
    # and the CTC shortcut that gets it off the blank plateau early (configs/studies/captcha_fast).
    "demo": {"data": {"elastic": 0.0, "trim_padding": False, "augment": False},
             "model": {"cnn_channels": [16, 32, 64, 64, 128], "rnn_hidden": 128, "dropout": 0.1, "width_pool": 8,
                       "ctc_shortcut": 1.0, "shortcut_pool": 2, "pretrained": "none"},
             "train": {"epochs": 5, "batch_size": 16, "lr": 1.5e-3, "warmup_epochs": 0.5}},
    # Synthetic words rendered from the system's fonts (``crnn-ocr pretrain``); its warm-up is
    # min(1, epochs / 10) unless given (few long epochs want less than a whole one).
    # The values of the keys whose defaults changed since are pinned, so that the recreate
    # commands of pretrained/README.md still make the same runs.
    "pretrain": {"data": {"path": SYNTHETIC_WORDS, "height": 32, "width": 128, "synthetic_train": 20000,
                          "synthetic_val": 500, "trim_padding": False, "elastic": 0.0},
                 "model": {"backbone": "resnet18", "pretrained": "", "rnn_hidden": 128},
                 "train": {"epochs": 5, "batch_size": 32, "warmup_epochs": 0.5, "weight_decay": 0.01}},
}


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
        check_backbone(self.model.backbone, self.model.width_pool)
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
