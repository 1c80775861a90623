"""Small pages drawn by the tests: lines of text in Pillow's own scalable font, dark on white."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WORDS = ("the quick brown fox jumps over a lazy dog while seven wizards quietly pack boxes of "
         "liquor jugs and a zebra hums near the old mill by the river bank").split()


def font(size: int = 28) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size)


def text_line(i: int, words: int = 7) -> str:
    return " ".join(WORDS[(i * 5 + k) % len(WORDS)] for k in range(words))


def draw_lines(lines: list[str], size=(1000, 700), at=(60, 60), leading: int = 48, font_size: int = 28,
               page: Image.Image | None = None) -> Image.Image:
    """``lines`` drawn top to bottom from ``at``, one every ``leading`` pixels."""
    page = page or Image.new("L", size, 255)
    draw = ImageDraw.Draw(page)
    for i, line in enumerate(lines):
        draw.text((at[0], at[1] + i * leading), line, font=font(font_size), fill=20)
    return page


def noisy(page: Image.Image, sigma: float = 6.0, seed: int = 0) -> Image.Image:
    a = np.asarray(page, dtype=np.float64) + np.random.default_rng(seed).normal(0, sigma, (page.height, page.width))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
