"""The units of every dataset: a labelled ``Item``, the ``Skipped`` tally of bad items, and
``DataError`` for input that cannot be used at all. Imported by every data source."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from PIL import Image


class DataError(Exception):
    """Input that cannot be used at all (missing path, empty dataset, ...)."""


@dataclass
class Item:
    """One labelled image: a file path, or an in-memory image with a display name."""

    text: str
    path: str
    image: Image.Image | None = None


class Skipped(Counter):
    """Reasons items were skipped, with counts; ``str()`` gives a one-line summary, ``detail()``
    the same with the first example of each reason (e.g. ``labels.tsv line 4``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.examples: dict[str, str] = {}

    def add(self, reason: str, example: str = "") -> None:
        """Count one item skipped for ``reason``; ``example`` says which (the first is kept)."""
        self[reason] += 1
        if example:
            self.examples.setdefault(reason, example)

    def __str__(self) -> str:
        return ", ".join(f"{n} {reason}" for reason, n in self.most_common())

    def detail(self) -> str:
        """``str()`` with the first example of each reason: what to fix first."""
        return ", ".join(f"{n} {reason}" + (f" (first: {self.examples[reason]})" if reason in self.examples else "")
                         for reason, n in self.most_common())
