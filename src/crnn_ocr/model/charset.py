"""The alphabet a model reads (CTC itself, decoding included, is ``crnn_ocr.ctc``).

Index 0 is the CTC blank; character ``i`` of the charset string has index ``i + 1``.
The charset is stored in every checkpoint as a plain string, so a model always travels with
the alphabet it was trained on.
"""
from __future__ import annotations

from collections.abc import Iterable


class Charset:
    """An ordered set of characters with the CTC blank at index 0.

    >>> cs = Charset("abc")
    >>> cs.encode("cab")
    [3, 1, 2]
    >>> cs.decode([3, 1, 2])
    'cab'
    """

    blank = 0

    def __init__(self, chars: str):
        if len(set(chars)) != len(chars):
            raise ValueError("charset has repeated characters")
        if not chars:
            raise ValueError("charset is empty")
        self.chars = chars
        self._index = {c: i + 1 for i, c in enumerate(chars)}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Charset:
        """The sorted set of every character in ``texts``."""
        return cls("".join(sorted(set("".join(texts)))))

    def __len__(self) -> int:
        """Number of classes the model predicts: the characters plus the blank."""
        return len(self.chars) + 1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Charset) and other.chars == self.chars

    def __repr__(self) -> str:
        return f"Charset({self.chars!r})"

    def unknown(self, text: str) -> set[str]:
        """Characters of ``text`` that are not in the charset."""
        return {c for c in text if c not in self._index}

    def encode(self, text: str) -> list[int]:
        """Class indices of ``text``; raises ``KeyError`` on an unknown character."""
        return [self._index[c] for c in text]

    def decode(self, indices: Iterable[int]) -> str:
        """Text of class indices, ignoring blanks (no CTC collapsing: see ``ctc.greedy``)."""
        return "".join(self.chars[i - 1] for i in indices if i != self.blank)
