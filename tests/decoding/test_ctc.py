"""CTC: the length rule, target packing, loss, and the decoders behind one interface."""
import pytest
import torch

from crnn_ocr.model.charset import Charset
from crnn_ocr.decoding.ctc import (Decoder, GreedyDecoder, align, ctc_loss, decoder_names, greedy, make_decoder,
                          pack_targets, required_length, runs_of)
from crnn_ocr.decoding.lexicon import Lexicon


@pytest.mark.parametrize("text, needed", [("", 0), ("abc", 3), ("aab", 4), ("aaa", 5), ("hello", 6)])
def test_ctc_needs_a_blank_between_equal_neighbours(text, needed):
    assert required_length(text) == needed
    assert required_length(Charset("aehlobc").encode(text)) == needed  # class indices too


def one_hot_log_probs(path: list[int], classes: int) -> torch.Tensor:
    lp = torch.full((len(path), 1, classes), -20.0)
    for t, c in enumerate(path):
        lp[t, 0, c] = 0.0
    return lp


def test_greedy_decoding_merges_repeats_and_drops_blanks():
    cs = Charset("ab")
    # a a - a b b - - b  ->  "aabb"
    texts, conf = greedy(one_hot_log_probs([1, 1, 0, 1, 2, 2, 0, 0, 2], 3), cs)
    assert texts == ["aab"[:2] + "bb"]
    assert conf[0] == pytest.approx(1.0)


def test_greedy_decoding_of_a_batch_and_confidence_is_best_path_probability():
    cs = Charset("xy")
    lp = torch.log(torch.tensor([[[0.1, 0.6, 0.3], [0.5, 0.1, 0.4]],
                                 [[0.2, 0.2, 0.6], [0.7, 0.2, 0.1]]]))  # (T=2, N=2, C=3)
    texts, conf = greedy(lp, cs)
    assert texts == ["xy", ""]
    assert conf == pytest.approx([0.6 * 0.6, 0.5 * 0.7])


def test_targets_are_packed_as_ctc_loss_wants_them():
    flat, lengths = pack_targets([[1, 2], [], [3]])
    assert flat.tolist() == [1, 2, 3] and lengths.tolist() == [2, 0, 1]


def test_loss_is_near_zero_for_a_certain_path_and_zero_for_an_impossible_one():
    lp = one_hot_log_probs([1, 0, 2], 3)
    assert ctc_loss(lp, *pack_targets([[1, 2]])).item() == pytest.approx(0.0, abs=1e-4)
    impossible = ctc_loss(lp, *pack_targets([[1, 1, 1]]), reduction="none")  # needs 5 columns, has 3
    assert impossible.tolist() == [0.0]


def test_greedy_details_give_each_character_its_columns_and_confidence():
    cs = Charset("ab")
    lp = one_hot_log_probs([1, 1, 0, 1, 2, 2, 0, 0, 2], 3)
    lp[1, 0, 1], lp[1, 0, 0] = -0.7, -0.8  # column 1: "a" at probability 0.5, the blank a little less
    (h,) = GreedyDecoder()(lp, cs, details=True)
    assert h.text == "aabb"
    assert [(s.char, s.start, s.end) for s in h.spans] == [("a", 0, 2), ("a", 3, 4), ("b", 4, 6), ("b", 8, 9)]
    assert h.spans[0].confidence == pytest.approx(1.0)  # the highest of its columns
    assert GreedyDecoder()(lp, cs)[0].spans is None  # no details unless asked


def test_alignment_is_the_best_path_that_spells_the_target():
    lp = one_hot_log_probs([1, 1, 0, 2, 2], 3)  # "ab" with certainty
    assert align(lp[:, 0], [1, 2]) == [1, 1, 0, 2, 2]
    forced = align(lp[:, 0], [1, 1])  # "aa" needs a blank between the two a's
    assert [c for c, _, _ in runs_of(forced)] == [1, 1] and forced[:2] == [1, 1]
    assert align(lp[:, 0], [1, 1, 1]) == [1, 0, 1, 0, 1]  # just fits
    assert align(lp[:, 0], [1, 1, 1, 1]) == [0] * 5  # needs 7 columns: all blanks


def test_decoders_are_chosen_by_name_and_share_one_interface():
    assert {"greedy", "lexicon"} <= set(decoder_names())
    assert isinstance(make_decoder("greedy"), GreedyDecoder)
    lex = make_decoder("lexicon", words=["the"])
    assert isinstance(lex, Lexicon) and isinstance(lex, Decoder)
    with pytest.raises(ValueError, match="unknown decoder 'beam'"):
        make_decoder("beam")


def test_lexicon_decoding_picks_the_word_with_the_best_ctc_score():
    cs = Charset("acehnt")
    # Columns spell "tha" greedily; the last column gives "e" nearly as much weight as "a".
    lp = torch.full((5, 1, len(cs)), -8.0)
    for t, c in enumerate(["t", None, "h", None, "a"]):
        lp[t, 0, cs.encode(c)[0] if c else 0] = 0.0
    lp[4, 0, cs.encode("e")[0]] = -0.3
    lp = lp.log_softmax(2)
    lexicon = Lexicon(["the", "than", "cat", "tea", "thé"])
    assert lexicon.decode(lp, ["tha"], cs) == ["the"]
    # Without a candidate in reach of the charset, the greedy reading stays.
    assert Lexicon(["ü"]).decode(lp, ["tha"], cs) == ["tha"]
    # As a decoder: the word, the probability of its best alignment (t _ h _ e), below the greedy
    # path's (t _ h _ a), and the word's characters aligned.
    (h,) = lexicon(lp, cs, details=True)
    path = [cs.encode("t")[0], 0, cs.encode("h")[0], 0, cs.encode("e")[0]]
    assert h.text == "the" and h.confidence == pytest.approx(float(lp[range(5), 0, path].sum().exp()), rel=1e-4)
    assert h.confidence < greedy(lp, cs)[1][0]
    assert "".join(s.char for s in h.spans) == "the" and h.spans[-1].start == 4
