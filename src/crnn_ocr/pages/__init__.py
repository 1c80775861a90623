"""Reading whole pages: a scanned page or a PDF in, its lines of text out in reading order.

The stages, one module each: ``io`` (image files and PDFs to page images), ``ink``
(binarisation, connected components), ``deskew`` (a page on its side, the skew), ``order``
(blocks and columns in reading order), ``lines`` (text lines in a block, touching lines cut),
``layout`` (the steps together; a line cut with margins), ``reader`` (lines read by a line
model into a ``result.Page``), ``export`` (hOCR, ALTO) and ``evaluate`` (page CER and WER).

>>> from crnn_ocr.pages import load_recognizer, read_document     # doctest: +SKIP
>>> pages = read_document("scan.pdf", load_recognizer("printed-en"))   # doctest: +SKIP
>>> print(pages[0].text())                                         # doctest: +SKIP
"""
from .io import DEFAULT_DPI, MAX_PIXELS, PageError, load_pages
from .layout import Layout, Margins, segment
from .reader import load_recognizer, read_document, read_page
from .result import Line, Page, Word, document_dict

__all__ = ["DEFAULT_DPI", "MAX_PIXELS", "Layout", "Line", "Margins", "Page", "PageError", "Word", "document_dict",
           "load_pages", "load_recognizer", "read_document", "read_page", "segment"]
