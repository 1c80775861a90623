"""Experiment configuration: three dataclasses, read from a TOML file, overridden by flags.

A config file has up to three tables, ``[data]``, ``[model]`` and ``[train]``, whose keys are
the fields below. Unknown keys are an error, so a typo never silently does nothing.
"""
from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


@dataclass
class DataConfig:
    """Where the images come from and how they are turned into tensors."""

    path: str = ""  # empty: synthetic captchas generated in memory; "synth:words": words rendered from fonts
    height: int = 48  # images are resized to this height, keeping the aspect ratio
    width: int = 192  # ... and left-aligned, padded (or shrunk) to this width
    channels: int = 1  # 1 = grayscale, 3 = RGB
    label_sep: str = ""  # captcha folders: the label is the file stem up to this separator
    train_ids: list[str] = field(default_factory=list)  # IAM: id lists to train on
    val_ids: list[str] = field(default_factory=list)  # IAM: id lists to validate on
    train_limit: int = 0  # keep this many training items (seeded sample); 0 = all
    val_limit: int = 0  # same for validation
    keep_err: bool = False  # IAM: keep words whose segmentation is marked `err`
    augment: bool = True  # random affine, blur and noise on training batches
    elastic: float = 0.0  # augmentation: smooth random warp of about this many pixels (handwriting: 2.5); 0 = off
    trim_padding: bool = False  # batch images of similar width and cut off the padding (train and inference)
    synthetic_train: int = 3000  # synthetic default: number of training captchas
    synthetic_val: int = 300  # ... and validation captchas


@dataclass
class ModelConfig:
    """The CRNN: a CNN backbone, a bidirectional GRU and a linear classifier."""

    backbone: str = "simple"  # "simple" or "resnet18"
    cnn_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128, 256])  # simple backbone widths
    cnn_blocks: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])  # simple backbone: residual blocks per stage
    column_pool: str = "flatten"  # "flatten" the CNN's remaining height into each column's features, or "max" over it
    ctc_shortcut: float = 0.0  # weight of the training-only CTC shortcut head's loss (e.g. 0.1); 0 = no head
    pretrained: str = ""  # "", "imagenet", or the path of a crnn-ocr checkpoint
    rnn_hidden: int = 128
    rnn_layers: int = 2
    dropout: float = 0.2


@dataclass
class TrainConfig:
    """The optimisation loop."""

    epochs: int = 40
    batch_size: int = 16
    lr: float = 1e-3  # peak learning rate after warm-up
    weight_decay: float = 1e-2
    warmup_epochs: float = 1.0  # linear warm-up, then cosine decay to lr * min_lr_ratio
    min_lr_ratio: float = 0.01
    grad_clip: float = 5.0
    ema: float = 0.0  # decay of a moving average of the weights (e.g. 0.999) that validation and best.pt use; 0 = off
    patience: int = 0  # early stopping: epochs without a better val CER; 0 = never stop
    seed: int = 0
    amp: bool = True  # bfloat16 autocast for the training step (CTC stays in float32)
    channels_last: bool = True  # NHWC memory layout for the convolutions
    threads: int = 0  # torch threads; 0 = every core
    device: str = "auto"  # auto (CUDA if present, else CPU), cpu, cuda or mps
    tensorboard: bool = False  # also log scalars and samples to RUN/tensorboard


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        cfg = cls()
        for section, values in d.items():
            if section not in ("data", "model", "train"):
                raise ValueError(f"unknown config table [{section}] (expected data, model, train)")
            target = getattr(cfg, section)
            known = {f.name for f in fields(target)}
            for key, value in values.items():
                if key not in known:
                    raise ValueError(f"unknown key {key!r} in [{section}]; known: {', '.join(sorted(known))}")
                setattr(target, key, value)
        return cfg

    @classmethod
    def from_toml(cls, path: str | Path) -> Config:
        """Read a config file. Paths in it are used as written (relative to the working folder)."""
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except FileNotFoundError:
            raise ValueError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"config file {path} is not valid TOML: {e}") from None
        return cls.from_dict(raw)
