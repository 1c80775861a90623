"""What reading a page gives: ``Page`` -> ``Line`` -> ``Word``, each with its box in the
page's pixels (x0, y0, x1, y1; ends exclusive, as given: before any turn the reader made)
and its confidence. ``to_dict`` is the JSON form (``export`` writes hOCR and ALTO from the
same objects); ``text`` the plain text, lines in reading order."""
from __future__ import annotations

from dataclasses import dataclass, field

Box = tuple[int, int, int, int]


@dataclass
class Word:
    """A word of a line: its text (no spaces), the mean confidence of its characters, its box."""

    text: str
    confidence: float
    box: Box

    def to_dict(self) -> dict:
        return {"text": self.text, "confidence": round(self.confidence, 4), "box": list(self.box)}


@dataclass
class Line:
    """A text line: its text as read, the probability of the best CTC path, its box and words."""

    text: str
    confidence: float
    box: Box
    words: list[Word] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"text": self.text, "confidence": round(self.confidence, 4), "box": list(self.box),
                "words": [w.to_dict() for w in self.words]}


@dataclass
class Page:
    """One page: its size in pixels, the turn made to read it (``angle``, degrees
    counter-clockwise: a quarter turn for a page on its side, 180 for one upside down, plus the
    skew), its lines in reading order and ``flags`` (e.g. an orientation that stayed unsure)."""

    width: int
    height: int
    lines: list[Line] = field(default_factory=list)
    angle: float = 0.0
    number: int = 1
    flags: list[str] = field(default_factory=list)

    def text(self) -> str:
        """The page's lines in reading order, one per line of text ('' for a blank page)."""
        return "\n".join(line.text for line in self.lines)

    @property
    def confidence(self) -> float:
        """The mean line confidence, weighted by characters (0 for a blank page)."""
        chars = sum(len(ln.text) for ln in self.lines)
        return sum(ln.confidence * len(ln.text) for ln in self.lines) / chars if chars else 0.0

    def to_dict(self) -> dict:
        return {"page": self.number, "width": self.width, "height": self.height, "angle": round(self.angle, 2),
                "confidence": round(self.confidence, 4), "flags": list(self.flags), "text": self.text(),
                "lines": [line.to_dict() for line in self.lines]}


def document_dict(pages: list[Page], source: str = "") -> dict:
    """Pages of one document as one JSON-ready dict: ``{"source", "pages": [...]}``."""
    return {"source": source, "pages": [p.to_dict() for p in pages]}
