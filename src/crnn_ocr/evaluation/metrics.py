"""Scores of predicted text against gold text: word accuracy, CER, WER, character BLEU, and
character confusions from edit-distance alignments.

CER and WER are corpus-level: total edit distance over total gold length (characters or
words). BLEU is the report's character-level BLEU: sacrebleu's corpus BLEU with character
tokenisation, 0-100.
"""
from __future__ import annotations

from collections import Counter

from rapidfuzz.distance import Levenshtein

EMPTY = "∅"  # the "no character" side of an insertion or deletion in the confusion counts


def word_accuracy(gold: list[str], pred: list[str]) -> float:
    """Fraction of exact matches."""
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / max(1, len(gold))


def cer(gold: list[str], pred: list[str]) -> float:
    """Character error rate: summed Levenshtein distance / summed gold length."""
    edits = sum(Levenshtein.distance(g, p) for g, p in zip(gold, pred, strict=True))
    return edits / max(1, sum(len(g) for g in gold))


def wer(gold: list[str], pred: list[str]) -> float:
    """Word error rate: the same on whitespace-separated words (a single word counts as one)."""
    edits = sum(Levenshtein.distance(g.split(), p.split()) for g, p in zip(gold, pred, strict=True))
    return edits / max(1, sum(len(g.split()) for g in gold))


def char_bleu(gold: list[str], pred: list[str]) -> float | None:
    """Corpus-level character BLEU (0-100), as in the report; None without sacrebleu (it comes
    with the training extra: with lxml and regex it is too large for the core install)."""
    try:
        import sacrebleu
    except ImportError:
        return None
    return sacrebleu.corpus_bleu(pred, [gold], tokenize="char").score


def scores(gold: list[str], pred: list[str]) -> dict:
    """Every metric at once, as written to ``metrics.json``."""
    return {
        "n": len(gold),
        "word_accuracy": word_accuracy(gold, pred),
        "cer": cer(gold, pred),
        "wer": wer(gold, pred),
        "bleu": char_bleu(gold, pred),
    }


def confusions(gold: list[str], pred: list[str]) -> Counter:
    """Counts of (gold character, predicted character) over the alignments of every pair.

    Matches give (c, c); substitutions (c, d); a deleted gold character (c, EMPTY); an
    inserted predicted character (EMPTY, d).
    """
    counts: Counter = Counter()
    for g, p in zip(gold, pred, strict=True):
        for op in Levenshtein.opcodes(g, p):
            a, b = g[op.src_start : op.src_end], p[op.dest_start : op.dest_end]
            if op.tag in ("equal", "replace"):
                counts.update(zip(a, b))
            elif op.tag == "delete":
                counts.update((c, EMPTY) for c in a)
            elif op.tag == "insert":
                counts.update((EMPTY, c) for c in b)
    return counts


CALIBRATION_EDGES = (0.5, 0.7, 0.9)  # confidence bins: [0, 0.5), [0.5, 0.7), [0.7, 0.9), [0.9, 1]


def calibration(gold: list[str], pred: list[str], confidence: list[float],
                edges: tuple[float, ...] = CALIBRATION_EDGES) -> list[dict]:
    """A reliability table: for each confidence bin, how many readings fell in it and the
    share of them that is right (None for an empty bin). A confidence that means something
    has the share rising with the bin, and near the bin's confidence."""
    bounds = (0.0, *edges, 1.0)
    rows = []
    for lo, hi in zip(bounds, bounds[1:]):
        inside = [g == p for g, p, c in zip(gold, pred, confidence) if lo <= c < hi or (hi == 1.0 and c == 1.0)]
        rows.append({"from": lo, "to": hi, "n": len(inside),
                     "correct": round(sum(inside) / len(inside), 4) if inside else None})
    return rows
