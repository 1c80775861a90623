import pytest
import torch

from crnn_ocr.charset import Charset, ctc_greedy, ctc_required_length


def test_blank_is_index_zero_and_characters_follow():
    cs = Charset("abc")
    assert len(cs) == 4
    assert cs.encode("cab") == [3, 1, 2]
    assert cs.decode([0, 3, 0, 1, 2]) == "cab"


def test_charset_from_texts_is_sorted_and_unique():
    assert Charset.from_texts(["bca", "ab"]).chars == "abc"


def test_unknown_characters_are_reported_and_encode_raises():
    cs = Charset("ab")
    assert cs.unknown("abz!") == {"z", "!"}
    with pytest.raises(KeyError):
        cs.encode("z")


def test_repeated_characters_are_rejected():
    with pytest.raises(ValueError):
        Charset("aa")


@pytest.mark.parametrize("text, needed", [("", 0), ("abc", 3), ("aab", 4), ("aaa", 5), ("hello", 6)])
def test_ctc_needs_a_blank_between_equal_neighbours(text, needed):
    assert ctc_required_length(text) == needed


def one_hot_log_probs(path: list[int], classes: int) -> torch.Tensor:
    lp = torch.full((len(path), 1, classes), -20.0)
    for t, c in enumerate(path):
        lp[t, 0, c] = 0.0
    return lp


def test_greedy_decoding_merges_repeats_and_drops_blanks():
    cs = Charset("ab")
    # a a - a b b - - b  ->  "aabb"
    texts, conf = ctc_greedy(one_hot_log_probs([1, 1, 0, 1, 2, 2, 0, 0, 2], 3), cs)
    assert texts == ["aab"[:2] + "bb"]
    assert conf[0] == pytest.approx(1.0)


def test_greedy_decoding_of_a_batch_and_confidence_is_best_path_probability():
    cs = Charset("xy")
    lp = torch.log(torch.tensor([[[0.1, 0.6, 0.3], [0.5, 0.1, 0.4]],
                                 [[0.2, 0.2, 0.6], [0.7, 0.2, 0.1]]]))  # (T=2, N=2, C=3)
    texts, conf = ctc_greedy(lp, cs)
    assert texts == ["xy", ""]
    assert conf == pytest.approx([0.6 * 0.6, 0.5 * 0.7])
