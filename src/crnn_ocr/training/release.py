"""``crnn-ocr release``: a trained checkpoint made a bundled model (float16 file in
``crnn_ocr/models/``, an entry in its index). Kept apart from ``registry``, which only finds
and describes bundled models, so that loading a model never imports the training code."""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from crnn_ocr.hub import registry
from crnn_ocr.model.checkpoint import load_model
from crnn_ocr.training.pretrain import export_weights
from crnn_ocr.utils.files import atomic_target, write_atomic


def release(checkpoint_path: str | Path, info: registry.ModelInfo, word_list: str | Path | None = None) -> Path:
    """Write ``checkpoint_path``'s model as ``crnn_ocr/models/<info.file>`` (float16, config,
    charset and training labels in its metadata), copy ``word_list`` beside it as
    ``<name>.words.txt``, and record ``info`` in the index; returns the model file."""
    registry.MODELS_DIR.mkdir(parents=True, exist_ok=True)
    # Written beside its place and checked there, so that a release refused (it does not load,
    # or the models would outgrow the budget) leaves the model it would replace as it was.
    tmp, out = atomic_target(registry.MODELS_DIR / info.file)
    try:
        export_weights(checkpoint_path, tmp, inference=True)
        load_model(tmp)  # the file must load as a model before it is listed
        others = sum(m.path.stat().st_size for m in registry.models().values()
                     if m.name != info.name and m.path.is_file())
        total = others + tmp.stat().st_size
        if total > registry.MAX_TOTAL_BYTES:
            raise ValueError(f"bundled models would take {total / 1e6:.1f} MB, "
                             f"more than {registry.MAX_TOTAL_BYTES / 1e6:.0f} MB")
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # a normal file's mode (safetensors writes owner-only files)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    if word_list is not None:  # shipped once: a model whose list another model ships already shares that file
        words = Path(word_list).read_bytes()
        same = [m.word_list for m in registry.models().values() if m.name != info.name and m.word_list_path
                and m.word_list_path.is_file() and m.word_list_path.read_bytes() == words]
        info.word_list = same[0] if same else f"{info.name}.words.txt"
        if not same:  # the bytes read above: also right when word_list is the file this model ships already
            write_atomic(registry.MODELS_DIR / info.word_list, words)
    entries = registry.models() | {info.name: info}
    write_atomic(registry.INDEX, json.dumps([asdict(m) for m in entries.values()], indent=2, ensure_ascii=False) + "\n")
    return out
