"""Clotho v2.1: ``clotho_captions_{split}.csv`` (``file_name,caption_1..caption_5``) beside
audio folders ``development/``, ``validation/``, ``evaluation/``.

``clotho_metadata_{split}.csv`` beside them (``file_name,keywords,sound_id,sound_link,
start_end_samples,manufacturer,license``, Latin-1 in the official release) gives each clip's
FreeSound id and licence, kept as the clip's source; a clip it does not list (or lists as
"Not found") has none.

SynthCaps writes the same layout plus ``tags.csv`` (``file_name,tags``, ``;``-joined) and
``labels.txt`` (the ordered tag vocabulary, one per line); both are read when present. Fewer
than five caption columns are accepted (SynthCaps' pretraining profile has one), but they
must be named ``caption_1`` … ``caption_N`` without gaps: any other column is refused by name.
"""

from __future__ import annotations

import re
from pathlib import Path

from aacbatch.data.ingest.tables import Table, no_rows, read_csv, split_tags
from aacbatch.data.manifest import ClipEntry, Manifest, Source, check_tag
from aacbatch.errors import InputError, shown
from aacbatch.textfiles import read_utf8

SPLITS = ("development", "validation", "evaluation")
_CAPTION_COLUMN = re.compile(r"caption_([1-9][0-9]*)")


def parse(path: Path, *, audio_dir: Path | None = None, limit: int | None = None) -> Manifest:
    root = audio_dir or path
    tags = _read_tags(path)
    clips: list[ClipEntry] = []
    listed = [s for s in SPLITS if (path / f"clotho_captions_{s}.csv").is_file()]
    if not listed:
        raise InputError(f"{shown(path)}: no clotho_captions_{{development,validation,evaluation}}.csv found: "
                         "is this a Clotho folder?")
    tables = [read_csv(path / f"clotho_captions_{split}.csv", ("file_name", "caption_1"), optional=None,
                       allow_empty=True) for split in listed]  # a split may be empty if another is not
    if not any(t.rows for t in tables):
        raise no_rows(tables[0].path)
    for split, table in zip(listed, tables):
        columns = _caption_columns(table)
        sources = _read_sources(path / f"clotho_metadata_{split}.csv")
        for line, row in table.rows:
            name = row["file_name"].strip()
            if not name:
                raise InputError(f"{shown(table.path)} line {line}: empty file_name")
            clips.append(ClipEntry(
                name=name, source_split=split, path=root / split / name,
                captions=[row[c].strip() for c in columns],
                origin=f"{shown(table.path.name)} line {line}", tags=tags.get(name), source=sources.get(name),
            ))
    if limit is not None:
        clips = clips[:limit]
    meta = {}
    labels = path / "labels.txt"
    if labels.is_file():
        meta["tag_labels"] = _read_labels(labels)
    return Manifest("clotho", path, clips, meta)


def _caption_columns(table: Table) -> list[str]:
    """The caption columns in number order; any column that is not ``caption_<n>`` is refused."""
    numbered = {}
    for column in table.columns:
        if column == "file_name":
            continue
        match = _CAPTION_COLUMN.fullmatch(column)
        if not match:
            raise InputError(f"{shown(table.path)}: column {column!r} is not a caption column: a Clotho captions "
                             "CSV has file_name,caption_1,...,caption_N")
        numbered[int(match.group(1))] = column
    gaps = [n for n in range(1, max(numbered) + 1) if n not in numbered]
    if gaps:
        raise InputError(f"{shown(table.path)}: caption columns must be numbered 1..{max(numbered)} without gaps; "
                         f"caption_{gaps[0]} is missing")
    return [numbered[n] for n in sorted(numbered)]


def _read_sources(metadata: Path) -> dict[str, Source]:
    """File name → its FreeSound recording, from a split's metadata CSV when present."""
    if not metadata.is_file():
        return {}
    table = read_csv(metadata, ("file_name", "sound_id"), optional=None, allow_empty=True, latin1=True)
    found = {}
    for _, row in table.rows:
        sound_id = row["sound_id"].strip()
        if sound_id.isdigit():  # some rows say "Not found"
            found[row["file_name"].strip()] = Source("freesound", sound_id,
                                                     licence=(row.get("license") or "").strip() or None)
    return found


def _read_tags(path: Path) -> dict[str, list[str] | None]:
    tags_csv = path / "tags.csv"
    if not tags_csv.is_file():
        return {}
    table = read_csv(tags_csv, ("file_name", "tags"))
    found: dict[str, list[str] | None] = {}
    lines: dict[str, int] = {}
    for line, row in table.rows:
        name = row["file_name"].strip()
        if not name:
            raise InputError(f"{shown(tags_csv)} line {line}: empty file_name")
        if name in lines:
            raise InputError(f"{shown(tags_csv)} line {line}: {name!r} is listed again (first on line {lines[name]}): "
                             "give each file's tags on one row")
        lines[name] = line
        found[name] = split_tags(row["tags"])
    return found


def _read_labels(labels: Path) -> list[str]:
    """``labels.txt``: one tag per line, blank lines skipped, each tag once."""
    out: dict[str, int] = {}
    for number, raw in enumerate(read_utf8(labels).split("\n"), 1):
        label = raw.removesuffix("\r").strip()
        if not label:
            continue
        check_tag(label, f"{shown(labels.name)} line {number}")
        if label in out:
            raise InputError(f"{shown(labels)} line {number}: label {label!r} is listed again (first on line "
                             f"{out[label]}): list each tag once")
        out[label] = number
    return list(out)
