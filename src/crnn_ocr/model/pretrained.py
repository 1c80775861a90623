"""A model started from another's weights: a bundled model, a checkpoint or a model file.

``[model] pretrained`` names the start (``"auto"``: the bundled synthetic-words model when the
network fits). ``load_pretrained`` copies every tensor whose shape fits, adapts the GRU's input
to another height and the CNN to other residual blocks, and keeps the classifier rows of the
characters both alphabets share, so a model for a new alphabet or height starts from what the
other learnt. Not the place for saving and loading checkpoints (``checkpoint``).
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F

from crnn_ocr.config.schema import Config
from crnn_ocr.config.sections import AUTO, SIMPLE_CHANNELS
from crnn_ocr.hub import registry
from crnn_ocr.model.charset import Charset
from crnn_ocr.model.checkpoint import read_weights
from crnn_ocr.model.crnn import CRNN
from crnn_ocr.model.errors import CheckpointError


FEATURE_INPUTS = ("rnn.weight_ih_l0", "rnn.weight_ih_l0_reverse", "shortcut.weight")


def other_height(w: torch.Tensor, shape: torch.Size, rows: int) -> torch.Tensor:
    """Input weights ``w`` over flattened features of another number of rows (another input
    height), made to fit ``shape`` (``rows`` rows): each channel's weights are interpolated
    along the rows and scaled so that a feature map that is the same in every row gives the
    same sum. ``w`` unchanged if it is not such a weight."""
    if w.ndim < 2 or w.shape == shape or w.ndim != len(shape) or w.shape[0] != shape[0] \
            or w.shape[2:] != shape[2:] or shape[1] % rows:
        return w
    channels = shape[1] // rows
    if w.shape[1] % channels:
        return w
    src_rows = w.shape[1] // channels
    v = w.unflatten(1, (channels, src_rows)).movedim(2, -1)  # (out, C, *kernel, rows)
    v = F.interpolate(v.reshape(-1, 1, src_rows).float(), size=rows, mode="linear", align_corners=False)
    v = v.reshape(*w.shape[:1], channels, *w.shape[2:], rows).movedim(-1, 2).flatten(1, 2)
    return (v * (src_rows / rows)).to(w.dtype)


def cnn_units(keys) -> list[tuple[int, int, int]]:
    """The simple backbone's layers in a state dict, as (stage, residual block or -1 for the
    stage's conv block, index in ``model.cnn``); pooling layers have no weights and no entry."""
    found = {}
    for key in keys:
        m = re.match(r"cnn\.(\d+)\.(body\.|0\.weight$)", key)
        if m:
            found[int(m[1])] = m[2] == "body."
    units, stage, block = [], -1, 0
    for index in sorted(found):
        if found[index]:
            units.append((stage, block, index))
            block += 1
        else:
            stage, block = stage + 1, 0
            units.append((stage, -1, index))
    return units


def renumber_cnn(source: dict, own_keys) -> dict:
    """``source``'s simple-backbone weights renamed to the layers of a model with residual
    blocks added or removed (``cnn_blocks``): each stage's conv block goes to the same stage's,
    each residual block to the same stage's block of that number. Keys without a counterpart
    keep their names (and so are not loaded)."""
    own = {(stage, block): index for stage, block, index in cnn_units(own_keys)}
    moves = {index: own[stage, block] for stage, block, index in cnn_units(source) if (stage, block) in own}
    renamed = {}
    for key, value in source.items():
        m = re.match(r"cnn\.(\d+)\.", key)
        if m and int(m[1]) in moves:
            key = f"cnn.{moves[int(m[1])]}.{key[m.end():]}"
        renamed[key] = value
    return renamed


AUTO_START = "synth-words"  # the bundled model that ``[model] pretrained = "auto"`` starts from


def auto_start(config: Config) -> str:
    """What ``pretrained = "auto"`` starts from: the bundled synthetic-words model when the
    config's CNN is the one it has (the simple backbone at its default widths, grayscale;
    residual blocks, another height or column pooling are fine, see ``load_pretrained``),
    else ``""``: from scratch."""
    m = config.model
    fits = m.backbone == "simple" and tuple(m.cnn_channels) == SIMPLE_CHANNELS and config.data.channels == 1
    return AUTO_START if fits and AUTO_START in registry.models() else ""


def pretrained_start(config: Config) -> str:
    """What ``[model] pretrained`` starts from: ``"auto"`` resolved (``auto_start``), ``"none"``
    as ``""`` (from scratch), any other value as it is."""
    value = config.model.pretrained
    return auto_start(config) if value == AUTO else "" if value == "none" else value


def check_start(config: Config) -> None:
    """Fail before the data load when ``[model] pretrained`` names no bundled model and no file."""
    start = pretrained_start(config)
    path = registry.resolve(start) if start not in ("", "imagenet") else None
    if path is not None and path.is_dir():
        raise CheckpointError(f"pretrained start {start} is a folder, not a checkpoint file")
    if path is not None and not path.exists():
        raise CheckpointError(f"pretrained start not found: {start}")


def start_from_pretrained(model: CRNN, config: Config, charset: Charset, log=print) -> None:
    """Load what ``[model] pretrained`` names into a fresh ``model`` and log what was copied
    (ImageNet weights are loaded when the model is built)."""
    start = pretrained_start(config)
    if config.model.pretrained == AUTO:
        log(f"pretrained: auto -> {start or 'none (from scratch): no bundled model has this CNN'}")
    if start not in ("", "imagenet"):
        copied, total, rows = load_pretrained(model, start, charset)
        log(f"pretrained: copied {copied} of {total} tensors from {start}, "
            f"and {rows} of {len(charset)} classifier rows (blank and known characters)")


def load_pretrained(model: CRNN, path: str | Path, charset: Charset | None = None) -> tuple[int, int, int]:
    """Copy every weight of checkpoint (or ``.safetensors`` file, or bundled model named)
    ``path`` whose name and shape match into ``model``.

    The simple backbone's layers are matched by stage, not by index, so a model with
    residual blocks added (``cnn_blocks``) starts from a model without them, the new blocks
    as the identity (``renumber_cnn``). Trained at another input height, the GRU's input
    weights are resampled to this model's rows of CNN features (``other_height``), so a
    48-pixel model starts a 64-pixel one.
    The classifier is carried over row by row: the blank and every character of ``charset``
    (the model's) that the source model also knows start from the source's row; characters
    it does not know keep their fresh initialisation. Returns (tensors copied whole, tensors
    of ``model``, classifier rows carried over).
    """
    source, source_chars = read_weights(registry.resolve(path))
    own = model.state_dict()
    source = renumber_cnn(source, own)
    source = {k: other_height(v, own[k].shape, model.feature_rows) if k in FEATURE_INPUTS and k in own else v
              for k, v in source.items()}
    matching = {k: v for k, v in source.items()
                if k in own and own[k].shape == getattr(v, "shape", None) and not k.startswith("fc.")}
    if not any(k.startswith("cnn.") for k in matching):
        raise CheckpointError(f"{path}: no backbone weights match this model (another backbone or input size?)")
    model.load_state_dict(matching, strict=False)
    rows = 0
    if charset is not None and source_chars and source.get("fc.weight") is not None \
            and source["fc.weight"].shape[1] == model.fc.weight.shape[1]:
        src_index = {c: i + 1 for i, c in enumerate(source_chars)}
        pairs = [(0, 0)] + [(i + 1, src_index[c]) for i, c in enumerate(charset.chars) if c in src_index]
        with torch.no_grad():
            for dst, src in pairs:
                model.fc.weight[dst] = source["fc.weight"][src]
                model.fc.bias[dst] = source["fc.bias"][src]
        rows = len(pairs)
    return len(matching), len(own), rows
