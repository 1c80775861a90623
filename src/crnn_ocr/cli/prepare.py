"""``crnn-ocr prepare``: dataset folders (labels.tsv + images) built from IAM's word crops
(``data.iam_lines``) or rendered printed lines (``data.synth.lines``)."""
from __future__ import annotations

import argparse


def cmd_prepare_iam_lines(args) -> int:
    from crnn_ocr.data.iam_lines import build_iam_lines

    report = build_iam_lines(args.iam, args.ids, args.out, margin=args.margin, keep_incomplete=args.keep_incomplete)
    print(f"{args.out}: {report}")
    return 0


def cmd_prepare_synth_lines(args) -> int:
    from crnn_ocr.data.synth.lines import iter_synthetic_lines, write_lines_folder

    lines = iter_synthetic_lines(args.n, args.seed, fonts=args.fonts, cover_charset=args.fonts == "train")
    print(f"{args.out}: {write_lines_folder(lines, args.n, args.out)} lines written ({args.fonts} fonts)")
    return 0


def add_prepare_parser(sub: argparse._SubParsersAction) -> None:
    """``crnn-ocr prepare iam-lines | synth-lines``."""
    p = sub.add_parser("prepare", help="write a dataset folder (labels.tsv + images)")
    prepare = p.add_subparsers(dest="dataset", required=True)
    p = prepare.add_parser("iam-lines", help="rebuild IAM text lines from the word crops",
                           description="Paste each line's word images at their words.txt boxes and write "
                           "labels.tsv + lines/*.png. A line is built when all its words are in the id lists; "
                           "lines with a missing word id, a word not marked ok or a missing image are dropped.")
    p.add_argument("--iam", required=True, metavar="ROOT", help="IAM words root (words.txt and words/)")
    p.add_argument("--ids", required=True, nargs="+", metavar="FILE", help="word-id lists (e.g. splits/train.txt)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--margin", type=int, default=12, help="white pixels around the words (default: %(default)s)")
    p.add_argument("--keep-incomplete", action="store_true",
                   help="training data only: keep lines with missing or err words, the gap read as one space")
    p.set_defaults(func=cmd_prepare_iam_lines)

    p = prepare.add_parser("synth-lines", help="render printed text lines from the system fonts",
                           description="Lines of words, numbers and punctuation in the printed system fonts, "
                           "written as labels.tsv + images/*.png (the font's name in each file name). A few "
                           "fonts are held out of training: --fonts held-out renders validation lines in those.")
    p.add_argument("--n", type=int, default=20000, help="number of lines (default: %(default)s)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--fonts", choices=("train", "held-out"), default="train",
                   help="the training fonts or the held-out ones (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same lines (default: %(default)s)")
    p.set_defaults(func=cmd_prepare_synth_lines)
