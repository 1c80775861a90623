"""``crnn-ocr read``: whole pages (images, multi-page TIFFs, PDFs) to text, JSON, hOCR, ALTO or
PAGE XML; and ``crnn-ocr evaluate --pages``: page CER and WER on a folder of pages.

The work is ``crnn_ocr.pages``; this module only parses the command line and writes the
results (to standard output, or one file per input with ``--out-dir``). A file that cannot be
read is reported in one line and counted; the others are still read.
"""
from __future__ import annotations

import sys
from pathlib import Path

from crnn_ocr.utils.files import shown

SUFFIXES = {"text": ".txt", "json": ".json", "hocr": ".hocr", "alto": ".alto.xml", "page": ".page.xml"}


def add_read_parser(sub) -> None:
    p = sub.add_parser("read", help="read whole pages (PNG, JPEG, TIFF, PDF): text, JSON, hOCR, ALTO or PAGE XML",
                       description="Find the text lines of each page (deskewed, columns in reading order), read "
                       "them with a line model and print the pages' text, lines in reading order.")
    p.add_argument("files", nargs="+", help="page images or PDFs")
    p.add_argument("--model", default="printed-en", help="line model: printed-en (default), handwriting-lines-en, "
                   "or a model file")
    p.add_argument("--format", choices=tuple(SUFFIXES), default="text",
                   help="text (pages separated by a form feed), json (pages -> lines -> words with boxes and "
                   "confidences), hocr, alto (ALTO v4) or page (PAGE XML 2019, one file per page)")
    p.add_argument("--out-dir", help="write NAME.txt / .json / .hocr / .alto.xml (PAGE XML: NAME.pN.page.xml) "
                   "here instead of printing")
    p.add_argument("--dpi", type=int, default=None, help="PDF pages are rasterised at this resolution (default 200)")
    p.add_argument("--decoder", default=None, help="greedy, lexicon or lm (default: the model's own)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default: %(default)s)")
    p.set_defaults(func=cmd_read)


def serialised(pages, fmt: str, source: str) -> list[tuple[str, str]]:
    """(file suffix, text) pairs of one document's pages in ``fmt``: one pair, or one per page
    for PAGE XML (``crnn_ocr.pages.export`` writes them)."""
    from crnn_ocr import pages as P

    if fmt == "page":
        return [(f".p{p.number}{SUFFIXES[fmt]}", P.to_page_xml(p, source)) for p in pages]
    return [(SUFFIXES[fmt], P.FORMATS[fmt](pages, source))]


def cmd_read(args) -> int:
    from crnn_ocr import pages as P

    if args.format == "page" and not args.out_dir and len(args.files) > 1:
        print("crnn-ocr: error: --format page writes one file per page: give --out-dir", file=sys.stderr)
        return 2
    recognizer = P.load_recognizer(args.model, threads=args.threads)
    out_dir = Path(args.out_dir) if args.out_dir else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for name in args.files:
        try:
            pages = P.read_document(name, recognizer, dpi=args.dpi or P.DEFAULT_DPI, decoder=args.decoder)
        except (P.PageError, OSError) as e:
            print(f"crnn-ocr: error: {e}", file=sys.stderr)
            failed += 1
            continue
        for page in pages:
            for flag in page.flags:
                print(f"crnn-ocr: {name}, page {page.number}: {flag}", file=sys.stderr)
        for suffix, text in serialised(pages, args.format, Path(name).name):
            if out_dir:
                (out_dir / (Path(name).stem + suffix)).write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text)
    if failed:
        print(f"crnn-ocr: {failed} of {len(args.files)} files could not be read", file=sys.stderr)
    return 2 if failed == len(args.files) else 0


def evaluate_pages(args) -> int:
    """``crnn-ocr evaluate --pages``: page CER and WER (whitespace collapsed, line breaks not
    scored) over ``--data``'s NAME.png / NAME.jpg + NAME.txt pairs; report.json and the worst
    page drawn with its boxes in ``--out``."""
    from crnn_ocr import pages as P

    recognizer = P.load_recognizer(args.model, threads=args.threads or 1)
    report = P.evaluate_pages(args.data, lambda im: P.read_page(im, recognizer, decoder=args.decoder), args.out)
    for page in report.pages:
        print(f"{page.name}\tCER {100 * page.cer:.2f}%\tWER {100 * page.wer:.2f}%\t{page.seconds:.2f} s")
    print(f"{len(report.pages)} pages: CER {100 * report.cer:.2f}%, WER {100 * report.wer:.2f}%, "
          f"{report.seconds_per_page:.2f} s per page; report {Path(args.out) / 'report.json'}, "
          f"worst page {Path(args.out) / 'worst.png'}")
    return 0


MAX_PAGE_WARNINGS = 5  # a folder of pages gets a few lines and a count, not one line per file


def warn_if_pages(paths: list, config) -> None:
    """For ``crnn-ocr predict``: warn (on stderr, reading goes on) about inputs that look like
    pages or blocks of lines rather than the crops the model reads (``pages.hint``). Only images
    at least three times the model's input height are looked at, so word and line crops cost
    one header read."""
    from PIL import Image

    from crnn_ocr.pages.hint import MIN_PAGE_HEIGHT, crop_warning

    d, warned = config.data, 0
    for path in paths:
        try:
            with Image.open(path) as im:
                if im.height < max(MIN_PAGE_HEIGHT, 3 * d.height):
                    continue
                message = crop_warning(im.convert("L"), d.height, d.max_width if d.any_width else d.width,
                                       shown(str(path)))
        except Exception:  # noqa: BLE001 - an image that cannot be looked at is reported by the reading itself
            continue
        if message:
            warned += 1
            if warned <= MAX_PAGE_WARNINGS:
                print(f"crnn-ocr: warning: {message}", file=sys.stderr)
    if warned > MAX_PAGE_WARNINGS:
        print(f"crnn-ocr: warning: {warned} inputs in all look like pages: `crnn-ocr read` reads pages",
              file=sys.stderr)
