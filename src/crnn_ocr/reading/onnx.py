"""The ONNX Runtime back end: a session that maps float images to log-probabilities like
``CRNN.forward``, and the charset and settings ``crnn-ocr export`` stored beside the graph.
Numpy arrays in and out: reading a bundled model (every one is an ONNX file) never imports
PyTorch.

It is not the place for reading images (``Recognizer``) or writing the file (``export``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from crnn_ocr.config.schema import Config
from crnn_ocr.reading.images import COLUMN_STRIDE
from crnn_ocr.model.charset import Charset
from crnn_ocr.model.errors import CheckpointError
from crnn_ocr.utils.runtime import free_cores, thread_count


class OnnxModel:
    """An ONNX Runtime session that maps float images (N, C, H, W) to log-probabilities
    (T, N, classes), like ``CRNN.forward``.

    Args:
        path: a file written by ``crnn_ocr.export.export_onnx``, or the bytes of one
            (``export.onnx_bytes``).
        threads: intra-op threads; 0: the cores the machine can give (``runtime.thread_count``).
    """

    column_stride = COLUMN_STRIDE  # input pixels per output column; load_onnx sets the model's own

    def __init__(self, path: str | Path | bytes, threads: int = 0):
        import onnxruntime as ort  # imported here: the PyTorch back end does not need it

        if not isinstance(path, bytes) and not Path(path).is_file():
            raise CheckpointError(f"{path} is a folder, not an ONNX model" if Path(path).is_dir()
                                  else f"ONNX model not found: {path}")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads = thread_count(threads)
        options.inter_op_num_threads = 1  # the graph is a chain: nothing runs in parallel
        if threads > 1 and threads >= free_cores():  # no busy-waiting against another process's work
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(path if isinstance(path, bytes) else str(path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as e:  # ONNX Runtime raises its own exception types for unreadable models
            name = "the model" if isinstance(path, bytes) else path
            raise CheckpointError(f"{name} is not a usable ONNX model ({str(e).splitlines()[0][:80]})") from None
        self.metadata = self.session.get_modelmeta().custom_metadata_map
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Float images (N, C, H, W) in [0, 1] -> float32 log-probabilities (T, N, classes)."""
        (log_probs,) = self.session.run(None, {self.input_name: np.ascontiguousarray(images, dtype=np.float32)})
        return log_probs

    @property
    def vocabulary(self) -> list[str]:
        """The training labels stored in the file (a bundled model's), for the word decoders."""
        try:
            words = json.loads(self.metadata.get("vocabulary", "[]"))
        except ValueError:
            return []
        return [w for w in words if isinstance(w, str)] if isinstance(words, list) else []


def load_onnx(path: str | Path | bytes, threads: int = 0) -> tuple[OnnxModel, Charset, Config]:
    """The session of an exported file with the charset and config in its metadata."""
    model = OnnxModel(path, threads)
    meta = model.metadata
    if not {"charset", "height", "width", "channels"} <= meta.keys():
        raise CheckpointError(f"{path} has no crnn-ocr metadata (charset, height, width, channels); "
                              "export it with `crnn-ocr export`")
    try:
        config = Config.saved(json.loads(meta.get("config", "{}")))
    except ValueError:  # written by another version of crnn-ocr: the keys below suffice
        config = Config()
    d = config.data
    try:
        d.height, d.width, d.channels = int(meta["height"]), int(meta["width"]), int(meta["channels"])
        charset = Charset(meta["charset"])
        config.validate()
    except ValueError as e:
        raise CheckpointError(f"{path}: its metadata is not usable ({str(e).splitlines()[0][:80]})") from None
    check_against_graph(model, charset, config, path)
    model.column_stride = config.model.width_pool  # from the metadata, as CRNN's
    return model, charset, config


def check_against_graph(model: OnnxModel, charset: Charset, config: Config, path: str | Path) -> None:
    """``CheckpointError`` unless the metadata fits the graph: the input's channels and height
    (where the graph fixes them), then one probe through the session at the metadata's size,
    whose output must have one class per character plus the blank."""
    d = config.data
    expected_input = {1: ("channels", d.channels), 2: ("height", d.height)}
    shape = model.session.get_inputs()[0].shape
    for axis, (name, value) in expected_input.items():
        if len(shape) != 4:
            raise CheckpointError(f"{path}: the graph's input has {len(shape)} dimensions, not 4 (N, C, H, W)")
        if isinstance(shape[axis], int) and shape[axis] != value:
            raise CheckpointError(f"{path}: its metadata says {name} {value}, but the graph takes {shape[axis]}")
    try:  # one probe at the metadata's size: the graph must take it and say how many classes it has
        out = model(np.zeros((1, d.channels, d.height, d.widest), dtype=np.float32))  # any width: its max_width
    except Exception as e:  # ONNX Runtime's own error types for input the graph refuses
        raise CheckpointError(f"{path}: its metadata (channels {d.channels}, height {d.height}, width {d.width}) "
                              f"does not fit the graph ({str(e).splitlines()[0][:80]})") from None
    if out.ndim != 3 or out.shape[1] != 1:
        raise CheckpointError(f"{path}: the graph's output has shape {tuple(out.shape)}, not (columns, N, classes)")
    if out.shape[2] != len(charset):
        raise CheckpointError(f"{path}: its metadata has {len(charset) - 1} characters (+ blank = {len(charset)} "
                              f"classes), but the graph outputs {out.shape[2]}")
