"""File names shown as text: ``unicode_text`` for data (JSON, CSV), ``shown`` for messages."""
import os

from crnn_ocr.utils.files import shown, tsv_field, unicode_text


def test_shown_escapes_control_characters_and_unicode_text_keeps_them():
    name = "a\nb\x1b[31m\x7f\x9bc\u00e9.png"
    assert unicode_text(name) == name
    assert shown(name) == "a\\x0ab\\x1b[31m\\x7f\\x9bc\u00e9.png"  # é is not a control character


def test_bytes_that_are_not_utf8_become_escapes_in_both():
    odd = os.fsdecode(b"caf\xe9\n")
    assert unicode_text(odd) == "caf\\xe9\n" and shown(odd) == "caf\\xe9\\x0a"


def test_errors_while_writing_through_a_temporary_file_name_the_file_asked_for(tmp_path):
    import pytest

    from crnn_ocr.utils.files import write_atomic

    (tmp_path / "report.md").mkdir()  # the rename onto it fails
    with pytest.raises(OSError) as e:
        write_atomic(tmp_path / "report.md", "text")
    assert e.value.filename == str(tmp_path / "report.md") and e.value.filename2 is None
    with pytest.raises(OSError) as e:
        write_atomic(tmp_path / "no" / "report.md", "text")  # no folder for the temporary file
    assert e.value.filename == str(tmp_path / "no" / "report.md")
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]  # no temporary file left


def test_tsv_field_escapes_its_separators():
    assert tsv_field("a\tb\nc\\d\r") == "a\\tb\\nc\\\\d\\r"
