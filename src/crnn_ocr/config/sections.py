"""The three tables of a config, as dataclasses: ``[data]``, ``[model]`` and ``[train]``.

Every field carries its default, help text and allowed values (``config.fields.option``): the
command-line flags are generated from them (``cli.options``) and every value is checked when
a config is built. The constants other stages share (the widest input, the simple backbone's
widths, the backbones and their width reductions) are defined here, once.
"""
from __future__ import annotations

from dataclasses import dataclass

from crnn_ocr.config.fields import ConfigError, option

SYNTHETIC_WORDS = "synth:words"  # a DataConfig.path that means: words rendered from system fonts
SYNTHETIC_LINES = "synth:lines"  # ... printed lines rendered from the training font families (data.synth.lines)
AUTO = "auto"  # [model] pretrained: the bundled synthetic-words model if it fits (pretrained.auto_start)
MIN_SIZE = 16  # both backbones divide the height by 16 and the width by 4
MAX_WIDTH = 2048  # any-width mode: the default widest input (``[data] max_width``)
SIMPLE_CHANNELS = (32, 64, 128, 128, 256)  # the simple backbone's five widths (``[model] cnn_channels``)
# backbone -> the width reductions it can make (``[model] width_pool``); model.crnn.BACKBONES builds them
WIDTH_POOLS = {"simple": (4, 8), "resnet18": (4,)}


def check_backbone(backbone: str, width_pool: int) -> None:
    """Refuse a backbone this package does not build, or a width reduction it cannot make."""
    if backbone not in WIDTH_POOLS:
        raise ConfigError(f"unknown backbone {backbone!r} (expected one of {', '.join(WIDTH_POOLS)})")
    if width_pool not in WIDTH_POOLS[backbone]:
        raise ConfigError(f"[model] width_pool = {width_pool}: the {backbone} backbone reduces the width by "
                          f"{' or '.join(map(str, WIDTH_POOLS[backbone]))} only")


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

    backbone: str = option("simple", "the CNN", choices=tuple(WIDTH_POOLS))
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
    threads: int = option(0, "CPU threads; 0 = the cores the machine can give (usable less busy)", ge=0)
    device: str = option("auto", "auto (CUDA if present, else CPU), cpu, cuda or mps",
                         choices=("auto", "cpu", "cuda", "mps"))
    tensorboard: bool = option(False, "also log scalars and samples to RUN/tensorboard")


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
