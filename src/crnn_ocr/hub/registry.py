"""Bundled, ready-to-use models: found by name, shipped inside the package.

Every bundled model is an ONNX file with float16 weights in ``crnn_ocr/hub/models/`` (package
data, so a plain ``pip install .`` carries it, and ONNX Runtime reads it without PyTorch) whose
metadata holds its config, charset and training labels, plus an entry in
``crnn_ocr/hub/models/models.json``: what it reads, its training data and licence, the config
and commit that made it, its validation metrics and speed, and how its ONNX file was checked
against the PyTorch model (``parity``). Training starts from one by name (``--pretrained``):
``checkpoint.load`` turns the file back into the PyTorch model. ``crnn-ocr models`` lists
them; ``--model NAME`` (``predict``, ``evaluate``, ``export``, ``serve``) and
``Recognizer.load(NAME)`` load one. A name that is not bundled is taken as a file path.

``release()`` writes a trained checkpoint into that folder (``crnn-ocr release``), with its
training labels in the metadata and, optionally, a word list beside it for the lexicon and
language-model decoders.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path

MODELS_DIR = Path(str(resources.files("crnn_ocr.hub") / "models"))
INDEX = MODELS_DIR / "models.json"
MAX_TOTAL_BYTES = 40_000_000  # every bundled model together: the package stays a small download


class UnknownModel(ValueError):
    """A model name that is not bundled (and not an existing file)."""


@dataclass
class ModelInfo:
    """One bundled model's card: what ``crnn-ocr models`` shows and docs/models.md details."""

    name: str
    file: str  # in crnn_ocr/hub/models/
    reads: str  # e.g. "handwritten English words (IAM style)"
    charset: str
    height: int
    width: int
    data: str  # the training data
    licence: str  # the training data's licence
    config: str = ""
    commit: str = ""
    metrics: dict = field(default_factory=dict)  # validation scores, as fractions
    speed: dict = field(default_factory=dict)  # ms per image
    recreate: str = ""  # the commands that make the file again
    word_list: str = ""  # in crnn_ocr/hub/models/: words for --decoder lexicon / lm when none are given
    lm_weights: dict = field(default_factory=dict)  # {"alpha", "beta"} of --decoder lm, chosen on validation data
    decoder: str = "greedy"  # what predict, evaluate, serve and Recognizer.read use unless told (measured)
    parity: str = ""  # the ONNX file's texts against the PyTorch model's on validation images (precision, checked)

    @property
    def path(self) -> Path:
        return MODELS_DIR / self.file

    @property
    def word_list_path(self) -> Path | None:
        return MODELS_DIR / self.word_list if self.word_list else None

    def input_size(self) -> str:
        """``'48x192'``, or ``'48 x any width'`` for a model that reads every image at its own width."""
        return f"{self.height}x{self.width}" if self.width else f"{self.height} x any width"

    def charset_summary(self) -> str:
        """``'19: 2345678bcdefgmnpwxy'`` or, for a long charset, its size and classes."""
        chars = self.charset
        if len(chars) <= 24:
            return f"{len(chars)}: {chars}"
        kinds = [name for name, test in (("digits", str.isdigit), ("lower", str.islower), ("upper", str.isupper))
                 if any(test(c) for c in chars)]
        other = sum(1 for c in chars if not (c.isdigit() or c.isalpha()))
        return f"{len(chars)}: " + ", ".join(kinds + ([f"{other} other"] if other else []))


def models() -> dict[str, ModelInfo]:
    """Every bundled model by name (none if the index is missing)."""
    if not INDEX.is_file():
        return {}
    known = {f.name for f in fields(ModelInfo)}  # an index written by a newer version may have more keys
    return {m["name"]: ModelInfo(**{k: v for k, v in m.items() if k in known})
            for m in json.loads(INDEX.read_text(encoding="utf-8"))}


def info_of(name_or_path: str | Path) -> ModelInfo | None:
    """The card of a bundled model, given its name or its file; None for any other model."""
    for m in models().values():
        if str(name_or_path) == m.name or Path(name_or_path).resolve() == m.path.resolve():
            return m
    return None


def resolve(name_or_path: str | Path) -> Path:
    """The file of a bundled model's name, or ``name_or_path`` itself when it names no bundled
    model; ``UnknownModel`` when it is neither a bundled name nor an existing path."""
    bundled = models()
    if str(name_or_path) in bundled:
        return bundled[str(name_or_path)].path
    path = Path(name_or_path)
    if str(name_or_path).strip() and (path.exists() or path.suffix):  # Path("") is ".", a folder
        return path  # a path: its loader reports a missing or bad file
    known = ", ".join(sorted(bundled)) or "none"
    raise UnknownModel(f"unknown model {str(name_or_path)!r} (bundled models: {known}; or give a file path)")


def metric_text(name: str, value) -> str:
    """A validation score as shown: fractions as percentages, BLEU (0-100) and counts as numbers."""
    if name in ("word_accuracy", "cer", "wer") and isinstance(value, (int, float)):
        return f"{100 * value:.2f}%"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


TABLE_WIDTH = 100  # `crnn-ocr models` fits a terminal this wide; the cards hold the rest


def size_text(m: ModelInfo) -> str:
    return f"{m.path.stat().st_size / 1e6:.1f} MB" if m.path.is_file() else "missing"


def headline(m: ModelInfo) -> str:
    """A model's validation scores in a few characters: word accuracy and CER."""
    shown = [f"{label} {metric_text(k, m.metrics[k])}" for k, label in (("word_accuracy", "acc"), ("cer", "CER"))
             if isinstance(m.metrics.get(k), (int, float))]
    return ", ".join(shown) or "-"


def table(width: int = TABLE_WIDTH) -> str:
    """The bundled models as an aligned text table at most ``width`` characters wide: what
    each reads is cut to fit (``card_text`` has all)."""
    rows = [("name", "input", "size", "decoder", "validation", "reads")]
    rows += [(m.name, m.input_size(), size_text(m), m.decoder, headline(m), m.reads) for m in models().values()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    room = max(10, width - sum(widths) - 2 * len(widths))
    lines = []
    for r in rows:
        reads = r[-1] if len(r[-1]) <= room else r[-1][: room - 3] + "..."
        lines.append("  ".join([c.ljust(w) for c, w in zip(r, widths)] + [reads]).rstrip())
    return "\n".join(lines)


def card(m: ModelInfo) -> list[str]:
    """One model's card as Markdown lines (``card_text``, docs/models.md)."""
    parts = [f"## `{m.name}`", "", f"Reads {m.reads}.", "",
             f"- File: `crnn_ocr/hub/models/{m.file}` ({size_text(m)}, ONNX with float16 weights; "
             "config, charset and training labels in its metadata)",
             f"- Input: {m.input_size()}; charset {m.charset_summary()}",
             f"- Training data: {m.data}", f"- Data licence: {m.licence}",
             f"- Config: `{m.config}`; commit `{m.commit or 'unknown'}`"]
    if m.parity:
        parts.append(f"- ONNX against PyTorch: {m.parity}")
    if m.word_list:
        parts.append(f"- Word list for `--decoder lexicon` / `lm`: `crnn_ocr/hub/models/{m.word_list}`")
    if m.lm_weights:
        parts.append("- `--decoder lm` weights (chosen on validation data): "
                     + ", ".join(f"{k} {v:g}" for k, v in m.lm_weights.items()))
    if m.decoder != "greedy":
        parts.append(f"- Default decoder: `{m.decoder}` (`--decoder greedy` for the model's own best path)")
    parts += [f"- Validation {'images' if k == 'n' else k}: {metric_text(k, v)}" for k, v in m.metrics.items()]
    parts += [f"- Speed, {k}: {v}" for k, v in m.speed.items()]
    parts += ["", "Recreate it:", "", "```sh", m.recreate, "```"] if m.recreate else []
    return parts


def card_text(name: str) -> str:
    """The card of the bundled model ``name``; ``UnknownModel`` if there is none."""
    if name not in models():
        raise UnknownModel(f"unknown model {name!r} (bundled models: {', '.join(sorted(models())) or 'none'})")
    return "\n".join(card(models()[name]))


def cards_markdown() -> str:
    """docs/models.md: one model card per bundled model."""
    parts = ["# Bundled models", "",
             "Written by `crnn-ocr release` (or `python -m crnn_ocr.hub.registry`) from "
             "`src/crnn_ocr/hub/models/models.json`. "
             "Metrics are on validation data; speed is ms per image at batch 1 on one CPU thread.", ""]
    for m in models().values():
        parts += card(m) + [""]
    return "\n".join(parts)


if __name__ == "__main__":
    Path("docs").mkdir(exist_ok=True)
    Path("docs/models.md").write_text(cards_markdown(), encoding="utf-8")
    print(table())
