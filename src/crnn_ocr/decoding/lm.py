"""Open-vocabulary decoding: CTC prefix beam search with a character n-gram language model.

The lexicon decoder (``lexicon.py``) can only answer words of its list. This one can answer
any string, but prefers strings that look like the language: a character n-gram model, built
from word lists and the model's own training labels, scores every character the beam search
appends (Hannun et al., 2014, "First-pass large vocabulary continuous speech recognition using
bi-directional recurrent DNNs", prefix beam search).

The n-gram model is interpolated absolute discounting (Ney et al., 1994) over character
histories of up to ``order - 1`` characters, with ``<`` and ``>`` marking the start and end of
a text. Each training label counts as often as it occurs, so the words a writer uses most
weigh most; a word of a word list counts once, or as often as a frequency list says (the
list shipped with ``handwriting-en``: Debian's ``wamerican`` with English word frequencies).

Score of a reading: log P_ctc + alpha * log P_lm + beta * length. ``alpha`` and ``beta`` are
chosen on validation data (``experiments/decoders.py``), never on test data.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np

from crnn_ocr.model.charset import Charset
from crnn_ocr.decoding.ctc import Decoder, GreedyDecoder, Hypothesis, as_numpy, reread
from crnn_ocr.decoding.lexicon import read_word_counts

START, END = "\x02", "\x03"  # text boundaries inside the n-gram histories (never in a label)
DISCOUNT = 0.75
CACHED_TEXTS = 10_000  # a model of at least this many texts is kept in the cache (building it takes seconds)


def cache_dir() -> Path:
    """Where built language models are kept: ``$CRNN_OCR_CACHE``, else ``$XDG_CACHE_HOME/crnn-ocr/lm``
    (``~/.cache/crnn-ocr/lm``)."""
    if os.environ.get("CRNN_OCR_CACHE"):
        return Path(os.environ["CRNN_OCR_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "crnn-ocr" / "lm"


class CharNgram:
    """A character n-gram language model with interpolated absolute discounting.

    >>> lm = CharNgram.from_texts(["the", "then", "hat"], order=3)
    >>> lm.logp("h", "t") > lm.logp("x", "t")
    True
    """

    def __init__(self, counts: dict[str, dict[str, int]], alphabet: set[str], order: int):
        self.order, self.counts, self.alphabet = order, counts, alphabet
        self.totals = {history: sum(seen.values()) for history, seen in counts.items()}
        self.uniform = 1.0 / (len(alphabet) + 1)  # every character and the end of text
        self.logp = lru_cache(maxsize=1_000_000)(self._logp)

    @classmethod
    def cached(cls, texts: Mapping[str, int], order: int = 6) -> CharNgram:
        """``from_texts``, kept in ``cache_dir()`` once built (a large model takes seconds to
        count, a second to load): the file is named by a hash of ``texts`` and ``order``, so a
        changed word list builds anew. A cache that cannot be read or written is rebuilt or
        skipped, never an error."""
        texts = Counter({t: n for t, n in texts.items() if t and n > 0})  # what from_texts counts
        if len(texts) < CACHED_TEXTS:
            return cls.from_texts(texts, order)
        key = hashlib.sha256(json.dumps([order, sorted(texts.items())], ensure_ascii=False).encode()).hexdigest()
        try:
            path = cache_dir() / f"{key[:32]}.json.gz"
        except RuntimeError:  # no home folder: no cache
            return cls.from_texts(texts, order)
        try:
            counts = json.loads(gzip.decompress(path.read_bytes()))
            if all(isinstance(n, int) for seen in counts.values() for n in seen.values()):
                return cls(counts, set("".join(texts)), order)
        except (OSError, ValueError, EOFError, AttributeError, TypeError):
            pass  # missing, unreadable or not ours: built anew
        lm = cls.from_texts(texts, order)
        data, tmp = gzip.compress(json.dumps(lm.counts, ensure_ascii=False, separators=(",", ":")).encode(), 6), None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
                tmp = Path(f.name)
                f.write(data)
            os.replace(tmp, path)  # whole or not at all
        except OSError:  # a read-only home, a full disk: the next load counts again
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        return lm

    @classmethod
    def from_texts(cls, texts: Iterable[str] | Mapping[str, int], order: int = 6) -> CharNgram:
        """Count every n-gram (n <= ``order``) of ``texts``: a text that repeats counts again; a
        mapping gives each text's count."""
        texts = Counter({t: n for t, n in texts.items() if t and n > 0} if isinstance(texts, Mapping)
                        else (t for t in texts if t))
        grams: Counter = Counter()
        pad = START * (order - 1)
        for n in range(1, order + 1):  # n-grams: a history of n - 1 characters and the next one
            for text, times in texts.items():
                padded = pad[: n - 1] + text + END
                for i in range(len(padded) - n + 1):
                    grams[padded[i : i + n]] += times
        counts: dict[str, Counter] = defaultdict(Counter)
        for gram, times in grams.items():
            counts[gram[:-1]][gram[-1]] = times
        return cls(dict(counts), set("".join(texts)), order)

    def _logp(self, char: str, history: str) -> float:
        """log P(char | history); ``history`` is the text so far (only its tail is used)."""
        history = (START * (self.order - 1) + history)[-(self.order - 1):] if self.order > 1 else ""
        p = self.uniform
        for n in range(len(history) + 1):  # from the empty history up to the longest
            tail = history[len(history) - n:]
            seen = self.counts.get(tail)
            if not seen:
                break
            total = self.totals[tail]
            p = max(seen.get(char, 0) - DISCOUNT, 0) / total + DISCOUNT * len(seen) / total * p
        return math.log(p)


def logaddexp(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) for Python floats (numpy's ufunc is slow on scalars)."""
    if a < b:
        a, b = b, a
    return a if b == -math.inf else a + math.log1p(math.exp(b - a))


class LMDecoder(Decoder):
    """CTC prefix beam search scored by a ``CharNgram``; a ``ctc.Decoder``, ``"lm"`` in ``ctc.DECODERS``.

    Args:
        lm: the language model; characters the model writes but the LM never saw get its
            uniform floor.
        alpha: weight of the LM's log-probability; beta: bonus per character (counters the
            LM's preference for short texts); beam: prefixes kept per column;
        prune, top: in each column, only the ``top`` most likely classes with a probability of
            at least ``prune`` are tried.
    """

    # The defaults were chosen on IAM validation words (experiments/decoders.py: the first 400
    # words of val1; results/decoders/decoders.json), the only tuning data this project has.
    def __init__(self, lm: CharNgram, alpha: float = 1.0, beta: float = 0.0, beam: int = 16, prune: float = 1e-3,
                 top: int = 8):
        self.lm, self.alpha, self.beta, self.beam = lm, alpha, beta, beam
        self.log_prune, self.top = math.log(prune), top

    name = "lm"

    @classmethod
    def from_texts(cls, texts: Iterable[str] | Mapping[str, int], order: int = 6, **kwargs) -> LMDecoder:
        return cls(CharNgram.from_texts(texts, order), **kwargs)

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], extra: Iterable[str] = (), order: int = 6, **kwargs) -> LMDecoder:
        """A language model of word lists (``lexicon.read_word_counts``: one word per line, or
        a word, a tab and its count) plus ``extra`` texts (a model's training labels, each as
        often as it occurs)."""
        counts = read_word_counts(paths)
        counts.update(extra)
        return cls(CharNgram.cached(counts, order), **kwargs)

    def decode(self, log_probs: np.ndarray, charset: Charset) -> list[str]:
        """The best text for each item of ``log_probs`` (T, N, classes)."""
        lp = as_numpy(log_probs)
        return [self.decode_one(lp[:, n], charset) for n in range(lp.shape[1])]

    def __call__(self, log_probs: np.ndarray, charset: Charset, details: bool = False) -> list[Hypothesis]:
        """The ``ctc.Decoder`` interface: the beam search's texts, each with the confidence and
        (with details) the columns of its best alignment (``ctc.reread``)."""
        log_probs = as_numpy(log_probs)
        hypotheses = GreedyDecoder()(log_probs, charset, details)
        for n, (h, text) in enumerate(zip(hypotheses, self.decode(log_probs, charset))):
            reread(h, log_probs[:, n], text, charset, details)
        return hypotheses

    def decode_one(self, lp: np.ndarray, charset: Charset) -> str:
        """Prefix beam search over one image's (T, classes) log-probabilities."""
        # A prefix's probability mass is split into paths ending in a blank and in its last char.
        beams = {"": (0.0, -math.inf)}  # prefix -> (log p ending in blank, log p ending in non-blank)
        lm_score = {"": 0.0}  # alpha * log P_lm(prefix) + beta * len(prefix)
        order = np.argsort(-lp, axis=1)[:, : self.top]
        for t in range(lp.shape[0]):
            row = lp[t]
            tried = [int(c) for c in order[t] if row[c] >= self.log_prune] or [int(order[t, 0])]
            nxt: dict[str, list[float]] = {}
            for prefix, (p_b, p_nb) in beams.items():
                total = logaddexp(p_b, p_nb)
                for c in tried:
                    p = float(row[c])
                    if c == Charset.blank:
                        entry = nxt.setdefault(prefix, [-math.inf, -math.inf])
                        entry[0] = logaddexp(entry[0], total + p)
                        continue
                    char = charset.chars[c - 1]
                    extended = prefix + char
                    if extended not in lm_score:
                        lm_score[extended] = lm_score[prefix] + self.alpha * self.lm.logp(char, prefix) + self.beta
                    entry = nxt.setdefault(extended, [-math.inf, -math.inf])
                    if prefix and prefix[-1] == char:
                        # A repeat needs a blank in between; without one the path stays on prefix.
                        entry[1] = logaddexp(entry[1], p_b + p)
                        same = nxt.setdefault(prefix, [-math.inf, -math.inf])
                        same[1] = logaddexp(same[1], p_nb + p)
                    else:
                        entry[1] = logaddexp(entry[1], total + p)
            ranked = sorted(nxt.items(), key=lambda kv: logaddexp(*kv[1]) + lm_score[kv[0]], reverse=True)
            beams = {prefix: tuple(ps) for prefix, ps in ranked[: self.beam]}
        end = {prefix: logaddexp(*ps) + lm_score[prefix] + self.alpha * self.lm.logp(END, prefix)
               for prefix, ps in beams.items()}
        return max(end, key=end.get)

