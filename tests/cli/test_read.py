"""``crnn-ocr read`` and ``crnn-ocr evaluate --pages`` on pages drawn in the test."""
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("cv2", reason="the page layout needs opencv-python-headless")
pytest.importorskip("scipy", reason="the page layout needs SciPy")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pages"))
from pagedraw import draw_lines, text_line  # noqa: E402

from crnn_ocr.cli.main import main  # noqa: E402

LINES = [text_line(i, 6) for i in range(3)]


@pytest.fixture(scope="module")
def page_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pages")
    draw_lines(LINES, size=(900, 260)).save(folder / "one.png")
    (folder / "one.txt").write_text("\n".join(LINES) + "\n")
    return folder


def test_read_prints_each_line_of_the_page_in_reading_order(page_folder, capsys):
    assert main(["read", str(page_folder / "one.png")]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == len(LINES)
    assert sum(a == b for a, b in zip(printed, LINES)) >= 2  # printed-en reads Pillow's own face


def test_read_json_gives_pages_lines_and_words_with_boxes(page_folder, capsys):
    assert main(["read", "--format", "json", str(page_folder / "one.png")]) == 0
    doc = json.loads(capsys.readouterr().out)
    page = doc["pages"][0]
    assert doc["source"] == "one.png" and page["page"] == 1 and len(page["lines"]) == len(LINES)
    first = page["lines"][0]
    assert first["words"] and all(len(w["box"]) == 4 and 0 <= w["confidence"] <= 1 for w in first["words"])


def test_read_writes_one_file_per_input_and_counts_those_it_cannot_read(page_folder, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["read", "--format", "page", "--out-dir", str(out), str(page_folder / "one.png"),
                 str(page_folder / "missing.png")])
    assert code == 0 and (out / "one.p1.page.xml").is_file()
    err = capsys.readouterr().err
    assert "missing.png" in err and "1 of 2 files could not be read" in err and "Traceback" not in err
    assert main(["read", str(page_folder / "missing.png")]) == 2


def test_page_xml_of_several_inputs_needs_a_folder(page_folder, capsys):
    assert main(["read", "--format", "page", str(page_folder / "one.png"), str(page_folder / "one.png")]) == 2
    assert "--out-dir" in capsys.readouterr().err


def test_evaluate_pages_scores_the_folder_and_draws_the_worst_page(page_folder, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", "--pages", "--model", "printed-en", "--data", str(page_folder), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["pages"][0]["name"] == "one" and report["cer"] < 0.2
    assert (out / "worst.png").is_file() and "1 pages: CER" in capsys.readouterr().out


def test_predict_on_a_page_warns_and_names_the_page_command(page_folder, capsys):
    assert main(["predict", "--model", "printed-en", str(page_folder / "one.png")]) == 0
    err = capsys.readouterr().err
    assert "3 text lines" in err and "crnn-ocr read" in err
