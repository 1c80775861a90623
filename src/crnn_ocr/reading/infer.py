"""The one inference function: uint8 images -> batches -> model -> decoder -> results in input order.

``infer`` serves validation during training, ``crnn-ocr evaluate``, the ``Recognizer`` (PyTorch
and ONNX) and anything built on it. The model is any callable from float images (N, C, H, W)
in [0, 1] to log-probabilities (T, N, C): a ``CRNN`` (torch tensors in and out) or an
``OnnxModel`` (numpy arrays in and out). Images come as one uint8 array (N, C, H, W) of a
fixed canvas, or as a list of (C, H, W) arrays of any widths (any-width mode, ``[data] width
= 0``); torch tensors on the CPU are taken as they are. Each image of a list, and with
``trim`` (a model trained with ``trim_padding``) each image of a batch, is read at its own
width (``batches``), so an answer never depends on the batch size or on the image's neighbours.

Reading runs on numpy; PyTorch is imported only for a PyTorch model or a loss (``targets``).
This module reads no files and knows no datasets.
"""
from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from crnn_ocr.reading.images import COLUMN_STRIDE, MIN_WIDTH, TRIM_MARGIN, content_widths, crop_width
from crnn_ocr.decoding.ctc import Decoder, GreedyDecoder, Hypothesis
from crnn_ocr.model.charset import Charset

__all__ = ["COLUMN_STRIDE", "MIN_WIDTH", "TRIM_MARGIN", "Images", "Inference", "batches", "column_stride",
           "crop_width", "infer", "take"]

Images = np.ndarray | list[np.ndarray]  # (N, C, H, W), or N images (C, H, W) of any widths


def take(images, index: Sequence[int]):
    """The entries at positions ``index`` of an array, a tensor or a list (of images, labels, ...)."""
    return [images[i] for i in index] if isinstance(images, list) else images[list(index)]


def column_stride(model) -> int:
    """A model's input pixels per output column: ``CRNN.column_stride`` or ``OnnxModel``'s,
    through a wrapper (``AveragedModel``, ``DistributedDataParallel``); else ``COLUMN_STRIDE``."""
    return getattr(getattr(model, "module", model), "column_stride", COLUMN_STRIDE)


def batches(images: Images, batch_size: int, trim: bool = False,
            stride: int = COLUMN_STRIDE) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (indices, uint8 batch) covering ``images`` in batches for inference.

    A fixed-canvas batch without ``trim`` is cut into batches in order. Otherwise every
    image is read at its own width (a batch's images with ``trim`` cut to their
    ``crop_width``; a list's as they are, already cut): images of the same width are batched
    together, so little compute goes to padding and an image's answer does not depend on the
    batch size or on its neighbours. The caller puts the results back in place with the
    indices. ``stride``: the model's input pixels per output column; trimmed widths are
    whole multiples of it.
    """
    n = len(images)
    if not isinstance(images, list) and not trim:
        for start in range(0, n, batch_size):
            yield np.arange(start, min(n, start + batch_size)), images[start : start + batch_size]
        return
    if isinstance(images, list):
        cut = np.array([im.shape[-1] for im in images])
    else:
        cut = np.array([crop_width(w, images.shape[3], stride) for w in content_widths(images).tolist()])
    for width in np.unique(cut).tolist():
        same = np.flatnonzero(cut == width)
        for start in range(0, len(same), batch_size):
            index = same[start : start + batch_size]
            if isinstance(images, list):
                yield index, np.stack([images[i] for i in index.tolist()])
            else:
                yield index, images[index, :, :, :width]


@dataclass
class Inference:
    """What ``infer`` returns: one hypothesis per image, in input order, and the mean CTC
    loss per character (NaN without targets)."""

    hypotheses: list[Hypothesis]
    loss: float = float("nan")

    @property
    def texts(self) -> list[str]:
        return [h.text for h in self.hypotheses]

    @property
    def confidences(self) -> list[float]:
        return [h.confidence for h in self.hypotheses]


Model = Callable  # float images (N, C, H, W) in [0, 1] -> log-probabilities (T, N, C)


def log_probs_of(model: Model, batch: np.ndarray) -> np.ndarray:
    """``model``'s float32 log-probabilities (T, N, C) of a uint8 ``batch`` (N, C, H, W): a
    PyTorch module on its own device without gradients, any other callable on numpy."""
    if not hasattr(model, "parameters"):  # an OnnxModel
        return model(batch.astype(np.float32) / 255)
    import torch

    with torch.no_grad():
        device = next(model.parameters()).device
        return model(torch.from_numpy(batch).to(device).float().div_(255)).float().cpu().numpy()


def as_arrays(images) -> Images:
    """Torch tensors on the CPU (training's datasets) as numpy arrays, without a copy."""
    if isinstance(images, list):
        return [im if isinstance(im, np.ndarray) else np.asarray(im) for im in images]
    return images if isinstance(images, np.ndarray) else np.asarray(images)


def infer(model: Model, images: Images, charset: Charset, decoder: Decoder | None = None,
          batch_size: int = 256, trim: bool = False, details: bool = False,
          targets: Sequence[Sequence[int]] | None = None) -> Inference:
    """Read uint8 ``images`` (N, C, H, W), or a list of (C, H, W) of any widths, with ``model``
    and ``decoder`` (greedy by default).

    Args:
        trim: cut the padding off, as a model trained with ``trim_padding`` expects.
        details: ask the decoder for each character's columns and confidence.
        targets: the class-index labels; then ``loss`` is the mean CTC loss per character
            (computed with PyTorch).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size {batch_size!r}: must be a whole number >= 1")
    decoder = decoder or GreedyDecoder()
    if hasattr(model, "eval"):
        model.eval()
    images = as_arrays(images)
    hypotheses: list[Hypothesis | None] = [None] * len(images)
    loss_sum = 0.0
    for index, batch in batches(images, batch_size, trim, column_stride(model)):
        log_probs = log_probs_of(model, np.ascontiguousarray(batch))
        for i, h in zip(index.tolist(), decoder(log_probs, charset, details)):
            hypotheses[i] = h
        if targets is not None:
            loss_sum += batch_loss(log_probs, [targets[i] for i in index.tolist()])
    loss = loss_sum / max(1, len(images)) if targets is not None else float("nan")
    return Inference(hypotheses, loss)


def batch_loss(log_probs: np.ndarray, targets: list[Sequence[int]]) -> float:
    """The sum over a batch of the CTC loss per character, as in training."""
    import torch

    from crnn_ocr.decoding.ctc import ctc_loss, pack_targets

    flat, lengths = pack_targets(targets)
    losses = ctc_loss(torch.from_numpy(log_probs), flat, lengths, reduction="none")
    return (losses / lengths.clamp(min=1)).sum().item()
