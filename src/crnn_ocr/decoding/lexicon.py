"""Lexicon decoding: replace a greedy reading by the lexicon word the model scores best.

For each image, the ``candidates`` lexicon words closest to the greedy output (Levenshtein
distance, found by rapidfuzz) are scored exactly by their CTC likelihood under the model's
log-probabilities (``ctc.target_nll``, all candidates at once, on numpy); the most likely
one wins. The greedy output itself is a candidate when it is in the lexicon. Candidates
with characters the model cannot write are ignored.

``Lexicon`` is a ``ctc.Decoder``, ``"lexicon"`` in ``ctc.DECODERS``: a replaced word's
confidence is the probability of its most likely alignment, and with details its characters
get that alignment's columns (``ctc.reread``).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from crnn_ocr.model.charset import Charset
from crnn_ocr.decoding.ctc import Decoder, GreedyDecoder, Hypothesis, as_numpy, reread, target_nll

MAX_WORD_LIST_BYTES = 64 * 2**20  # a word list larger than this is a mistake (or /dev/zero)
MAX_COUNT = 10**15  # a larger count in a frequency list is read as this (counts stay exact as floats)


def read_word_counts(paths: Iterable[str | Path]) -> Counter:
    """How often each word of text files occurs: one word per line (surrounding spaces
    stripped, empty lines dropped), or a word, a tab and a positive whole count (a frequency
    list such as ``crnn_ocr/hub/models/handwriting-en.words.txt``). A word on several lines or in
    several files adds up. ``ValueError`` naming the file if one is missing, not a regular file,
    larger than ``MAX_WORD_LIST_BYTES`` or binary (NUL bytes)."""
    counts: Counter = Counter()
    for p in paths:
        try:
            if not Path(p).is_file():
                raise ValueError(f"cannot read word list {p}: " + ("not a regular file" if Path(p).exists()
                                                                     else "no such file"))
            with open(p, "rb") as f:
                data = f.read(MAX_WORD_LIST_BYTES + 1)
        except OSError as e:
            raise ValueError(f"cannot read word list {p}: {e.strerror}") from None
        if len(data) > MAX_WORD_LIST_BYTES:
            raise ValueError(f"word list {p} is larger than {MAX_WORD_LIST_BYTES // 2**20} MB")
        if b"\0" in data:  # a binary file (or UTF-16 text) would give words of garbage
            raise ValueError(f"word list {p} is not UTF-8 text (it holds NUL bytes)")
        for line in data.decode("utf-8", errors="replace").splitlines():
            line = line.strip()
            word, tab, count = line.rpartition("\t")
            word = word.strip()
            if not (tab and count.isascii() and count.isdigit() and int(count) > 0 and word):
                word, count = line, "1"  # a plain word (a tab without a count is part of it)
            if word:
                counts[word] += min(int(count), MAX_COUNT)
    return counts


def read_word_lists(paths: Iterable[str | Path]) -> list[str]:
    """The distinct words of ``read_word_counts(paths)``, in the order they first occur."""
    return list(read_word_counts(paths))


class Lexicon(Decoder):
    """A set of words to decode into."""

    name = "lexicon"

    def __init__(self, words: Iterable[str], candidates: int = 20):
        self.words = sorted({w for w in words if w})
        self.candidates = candidates

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], extra: Iterable[str] = (), candidates: int = 20) -> Lexicon:
        """Words from text files (one per line, surrounding spaces stripped) plus ``extra``."""
        return cls(set(read_word_lists(paths)) | set(extra), candidates)

    def __len__(self) -> int:
        return len(self.words)

    def decode(self, log_probs: np.ndarray, greedy: list[str], charset: Charset) -> list[str]:
        """Best lexicon word per column of ``log_probs`` (T, N, C), given the greedy texts."""
        out, log_probs = [], as_numpy(log_probs)
        for n, text in enumerate(greedy):
            found = process.extract(text, self.words, scorer=Levenshtein.distance, limit=self.candidates)
            words = [w for w, _, _ in found if not charset.unknown(w)]
            if not words:
                out.append(text)
                continue
            nll = target_nll(log_probs[:, n], [charset.encode(w) for w in words])
            out.append(words[int(nll.argmin())] if np.isfinite(nll).any() else text)
        return out

    def __call__(self, log_probs: np.ndarray, charset: Charset, details: bool = False) -> list[Hypothesis]:
        """The ``ctc.Decoder`` interface: the chosen words, each with the confidence and (with
        details) the columns of its best alignment (``ctc.reread``)."""
        log_probs = as_numpy(log_probs)
        hypotheses = GreedyDecoder()(log_probs, charset, details)
        words = self.decode(log_probs, [h.text for h in hypotheses], charset)
        for n, (h, word) in enumerate(zip(hypotheses, words)):
            reread(h, log_probs[:, n], word, charset, details)
        return hypotheses

