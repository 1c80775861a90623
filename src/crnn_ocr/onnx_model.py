"""The ONNX Runtime back end: a session that maps float images to log-probabilities like
``CRNN.forward``, and the charset and settings ``crnn-ocr export`` stored beside the graph.

It is not the place for reading images (``Recognizer``) or writing the file (``export``).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .charset import Charset
from .checkpoint import CheckpointError
from .config import Config


class OnnxModel:
    """An ONNX Runtime session that maps float images (N, C, H, W) to log-probabilities
    (T, N, classes), like ``CRNN.forward``.

    Args:
        path: a file written by ``crnn_ocr.export.export_onnx``.
        threads: intra-op threads; 0 lets ONNX Runtime choose (one per physical core).
    """

    def __init__(self, path: str | Path, threads: int = 0):
        import onnxruntime as ort  # imported here: the PyTorch back end does not need it

        if not Path(path).is_file():
            raise CheckpointError(f"ONNX model not found: {path}")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1  # the graph is a chain: nothing runs in parallel
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # ONNX Runtime raises its own exception types for unreadable models
            raise CheckpointError(f"{path} is not a usable ONNX model ({str(e).splitlines()[0][:80]})") from None
        self.metadata = self.session.get_modelmeta().custom_metadata_map
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        (log_probs,) = self.session.run(None, {self.input_name: images.contiguous().numpy()})
        return torch.from_numpy(log_probs)


def load_onnx(path: str | Path, threads: int = 0) -> tuple[OnnxModel, Charset, Config]:
    """The session of an exported file with the charset and config in its metadata."""
    model = OnnxModel(path, threads)
    meta = model.metadata
    if not {"charset", "height", "width", "channels"} <= meta.keys():
        raise CheckpointError(f"{path} has no crnn-ocr metadata (charset, height, width, channels); "
                              "export it with `crnn-ocr export`")
    try:
        config = Config.from_dict(json.loads(meta.get("config", "{}")))
    except ValueError:  # written by another version of crnn-ocr: the keys below suffice
        config = Config()
    d = config.data
    d.height, d.width, d.channels = int(meta["height"]), int(meta["width"]), int(meta["channels"])
    return model, Charset(meta["charset"]), config
