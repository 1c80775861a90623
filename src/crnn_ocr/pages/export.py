"""A read page in the formats of the field: hOCR (HTML, ocrmypdf's and Tesseract's), ALTO v4
(libraries, eScriptorium) and PAGE XML 2019 (Transkribus, OCR-D, eScriptorium).

Each page is one region holding its lines in reading order, each line its words, every one
with its box in page pixels and its confidence (0-1 in ALTO's ``WC`` and PAGE's ``conf``,
0-100 in hOCR's ``x_wconf``). Built with the standard library's ElementTree, which escapes
the text. This module only writes; ``result`` holds the data.
"""
from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

from .result import Box, Page, Word, document_dict

SOFTWARE = "crnn-ocr"
ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
ALTO_SCHEMA = "http://www.loc.gov/standards/alto/v4/alto-4-2.xsd"
PAGE_NS = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
PAGE_SCHEMA = f"{PAGE_NS}/pagecontent.xsd"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def version() -> str:
    from crnn_ocr import __version__

    return __version__


def hocr_title(box: Box, **extra) -> str:
    return "; ".join([f"bbox {box[0]} {box[1]} {box[2]} {box[3]}"] + [f"{k} {v}" for k, v in extra.items()])


def to_hocr(pages: list[Page], image: str = "") -> str:
    """The pages as one hOCR 1.2 document (``ocr_page`` > ``ocr_carea`` > ``ocr_line`` > ``ocrx_word``)."""
    root = ET.Element("html", {"xmlns": "http://www.w3.org/1999/xhtml", "xml:lang": "en", "lang": "en"})
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = image or "crnn-ocr"
    ET.SubElement(head, "meta", {"http-equiv": "Content-Type", "content": "text/html;charset=utf-8"})
    ET.SubElement(head, "meta", {"name": "ocr-system", "content": f"{SOFTWARE} {version()}"})
    ET.SubElement(head, "meta", {"name": "ocr-capabilities", "content": "ocr_page ocr_carea ocr_line ocrx_word"})
    body = ET.SubElement(root, "body")
    for page in pages:
        n = page.number
        title = hocr_title((0, 0, page.width, page.height), ppageno=n - 1)
        if image:
            title = f'image "{html.escape(image, quote=False)}"; ' + title
        div = ET.SubElement(body, "div", {"class": "ocr_page", "id": f"page_{n}", "title": title})
        if not page.lines:
            continue
        area = ET.SubElement(div, "div", {"class": "ocr_carea", "id": f"block_{n}_1",
                                          "title": hocr_title(union(ln.box for ln in page.lines))})
        for i, line in enumerate(page.lines, 1):
            span = ET.SubElement(area, "span", {"class": "ocr_line", "id": f"line_{n}_{i}",
                                                "title": hocr_title(line.box, x_wconf=round(100 * line.confidence))})
            for j, word in enumerate(line.words, 1):
                w = ET.SubElement(span, "span", {"class": "ocrx_word", "id": f"word_{n}_{i}_{j}",
                                                 "title": hocr_title(word.box, x_wconf=round(100 * word.confidence))})
                w.text = word.text
                w.tail = " "
    ET.indent(root)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
            '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n' + ET.tostring(root, encoding="unicode") + "\n")


def union(boxes) -> Box:
    boxes = list(boxes)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def alto_box(box: Box) -> dict:
    return {"HPOS": str(box[0]), "VPOS": str(box[1]), "WIDTH": str(box[2] - box[0]), "HEIGHT": str(box[3] - box[1])}


def to_alto(pages: list[Page], image: str = "") -> str:
    """The pages as one ALTO v4 document (``Page`` > ``PrintSpace`` > ``TextBlock`` >
    ``TextLine`` > ``String`` / ``SP``), measured in pixels."""
    ET.register_namespace("", ALTO_NS)
    ET.register_namespace("xsi", XSI)
    q = lambda tag: f"{{{ALTO_NS}}}{tag}"  # noqa: E731
    root = ET.Element(q("alto"), {f"{{{XSI}}}schemaLocation": f"{ALTO_NS} {ALTO_SCHEMA}"})
    description = ET.SubElement(root, q("Description"))
    ET.SubElement(description, q("MeasurementUnit")).text = "pixel"
    source = ET.SubElement(description, q("sourceImageInformation"))
    ET.SubElement(source, q("fileName")).text = image
    processing = ET.SubElement(description, q("Processing"), {"ID": "OCR_0"})
    software = ET.SubElement(processing, q("processingSoftware"))
    ET.SubElement(software, q("softwareName")).text = SOFTWARE
    ET.SubElement(software, q("softwareVersion")).text = version()
    layout = ET.SubElement(root, q("Layout"))
    for page in pages:
        n = page.number
        p = ET.SubElement(layout, q("Page"), {"ID": f"page_{n}", "PHYSICAL_IMG_NR": str(n), "WIDTH": str(page.width),
                                              "HEIGHT": str(page.height), "PROCESSING": "OCR_0"})
        space = ET.SubElement(p, q("PrintSpace"), alto_box((0, 0, page.width, page.height)))
        if not page.lines:
            continue
        block = ET.SubElement(space, q("TextBlock"), {"ID": f"block_{n}_1", **alto_box(union(ln.box for ln in page.lines))})
        for i, line in enumerate(page.lines, 1):
            tl = ET.SubElement(block, q("TextLine"), {"ID": f"line_{n}_{i}", **alto_box(line.box)})
            words = line.words or [Word(line.text, line.confidence, line.box)]  # ALTO: a line holds a String
            for j, word in enumerate(words, 1):
                if j > 1:
                    ET.SubElement(tl, q("SP"))
                ET.SubElement(tl, q("String"), {"ID": f"string_{n}_{i}_{j}", **alto_box(word.box),
                                                "CONTENT": word.text, "WC": f"{word.confidence:.4f}"})
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def points(box: Box) -> str:
    x0, y0, x1, y1 = box
    return f"{x0},{y0} {x1},{y0} {x1},{y1} {x0},{y1}"


def to_page_xml(page: Page, image: str = "") -> str:
    """One page as a PAGE XML (2019-07-15) document: a ``TextRegion`` of ``TextLine`` s and
    ``Word`` s, each with its ``Coords`` and ``TextEquiv``."""
    ET.register_namespace("", PAGE_NS)
    ET.register_namespace("xsi", XSI)
    q = lambda tag: f"{{{PAGE_NS}}}{tag}"  # noqa: E731
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    root = ET.Element(q("PcGts"), {f"{{{XSI}}}schemaLocation": f"{PAGE_NS} {PAGE_SCHEMA}"})
    meta = ET.SubElement(root, q("Metadata"))
    ET.SubElement(meta, q("Creator")).text = f"{SOFTWARE} {version()}"
    ET.SubElement(meta, q("Created")).text = now
    ET.SubElement(meta, q("LastChange")).text = now
    p = ET.SubElement(root, q("Page"), {"imageFilename": image or f"page_{page.number}",
                                        "imageWidth": str(page.width), "imageHeight": str(page.height)})
    if page.lines:
        region = ET.SubElement(p, q("TextRegion"), {"id": "r1", "type": "paragraph"})
        ET.SubElement(region, q("Coords"), {"points": points(union(ln.box for ln in page.lines))})
        for i, line in enumerate(page.lines, 1):
            tl = ET.SubElement(region, q("TextLine"), {"id": f"r1_l{i}"})
            ET.SubElement(tl, q("Coords"), {"points": points(line.box)})
            for j, word in enumerate(line.words, 1):
                w = ET.SubElement(tl, q("Word"), {"id": f"r1_l{i}_w{j}"})
                ET.SubElement(w, q("Coords"), {"points": points(word.box)})
                text_equiv(w, q, word.text, word.confidence)
            text_equiv(tl, q, line.text, line.confidence)
        text_equiv(region, q, page.text(), page.confidence)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def text_equiv(parent: ET.Element, q, text: str, confidence: float) -> None:
    equiv = ET.SubElement(parent, q("TextEquiv"), {"conf": f"{min(1.0, max(0.0, confidence)):.4f}"})
    ET.SubElement(equiv, q("Unicode")).text = text


def to_text(pages: list[Page], image: str = "") -> str:
    """The pages' text, lines in reading order, pages apart by a form feed (as Tesseract does)."""
    return "\f".join(page.text() + "\n" for page in pages)


def to_json(pages: list[Page], image: str = "") -> str:
    """The pages as one JSON document (``result.document_dict``)."""
    return json.dumps(document_dict(pages, image), indent=1, ensure_ascii=False) + "\n"


# The whole-document writers by name (pages, source name) -> str, for a command's --format; PAGE
# XML holds one page per file: ``to_page_xml`` for each page.
FORMATS = {"text": to_text, "json": to_json, "hocr": to_hocr, "alto": to_alto}
