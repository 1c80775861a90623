"""The result's JSON, hOCR, ALTO and PAGE XML forms, on a page made by hand."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from crnn_ocr.pages.export import to_alto, to_hocr, to_page_xml
from crnn_ocr.pages.result import Line, Page, Word, document_dict

XSD = Path(__file__).with_name("pagecontent-2019-07-15.xsd")


@pytest.fixture
def page() -> Page:
    first = Line("Dear Sir & <Madam>,", 0.93, (10, 20, 300, 60),
                 [Word("Dear", 0.99, (10, 22, 80, 58)), Word("Sir", 0.95, (92, 22, 140, 58)),
                  Word("&", 0.9, (150, 24, 170, 56)), Word("<Madam>,", 0.88, (180, 20, 300, 60))])
    second = Line("thank you", 0.8, (10, 80, 200, 120),
                  [Word("thank", 0.82, (10, 80, 110, 120)), Word("you", 0.78, (120, 88, 200, 120))])
    return Page(640, 480, [first, second], angle=-1.2, number=2)


def test_text_is_the_lines_in_reading_order(page):
    assert page.text() == "Dear Sir & <Madam>,\nthank you"
    assert Page(10, 10).text() == ""


def test_json_holds_pages_lines_words_with_boxes_and_confidences(page):
    d = json.loads(json.dumps(document_dict([page], "scan.pdf")))
    p = d["pages"][0]
    assert (p["page"], p["width"], p["height"], p["angle"]) == (2, 640, 480, -1.2)
    assert p["text"] == page.text()
    assert [ln["text"] for ln in p["lines"]] == ["Dear Sir & <Madam>,", "thank you"]
    assert p["lines"][0]["words"][3] == {"text": "<Madam>,", "confidence": 0.88, "box": [180, 20, 300, 60]}
    assert p["lines"][1]["box"] == [10, 80, 200, 120]
    assert 0.8 < p["confidence"] < 0.93


def test_hocr_has_a_page_its_lines_and_words_with_bboxes(page):
    etree = pytest.importorskip("lxml.etree", reason="lxml parses the output here")
    root = etree.fromstring(to_hocr([page], "scan.png").encode())
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    (div,) = root.findall(".//h:div[@class='ocr_page']", ns)
    assert 'image "scan.png"' in div.get("title") and "bbox 0 0 640 480" in div.get("title")
    lines = root.findall(".//h:span[@class='ocr_line']", ns)
    assert [ln.get("title") for ln in lines] == ["bbox 10 20 300 60; x_wconf 93", "bbox 10 80 200 120; x_wconf 80"]
    words = root.findall(".//h:span[@class='ocrx_word']", ns)
    assert [w.text for w in words] == ["Dear", "Sir", "&", "<Madam>,", "thank", "you"]
    assert words[3].get("title") == "bbox 180 20 300 60; x_wconf 88"


def test_alto_v4_has_the_layout_strings_and_confidences(page):
    etree = pytest.importorskip("lxml.etree", reason="lxml parses the output here")
    root = etree.fromstring(to_alto([page], "scan.png").encode())
    ns = {"a": "http://www.loc.gov/standards/alto/ns-v4#"}
    assert root.tag == "{http://www.loc.gov/standards/alto/ns-v4#}alto"
    assert root.findtext("a:Description/a:MeasurementUnit", namespaces=ns) == "pixel"
    assert [c.tag.split("}")[1] for c in root.find("a:Description", ns)] == [
        "MeasurementUnit", "sourceImageInformation", "Processing"]
    (p,) = root.findall("a:Layout/a:Page", ns)
    assert (p.get("WIDTH"), p.get("HEIGHT"), p.get("PHYSICAL_IMG_NR")) == ("640", "480", "2")
    lines = p.findall("a:PrintSpace/a:TextBlock/a:TextLine", ns)
    assert len(lines) == 2
    first = lines[0]
    assert [c.tag.split("}")[1] for c in first] == ["String", "SP", "String", "SP", "String", "SP", "String"]
    strings = first.findall("a:String", ns)
    assert [s.get("CONTENT") for s in strings] == ["Dear", "Sir", "&", "<Madam>,"]
    s = strings[3]
    assert (s.get("HPOS"), s.get("VPOS"), s.get("WIDTH"), s.get("HEIGHT")) == ("180", "20", "120", "40")
    assert 0 <= float(s.get("WC")) <= 1
    ids = [e.get("ID") for e in root.iter() if e.get("ID")]
    assert len(ids) == len(set(ids))


def test_alto_gives_a_line_without_word_boxes_one_string():
    etree = pytest.importorskip("lxml.etree", reason="lxml parses the output here")
    page = Page(100, 50, [Line("ok", 0.9, (1, 2, 30, 20))])
    root = etree.fromstring(to_alto([page]).encode())
    (s,) = root.iter("{http://www.loc.gov/standards/alto/ns-v4#}String")
    assert (s.get("CONTENT"), s.get("HPOS"), s.get("WIDTH")) == ("ok", "1", "29")


def test_page_xml_is_valid_against_the_2019_schema(page):
    etree = pytest.importorskip("lxml.etree", reason="lxml validates against the schema")
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    for p in (page, Page(100, 100)):  # a blank page too
        doc = etree.fromstring(to_page_xml(p, "scan.png").encode())
        assert schema.validate(doc), schema.error_log
    doc = etree.fromstring(to_page_xml(page, "scan.png").encode())
    ns = {"p": "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"}
    assert doc.findtext(".//p:TextLine/p:TextEquiv/p:Unicode", namespaces=ns) == "Dear Sir & <Madam>,"
    assert doc.find(".//p:Word/p:Coords", ns).get("points") == "10,22 80,22 80,58 10,58"


def test_every_format_by_name_writes_the_pages(page):
    from crnn_ocr.pages.export import FORMATS

    blank = Page(100, 100, number=3)
    assert FORMATS["text"]([page, blank]) == "Dear Sir & <Madam>,\nthank you\n\f\n"
    assert json.loads(FORMATS["json"]([page, blank], "a.pdf"))["pages"][1]["lines"] == []
    for name in ("hocr", "alto"):
        assert "<Madam>" not in FORMATS[name]([page, blank]) and "&lt;Madam&gt;" in FORMATS[name]([page, blank])
