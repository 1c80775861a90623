"""Checkpoints as plain data: saved atomically, loaded without running any pickled code.

A checkpoint is a dict of tensors, numbers and strings: ``model`` (state dict), ``config``
(the ``Config`` as a dict), ``charset`` (a string), ``epoch``, and for resuming the
optimizer, scheduler, step counters and RNG state. ``torch.load(..., weights_only=True)``
reads it; anything that would need arbitrary unpickling is refused.
"""
from __future__ import annotations

import json
import pickle
import re
import warnings
from pathlib import Path

import torch

from crnn_ocr.hub import registry
from crnn_ocr.model.charset import Charset
from crnn_ocr.config.schema import Config
from crnn_ocr.utils.files import atomic_file
from crnn_ocr.model.crnn import CRNN
from crnn_ocr.model.errors import CheckpointError  # noqa: F401  (where the commands and tests import it from)


def save(obj: dict, path: str | Path) -> None:
    """Write ``obj`` to a temporary file beside ``path``, then rename it into place
    (``files.atomic_file``): a crash mid-write leaves the previous checkpoint intact."""
    with atomic_file(path) as f:
        torch.save(obj, f)


def load(path: str | Path) -> dict:
    """Read a checkpoint safely; ``CheckpointError`` with a one-line reason if it is not one.

    A ``.safetensors`` model file (``load_safetensors``) and an ONNX file written by
    ``crnn-ocr export`` or ``release`` (``load_onnx_weights``) read as a checkpoint too."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_safetensors(path)
    if path.suffix.lower() == ".onnx":
        try:
            from crnn_ocr.model.export import load_onnx_weights
        except ImportError:
            raise CheckpointError(f"{path}: turning an ONNX file back into a PyTorch model needs the onnx package: "
                                  "pip install 'crnn-ocr[train]'") from None
        return load_onnx_weights(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is an empty file, not a checkpoint")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on unusual pickles; the error says enough
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        code = re.search(r"GLOBAL (\S+)", str(e))  # a reference to a function or class, e.g. os.system
        if code:
            raise CheckpointError(f"{path} holds objects other than plain data and tensors ({code.group(1)}); "
                                  "refusing to load it (it could run code)") from None
        raise CheckpointError(f"{path} is not a checkpoint (not a PyTorch file of tensors and plain data); "
                              "refusing to load it") from None
    except Exception as e:  # arbitrary bytes make torch.load fail in many ways (KeyError, EOFError, ...)
        # torch's RuntimeErrors say what is wrong with a damaged file; the others say nothing useful
        reason = str(e).splitlines()[0][:80] if isinstance(e, RuntimeError) and str(e) else "not a PyTorch file"
        raise CheckpointError(f"{path} is not a checkpoint ({reason})") from None
    if not isinstance(ckpt, dict) or not {"model", "config", "charset"} <= ckpt.keys():
        raise CheckpointError(f"{path} is not a crnn-ocr checkpoint (no model, config and charset)")
    if not (isinstance(ckpt["model"], dict) and isinstance(ckpt["config"], dict) and isinstance(ckpt["charset"], str)):
        raise CheckpointError(f"{path} is not a crnn-ocr checkpoint (model, config or charset of the wrong type)")
    return ckpt


def load_safetensors(path: str | Path) -> dict:
    """A float16 ``.safetensors`` model file (``crnn-ocr release``, ``crnn-ocr pretrain``) as a
    checkpoint dict: float32 ``model`` weights, ``config`` and ``charset`` from its metadata,
    and ``vocabulary`` (the training labels) when it has one."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file not found: {path}")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
        ckpt = {"model": {k: v.float() if v.is_floating_point() else v for k, v in state.items()},
                "config": json.loads(meta["config"]), "charset": meta["charset"],
                "vocabulary": json.loads(meta.get("vocabulary", "[]"))}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path} is not a safetensors file ({str(e).splitlines()[0][:80]})") from None
    except (KeyError, ValueError):
        raise CheckpointError(f"{path} is not a crnn-ocr model file (no config and charset in its metadata)") from None
    vocabulary = ckpt["vocabulary"]
    if not isinstance(ckpt["config"], dict) or not (isinstance(vocabulary, list)
                                                    and all(isinstance(w, str) for w in vocabulary)):
        raise CheckpointError(f"{path} is not a crnn-ocr model file (config or vocabulary of the wrong type)")
    return ckpt


def inference_weights(state: dict) -> dict:
    """A model state dict without the training-only CTC shortcut head."""
    return {k: v for k, v in state.items() if not k.startswith("shortcut.")}


def load_model(path: str | Path) -> tuple[CRNN, Charset, Config]:
    """The trained model of a checkpoint, a ``.safetensors`` model file or a bundled model's
    name (``registry``), in eval mode, with its charset and config."""
    path = registry.resolve(path)
    return model_of(load(path), path)


def model_of(ckpt: dict, path: str | Path) -> tuple[CRNN, Charset, Config]:
    """The trained model of a checkpoint ``load`` read from ``path``, as ``load_model``."""
    try:
        config, charset = Config.saved(ckpt["config"]), Charset(ckpt["charset"])
        model = CRNN.from_config(config, charset)
        weights, own = inference_weights(ckpt["model"]), model.state_dict()
        integer = [k for k, v in weights.items()
                   if k in own and own[k].is_floating_point() and torch.is_tensor(v) and not v.is_floating_point()]
        if integer:  # load_state_dict would silently turn them into floats
            raise ValueError(f"integer weights where floats belong ({len(integer)} tensors, first: {integer[0]})")
        model.load_state_dict(weights)
    except (ValueError, TypeError, AttributeError, RuntimeError) as e:
        # load_state_dict's first line is only "Error(s) in loading state_dict for CRNN:"; the next says which
        lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
        detail = lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else lines[0]
        raise CheckpointError(f"{path}: its weights, config and charset do not make a model "
                              f"({detail[:160]})") from None
    broken = [k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:  # a diverged run or a damaged file: it would read every image as nan-confident nonsense
        raise CheckpointError(f"{path}: nan or inf weights in {len(broken)} of its tensors (first: {broken[0]})")
    return model.eval(), charset, config


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """The model weights and charset of a checkpoint, or of a ``.safetensors`` file such as
    the ``backbone.safetensors`` that ``crnn-ocr pretrain`` writes (float16, config and
    charset in its metadata)."""
    if Path(path).suffix != ".safetensors":
        ckpt = load(path)  # a checkpoint or an ONNX file (a bundled model)
        return ckpt["model"], ckpt["charset"]
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    if not Path(path).is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), "pt") as f:
            charset = (f.metadata() or {}).get("charset", "")
        return load_file(path), charset
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path} is not a safetensors file ({str(e).splitlines()[0][:80]})") from None


# The weights that read the CNN's flattened (channel, row) features: their number of rows
# follows the input height.
