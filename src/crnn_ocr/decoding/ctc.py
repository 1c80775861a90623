"""CTC in one place: the length rule, target packing, the loss, and the decoders' registry.

A model gives log-probabilities shaped (T, N, C): T output columns, N images, C classes with
the blank at index 0 (``Charset.blank``). Training packs its labels with ``pack_targets`` and
scores them with ``ctc_loss`` (PyTorch, imported there); readers turn log-probabilities into
text with a ``Decoder``, on numpy alone (a torch tensor on the CPU is taken as it is).

Decoders are small objects with one interface, ``decoder(log_probs, charset, details)`` ->
one ``Hypothesis`` per image. ``DECODERS`` is the one table of them by name: ``"greedy"``
(best path, here), ``"lexicon"`` (``lexicon.Lexicon``) and ``"lm"`` (``lm.LMDecoder``);
``make_decoder`` builds one by name, ``decoder_class`` gives its class. A new decoder is one
entry in that table.

This module knows nothing of images, models or files.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

import numpy as np

from crnn_ocr.model.charset import Charset

if TYPE_CHECKING:
    import torch


def required_length(text: str | Sequence[int]) -> int:
    """Fewest output columns CTC needs to emit ``text`` (a string or class indices).

    Every character takes a column, and two equal neighbours need a blank between them.
    """
    repeats = sum(1 for a, b in zip(text, text[1:]) if a == b)
    return len(text) + repeats


def pack_targets(targets: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Class-index label lists -> (concatenated targets, lengths), as ``nn.CTCLoss`` wants them."""
    import torch

    lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    flat = torch.tensor([c for t in targets for c in t], dtype=torch.long)
    return flat, lengths


def ctc_loss(log_probs: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor,
             reduction: str = "mean") -> torch.Tensor:
    """CTC loss of packed ``targets`` under ``log_probs`` (T, N, C), every image using all T
    columns, computed in float32. ``zero_infinity`` turns impossible alignments into zero loss
    instead of inf (the report's cure for NaN losses). ``reduction``: as ``nn.CTCLoss``."""
    import torch

    inputs = torch.full((log_probs.shape[1],), log_probs.shape[0], dtype=torch.long)
    return torch.nn.functional.ctc_loss(log_probs.float(), targets, inputs, lengths, blank=Charset.blank,
                                        reduction=reduction, zero_infinity=True)


@dataclass
class Span:
    """One emitted character: its confidence and the output columns ``[start, end)`` it spans."""

    char: str
    confidence: float
    start: int
    end: int


@dataclass
class Hypothesis:
    """A decoder's reading of one image; ``spans`` only when details were asked for."""

    text: str
    confidence: float
    spans: list[Span] | None = None


class Decoder:
    """Log-probabilities (T, N, C) -> one ``Hypothesis`` per image (the interface)."""

    name = ""

    def __call__(self, log_probs: np.ndarray, charset: Charset, details: bool = False) -> list[Hypothesis]:
        raise NotImplementedError


def as_numpy(log_probs) -> np.ndarray:
    """Log-probabilities as a float32 numpy array (a CPU torch tensor converts without a copy)."""
    return np.asarray(log_probs, dtype=np.float32)


def greedy(log_probs: np.ndarray, charset: Charset) -> tuple[list[str], list[float]]:
    """Best-path decoding of ``log_probs`` shaped (T, N, C).

    Takes the most likely class per column, merges repeats, drops blanks. The confidence
    is the probability of that best path (product of the per-column maxima).
    """
    lp = as_numpy(log_probs)
    idx = lp.argmax(axis=2)  # (T, N)
    best = np.take_along_axis(lp, idx[:, :, None], axis=2)[:, :, 0]
    confidence = np.exp(best.sum(axis=0)).tolist()
    keep = np.ones_like(idx, dtype=bool)
    keep[1:] = idx[1:] != idx[:-1]
    keep &= idx != Charset.blank
    texts = [charset.decode(idx[keep[:, n], n].tolist()) for n in range(idx.shape[1])]
    return texts, confidence


def runs_of(path: Iterable[int]) -> list[tuple[int, int, int]]:
    """(class, start, end) of each run of equal non-blank classes of a column path."""
    runs: list[tuple[int, int, int]] = []
    previous = Charset.blank
    for t, c in enumerate(path):
        if c != Charset.blank and c == previous:
            runs[-1] = (c, runs[-1][1], t + 1)
        elif c != Charset.blank:
            runs.append((c, t, t + 1))
        previous = c
    return runs


def spans_of(log_probs: np.ndarray, path: Sequence[int], charset: Charset) -> list[Span]:
    """The characters of a column ``path`` of one image's ``log_probs`` (T, C); a character's
    confidence is its highest probability over its columns."""
    lp = as_numpy(log_probs)
    return [Span(charset.chars[c - 1], float(np.exp(lp[s:e, c].max())), s, e) for c, s, e in runs_of(path)]


class GreedyDecoder(Decoder):
    """Best-path decoding (``greedy``); details are the columns each character's run spans."""

    name = "greedy"

    def __call__(self, log_probs: np.ndarray, charset: Charset, details: bool = False) -> list[Hypothesis]:
        lp = as_numpy(log_probs)
        texts, confidences = greedy(lp, charset)
        if not details:
            return [Hypothesis(t, c) for t, c in zip(texts, confidences)]
        paths = lp.argmax(axis=2).T.tolist()  # (N, T)
        return [Hypothesis(t, c, spans_of(lp[:, n], paths[n], charset))
                for n, (t, c) in enumerate(zip(texts, confidences))]


def states_of(target: Sequence[int]) -> list[int]:
    """CTC's states for ``target``: a blank before, between and after its characters."""
    states = [Charset.blank]
    for c in target:
        states += [c, Charset.blank]
    return states


def shifted(score: np.ndarray, k: int) -> np.ndarray:
    """``score`` moved ``k`` states to the right along its last axis, -inf coming in."""
    out = np.full_like(score, -np.inf)
    out[..., k:] = score[..., : score.shape[-1] - k]
    return out


def can_skip(states: np.ndarray) -> np.ndarray:
    """Where a state may be reached from two before: a character after a blank that is not
    the character before that blank."""
    skip = np.zeros(states.shape, dtype=bool)
    skip[..., 2:] = (states[..., 2:] != Charset.blank) & (states[..., 2:] != states[..., :-2])
    return skip


def align(log_probs: np.ndarray, target: Sequence[int]) -> list[int]:
    """The most likely column path (Viterbi) of one image's ``log_probs`` (T, C) that CTC
    collapses to ``target``; all blanks if the target does not fit in T columns."""
    lp = as_numpy(log_probs)
    T = lp.shape[0]
    if required_length(target) > T:
        return [Charset.blank] * T
    states = np.array(states_of(target))
    S, lp = len(states), lp[:, states]  # (T, S)
    skip = can_skip(states)
    score = np.full(S, -np.inf, dtype=np.float32)
    score[:2] = lp[0, :2]
    back = np.zeros((T, S), dtype=np.int64)
    for t in range(1, T):
        options = np.stack([score, shifted(score, 1), np.where(skip, shifted(score, 2), -np.inf)])
        back[t] = options.argmax(axis=0)
        score = options.max(axis=0) + lp[t]
    s = S - 1 if S == 1 or score[S - 1] >= score[S - 2] else S - 2
    path = []
    for t in range(T - 1, -1, -1):
        path.append(int(states[s]))
        s -= int(back[t, s])
    return path[::-1]


def reread(h: Hypothesis, log_probs: np.ndarray, text: str, charset: Charset, details: bool) -> None:
    """``h`` (a greedy hypothesis of one image, log-probabilities (T, C)) made the reading of
    ``text`` chosen by another decoder: its confidence becomes the probability of ``text``'s best
    alignment (as the greedy confidence is the probability of the best path, which is the
    greedy text's best alignment), 0 if ``text`` cannot fit in T columns; its spans follow that
    alignment. A text equal to the greedy one keeps everything."""
    if text == h.text:
        return
    target = charset.encode(text)
    if required_length(target) > log_probs.shape[0]:
        h.text, h.confidence, h.spans = text, 0.0, [] if details else None
        return
    path = align(log_probs, target)
    h.text = text
    h.confidence = float(np.exp(log_probs[np.arange(len(path)), path].sum()))
    if details:
        h.spans = spans_of(log_probs, path, charset)


def target_nll(log_probs: np.ndarray, targets: Sequence[Sequence[int]]) -> np.ndarray:
    """CTC's negative log-likelihood of each of ``targets`` (class-index lists) under one
    image's ``log_probs`` (T, C), every target using all T columns: ``ctc_loss`` with
    ``reduction="none"`` on numpy, in float64, and ``inf`` (not 0) where a target cannot fit."""
    lp = as_numpy(log_probs).astype(np.float64)
    lengths = np.array([len(t) for t in targets])
    S = 2 * max(lengths.max(initial=0), 0) + 1
    states = np.zeros((len(targets), S), dtype=np.int64)  # padded with blanks: never reached back from
    for k, t in enumerate(targets):
        states[k, 1 : 2 * len(t) : 2] = t
    skip = can_skip(states)
    emit = lp[:, states]  # (T, K, S)
    alpha = np.full(states.shape, -np.inf)
    alpha[:, 0] = emit[0, :, 0]
    if S > 1:
        alpha[:, 1] = np.where(lengths > 0, emit[0, :, 1], -np.inf)
    for t in range(1, lp.shape[0]):
        before = np.logaddexp(alpha, shifted(alpha, 1))
        alpha = np.logaddexp(before, np.where(skip, shifted(alpha, 2), -np.inf)) + emit[t]
    rows = np.arange(len(targets))
    last = alpha[rows, 2 * lengths]
    before_last = np.where(lengths > 0, alpha[rows, np.maximum(2 * lengths - 1, 0)], -np.inf)
    return -np.logaddexp(last, before_last)


# The decoders by name: the one table that predict, evaluate, release, serve and the
# Recognizer read ("module:class", imported on first use).
DECODERS = {"greedy": "crnn_ocr.decoding.ctc:GreedyDecoder", "lexicon": "crnn_ocr.decoding.lexicon:Lexicon",
            "lm": "crnn_ocr.decoding.lm:LMDecoder"}
DECODER_NAMES = tuple(DECODERS)


def decoder_names() -> list[str]:
    """The names ``make_decoder`` knows."""
    return sorted(DECODERS)


def decoder_class(name: str) -> type[Decoder]:
    """The class of the decoder called ``name``; ``ValueError`` for an unknown name."""
    if name not in DECODERS:
        raise ValueError(f"unknown decoder {name!r} (known: {', '.join(decoder_names())})")
    module, cls = DECODERS[name].split(":")
    return getattr(import_module(module), cls)


def make_decoder(name: str, **kwargs) -> Decoder:
    """A decoder by name (``"greedy"``, ``"lexicon"``, ``"lm"``); ``kwargs`` go to its class."""
    return decoder_class(name)(**kwargs)
