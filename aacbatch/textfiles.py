"""Text that users hand to aacbatch: files read as UTF-8, and the characters a one-line field
may hold.

Every listing, settings file and JSON input is UTF-8 (a leading UTF-8 byte-order mark, as
spreadsheet programs write it, is dropped). Anything else is refused in one line that names
the file, where the first offending byte is (line, column, byte offset) and what to do,
instead of a ``UnicodeDecodeError`` traceback or, worse, text that decodes by luck: UTF-16
without a byte-order mark is valid UTF-8 full of NUL bytes, so a NUL byte is refused too.

A one-line field (a caption, a file name, a tag) must not hold control characters (Unicode
category Cc: U+0000–U+001F, U+007F–U+009F), line or paragraph separators (U+2028, U+2029) or
lone surrogates (which JSON's ``\\ud800`` escapes can produce and no database can store):
they split lines in every later listing, tokenizer input and terminal.
"""

from __future__ import annotations

import re
from pathlib import Path

from aacbatch.errors import InputError, shown

_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_NAMES = {"\x00": "NUL", "\t": "tab", "\n": "line feed", "\r": "carriage return", "\x7f": "DEL",
          "\u2028": "line separator", "\u2029": "paragraph separator"}
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_TO_UTF8 = "re-save it as UTF-8 ({}: iconv -f {} -t utf-8 FILE)"


def read_utf8(path: Path, what: str = "") -> str:
    """The text of ``path`` (``what`` names it in errors, e.g. ``"config"``), decoded as
    UTF-8 without a leading byte-order mark; :class:`InputError` for anything else."""
    label = f"{what} {shown(path)}" if what else shown(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{label} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"{label} is a folder, not a file") from None
    except OSError as exc:
        raise InputError(f"cannot read {label}: {exc.strerror or type(exc).__name__}") from None
    return decode_utf8(data, label)


def decode_utf8(data: bytes, label: str) -> str:
    """``data`` as UTF-8 text (a leading BOM dropped); ``label`` names its source in errors."""
    if data.startswith(_UTF16_BOMS):
        raise InputError(f"{label} is UTF-16 text (it starts with a UTF-16 byte-order mark), not UTF-8: {_TO_UTF8.format('from UTF-16', 'utf-16')}")
    skip = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    nul = data.find(b"\x00", skip)
    try:
        text = data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.start + skip
        if nul < 0 or bad < nul:
            raise InputError(f"{label} is not UTF-8 text: byte 0x{data[bad]:02X} at {_where(data, bad, skip)} "
                             f"({exc.reason}); {_TO_UTF8.format('a Latin-1/Windows-1252 file', 'cp1252')}") from None
    if nul >= 0:
        raise InputError(f"{label} holds a NUL byte at {_where(data, nul, skip)}: it looks like UTF-16 or binary "
                         f"data, not UTF-8 text; {_TO_UTF8.format('from UTF-16', 'utf-16')}")
    return text


def first_forbidden(text: str) -> int | None:
    """Index of the first character of ``text`` that a one-line field may not hold (see the
    module docstring), or None."""
    found = _FORBIDDEN.search(text)
    return found.start() if found else None


def describe_character(char: str) -> str:
    """``"U+0000 (NUL)"``: a character an error names, readable even when it is invisible."""
    name = _NAMES.get(char)
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


def _where(data: bytes, offset: int, skip: int) -> str:
    """``"line 3, column 12 (byte offset 57)"`` of byte ``offset`` of ``data``, counting
    columns in characters of the (valid) text before it, after the ``skip`` BOM bytes."""
    start = max(data.rfind(b"\n", 0, offset) + 1, skip)
    line = data.count(b"\n", 0, offset) + 1
    column = len(data[start:offset].decode("utf-8", errors="replace")) + 1
    return f"line {line}, column {column} (byte offset {offset})"
