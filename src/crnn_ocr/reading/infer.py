"""The one inference function: uint8 images -> batches -> model -> decoder -> results in input order.

``infer`` serves validation during training, ``crnn-ocr evaluate``, the ``Recognizer`` (PyTorch
and ONNX) and anything built on it. The model is any callable from float images (N, C, H, W)
in [0, 1] to log-probabilities (T, N, C): a ``CRNN`` or an ``OnnxModel``. Images come as one
uint8 tensor (N, C, H, W) of a fixed canvas, or as a list of (C, H, W) tensors of any widths
(any-width mode, ``[data] width = 0``). Each image of a list, and with ``trim`` (a model
trained with ``trim_padding``) each image of a tensor, is read at its own width
(``batches``), so an answer never depends on the batch size or on the image's neighbours.

This module reads no files and knows no datasets.
"""
from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from crnn_ocr.model.charset import Charset
from crnn_ocr.decoding.ctc import Decoder, GreedyDecoder, Hypothesis, ctc_loss, pack_targets
from crnn_ocr.reading.images import COLUMN_STRIDE, MIN_WIDTH, TRIM_MARGIN, content_widths, crop_width

__all__ = ["COLUMN_STRIDE", "MIN_WIDTH", "TRIM_MARGIN", "Images", "Inference", "batches", "column_stride",
           "crop_width", "infer", "take"]

Images = torch.Tensor | list[torch.Tensor]  # (N, C, H, W), or N images (C, H, W) of any widths


def take(images: Images, index: Sequence[int]) -> Images:
    """The entries at positions ``index`` of a tensor or a list (of images, of labels, ...)."""
    return images[list(index)] if isinstance(images, torch.Tensor) else [images[i] for i in index]


def column_stride(model) -> int:
    """A model's input pixels per output column: ``CRNN.column_stride`` or ``OnnxModel``'s,
    through a wrapper (``AveragedModel``, ``DistributedDataParallel``); else ``COLUMN_STRIDE``."""
    return getattr(getattr(model, "module", model), "column_stride", COLUMN_STRIDE)


def batches(images: Images, batch_size: int, trim: bool = False,
            stride: int = COLUMN_STRIDE) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (indices, uint8 batch) covering ``images`` in batches for inference.

    A fixed-canvas tensor without ``trim`` is cut into batches in order. Otherwise every
    image is read at its own width (a tensor's images with ``trim`` cut to their
    ``crop_width``; a list's as they are, already cut): images of the same width are batched
    together, so little compute goes to padding and an image's answer does not depend on the
    batch size or on its neighbours. The caller puts the results back in place with the
    indices. ``stride``: the model's input pixels per output column; trimmed widths are
    whole multiples of it.
    """
    n = len(images)
    if isinstance(images, torch.Tensor) and not trim:
        for start in range(0, n, batch_size):
            yield torch.arange(start, min(n, start + batch_size)), images[start : start + batch_size]
        return
    if isinstance(images, torch.Tensor):
        cut = torch.tensor([crop_width(w, images.shape[3], stride) for w in content_widths(images).tolist()])
    else:
        cut = torch.tensor([im.shape[-1] for im in images])
    for width in cut.unique().tolist():
        same = torch.nonzero(cut == width).flatten()
        for start in range(0, len(same), batch_size):
            index = same[start : start + batch_size]
            if isinstance(images, torch.Tensor):
                yield index, images[index, :, :, :width]
            else:
                yield index, torch.stack([images[i] for i in index.tolist()])


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


Model = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def infer(model: Model, images: Images, charset: Charset, decoder: Decoder | None = None,
          batch_size: int = 256, trim: bool = False, details: bool = False,
          targets: Sequence[Sequence[int]] | None = None) -> Inference:
    """Read uint8 ``images`` (N, C, H, W), or a list of (C, H, W) of any widths, with ``model``
    and ``decoder`` (greedy by default).

    Args:
        trim: cut the padding off, as a model trained with ``trim_padding`` expects.
        details: ask the decoder for each character's columns and confidence.
        targets: the class-index labels; then ``loss`` is the mean CTC loss per character.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size {batch_size!r}: must be a whole number >= 1")
    decoder = decoder or GreedyDecoder()
    device = torch.device("cpu")
    if isinstance(model, torch.nn.Module):
        model.eval()
        device = next(model.parameters()).device
    hypotheses: list[Hypothesis | None] = [None] * len(images)
    loss_sum = 0.0
    for index, batch in batches(images, batch_size, trim, column_stride(model)):
        log_probs = model(batch.to(device).float().div_(255)).float().cpu()
        for i, h in zip(index.tolist(), decoder(log_probs, charset, details)):
            hypotheses[i] = h
        if targets is not None:
            flat, lengths = pack_targets([targets[i] for i in index.tolist()])
            losses = ctc_loss(log_probs, flat, lengths, reduction="none")
            loss_sum += (losses / lengths.clamp(min=1)).sum().item()  # per character, as in training
    loss = loss_sum / max(1, len(images)) if targets is not None else float("nan")
    return Inference(hypotheses, loss)
