"""The font collection step: families read from the fonts' name tables, faces that are not
printed Latin text dropped, the never-use families refused by file and family name, whole
families held out."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from crnn_ocr.data.synth.fonts import HELD_OUT, NEVER_USE, font_families, font_files, never_use, read_face, split_families

INSTALLED = {p.name: p for p in font_files()}
NEEDED = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "LiberationSerif-Regular.ttf",
          "LiberationSerif-Italic.ttf")
pytestmark = pytest.mark.skipif(not set(NEEDED) <= INSTALLED.keys(),
                                reason="needs fonts-dejavu and fonts-liberation (apt-get install)")


@pytest.fixture
def font_folder(tmp_path: Path) -> Path:
    """A fake font folder: copies of installed fonts, one of them under a never-use name, and
    a file that is not a font."""
    for name in NEEDED:
        shutil.copy(INSTALLED[name], tmp_path / name)
    (tmp_path / "sub").mkdir()
    shutil.copy(INSTALLED["DejaVuSansMono.ttf" if "DejaVuSansMono.ttf" in INSTALLED else "DejaVuSans.ttf"],
                tmp_path / "sub" / "Roboto-Regular.ttf")  # a user's machine with Roboto: never used
    (tmp_path / "broken.ttf").write_bytes(b"not a font")
    return tmp_path


def test_faces_are_grouped_by_the_family_in_their_name_table(font_folder):
    families = font_families((str(font_folder),))
    assert set(families) == {"DejaVu Sans", "DejaVu Serif", "Liberation Serif"}
    sans = families["DejaVu Sans"]
    assert sorted(Path(f.path).name for f in sans) == ["DejaVuSans-Bold.ttf", "DejaVuSans.ttf"]
    assert {f.bold for f in sans} == {False, True}
    assert [f.italic for f in families["Liberation Serif"]] == [True, False]


def test_never_use_families_are_refused_by_file_name_and_family_name(font_folder):
    assert read_face(font_folder / "sub" / "Roboto-Regular.ttf") is None
    assert all("roboto" not in f.path.lower() for faces in font_families((str(font_folder),)).values()
               for f in faces)
    for path, family in [("/usr/share/fonts/opentype/urw-base35/NimbusSans-Regular.otf", "Nimbus Sans"),
                         ("/x/texgyretermes-regular.otf", "TeX Gyre Termes"), ("/x/a.ttf", "Carlito"),
                         ("/x/b.ttf", "Caladea"), ("/x/c.ttf", "Roboto Slab"), ("/x/C059-Roman.otf", "C059")]:
        assert never_use(path, family), (path, family)
    assert not never_use("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "DejaVu Sans")
    assert "roboto" in NEVER_USE and "gyre" in NEVER_USE


def test_unreadable_files_are_skipped(font_folder):
    assert read_face(font_folder / "broken.ttf") is None


def test_whole_families_are_held_out_and_never_trained_on(font_folder):
    families = font_families((str(font_folder),))
    split = split_families(families, held_out=("DejaVu Serif",))
    assert set(split.held_out) == {"DejaVu Serif"}
    assert set(split.train) == {"DejaVu Sans", "Liberation Serif"}
    variants = split_families({**families, "DejaVu Serif Condensed": families["DejaVu Serif"]},
                              held_out=("DejaVu Serif",))
    assert "DejaVu Serif Condensed" not in variants.train and "DejaVu Serif Condensed" not in variants.held_out


def test_the_held_out_families_are_of_different_kinds():
    assert len(HELD_OUT) == len(set(HELD_OUT)) >= 6
    assert {"Lato", "League Spartan", "JetBrains Mono", "Yanone Kaffeesatz"} <= set(HELD_OUT)
