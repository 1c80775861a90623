"""Pretraining on synthetic words, for a backbone that needs no download.

``pretrain(config, out)`` is the ordinary trainer run on word images rendered from the
system's fonts (the ``"pretrain"`` config preset: ``DataConfig.path = "synth:words"``, see
``synth_text``); afterwards it writes
``backbone.safetensors`` beside ``best.pt``: the best model's weights in float16, with its
config, charset and validation scores as metadata. That file is a few MB, small enough to
commit, and ``crnn-ocr train --pretrained FILE`` starts from it like from a checkpoint
(``model.pretrained.load_pretrained``: matching layers are copied, a classifier for another charset
starts fresh).
"""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from crnn_ocr.config.files import without_folders
from crnn_ocr.config.schema import Config
from crnn_ocr.config.sections import SECTIONS
from crnn_ocr.model import checkpoint

WEIGHTS_FILE = "backbone.safetensors"


ALIASES = {"images": "synthetic_train", "val_images": "synthetic_val"}


def pretrain_config(**overrides) -> Config:
    """The ``"pretrain"`` preset (``Config.preset``) with config fields overridden by name
    (``images`` and ``val_images`` name ``synthetic_train`` and ``synthetic_val``). Unless
    ``warmup_epochs`` is given, the warm-up is min(1, epochs / 10): with few long epochs, a
    whole epoch of warm-up is too much."""
    cfg = Config.preset("pretrain")
    sections = {f.name: section for section in SECTIONS for f in fields(SECTIONS[section])}
    for name, value in overrides.items():
        name = ALIASES.get(name, name)
        if name not in sections:
            raise ValueError(f"pretrain_config: no config field {name!r}")
        setattr(getattr(cfg, sections[name]), name, value)
    if "warmup_epochs" not in overrides:
        cfg.train.warmup_epochs = min(1.0, 0.1 * cfg.train.epochs)
    return cfg.validate()


def export_weights(checkpoint_path: str | Path, out_path: str | Path, inference: bool = False) -> Path:
    """Write the model of a checkpoint as float16 safetensors, with its config, charset and
    best validation scores as string metadata (the config's paths without their folders).
    ``inference``: for reading only (a bundled model): without the training-only shortcut
    head, with the training labels as a JSON ``vocabulary`` (the lexicon and language-model
    decoders use them)."""
    from safetensors.torch import save_file

    ckpt = checkpoint.load(checkpoint_path)
    state = checkpoint.inference_weights(ckpt["model"]) if inference else ckpt["model"]
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    best = (ckpt.get("history") or [{}])[-1]  # best.pt's history ends at the epoch it was saved
    metadata = {"format": "crnn-ocr weights", "config": json.dumps(without_folders(ckpt["config"])),
                "charset": ckpt["charset"],
                "epoch": str(ckpt.get("epoch", "")), "val_cer": str(best.get("val_cer", "")),
                "val_word_accuracy": str(best.get("val_word_accuracy", ""))}
    if inference:
        metadata["vocabulary"] = json.dumps(list(ckpt.get("vocabulary", [])), ensure_ascii=False)
    save_file(tensors, str(out_path), metadata=metadata)
    return Path(out_path)


def pretrain(config: Config, out_dir: str | Path, log=print, overwrite: bool = False, resume: bool = False) -> dict:
    """Train on synthetic words as ``config`` says (``resume``: continue the run in
    ``out_dir``), then export ``backbone.safetensors``; returns the best epoch's validation
    metrics."""
    from crnn_ocr.training.train import train

    result = train(config, out_dir, resume=resume, log=log, overwrite=overwrite)
    if not result.get("interrupted"):
        weights = export_weights(Path(out_dir) / "best.pt", Path(out_dir) / WEIGHTS_FILE)
        log(f"pretrained weights: {weights} ({weights.stat().st_size / 1e6:.1f} MB); "
            f"fine-tune with: crnn-ocr train --pretrained {weights} --backbone {config.model.backbone}")
    return result
