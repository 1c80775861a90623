import pytest
from crnn_ocr.model.charset import Charset


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
