"""CTC in one place: the length rule, target packing, the loss, and decoders.

A model gives log-probabilities shaped (T, N, C): T output columns, N images, C classes with
the blank at index 0 (``Charset.blank``). Training packs its labels with ``pack_targets`` and
scores them with ``ctc_loss``; readers turn log-probabilities into text with a ``Decoder``.

Decoders are small objects with one interface, ``decoder(log_probs, charset, details)`` ->
one ``Hypothesis`` per image, picked by name with ``make_decoder``: ``"greedy"`` (best path,
here) and ``"lexicon"`` (``crnn_ocr.lexicon``, which registers itself). A new decoder (a
language model, say) subclasses ``Decoder`` and calls ``register_decoder``.

This module knows nothing of images, models or files.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch

from crnn_ocr.model.charset import Charset


def required_length(text: str | Sequence[int]) -> int:
    """Fewest output columns CTC needs to emit ``text`` (a string or class indices).

    Every character takes a column, and two equal neighbours need a blank between them.
    """
    repeats = sum(1 for a, b in zip(text, text[1:]) if a == b)
    return len(text) + repeats


def pack_targets(targets: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Class-index label lists -> (concatenated targets, lengths), as ``nn.CTCLoss`` wants them."""
    lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    flat = torch.tensor([c for t in targets for c in t], dtype=torch.long)
    return flat, lengths


def ctc_loss(log_probs: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor,
             reduction: str = "mean") -> torch.Tensor:
    """CTC loss of packed ``targets`` under ``log_probs`` (T, N, C), every image using all T
    columns, computed in float32. ``zero_infinity`` turns impossible alignments into zero loss
    instead of inf (the report's cure for NaN losses). ``reduction``: as ``nn.CTCLoss``."""
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

    def __call__(self, log_probs: torch.Tensor, charset: Charset, details: bool = False) -> list[Hypothesis]:
        raise NotImplementedError


def greedy(log_probs: torch.Tensor, charset: Charset) -> tuple[list[str], list[float]]:
    """Best-path decoding of ``log_probs`` shaped (T, N, C).

    Takes the most likely class per column, merges repeats, drops blanks. The confidence
    is the probability of that best path (product of the per-column maxima).
    """
    best, idx = log_probs.max(dim=2)  # (T, N)
    confidence = best.sum(dim=0).exp().tolist()
    keep = torch.ones_like(idx, dtype=torch.bool)
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


def spans_of(log_probs: torch.Tensor, path: Sequence[int], charset: Charset) -> list[Span]:
    """The characters of a column ``path`` of one image's ``log_probs`` (T, C); a character's
    confidence is its highest probability over its columns."""
    return [Span(charset.chars[c - 1], float(log_probs[s:e, c].max().exp()), s, e) for c, s, e in runs_of(path)]


class GreedyDecoder(Decoder):
    """Best-path decoding (``greedy``); details are the columns each character's run spans."""

    name = "greedy"

    def __call__(self, log_probs: torch.Tensor, charset: Charset, details: bool = False) -> list[Hypothesis]:
        texts, confidences = greedy(log_probs, charset)
        if not details:
            return [Hypothesis(t, c) for t, c in zip(texts, confidences)]
        paths = log_probs.argmax(dim=2).T.tolist()  # (N, T)
        return [Hypothesis(t, c, spans_of(log_probs[:, n], paths[n], charset))
                for n, (t, c) in enumerate(zip(texts, confidences))]


def align(log_probs: torch.Tensor, target: Sequence[int]) -> list[int]:
    """The most likely column path (Viterbi) of one image's ``log_probs`` (T, C) that CTC
    collapses to ``target``; all blanks if the target does not fit in T columns."""
    T = log_probs.shape[0]
    states = [Charset.blank]
    for c in target:
        states += [c, Charset.blank]
    if required_length(target) > T:
        return [Charset.blank] * T
    S, lp = len(states), log_probs[:, states].float()  # (T, S)
    # A state is reached from itself, the one before, or (a character after a blank) two before.
    skip = torch.tensor([s >= 2 and states[s] != Charset.blank and states[s] != states[s - 2] for s in range(S)])
    score = torch.full((S,), -torch.inf)
    score[:2] = lp[0, :2]
    back = torch.zeros(T, S, dtype=torch.long)

    def shifted(k: int) -> torch.Tensor:
        return torch.cat([score.new_full((k,), -torch.inf), score[:-k]])

    for t in range(1, T):
        options = torch.stack([score, shifted(1), torch.where(skip, shifted(2), -torch.inf)])
        best, back[t] = options.max(dim=0)
        score = best + lp[t]
    s = S - 1 if S == 1 or score[S - 1] >= score[S - 2] else S - 2
    path = []
    for t in range(T - 1, -1, -1):
        path.append(states[s])
        s -= int(back[t, s])
    return path[::-1]


_DECODERS: dict[str, Callable[..., Decoder]] = {"greedy": GreedyDecoder}


def register_decoder(name: str, factory: Callable[..., Decoder]) -> None:
    """Make ``make_decoder(name, ...)`` call ``factory(...)``."""
    _DECODERS[name] = factory


def decoder_names() -> list[str]:
    """The names ``make_decoder`` knows."""
    return sorted(_DECODERS)


def make_decoder(name: str, **kwargs) -> Decoder:
    """A decoder by name (``"greedy"``, ``"lexicon"``, ...); ``kwargs`` go to its factory."""
    if name not in _DECODERS:
        raise ValueError(f"unknown decoder {name!r} (known: {', '.join(decoder_names())})")
    return _DECODERS[name](**kwargs)
