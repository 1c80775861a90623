"""Open-vocabulary decoding: CTC prefix beam search with a character n-gram language model.

The lexicon decoder (``lexicon.py``) can only answer words of its list. This one can answer
any string, but prefers strings that look like the language: a character n-gram model, built
from a word list (Debian's ``wamerican``) and the model's own training labels, scores every
character the beam search appends (Hannun et al., 2014, "First-pass large vocabulary
continuous speech recognition using bi-directional recurrent DNNs", prefix beam search).

The n-gram model is interpolated absolute discounting (Ney et al., 1994) over character
histories of up to ``order - 1`` characters, with ``<`` and ``>`` marking the start and end of
a text. Each text of the training labels counts as often as it occurs, so the words a writer
uses most weigh most; each word of a word list counts once.

Score of a reading: log P_ctc + alpha * log P_lm + beta * length. ``alpha`` and ``beta`` are
chosen on validation data (``experiments/decoders.py``), never on test data.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import torch

from .charset import Charset

START, END = "\x02", "\x03"  # text boundaries inside the n-gram histories (never in a label)
DISCOUNT = 0.75


class CharNgram:
    """A character n-gram language model with interpolated absolute discounting.

    >>> lm = CharNgram.from_texts(["the", "then", "hat"], order=3)
    >>> lm.logp("h", "t") > lm.logp("x", "t")
    True
    """

    def __init__(self, counts: dict[str, Counter], alphabet: set[str], order: int):
        self.order, self.counts, self.alphabet = order, counts, alphabet
        self.uniform = 1.0 / (len(alphabet) + 1)  # every character and the end of text
        self.logp = lru_cache(maxsize=1_000_000)(self._logp)

    @classmethod
    def from_texts(cls, texts: Iterable[str], order: int = 6) -> CharNgram:
        """Count every n-gram (n <= ``order``) of ``texts`` (a text may repeat: it counts again)."""
        counts: dict[str, Counter] = defaultdict(Counter)
        alphabet: set[str] = set()
        for text in texts:
            if not text:
                continue
            alphabet.update(text)
            padded = START * (order - 1) + text + END
            for i in range(order - 1, len(padded)):
                for n in range(order):  # histories of length 0 .. order-1
                    counts[padded[i - n : i]][padded[i]] += 1
        return cls(dict(counts), alphabet, order)

    def _logp(self, char: str, history: str) -> float:
        """log P(char | history); ``history`` is the text so far (only its tail is used)."""
        history = (START * (self.order - 1) + history)[-(self.order - 1):] if self.order > 1 else ""
        p = self.uniform
        for n in range(len(history) + 1):  # from the empty history up to the longest
            seen = self.counts.get(history[len(history) - n:])
            if not seen:
                break
            total = sum(seen.values())
            p = max(seen.get(char, 0) - DISCOUNT, 0) / total + DISCOUNT * len(seen) / total * p
        return math.log(p)


class LMDecoder:
    """CTC prefix beam search scored by a ``CharNgram``.

    Args:
        lm: the language model; characters the model writes but the LM never saw get its
            uniform floor.
        alpha: weight of the LM's log-probability; beta: bonus per character (counters the
            LM's preference for short texts); beam: prefixes kept per column;
        prune: characters whose probability in a column is below this are not tried there.
    """

    def __init__(self, lm: CharNgram, alpha: float = 0.5, beta: float = 1.0, beam: int = 16, prune: float = 1e-3):
        self.lm, self.alpha, self.beta, self.beam, self.log_prune = lm, alpha, beta, beam, math.log(prune)

    @classmethod
    def from_texts(cls, texts: Iterable[str], order: int = 6, **kwargs) -> LMDecoder:
        return cls(CharNgram.from_texts(texts, order), **kwargs)

    def decode(self, log_probs: torch.Tensor, charset: Charset) -> list[str]:
        """The best text for each item of ``log_probs`` (T, N, classes)."""
        lp = log_probs.float().cpu().numpy()
        return [self.decode_one(lp[:, n], charset) for n in range(lp.shape[1])]

    def decode_one(self, lp: np.ndarray, charset: Charset) -> str:
        """Prefix beam search over one image's (T, classes) log-probabilities."""
        # A prefix's probability mass is split into paths ending in a blank and in its last char.
        beams = {"": (0.0, -math.inf)}  # prefix -> (log p ending in blank, log p ending in non-blank)
        lm_score = {"": 0.0}  # alpha * log P_lm(prefix) + beta * len(prefix)
        for t in range(lp.shape[0]):
            row = lp[t]
            tried = np.nonzero(row >= self.log_prune)[0]
            if len(tried) == 0:
                tried = [int(row.argmax())]
            nxt: dict[str, list[float]] = defaultdict(lambda: [-math.inf, -math.inf])
            for prefix, (p_b, p_nb) in beams.items():
                total = np.logaddexp(p_b, p_nb)
                for c in tried:
                    p = float(row[c])
                    if c == Charset.blank:
                        entry = nxt[prefix]
                        entry[0] = np.logaddexp(entry[0], total + p)
                        continue
                    char = charset.chars[c - 1]
                    extended = prefix + char
                    if extended not in lm_score:
                        lm_score[extended] = (lm_score[prefix] + self.alpha * self.lm.logp(char, prefix)
                                              + self.beta)
                    entry = nxt[extended]
                    if prefix and prefix[-1] == char:
                        # A repeat needs a blank in between; without one the path stays on prefix.
                        entry[1] = np.logaddexp(entry[1], p_b + p)
                        same = nxt[prefix]
                        same[1] = np.logaddexp(same[1], p_nb + p)
                    else:
                        entry[1] = np.logaddexp(entry[1], total + p)
            ranked = sorted(nxt.items(), key=lambda kv: np.logaddexp(*kv[1]) + lm_score[kv[0]], reverse=True)
            beams = {prefix: tuple(ps) for prefix, ps in ranked[: self.beam]}
        end = {prefix: np.logaddexp(*ps) + lm_score[prefix] + self.alpha * self.lm.logp(END, prefix)
               for prefix, ps in beams.items()}
        return max(end, key=end.get)
