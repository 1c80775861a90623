"""``crnn-ocr predict`` as other programs consume it: TSV, a JSON array or JSON lines, to
stdout or atomically to a file; folders, --recursive, glob patterns and paths on stdin; error
records for unreadable images; per-character details; a closed pipe ends quietly."""
import io
import json
import os
import stat
import subprocess
import sys
import threading

import pytest

from crnn_ocr.cli.main import main
from crnn_ocr.reading.recognizer import Recognizer

from conftest import text_image
from conftest import tiny_checkpoint


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return str(tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt"))


@pytest.fixture
def images(tmp_path):
    """a.png, b.jpg, notes.txt, broken.png (not an image) and sub/c.png."""
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    text_image("abc", (128, 32)).save(folder / "a.png")
    text_image("xyz", (128, 32), "RGB").save(folder / "b.jpg")
    text_image("deep", (128, 32)).save(folder / "sub" / "c.png")
    (folder / "notes.txt").write_text("not an image, not listed")
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["predict", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_tsv_is_path_text_confidence_and_skips_unreadable_images_on_stderr(model, images, capsys):
    code, out, err = run(capsys, "--model", model, str(images))
    rows = [line.split("\t") for line in out.splitlines()]
    assert code == 0 and [r[0] for r in rows] == [str(images / "a.png"), str(images / "b.jpg")]
    assert all(len(r) == 3 and 0 <= float(r[2]) <= 1 for r in rows)
    assert "broken.png" in err and "1 of 3 inputs skipped" in err


def test_json_and_jsonl_records_match_the_recognizer_with_error_records(model, images, capsys):
    expected = Recognizer.load(model).read([str(images / "a.png"), str(images / "b.jpg")])
    code, out, _ = run(capsys, "--model", model, "--format", "json", str(images))
    records = json.loads(out)
    assert code == 0 and [r["path"] for r in records] == [str(images / n) for n in ("a.png", "b.jpg", "broken.png")]
    assert [(r["text"], r["confidence"]) for r in records[:2]] == [(e.text, e.confidence) for e in expected]
    assert records[2]["text"] == "" and records[2]["error"] == "not an image" and "error" not in records[0]
    code, out, _ = run(capsys, "--model", model, "--format", "jsonl", str(images))
    assert [json.loads(line) for line in out.splitlines()] == records


def test_details_give_each_characters_confidence_columns_and_pixels(model, images, capsys):
    _, out, _ = run(capsys, "--model", model, "--format", "jsonl", "--details", str(images / "a.png"))
    record = json.loads(out)
    assert "".join(c["char"] for c in record["chars"]) == record["text"]
    for c in record["chars"]:
        assert 0 <= c["confidence"] <= 1 and c["columns"][0] < c["columns"][1] and 0 <= c["x"][0] <= c["x"][1] <= 128
    assert main(["predict", "--model", model, "--details", str(images / "a.png")]) == 2  # TSV has no room for them


def test_output_file_is_written_whole_and_stdout_stays_empty(model, images, tmp_path, capsys):
    target = tmp_path / "out.jsonl"
    code, out, _ = run(capsys, "--model", model, "--format", "jsonl", "--output", str(target), str(images / "a.png"))
    assert code == 0 and out == "" and json.loads(target.read_text())["path"] == str(images / "a.png")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left
    code, _, _ = run(capsys, "--model", model, "--output", str(tmp_path / "none" / "x.tsv"), str(images / "a.png"))
    assert code == 2  # an unwritable place is a one-line error


def test_output_never_replaces_an_input_or_a_special_file(model, images, tmp_path, capsys):
    victim = images / "a.png"
    before = victim.read_bytes()
    code, _, err = run(capsys, "--model", model, "--output", str(victim), str(images))
    assert code == 2 and "is one of the images to read" in err and victim.read_bytes() == before
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    code, _, _ = run(capsys, "--model", model, "--output", str(fifo), str(victim))
    reader.join(timeout=60)
    assert code == 0 and stat.S_ISFIFO(fifo.lstat().st_mode)  # written through, not replaced by a file
    assert got and got[0].startswith(str(victim) + "\t")


def test_an_empty_path_is_a_missing_image_not_the_current_folder(model, images, capsys, monkeypatch):
    monkeypatch.chdir(images)
    code, out, err = run(capsys, "--model", model, "", "a.png")
    assert code == 0 and out.startswith("a.png\t") and len(out.splitlines()) == 1 and "skipping" in err


def test_recursive_folders_globs_and_paths_on_stdin(model, images, capsys, monkeypatch):
    def listed(*argv):
        return [line.split("\t")[0] for line in run(capsys, "--model", model, *argv)[1].splitlines()]

    assert str(images / "sub" / "c.png") not in listed(str(images))
    assert listed("--recursive", str(images)) == [str(images / n) for n in ("a.png", "b.jpg", "sub/c.png")]
    assert listed(str(images / "*.png"), str(images / "**" / "c.png")) == [str(images / "a.png"),
                                                                          str(images / "sub" / "c.png")]
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{images / 'b.jpg'}\n\n{images / 'a.png'}\n"))
    assert listed("-") == [str(images / "b.jpg"), str(images / "a.png")]


def test_tsv_escapes_tabs_newlines_and_backslashes_in_paths(model, tmp_path, capsys):
    odd = tmp_path / "a\tb\\c\nd.png"
    text_image("abc", (128, 32)).save(odd)
    _, out, _ = run(capsys, "--model", model, str(odd))
    assert out.count("\n") == 1 and out.split("\t")[0] == str(tmp_path) + "/a\\tb\\\\c\\nd.png"


def test_no_readable_image_is_exit_2(model, images, capsys):
    code, _, err = run(capsys, "--model", model, str(images / "broken.png"), str(images / "missing.png"))
    assert code == 2 and "file not found" in err and "no readable image" in err


def test_decoders_by_name_and_bad_reading_options(model, images, tmp_path, capsys):
    words = tmp_path / "words.txt"
    words.write_text("abc\nxyz\n")
    a = str(images / "a.png")
    code, out, _ = run(capsys, "--model", model, a, "--decoder", "lexicon", "--lexicon", str(words))
    assert code == 0 and out.split("\t")[1] in {"abc", "xyz"}
    assert run(capsys, "--model", model, "--words", str(words), "--", a)[0] == 0  # lm decoder
    code, _, err = run(capsys, "--model", model, "--decoder", "lm", a)
    assert code == 2 and "needs words" in err  # an untrained checkpoint has no training labels
    assert run(capsys, "--model", model, "--device", "nonsense", a)[0] == 2
    code, _, err = run(capsys, "--model", model, "--device", "meta", a)  # was an unexpected NotImplementedError
    assert code == 2 and "'meta' is not one that reads images" in err and err.count("\n") == 1
    (tmp_path / "dir.onnx").mkdir()
    code, _, err = run(capsys, "--model", str(tmp_path / "dir.onnx"), a)  # was "not found"
    assert code == 2 and "is a folder, not an ONNX model" in err
    assert run(capsys, "--model", model, "--batch-size", "0", a)[0] == 2


def test_a_closed_pipe_ends_quietly(model, images, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"{images / 'a.png'}\n" * 3000)  # far more output than a pipe holds
    done = subprocess.run(
        f"{sys.executable} -m crnn_ocr predict --model {model} --threads 1 - < {listing} | head -1; "
        "exit ${PIPESTATUS[0]}",
        shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stderr == "" and done.stdout.count("\n") == 1
