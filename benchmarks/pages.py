"""Whole pages: crnn-ocr against Tesseract on the same pages, one thread each.

For each page of a folder (``NAME.png`` / ``NAME.jpg`` with ``NAME.txt``, as
``experiments/make_pages.py`` writes them): page CER and WER (whitespace collapsed on both
sides, ``crnn_ocr.pages.evaluate``) and the seconds per page, both wall-clock and CPU
(crnn-ocr's in this process, Tesseract's as its child's user + system time). Tesseract runs
in page mode (``tesseract PAGE - ``, its default page segmentation) with ``OMP_THREAD_LIMIT=1``.
With ``--hand-cut`` (a folder with ``lines.tsv``: page, line image, text) the same line model
also reads the page's lines as cut by hand, the layout's yardstick. Models are loaded before
the clock starts.

    OMP_NUM_THREADS=1 python benchmarks/pages.py ../data/pages/printed --model printed-en --out runs/pages/printed.json
    OMP_NUM_THREADS=1 python benchmarks/pages.py ../data/pages/handwritten --model handwriting-lines-en --hand-cut \
        --out runs/pages/handwritten.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from crnn_ocr.pages import load_pages, load_recognizer, read_page
from crnn_ocr.pages.evaluate import PagesReport, page_files, score_page


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tesseract(image: Path) -> str:
    """Tesseract's text of a page image (page mode, English, one thread)."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    done = subprocess.run(["tesseract", str(image), "-", "-l", "eng"], capture_output=True, text=True, env=env,
                          check=True)
    return done.stdout


def run(engine: str, pairs, read) -> tuple[PagesReport, list[float]]:
    """Score ``read`` (image path -> text) on every page; the report holds wall seconds, the list CPU seconds."""
    report, cpu = PagesReport(), []
    for image, text in pairs:
        wall, own, child = time.perf_counter(), time.process_time(), child_cpu()
        predicted = read(image)
        seconds = time.perf_counter() - wall
        cpu.append(time.process_time() - own + child_cpu() - child)
        report.pages.append(score_page(image.stem, text.read_text(encoding="utf-8"), predicted, seconds))
        print(f"{engine:10s} {image.stem}: CER {report.pages[-1].cer:.4f} {seconds:.2f} s", file=sys.stderr)
    return report, cpu


def hand_cut_reader(folder: Path, recognizer):
    """Page image -> the text of its lines (``lines.tsv``) read one by one as cut by hand."""
    lines: dict[str, list[str]] = {}
    for row in (folder / "lines.tsv").read_text(encoding="utf-8").splitlines():
        page, image, _ = row.split("\t", 2)
        lines.setdefault(page, []).append(image)
    return lambda image: "\n".join(r.text for r in recognizer.read(lines[image.stem], batch_size=16))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--model", default="printed-en")
    p.add_argument("--decoder", default=None, help="the line model's decoder (default: its own)")
    p.add_argument("--backend", default="onnx", choices=("onnx", "pytorch"), help="how the line model runs")
    p.add_argument("--hand-cut", action="store_true", help="also read the lines of lines.tsv as cut by hand")
    p.add_argument("--no-tesseract", action="store_true")
    p.add_argument("--limit", type=int, default=0, help="only the first N pages")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    pairs = page_files(args.folder)[: args.limit or None]
    recognizer = load_recognizer(args.model, threads=1, backend=args.backend)
    recognizer.read([Image.new("L", (64, 32), 255)], decoder=args.decoder)  # a language model is built before the clock
    engines = {"crnn-ocr": lambda image: read_page(load_pages(image)[0], recognizer, decoder=args.decoder).text()}
    if args.hand_cut:
        engines["hand-cut"] = hand_cut_reader(args.folder, recognizer)
    if not args.no_tesseract and shutil.which("tesseract"):
        engines["tesseract"] = tesseract
    results = {}
    for name, read in engines.items():
        report, cpu = run(name, pairs, read)
        results[name] = {**report.to_dict(), "cpu_seconds_per_page": round(sum(cpu) / max(1, len(cpu)), 3)}
    print(f"{'engine':10s} {'pages':>5s} {'CER':>8s} {'WER':>8s} {'s/page':>7s} {'CPU s/page':>10s}")
    for name, r in results.items():
        print(f"{name:10s} {r['n']:5d} {100 * r['cer']:7.2f}% {100 * r['wer']:7.2f}% {r['seconds_per_page']:7.2f} "
              f"{r['cpu_seconds_per_page']:10.2f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"folder": str(args.folder), "model": args.model, "decoder": args.decoder,
                                        "backend": args.backend,
                                        "results": results}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
