"""Reading whole pages: a scanned page or a PDF in, its lines of text out in reading order.

The stages, one module each: ``io`` (image files and PDFs to page images), ``ink``
(binarisation, connected components), ``deskew`` (a page on its side, the skew), ``order``
(blocks and columns in reading order), ``lines`` (text lines in a block, touching lines cut),
``layout`` (the steps together; a line cut with margins), ``reader`` (lines read by a line
model into a ``result.Page``), ``export`` (hOCR, ALTO, PAGE XML), ``evaluate`` (page CER and
WER) and ``hint`` (the warning for a page given to the crop reader).

>>> from crnn_ocr.pages import read_pages                                # doctest: +SKIP
>>> pages = read_pages("letter.pdf", model="handwriting-lines-en")      # doctest: +SKIP
>>> print(pages[0].text()); pages[0].to_dict()                          # doctest: +SKIP

Every name below is imported on first use (PEP 562): the layout's libraries (OpenCV,
scikit-image, SciPy) and torch load only when a page is read, so that a missing optional
library fails there, with its name, and not on ``import crnn_ocr.pages.io``.
"""
from importlib import import_module

# name -> module that defines it
_EXPORTS = {"DEFAULT_DPI": ".io", "MAX_PIXELS": ".io", "PageError": ".io", "load_pages": ".io",
            "Layout": ".layout", "Margins": ".layout", "PRINTED": ".layout", "HANDWRITTEN": ".layout",
            "segment": ".layout", "load_recognizer": ".reader", "read_document": ".reader", "read_page": ".reader",
            "read_pages": ".reader", "margins_for": ".reader",
            "Line": ".result", "Page": ".result", "Word": ".result", "document_dict": ".result",
            "to_alto": ".export", "to_hocr": ".export", "to_page_xml": ".export", "to_text": ".export",
            "to_json": ".export", "FORMATS": ".export",
            "evaluate_pages": ".evaluate", "draw_boxes": ".evaluate", "crop_warning": ".hint"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'crnn_ocr.pages' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)
