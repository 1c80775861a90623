"""``crnn-ocr release``: a trained checkpoint made a bundled model (an ONNX file with float16
weights in ``crnn_ocr/hub/models/``, an entry in its index). Kept apart from ``registry``,
which only finds and describes bundled models, so that loading a model never imports the
training code; releasing needs the training extra (PyTorch, onnx)."""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from crnn_ocr.hub import registry
from crnn_ocr.utils.files import atomic_target, write_atomic


def bundled_bytes(checkpoint_path: str | Path) -> bytes:
    """The ONNX file a bundled model ships for ``checkpoint_path`` (a ``.pt`` checkpoint, a
    ``.safetensors`` model file or an ONNX file of ``release``): float16 weights, the config
    (its paths without their folders), charset and training labels in its metadata."""
    from crnn_ocr.config.files import without_folders
    from crnn_ocr.config.schema import Config
    from crnn_ocr.model.checkpoint import load, model_of
    from crnn_ocr.model.export import onnx_bytes

    ckpt = load(checkpoint_path)
    model, charset, _ = model_of(ckpt, checkpoint_path)
    config = Config.saved(without_folders(ckpt["config"]))
    return onnx_bytes(model, charset, config, float16=True, vocabulary=list(ckpt.get("vocabulary", [])))


def release(checkpoint_path: str | Path, info: registry.ModelInfo, word_list: str | Path | None = None) -> Path:
    """Write ``checkpoint_path``'s model as ``crnn_ocr/hub/models/<info.file>`` (``bundled_bytes``),
    copy ``word_list`` beside it as ``<name>.words.txt``, and record ``info`` in the index;
    returns the model file. The file the model's previous release shipped under another
    name is removed."""
    from crnn_ocr.reading.onnx import load_onnx

    registry.MODELS_DIR.mkdir(parents=True, exist_ok=True)
    previous = registry.models().get(info.name)
    # Written beside its place and checked there, so that a release refused (it does not load,
    # or the models would outgrow the budget) leaves the model it would replace as it was.
    tmp, out = atomic_target(registry.MODELS_DIR / info.file)
    try:
        tmp.write_bytes(bundled_bytes(checkpoint_path))
        load_onnx(tmp, threads=1)  # the file must load as a model before it is listed
        others = sum(m.path.stat().st_size for m in registry.models().values()
                     if m.name != info.name and m.path.is_file())
        total = others + tmp.stat().st_size
        if total > registry.MAX_TOTAL_BYTES:
            raise ValueError(f"bundled models would take {total / 1e6:.1f} MB, "
                             f"more than {registry.MAX_TOTAL_BYTES / 1e6:.0f} MB")
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # a normal file's mode
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    if previous is not None and previous.file != info.file:
        previous.path.unlink(missing_ok=True)
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
