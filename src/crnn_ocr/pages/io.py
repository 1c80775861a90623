"""Page inputs: image files (PNG, JPEG, TIFF with all its pages, ...) and PDFs, as PIL images.

``load_pages(path)`` is the one entry: it returns every page of a file as a grayscale or RGB
PIL image, a PDF rasterised by pypdfium2 at ``dpi``. A page beyond ``max_pixels`` (or a file
that is not a page image at all) is refused with one ``PageError`` whose message says why in
a line. This module only decodes; finding text on a page is ``layout``'s job.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

DEFAULT_DPI = 200  # PDFs are rasterised at this resolution: the printed line model reads ~10-12 pt text well
MAX_PIXELS = 60_000_000  # one page beyond this (an A4 page at 300 dpi is 8.7 Mpx; A0 at 200 dpi 62 Mpx) is refused
PDF_SUFFIXES = {".pdf"}


class PageError(ValueError):
    """A page input that cannot be read; the message is one line naming the file."""


def check_size(width: int, height: int, name: str, max_pixels: int = MAX_PIXELS) -> None:
    """Raise ``PageError`` for a page of more than ``max_pixels`` pixels."""
    if width * height > max_pixels:
        raise PageError(f"{name}: {width}x{height} pixels is over the page limit of {max_pixels:,} pixels "
                        "(give a smaller scan or a lower --dpi)")


def as_page_mode(im: Image.Image) -> Image.Image:
    """``im`` upright (its EXIF orientation applied) as ``L`` or ``RGB``, white behind transparency."""
    im = ImageOps.exif_transpose(im) if im.getexif() else im
    if im.mode in ("RGBA", "LA", "PA", "P"):
        im = im.convert("RGBA")
        out = Image.new("RGB", im.size, (255, 255, 255))
        out.paste(im, mask=im.getchannel("A"))
        return out
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return im.point(lambda v: v / 256).convert("L") if im.mode.startswith("I;16") else im.convert("L")
    return im if im.mode in ("L", "RGB") else im.convert("RGB")


def load_image_pages(path: Path, max_pixels: int = MAX_PIXELS) -> list[Image.Image]:
    """Every frame of an image file (a multi-page TIFF gives each page)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies below
            previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                with Image.open(path) as im:
                    pages = []
                    for frame in ImageSequence.Iterator(im):
                        check_size(frame.width, frame.height, str(path), max_pixels)
                        frame.load()
                        pages.append(as_page_mode(frame.copy()))
                    return pages
            finally:
                Image.MAX_IMAGE_PIXELS = previous
    except UnidentifiedImageError:
        raise PageError(f"{path}: not an image or a PDF") from None
    except OSError as e:
        raise PageError(f"{path}: unreadable ({e})") from None


def load_pdf_pages(path: Path, dpi: int = DEFAULT_DPI, max_pixels: int = MAX_PIXELS) -> list[Image.Image]:
    """Every page of a PDF rasterised at ``dpi`` (pypdfium2), as grayscale images."""
    try:
        import pypdfium2 as pdfium
    except ImportError:
        raise PageError(f"{path}: reading PDFs needs pypdfium2 (pip install pypdfium2)") from None
    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as e:
        raise PageError(f"{path}: not a readable PDF ({e})") from None
    try:
        pages = []
        for i in range(len(pdf)):
            page = pdf[i]
            w, h = page.get_size()  # in points, 1/72 inch
            check_size(round(w * dpi / 72), round(h * dpi / 72), f"{path} page {i + 1}", max_pixels)
            pages.append(page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L"))
            page.close()
        return pages
    finally:
        pdf.close()


def load_pages(path: str | Path, dpi: int = DEFAULT_DPI, max_pixels: int = MAX_PIXELS) -> list[Image.Image]:
    """The pages of ``path``: one for a PNG or JPEG, each page of a TIFF or a PDF (the PDF
    rasterised at ``dpi``).

    Raises:
        PageError: a missing or unreadable file, or a page over ``max_pixels`` pixels.
    """
    path = Path(path)
    if not path.is_file():
        raise PageError(f"{path}: no such file")
    with open(path, "rb") as f:
        magic = f.read(5)
    if path.suffix.lower() in PDF_SUFFIXES or magic == b"%PDF-":
        return load_pdf_pages(path, dpi, max_pixels)
    return load_image_pages(path, max_pixels)
