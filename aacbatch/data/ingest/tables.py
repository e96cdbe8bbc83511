"""Reading corpus listings (CSV) with errors that name the file, the line and the fix."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from aacbatch.audio.files import AUDIO_SUFFIXES
from aacbatch.errors import InputError


def read_csv(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)`` for each data row; check the header has ``required``."""
    if not path.is_file():
        raise InputError(f"{path} is missing: the layout needs this file")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise InputError(
                f"{path}: missing column(s) {', '.join(missing)} (header is {','.join(header) or 'empty'}); "
                f"expected {','.join(required)}"
            )
        for row in reader:
            if None in row:  # more fields than the header has
                raise InputError(f"{path} line {reader.line_num}: more fields than the header; quote captions with commas")
            yield reader.line_num, {k: (v or "") for k, v in row.items()}


def index_audio(folder: Path) -> dict[str, Path]:
    """Map file stem and file name → path for every audio file below ``folder``."""
    if not folder.is_dir():
        raise InputError(f"audio folder {folder} does not exist: pass --audio-dir")
    found: dict[str, Path] = {}
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file():
            found.setdefault(p.name, p)
            found.setdefault(p.stem, p)
    return found


def split_tags(text: str) -> list[str] | None:
    tags = [t.strip() for t in text.split(";") if t.strip()]
    return tags or None
