"""A warning for an image given to a line or word reader that is really a page (or a block of
several lines), or far wider than the model reads: ``crnn-ocr predict`` calls ``crop_warning``
and prints what it returns, naming the page command. It never stops the reading (without the
layout's optional libraries it only checks the width)."""
from __future__ import annotations

from PIL import Image

PAGE_COMMAND = "crnn-ocr read"
MIN_PAGE_HEIGHT = 80  # pixels: a crop lower than this is one line whatever it holds


def crop_warning(image: Image.Image, height: int, max_width: int, name: str = "the image") -> str | None:
    """Why ``image`` is not a crop the model reads well (``height`` its input height,
    ``max_width`` its widest input), as one line naming the page command; None when it looks
    like a crop. A page is an image in which the layout finds two lines or more."""
    w, h = image.size
    if h and w * height / h > 2 * max_width:
        return (f"{name} is {round(w * height / h)} pixels wide at the model's height {height}, far over its "
                f"{max_width}: if it holds several lines or a page, read it with `{PAGE_COMMAND}`")
    if h < MIN_PAGE_HEIGHT or w / h > 4:
        return None
    try:
        from .layout import segment  # the layout's libraries only when a tall image is checked
    except ImportError:  # without them no page is told from a crop: no warning rather than no reading
        return None
    lines = len(segment(image, angle=0.0).lines)
    if lines >= 2:
        return f"{name} holds {lines} text lines, and this model reads one: read pages with `{PAGE_COMMAND}`"
    return None
