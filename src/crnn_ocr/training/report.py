"""What a training run reports besides its checkpoints: the epoch line, ``history.csv``,
``loss.png``, the per-epoch sample grid and TensorBoard scalars."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from crnn_ocr.evaluation import plots
from crnn_ocr.utils.files import write_atomic


def epoch_line(row: dict, epochs: int, improved: bool) -> str:
    """The line printed after each epoch."""
    return (f"epoch {row['epoch']:3d}/{epochs}  train loss {row['train_loss']:.4f}  val loss {row['val_loss']:.4f}  "
            f"word acc {100 * row['val_word_accuracy']:6.2f}%  CER {100 * row['val_cer']:6.2f}%  "
            f"lr {row['lr']:.2e}  {row['img_per_s']:.0f} img/s  {row['seconds']:.1f}s"
            + ("  *best*" if improved else ""))


def write_history(history: list[dict], out: Path) -> None:
    """``history.csv`` (one row per epoch) and ``loss.png``."""
    table = io.StringIO()
    w = csv.DictWriter(table, fieldnames=list(history[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(history)
    write_atomic(out / "history.csv", table.getvalue())
    plots.loss_curve(history, out / "loss.png")


def open_tensorboard(out: Path):
    """A ``SummaryWriter`` for ``RUN/tensorboard`` (needs the tensorboard package)."""
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(out / "tensorboard"))


def log_tensorboard(writer, row: dict, sample_png: Path) -> None:
    """An epoch's scalars and its sample grid."""
    import numpy as np
    from PIL import Image

    for key, value in row.items():
        if key != "epoch":
            writer.add_scalar(key, value, row["epoch"])
    with Image.open(sample_png) as im:
        writer.add_image("samples", np.asarray(im.convert("RGB")), row["epoch"], dataformats="HWC")
    writer.flush()
