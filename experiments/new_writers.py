"""A handwriting set that no bundled or pretrained model has trained on, to measure how the
defaults of ``crnn-ocr train --data FOLDER`` carry to new data.

The IAM ``extra_train.txt`` words (1,778 words of 14 writers that share no writer with any
official split) are split by writer: the ``--val-writers`` (by default four writers, 398
words) validate, the other ten (1,380 words) train. The folder gets ``train/`` and ``val/``,
each a ``labels.tsv`` and links to the IAM images (nothing is copied):

    python experiments/new_writers.py --iam ../shared/data/iam_words --out ../data/iam_new_writers
    crnn-ocr train --data ../data/iam_new_writers --out runs/new_writers_defaults

The bundled synth-words model (the default start) saw no IAM image. The bundled
handwriting-en did train on these writers, so it is no fair start on this set.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from crnn_ocr.data.layouts import load_iam, read_ids


def writers(iam: Path) -> dict[str, str]:
    """Form id -> writer id, from IAM's ``forms.txt``."""
    table = {}
    for line in (iam / "forms.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) > 1 and not line.startswith("#"):
            table[parts[0]] = parts[1]
    return table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iam", type=Path, required=True, help="IAM words root (words.txt, words/, forms.txt, splits/)")
    p.add_argument("--ids", default="splits/extra_train.txt", help="word-id list under --iam to take the words from")
    p.add_argument("--val-writers", nargs="+", default=["346", "352", "384", "385"])
    p.add_argument("--out", type=Path, required=True, help="the folder to write (train/ and val/)")
    args = p.parse_args()
    form_writer = writers(args.iam)
    items = load_iam(args.iam, read_ids([str(args.iam / args.ids)]))
    rows: dict[str, list[str]] = {"train": [], "val": []}
    for item in sorted(items, key=lambda i: i.path):
        name = Path(item.path).name
        form = "-".join(name.split("-")[:2])
        split = "val" if form_writer.get(form) in args.val_writers else "train"
        (args.out / split).mkdir(parents=True, exist_ok=True)
        link = args.out / split / name
        if not link.is_symlink():
            os.symlink(Path(item.path).resolve(), link)
        rows[split].append(f"{name}\t{item.text}")
    for split, lines in rows.items():
        (args.out / split / "labels.tsv").write_text("\n".join(lines) + "\n")
        print(f"{split}: {len(lines)} words")


if __name__ == "__main__":
    main()
