"""Figures: the loss curve, sample grids with gold and predicted text, the confusion matrix.

Matplotlib with the non-interactive Agg backend, so figures are written on machines with
no screen. Text from the data is drawn with ``usetex`` and mathtext off: a label such as
``$x^2$`` is shown as typed, never interpreted.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from crnn_ocr.utils.files import atomic_target, named_as, shown  # noqa: E402
from crnn_ocr.evaluation.metrics import EMPTY  # noqa: E402


def _literal(text: str) -> str:
    return shown(text).replace("$", r"\$")


def _save(fig, path: str | Path) -> None:
    """Save and close ``fig``, atomically (a temporary file renamed into place)."""
    tmp, path = atomic_target(path)
    try:
        with named_as(path):
            fig.savefig(tmp, dpi=100, format=path.suffix.lstrip(".") or "png")
            os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)


def loss_curve(history: list[dict], path: str | Path) -> None:
    """Training and validation loss per epoch, with validation CER on a second axis."""
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train loss")
    ax.plot(epochs, [h["val_loss"] for h in history], "o-", label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("CTC loss")
    ax.set_yscale("log")
    ax2 = ax.twinx()
    ax2.plot(epochs, [100 * h["val_cer"] for h in history], "s--", color="tab:green", label="validation CER %")
    ax2.set_ylabel("CER %")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def sample_grid(images, gold: list[str], pred: list[str], path: str | Path,
                columns: int = 4, title: str = "") -> None:
    """Images (N, C, H, W uint8, an array, a tensor or a list of (C, H, W)) with gold and
    prediction; errors in red."""
    n = len(images)
    rows = max(1, (n + columns - 1) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 1.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, g, p in zip(axes.flat, images, gold, pred):
        a = np.asarray(img).transpose(1, 2, 0)
        ax.imshow(a[:, :, 0] if a.shape[2] == 1 else a, cmap="gray", vmin=0, vmax=255)
        ok = g == p
        ax.set_title(f"gold: {_literal(g)}\npred: {_literal(p)}", fontsize=9,
                     color="black" if ok else "red", loc="left")
    if title:
        fig.suptitle(_literal(title))
    fig.tight_layout()
    _save(fig, path)


def confusion_matrix(counts: Counter, path: str | Path, max_chars: int = 60) -> None:
    """Gold characters (rows) against predicted characters (columns), row-normalised, log
    colour scale; ``∅`` is the empty side of an insertion or deletion. Only the ``max_chars``
    most frequent characters are shown, so that the matrix stays readable."""
    freq: Counter = Counter()
    for (g, p), n in counts.items():
        freq[g] += n
        freq[p] += n
    chars = sorted(c for c, _ in freq.most_common(max_chars) if c != EMPTY) + [EMPTY]
    index = {c: i for i, c in enumerate(chars)}
    m = np.zeros((len(chars), len(chars)))
    for (g, p), n in counts.items():
        if g in index and p in index:
            m[index[g], index[p]] += n
    m = m / m.sum(axis=1, keepdims=True).clip(min=1)
    size = max(5, 0.22 * len(chars) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(m, cmap="viridis", norm=matplotlib.colors.PowerNorm(0.3, vmin=0, vmax=1))
    labels = [_literal(c) if c != " " else "␣" for c in chars]
    ax.set_xticks(range(len(chars)), labels, fontsize=7)
    ax.set_yticks(range(len(chars)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title("character confusions (row-normalised)")
    fig.tight_layout()
    _save(fig, path)
