"""Reading corpus listings (CSV) with errors that name the file, the line and the fix.

A listing is UTF-8 (:func:`aacbatch.textfiles.read_utf8`), comma-separated, with one header
line whose column names are non-empty, unique, include the format's required columns and
nothing the format does not know (a misspelt optional column would otherwise be ignored in
silence). Quoting is read strictly: a quote that opens a field must close it before the next
comma or line end, and a quote inside a quoted field is doubled.

Every row must have as many fields as the header, and no field may span lines. The second
rule is what catches an unclosed quote: the CSV module would read every following row into
that one field until the next stray quote, so one caption swallows the rows after it and
their files are never listed. A field holding ``","`` is refused for the same reason (it is
what two fields merged by a quoting mistake look like).
"""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aacbatch.audio.files import AUDIO_SUFFIXES
from aacbatch.errors import InputError, shown
from aacbatch.textfiles import read_utf8

_OTHER_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


@dataclass(frozen=True)
class Table:
    """A CSV listing: its header and its data rows, each with the line it starts on."""

    path: Path
    columns: tuple[str, ...]
    rows: list[tuple[int, dict[str, str]]]


def read_csv(path: Path, required: Sequence[str], optional: Sequence[str] | None = (), *,
             allow_empty: bool = False, latin1: bool = False) -> Table:
    """Read and check ``path`` (see the module docstring); ``optional`` lists the columns it
    may have besides ``required`` (None: any, for a caller that checks them itself);
    ``allow_empty`` accepts a header without rows (a split of a corpus that has others);
    ``latin1`` reads a file that is not UTF-8 as Latin-1 (Clotho's metadata files are)."""
    if not path.is_file():
        raise InputError(f"{shown(path)} is missing: the layout needs this file")
    text = _utf8_or_latin1(path) if latin1 else read_utf8(path)
    expected = ",".join(required) + "".join(f"[,{c}]" for c in optional or ())
    if not text.strip():
        raise InputError(f"{shown(path)} is empty: expected a header line {expected} and one row per entry")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records = _records(path, reader)
    header = next(records, None)
    if header is None:
        raise InputError(f"{shown(path)} is empty: expected a header line {expected} and one row per entry")
    columns = _check_header(path, header[1], required, optional, expected)
    rows = []
    for start, fields in records:
        if len(fields) != len(columns):
            fix = "quote captions that contain commas" if len(fields) > len(columns) else "add the missing ones (they may be empty)"
            raise InputError(f"{shown(path)} line {start} has {len(fields)} field(s) but the header has "
                             f"{len(columns)} ({','.join(columns)}): {fix}")
        for column, value in zip(columns, fields):
            _check_field(path, start, column, value)
        rows.append((start, dict(zip(columns, fields))))
    if not rows and not allow_empty:
        raise no_rows(path)
    return Table(path, columns, rows)


def _utf8_or_latin1(path: Path) -> str:
    try:
        return read_utf8(path)
    except InputError:
        return path.read_bytes().decode("latin-1")


def no_rows(path: Path) -> InputError:
    return InputError(f"{shown(path)} has a header but no rows: add one row per entry or remove the file")


def _records(path: Path, reader):
    """``(first line, fields)`` of every non-blank record; a quoting error names its line."""
    start = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "end of data" in str(exc):
                raise InputError(f"{shown(path)} line {start}: a quoted field opened here is never closed: "
                                 "close the quote (a quote inside a quoted field is written twice)") from None
            if "field limit" in str(exc):
                raise InputError(f"{shown(path)} line {start}: a field longer than {csv.field_size_limit()} "
                                 "characters starts here: check this line for an unclosed quote") from None
            if reader.line_num > start:
                raise InputError(f"{shown(path)} line {start}: a quoted field opened here runs on to line "
                                 f"{reader.line_num} and breaks there ({exc}): close the quote on line {start}") from None
            raise InputError(f"{shown(path)} line {start}: malformed CSV ({exc}): a quoted field must end with its "
                             "quote, and a quote inside it is written twice") from None
        if fields:
            yield start, fields
        start = reader.line_num + 1


def _check_header(path: Path, header: list[str], required: Sequence[str], optional: Sequence[str] | None,
                  expected: str) -> tuple[str, ...]:
    columns = tuple(name.strip() for name in header)
    shown_header = ",".join(columns)
    if len(columns) == 1:
        for sep, name in _OTHER_SEPARATORS.items():
            if sep in columns[0]:
                raise InputError(f"{shown(path)}: the header separates columns with {name}; aacbatch reads "
                                 f"comma-separated files: re-save it with commas ({expected})")
    for i, name in enumerate(columns, 1):
        if not name:
            raise InputError(f"{shown(path)}: column {i} of the header has no name (header is {shown(shown_header)}): "
                             f"expected {expected}")
        if name in columns[: i - 1]:
            raise InputError(f"{shown(path)}: column {name!r} appears twice in the header: keep one")
    missing = [c for c in required if c not in columns]
    if missing:
        raise InputError(f"{shown(path)}: missing column(s) {', '.join(missing)} (header is "
                         f"{shown(shown_header)}); expected {expected}")
    if optional is not None:
        known = list(required) + list(optional)
        for name in columns:
            if name not in known:
                hint = difflib.get_close_matches(name.lower(), known, n=1)
                guess = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise InputError(f"{shown(path)}: unknown column {name!r}{guess}; expected {expected}")
    return columns


def _check_field(path: Path, start: int, column: str, value: str) -> None:
    if "\n" in value or "\r" in value:
        end = start + value.count("\n") + value.count("\r") - value.count("\r\n")
        raise InputError(f"{shown(path)} line {start}: field {column!r} runs over lines {start}-{end}; a field must "
                         "be one line (an unclosed quote swallows the rows after it): close the quote")
    if '","' in value:
        raise InputError(f"{shown(path)} line {start}: field {column!r} holds '\",\"', as fields merged by a "
                         "quoting mistake do: check the quotes on this line")


def index_audio(folder: Path) -> dict[str, Path]:
    """Map file stem and file name → path for every audio file below ``folder``."""
    if not folder.is_dir():
        raise InputError(f"audio folder {shown(folder)} does not exist: pass --audio-dir")
    found: dict[str, Path] = {}
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file():
            found.setdefault(p.name, p)
            found.setdefault(p.stem, p)
    return found


def split_tags(text: str) -> list[str] | None:
    tags = [t.strip() for t in text.split(";") if t.strip()]
    return tags or None
