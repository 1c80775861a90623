import pytest
import sacrebleu

from crnn_ocr.evaluation.metrics import EMPTY, cer, char_bleu, confusions, scores, wer, word_accuracy


def test_word_accuracy_counts_exact_matches_only():
    assert word_accuracy(["abc", "de", "f"], ["abc", "dE", "f"]) == pytest.approx(2 / 3)


def test_cer_is_total_edits_over_total_gold_characters():
    # "kitten"->"sitting": 3 edits; "ab"->"ab": 0; total gold length 8
    assert cer(["kitten", "ab"], ["sitting", "ab"]) == pytest.approx(3 / 8)


def test_wer_counts_word_edits():
    # "the cat sat" -> "the bat sat": 1 of 3 words; "hello" -> "": 1 of 1
    assert wer(["the cat sat", "hello"], ["the bat sat", ""]) == pytest.approx(2 / 4)


def test_char_bleu_equals_sacrebleu_corpus_bleu_with_char_tokenization():
    gold, pred = ["hello", "world", "abcde"], ["hallo", "world", "abXde"]
    expected = sacrebleu.corpus_bleu(pred, [gold], tokenize="char").score
    assert char_bleu(gold, pred) == pytest.approx(expected)
    assert char_bleu(gold, gold) == pytest.approx(100.0)


def test_scores_has_every_key_of_metrics_json():
    s = scores(["abcdef"], ["abcdef"])
    assert s == pytest.approx({"n": 1, "word_accuracy": 1.0, "cer": 0.0, "wer": 0.0, "bleu": 100.0})


def test_confusions_count_matches_substitutions_insertions_and_deletions():
    counts = confusions(["abc", "ab", "abc"], ["xbc", "abz", "ac"])
    assert counts[("a", "x")] == 1  # substitution
    assert counts[(EMPTY, "z")] == 1  # insertion
    assert counts[("b", EMPTY)] == 1  # deletion
    assert counts[("a", "a")] == 2 and counts[("b", "b")] == 2 and counts[("c", "c")] == 2
    assert sum(counts.values()) == 9


def test_calibration_counts_each_confidence_bin_and_its_share_right():
    from crnn_ocr.evaluation.metrics import calibration

    gold = ["a", "b", "c", "d", "e", "f"]
    pred = ["a", "x", "c", "d", "x", "f"]
    confidence = [0.95, 0.92, 1.0, 0.75, 0.3, 0.1]
    rows = calibration(gold, pred, confidence)
    assert [(r["from"], r["to"], r["n"]) for r in rows] == [(0.0, 0.5, 2), (0.5, 0.7, 0), (0.7, 0.9, 1), (0.9, 1.0, 3)]
    assert [r["correct"] for r in rows] == [0.5, None, 1.0, round(2 / 3, 4)]
