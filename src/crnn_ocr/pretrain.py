"""Pretraining on synthetic words, for a backbone that needs no download.

``pretrain(config, out)`` is the ordinary trainer run on word images rendered from the
system's fonts (``DataConfig.path = "synth:words"``, see ``synth_text``); afterwards it writes
``backbone.safetensors`` beside ``best.pt``: the best model's weights in float16, with its
config, charset and validation scores as metadata. That file is a few MB, small enough to
commit, and ``crnn-ocr train --pretrained FILE`` starts from it like from a checkpoint
(``checkpoint.load_pretrained``: matching layers are copied, a classifier for another charset
starts fresh).
"""
from __future__ import annotations

import json
from pathlib import Path

from . import checkpoint
from .config import Config
from .data import SYNTHETIC_WORDS

WEIGHTS_FILE = "backbone.safetensors"


def pretrain_config(backbone: str = "resnet18", images: int = 20000, val_images: int = 500, epochs: int = 5,
                    batch_size: int = 32, lr: float = 1e-3, threads: int = 0, seed: int = 0,
                    height: int = 32, width: int = 128, channels: int = 1, rnn_hidden: int = 128,
                    trim_padding: bool = False) -> Config:
    """The config of a pretraining run: ``images`` rendered training words, ``val_images``
    validation words, and the project's defaults for everything else."""
    cfg = Config()
    d, t = cfg.data, cfg.train
    d.path, d.synthetic_train, d.synthetic_val = SYNTHETIC_WORDS, images, val_images
    d.height, d.width, d.channels, d.trim_padding = height, width, channels, trim_padding
    cfg.model.backbone, cfg.model.rnn_hidden = backbone, rnn_hidden
    t.epochs, t.batch_size, t.lr, t.threads, t.seed = epochs, batch_size, lr, threads, seed
    t.warmup_epochs = min(1.0, 0.1 * epochs)  # with few long epochs, a whole epoch of warm-up is too much
    return cfg


def export_weights(checkpoint_path: str | Path, out_path: str | Path) -> Path:
    """Write the model of a checkpoint as float16 safetensors, with its config, charset and
    best validation scores as string metadata."""
    from safetensors.torch import save_file

    ckpt = checkpoint.load(checkpoint_path)
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in ckpt["model"].items()}
    best = (ckpt.get("history") or [{}])[-1]  # best.pt's history ends at the epoch it was saved
    metadata = {"format": "crnn-ocr weights", "config": json.dumps(ckpt["config"]), "charset": ckpt["charset"],
                "epoch": str(ckpt.get("epoch", "")), "val_cer": str(best.get("val_cer", "")),
                "val_word_accuracy": str(best.get("val_word_accuracy", ""))}
    save_file(tensors, str(out_path), metadata=metadata)
    return Path(out_path)


def pretrain(config: Config, out_dir: str | Path, log=print) -> dict:
    """Train on synthetic words as ``config`` says, then export ``backbone.safetensors``;
    returns the best epoch's validation metrics."""
    from .train import train

    result = train(config, out_dir, log=log)
    if not result.get("interrupted"):
        weights = export_weights(Path(out_dir) / "best.pt", Path(out_dir) / WEIGHTS_FILE)
        log(f"pretrained weights: {weights} ({weights.stat().st_size / 1e6:.1f} MB); "
            f"fine-tune with: crnn-ocr train --pretrained {weights} --backbone {config.model.backbone}")
    return result
