"""Validation pages for reading whole pages, written outside the repository.

Printed pages: A4 at 200 dpi in the printed model's held-out font faces
(``synth_lines.HELD_OUT_FONT_FILES``), a heading and paragraphs of running text, every third
page in two columns; each page tilted a little, blurred, noised and JPEG-compressed. Handwritten
pages: the IAM lines rebuilt by ``crnn-ocr prepare iam-lines`` (val1 + val2), the lines of one
form on one white page in their order, each at its place across the form, with gaps of 15-60
pixels between the ink of one line and the next. Every page is ``NAME.png`` or ``NAME.jpg``
with ``NAME.txt`` (its lines in reading order); handwritten pages also list their line images
in ``lines.tsv`` (page, line image, text) so that the same lines can be read as cut by hand.

    python experiments/make_pages.py printed --out ../data/pages/printed --pages 12 --seed 0
    crnn-ocr prepare iam-lines --iam ../shared/data/iam_words --ids .../val1.txt .../val2.txt --out ../data/iam_lines_val
    python experiments/make_pages.py handwritten --lines ../data/iam_lines_val --iam ../shared/data/iam_words \
        --out ../data/pages/handwritten --seed 0
    # a harder set whose lines touch and overlap (ascenders into descenders):
    python experiments/make_pages.py handwritten ... --out ../data/pages/handwritten_tight --gaps -30 5
"""
from __future__ import annotations

import argparse
import io
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from crnn_ocr.data.iam_lines import MARGIN, read_lines
from crnn_ocr.data.synth.lines import held_out_fonts
from crnn_ocr.data.synth.text import COMMON_WORDS, word_list

DPI = 200
A4 = (round(8.27 * DPI), round(11.69 * DPI))  # 1654 x 2338 pixels


def sentence(rng: random.Random) -> str:
    """A sentence of running text: common and dictionary words, now and then a number or a comma."""
    words = []
    for i in range(rng.randint(6, 18)):
        r = rng.random()
        if r < 0.06:
            w = str(rng.choice([rng.randint(1, 99), rng.randint(1900, 2030), rng.randint(100, 9999)]))
        elif r < 0.6:
            w = rng.choice(COMMON_WORDS)
        else:
            w = rng.choice(word_list())
        if i and rng.random() < 0.08:
            words[-1] += ","
        words.append(w)
    words[0] = words[0][:1].upper() + words[0][1:]
    return " ".join(words) + rng.choice([".", ".", ".", ".", "?", ";", ":"])


def wrap(text: str, face: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """``text`` broken into lines no wider than ``width`` pixels (greedy, at spaces)."""
    lines, current = [], ""
    for word in text.split():
        trial = f"{current} {word}" if current else word
        if current and face.getlength(trial) > width:
            lines.append(current)
            current = word
        else:
            current = trial
    return lines + [current] if current else lines


def degrade(page: Image.Image, rng: random.Random) -> Image.Image:
    """A mild scan: a tilt of up to 1.5 degrees, blur, noise."""
    page = page.rotate(rng.uniform(-1.5, 1.5), resample=Image.Resampling.BILINEAR, fillcolor=255)
    page = page.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(3, 9), (page.height, page.width))
    return Image.fromarray(np.clip(np.asarray(page, dtype=np.float64) + noise, 0, 255).astype(np.uint8), "L")


def printed_page(rng: random.Random, columns: int) -> tuple[Image.Image, list[str]]:
    """One A4 page: a heading and paragraphs in one held-out font, in ``columns`` columns."""
    font = rng.choice(held_out_fonts())
    size = round(rng.uniform(10, 12) * DPI / 72)
    face, heading_face = ImageFont.truetype(font.path, size), ImageFont.truetype(font.path, round(size * 1.6))
    page = Image.new("L", A4, 255)
    draw = ImageDraw.Draw(page)
    margin, gutter = round(0.9 * DPI), round(rng.uniform(0.3, 0.5) * DPI)
    width = A4[0] - 2 * margin
    heading = " ".join(rng.choice(word_list()).capitalize() for _ in range(rng.randint(2, 5)))
    draw.text((margin, margin), heading, font=heading_face, fill=rng.randint(0, 40))
    top = margin + round(size * 1.6 * 2.0)
    leading = round(size * rng.uniform(1.2, 1.45))
    col_width = (width - (columns - 1) * gutter) // columns
    body: list[str] = []
    rows = (A4[1] - margin - top) // leading
    while len(body) < rows * columns - 2:
        paragraph = wrap(" ".join(sentence(rng) for _ in range(rng.randint(2, 5))), face, col_width)
        body += paragraph + [""]
    body = body[: rows * columns]
    ink = rng.randint(0, 60)
    for i, line in enumerate(body):
        column, row = divmod(i, rows)
        draw.text((margin + column * (col_width + gutter), top + row * leading), line, font=face, fill=ink)
    return page, [heading] + [line for line in body if line]


def write_printed(out: Path, pages: int, seed: int) -> None:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    for n in range(pages):
        page, lines = printed_page(rng, 2 if n % 3 == 2 else 1)
        page = degrade(page, rng)
        name = f"printed-{n:03d}"
        if n % 2:  # every other page as a JPEG file, the rest JPEG-compressed once and kept as PNG
            page.save(out / f"{name}.jpg", quality=rng.randint(60, 90))
        else:
            buffer = io.BytesIO()
            page.save(buffer, "JPEG", quality=rng.randint(60, 90))
            Image.open(buffer).save(out / f"{name}.png")
        (out / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{name}: {len(lines)} lines", file=sys.stderr)


def write_handwritten(lines_dir: Path, iam: Path, out: Path, seed: int, spacing: tuple[int, int] = (15, 60)) -> None:
    """One page per IAM form from the rebuilt lines of ``lines_dir`` (its ``labels.tsv``),
    ``spacing`` pixels (at least, at most) between the ink of one line and the next; a negative
    gap makes the lines overlap (the darker pixel wins)."""
    rng = random.Random(seed)
    words = read_lines(iam / "words.txt")
    forms: dict[str, list[tuple[str, str]]] = {}
    for row in (lines_dir / "labels.tsv").read_text(encoding="utf-8").splitlines():
        rel, text = row.split("\t", 1)
        line_id = Path(rel).stem
        forms.setdefault(line_id.rsplit("-", 1)[0], []).append((line_id, text))
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for form, lines in sorted(forms.items()):
        lines.sort()
        images = [Image.open(lines_dir / "lines" / f"{line_id}.png").convert("L") for line_id, _ in lines]
        inks = [im.crop((MARGIN, MARGIN, im.width - MARGIN, im.height - MARGIN)) for im in images]
        lefts = [min(w.x for w in words[line_id]) for line_id, _ in lines]
        width = max(2480, max(x + im.width for x, im in zip(lefts, inks)) + 150)
        gaps = [rng.randint(*spacing) for _ in inks]
        canvas = np.full((150 + sum(im.height for im in inks) + max(0, sum(gaps)) + 150, width), 255, np.uint8)
        y = 150
        for x, im, gap in zip(lefts, inks, gaps):
            region = canvas[y : y + im.height, x : x + im.width]
            np.minimum(region, np.asarray(im), out=region)
            y += im.height + gap
        page = Image.fromarray(canvas[: y + 150 - gaps[-1]], "L")
        page.save(out / f"{form}.png")
        (out / f"{form}.txt").write_text("\n".join(text for _, text in lines) + "\n", encoding="utf-8")
        manifest += [f"{form}\t{lines_dir / 'lines' / (line_id + '.png')}\t{text}" for line_id, text in lines]
    (out / "lines.tsv").write_text("\n".join(manifest) + "\n", encoding="utf-8")
    print(f"{len(forms)} handwritten pages, {len(manifest)} lines", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=("printed", "handwritten"))
    p.add_argument("--out", type=Path, required=True, help="output folder (outside the repository)")
    p.add_argument("--pages", type=int, default=12, help="printed: number of pages")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lines", type=Path, help="handwritten: the folder crnn-ocr prepare iam-lines wrote")
    p.add_argument("--iam", type=Path, help="handwritten: the IAM words root (words.txt: where each line sat)")
    p.add_argument("--gaps", type=int, nargs=2, default=(15, 60), metavar=("MIN", "MAX"),
                   help="handwritten: pixels between the ink of two lines (negative: they overlap)")
    args = p.parse_args(argv)
    if args.kind == "printed":
        write_printed(args.out, args.pages, args.seed)
    else:
        if not (args.lines and args.iam):
            p.error("handwritten pages need --lines and --iam")
        write_handwritten(args.lines, args.iam, args.out, args.seed, tuple(args.gaps))


if __name__ == "__main__":
    main()
