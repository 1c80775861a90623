"""The character n-gram language model and the CTC prefix beam search it scores."""
import math

import pytest
import torch

from crnn_ocr.model.charset import Charset
from crnn_ocr.decoding.lm import END, CharNgram, LMDecoder


def columns(charset: Charset, rows: list[dict[str, float]]) -> torch.Tensor:
    """(T, 1, classes) log-probabilities: each row gives some characters' probabilities
    ("" = blank), the rest of the mass spread evenly over the other classes."""
    out = torch.empty(len(rows), 1, len(charset))
    for t, row in enumerate(rows):
        rest = (1 - sum(row.values())) / (len(charset) - len(row))
        p = torch.full((len(charset),), rest)
        for c, prob in row.items():
            p[0 if c == "" else charset.encode(c)[0]] = prob
        out[t, 0] = p.log()
    return out


def test_ngram_probabilities_are_normalised_over_the_next_character():
    lm = CharNgram.from_texts(["the", "then", "than", "hat", "the"], order=3)
    for history in ["", "t", "th", "xq"]:
        total = sum(math.exp(lm.logp(c, history)) for c in sorted(lm.alphabet) + [END])
        assert total == pytest.approx(1.0, abs=1e-9)
    assert lm.logp("h", "t") > lm.logp("a", "t")  # "th" is the commonest continuation
    assert lm.logp("e", "th") > lm.logp("a", "th")  # "the" twice, "than" once
    assert lm.logp(END, "the") > lm.logp(END, "th")


def test_frequent_texts_weigh_more():
    lm = CharNgram.from_texts(["cat"] * 5 + ["cot"], order=3)
    assert lm.logp("a", "c") > lm.logp("o", "c")


def test_beam_search_without_a_language_model_follows_the_ctc_best_path():
    cs = Charset("abc")
    lp = columns(cs, [{"a": 0.9}, {"": 0.9}, {"a": 0.9}, {"b": 0.8}])
    decoder = LMDecoder.from_texts(["zzz"], alpha=0.0, beta=0.0)
    assert decoder.decode(lp, cs) == ["aab"]  # the blank separates the two a's


def test_language_model_turns_an_ambiguous_column_into_a_known_word():
    cs = Charset("aehnt")
    # t h (e or a: nearly even, a slightly ahead) n
    lp = columns(cs, [{"t": 0.9}, {"h": 0.9}, {"a": 0.46, "e": 0.44}, {"n": 0.9}])
    plain = LMDecoder.from_texts(["then"], alpha=0.0, beta=0.0)
    assert plain.decode(lp, cs) == ["than"]
    informed = LMDecoder.from_texts(["then", "the", "hen", "ten"], alpha=1.0, beta=0.0)
    assert informed.decode(lp, cs) == ["then"]


def test_repeated_letters_need_a_blank_between_them():
    cs = Charset("lo")
    lp = columns(cs, [{"l": 0.9}, {"l": 0.9}, {"o": 0.9}])  # no blank between the l's: one l
    assert LMDecoder.from_texts(["lo"], alpha=0.0, beta=0.0).decode(lp, cs) == ["lo"]


def test_lm_decoder_is_a_ctc_decoder_with_details_for_its_own_text():
    from crnn_ocr.decoding.ctc import make_decoder

    cs = Charset("aehnt")
    lp = columns(cs, [{"t": 0.9}, {"h": 0.9}, {"a": 0.46, "e": 0.44}, {"n": 0.9}])
    decoder = make_decoder("lm", lm=CharNgram.from_texts(["then", "the", "hen", "ten"]), alpha=1.0, beta=0.0)
    (h,) = decoder(lp, cs, details=True)
    assert h.text == "then" and "".join(s.char for s in h.spans) == "then"
    assert [(s.start, s.end) for s in h.spans] == [(0, 1), (1, 2), (2, 3), (3, 4)]


def test_word_lists_are_read_with_a_bound(tmp_path):
    from crnn_ocr.decoding.lexicon import read_word_lists

    (tmp_path / "w.txt").write_text(" the \n\nthen\n")
    assert read_word_lists([tmp_path / "w.txt"]) == ["the", "then"]
    with pytest.raises(ValueError, match="not a regular file"):
        read_word_lists(["/dev/zero"])
    with pytest.raises(ValueError, match="no such file"):
        read_word_lists([tmp_path / "missing.txt"])
    (tmp_path / "model.bin").write_bytes(bytes(range(256)))
    (tmp_path / "utf16.txt").write_text("the\nthen\n", encoding="utf-16")
    for name in ("model.bin", "utf16.txt"):  # were read as words of garbage
        with pytest.raises(ValueError, match="is not UTF-8 text"):
            read_word_lists([tmp_path / name])


def test_frequency_lists_give_counts(tmp_path):
    from crnn_ocr.decoding.lexicon import read_word_counts, read_word_lists

    (tmp_path / "f.tsv").write_text("the\t12\nNew York\t3\nodd\tword\nzero\t0\n the \nhuge\t" + "9" * 400 + "\n")
    (tmp_path / "w.txt").write_text("then\nthe\n")
    counts = read_word_counts([tmp_path / "f.tsv", tmp_path / "w.txt"])
    # a count adds up across lines and files; a tab without a positive count is part of the word
    assert counts == {"the": 14, "New York": 3, "odd\tword": 1, "zero\t0": 1, "huge": 10**15, "then": 1}
    assert read_word_lists([tmp_path / "f.tsv"]) == ["the", "New York", "odd\tword", "zero\t0", "huge"]
    assert CharNgram.from_texts(counts).logp("u", "h") > CharNgram.from_texts(counts).logp("e", "th")


def test_counts_and_repeated_texts_build_the_same_model():
    a = CharNgram.from_texts({"cat": 5, "cot": 1, "": 3, "dog": 0}, order=3)
    b = CharNgram.from_texts(["cat"] * 5 + ["cot"], order=3)
    assert a.counts == b.counts and a.alphabet == b.alphabet


def test_word_frequencies_and_counted_labels_decide_between_readings(tmp_path):
    cs = Charset("acot")
    lp = columns(cs, [{"c": 0.9}, {"a": 0.45, "o": 0.45}, {"t": 0.9}])  # "cat" or "cot": even
    (tmp_path / "f.tsv").write_text("cat\t1\ncot\t30\n")
    assert LMDecoder.from_files([tmp_path / "f.tsv"], alpha=1.0).decode(lp, cs) == ["cot"]
    # the training labels, each as often as it occurs, outweigh the list
    assert LMDecoder.from_files([tmp_path / "f.tsv"], extra=["cat"] * 60, alpha=1.0).decode(lp, cs) == ["cat"]


def test_a_large_language_model_is_cached_and_a_bad_cache_is_rebuilt(tmp_path, monkeypatch):
    import crnn_ocr.decoding.lm as lm_module

    monkeypatch.setenv("CRNN_OCR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(lm_module, "CACHED_TEXTS", 2)
    texts = {"then": 3, "the": 5, "hen": 1}
    built = CharNgram.cached(texts, order=3)
    (kept,) = (tmp_path / "cache").iterdir()
    real = CharNgram.from_texts
    monkeypatch.setattr(CharNgram, "from_texts", classmethod(lambda *a: pytest.fail("counted again")))
    loaded = CharNgram.cached(texts, order=3)  # from the file
    assert loaded.counts == built.counts and loaded.logp("e", "th") == built.logp("e", "th")
    monkeypatch.setattr(CharNgram, "from_texts", classmethod(lambda cls, *a: real(*a)))
    assert CharNgram.cached(texts | {"ten": 1}, order=3).logp("n", "te") > built.logp("n", "te")  # other texts
    kept.write_bytes(b"not gzip")
    assert CharNgram.cached(texts, order=3).counts == built.counts  # rebuilt, and the file written anew
    assert CharNgram.cached(texts, order=3).counts == built.counts and kept.read_bytes()[:2] == b"\x1f\x8b"
    (tmp_path / "blocked").write_text("a file where the folder should be")
    monkeypatch.setenv("CRNN_OCR_CACHE", str(tmp_path / "blocked"))
    assert CharNgram.cached(texts, order=3).counts == built.counts  # cannot write: no error
    monkeypatch.setattr(lm_module, "cache_dir", lambda: (_ for _ in ()).throw(RuntimeError("no home")))
    assert CharNgram.cached(texts, order=3).counts == built.counts  # no home folder: no cache, no error


def test_small_language_models_are_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("CRNN_OCR_CACHE", str(tmp_path / "cache"))
    CharNgram.cached({"the": 1}, order=3)
    assert not (tmp_path / "cache").exists()


def test_the_confidence_of_a_language_model_reading_is_its_own_not_the_greedy_paths():
    from crnn_ocr.decoding.ctc import greedy, make_decoder

    cs = Charset("aehnt")
    lp = columns(cs, [{"t": 0.9}, {"h": 0.9}, {"a": 0.46, "e": 0.44}, {"n": 0.9}])
    decoder = make_decoder("lm", lm=CharNgram.from_texts(["then", "the", "hen", "ten"]), alpha=1.0, beta=0.0)
    (h,) = decoder(lp, cs)
    assert h.text == "then" and greedy(lp, cs)[0] == ["than"]
    assert h.confidence == pytest.approx(0.9 * 0.9 * 0.44 * 0.9, rel=1e-4)  # t h e n, one column each
    assert h.confidence < greedy(lp, cs)[1][0]  # the greedy path (than) was 0.9 * 0.9 * 0.46 * 0.9
    # A reading the language model leaves as the greedy one keeps the greedy confidence.
    (same,) = make_decoder("lm", lm=CharNgram.from_texts(["than"]), alpha=1.0, beta=0.0)(lp, cs)
    assert same.text == "than" and same.confidence == pytest.approx(greedy(lp, cs)[1][0])
