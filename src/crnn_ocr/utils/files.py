"""Files read and written safely: bounded reads of text files, atomic writes of reports, and
file names shown as text.

- ``read_text_file``: every text file the project reads (labels.tsv, words.txt, id lists,
  config files) goes through it: regular files only (a fifo or ``/dev/zero`` would hang or
  never end) and at most ``MAX_TEXT_BYTES``.
- ``write_atomic``: a report file is written to a temporary file beside it and renamed into
  place, so a failure never leaves a 0-byte or half-written file (the previous one survives).
- ``unicode_text``: a path or text as valid Unicode. On Linux a file name is bytes; one that
  is not valid UTF-8 reaches Python with "surrogate escapes", which no UTF-8 file can hold.
  ``unicode_text`` writes those bytes as ``\\xe9`` (JSON, CSV), and so does the error handler
  ``"crnn_ocr.shown"`` the CLI sets on standard output and error.
- ``shown``: the same for messages, reports and plots, control characters also escaped
  (``\\x0a`` for a newline, ``\\x1b`` for a terminal's escape), so that a file name stays on
  its line.
- ``tsv_field``: a value for one field of a tab-separated line, tab, newline, carriage return
  and backslash escaped as ``\\t``, ``\\n``, ``\\r`` and ``\\\\``.
"""
from __future__ import annotations

import codecs
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

MAX_TEXT_BYTES = 256 * 2**20  # a labels.tsv, words.txt, id list or config larger than this is a mistake


def read_text_file(path: str | Path, what: str, limit: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of text file ``path``; ``OSError`` with a one-line message naming ``what``
    (e.g. "id list") if it is missing, not a regular file, unreadable or over ``limit`` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: opening a fifo must not wait
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise OSError(0, "not a regular file")
            data = f.read(limit + 1)
    except OSError as e:
        raise OSError(f"cannot read {what} {shown(path)}: {e.strerror or e}") from None
    if len(data) > limit:
        raise OSError(f"{what} {shown(path)} is larger than {limit // 2**20} MB")
    return data


@contextmanager
def named_as(path: str | Path) -> Iterator[None]:
    """An operating-system error in the block named after ``path``, the file asked for, not the
    temporary file beside it that the block works on."""
    try:
        yield
    except OSError as e:
        if e.strerror is None:
            raise
        raise OSError(e.errno, e.strerror, str(path)) from None


@contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s new content into: a temporary file beside it, flushed
    to disk and renamed into place when the block ends, removed if the block fails. A crash
    mid-write leaves the previous file intact."""
    path = Path(path)
    with named_as(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp's file is owner-only; give it a normal file's mode
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        with named_as(path):
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes, encoding: str = "utf-8") -> None:
    """Write ``data`` to ``path`` through ``atomic_file``."""
    with atomic_file(path) as f:
        f.write(data.encode(encoding) if isinstance(data, str) else data)


def atomic_target(path: str | Path) -> tuple[Path, Path]:
    """(temporary path beside ``path``, ``path``) for writers that need a file name (matplotlib):
    write the first, then ``os.replace`` it onto the second."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}"), path


def unicode_text(text: str | Path) -> str:
    """``text`` (a path or a string) as valid Unicode: bytes of a non-UTF-8 file name (kept
    by Python as surrogate escapes) become ``\\xNN``."""
    text = str(text)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}


def shown(text: str | Path) -> str:
    """``text`` for a message: ``unicode_text``, and its control characters (a newline or a
    terminal's escape code in a file name) as ``\\xNN``, so that it stays on its line and cannot
    drive the terminal."""
    return unicode_text(text).translate(_CONTROLS)


def _escape_unencodable(err: UnicodeError) -> tuple[str, int]:
    """Codec error handler ``"crnn_ocr.shown"``: a byte of a non-UTF-8 file name as ``\\xNN``
    (as ``shown`` writes it), any other character the stream cannot encode as ``\\uNNNN``."""
    if not isinstance(err, UnicodeEncodeError):
        raise err
    out = []
    for c in err.object[err.start : err.end]:
        o = ord(c)
        if 0xDC80 <= o <= 0xDCFF:
            out.append(f"\\x{o - 0xDC00:02x}")
        else:
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
    return "".join(out), err.end


codecs.register_error("crnn_ocr.shown", _escape_unencodable)


def tsv_field(text: str) -> str:
    """``text`` for one field of a tab-separated line: ``\\``, tab, newline and carriage return
    escaped, so every line has its fields and nothing else."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
