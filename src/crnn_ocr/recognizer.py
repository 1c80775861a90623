"""``Recognizer``: a trained model behind one call, for PIL images, arrays or paths.

One class for both back ends: a PyTorch checkpoint (``.pt``) or an exported ONNX file
(``.onnx``, run by ONNX Runtime). Both share the preprocessing (``crnn_ocr.images``) and the
greedy CTC decoding (``crnn_ocr.charset.ctc_greedy``); only the step from float images to
log-probabilities differs.

>>> rec = Recognizer.load("runs/captcha/best.pt")      # doctest: +SKIP
>>> rec.predict(["a.png", "b.png"])                    # doctest: +SKIP
[('2b827', 0.98), ('3bnyf', 0.91)]
>>> Recognizer.load("captcha.onnx", threads=1).predict(["a.png"])  # doctest: +SKIP
[('2b827', 0.98)]
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from .charset import Charset, ctc_greedy
from .checkpoint import CheckpointError, load_model
from .config import Config
from .data import batches
from .images import load_tensor


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


class Recognizer:
    """A model with its charset and preprocessing settings.

    Args:
        model: float images (N, C, H, W) in [0, 1] -> log-probabilities (T, N, classes);
            a ``CRNN`` (put in eval mode here) or an ``OnnxModel``.
        charset, config: the alphabet and settings the model was trained with.
    """

    def __init__(self, model: Callable[[torch.Tensor], torch.Tensor], charset: Charset, config: Config):
        if isinstance(model, torch.nn.Module):
            model.eval()
        self.model, self.charset, self.config = model, charset, config

    @classmethod
    def load(cls, path: str | Path, threads: int = 0) -> Recognizer:
        """Load a checkpoint written by ``crnn-ocr train`` or a ``.onnx`` file written by
        ``crnn-ocr export``. ``threads`` is for ONNX Runtime; PyTorch's threads are set for
        the whole process with ``torch.set_num_threads``."""
        if Path(path).suffix.lower() != ".onnx":
            return cls(*load_model(path))
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
        return cls(model, Charset(meta["charset"]), config)

    def load_image(self, image) -> torch.Tensor:
        """One PIL image, array or path -> uint8 (C, H, W); raises ``BadImage``."""
        d = self.config.data
        return load_tensor(image, d.height, d.width, d.channels)

    def preprocess(self, images) -> torch.Tensor:
        """PIL images, arrays or paths -> uint8 (N, C, H, W); raises ``BadImage``."""
        return torch.stack([self.load_image(im) for im in images])

    @torch.inference_mode()
    def recognize(self, images: torch.Tensor, batch_size: int = 64) -> list[tuple[str, float]]:
        """(text, confidence) for each image of a uint8 batch (N, C, H, W) as ``preprocess``
        makes it; confidence is the probability of the best CTC path."""
        results = [("", 0.0)] * len(images)
        for index, batch in batches(images, batch_size, self.config.data.trim_padding):
            texts, confidences = ctc_greedy(self.model(batch.float().div_(255)).float(), self.charset)
            for i, text, confidence in zip(index.tolist(), texts, confidences):
                results[i] = (text, confidence)
        return results

    def predict(self, images, batch_size: int = 64) -> list[tuple[str, float]]:
        """(text, confidence) for each PIL image, array or path."""
        images = list(images)
        return self.recognize(self.preprocess(images), batch_size) if images else []
