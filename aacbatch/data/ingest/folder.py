"""Any audio folder plus a CSV ``file_name,caption[,split][,tags]`` (one row per caption;
``tags`` ``;``-joined). PATH is the CSV, or a folder holding exactly one CSV; audio paths are
relative to ``--audio-dir`` (default: the CSV's folder). Split defaults to ``train``.

A ``label`` column gives each clip one class (stored as its single tag, what zero-shot
classification reads) instead of ``tags``; with it the ``caption`` column may be left out,
for a labelled folder without captions (``file_name,label[,split]``, one row per file).
"""

from __future__ import annotations

from pathlib import Path

from aacbatch.data.ingest.tables import read_csv, split_tags
from aacbatch.data.manifest import ClipEntry, Manifest
from aacbatch.errors import InputError, shown

LAYOUT = "file_name,caption[,split][,tags|label] or file_name,label[,split]"


def parse(path: Path, *, audio_dir: Path | None = None, limit: int | None = None) -> Manifest:
    listing = path if path.is_file() else _single_csv(path)
    folder = audio_dir or listing.parent
    header = read_csv(listing, ("file_name",), optional=None, allow_empty=True).columns  # the layout; read strictly next
    captioned = "caption" in header or "label" not in header
    required = ("file_name", "caption") if captioned else ("file_name", "label")
    table = read_csv(listing, required, optional=("split", "tags", "label") if captioned else ("split",))
    if {"tags", "label"} <= set(table.columns):
        raise InputError(f"{shown(listing)}: give either a tags column or a label column, not both")
    clips: dict[str, ClipEntry] = {}
    for line, row in table.rows:
        name = row["file_name"].strip()
        if not name:
            raise InputError(f"{shown(listing)} line {line}: empty file_name")
        split = row.get("split", "").strip() or "train"
        tags = _label(row, listing, line) if "label" in row else split_tags(row.get("tags", ""))
        clip = clips.get(name)
        if clip is None:
            clip = clips[name] = ClipEntry(name=name, source_split=split, path=folder / name, captions=[],
                                           origin=f"{shown(listing.name)} line {line}", tags=tags)
        elif not captioned:
            raise InputError(f"{shown(listing)} line {line}: {name!r} is listed again (first in {clip.origin}): "
                             "without captions, list each file once")
        elif clip.source_split != split:
            raise InputError(f"{shown(listing)} line {line}: {name!r} is in split {split!r} here but {clip.source_split!r} in {clip.origin}")
        elif "label" in row and clip.tags != tags:
            raise InputError(f"{shown(listing)} line {line}: {name!r} has label {row['label'].strip()!r} here but "
                             f"{clip.tags[0]!r} in {clip.origin}: give a file one label")
        if captioned:
            clip.captions.append(row["caption"].strip())
    entries = list(clips.values())
    return Manifest("folder", listing.parent, entries[:limit] if limit else entries, captioned=captioned)


def _label(row: dict[str, str], listing: Path, line: int) -> list[str]:
    label = row["label"].strip()
    if not label:
        raise InputError(f"{shown(listing)} line {line}: empty label: give every file its class")
    return [label]


def _single_csv(folder: Path) -> Path:
    candidates = sorted(folder.glob("*.csv"))
    if len(candidates) != 1:
        raise InputError(f"{shown(folder)}: expected exactly one .csv listing ({LAYOUT}), found {len(candidates)}; pass the CSV itself")
    return candidates[0]
