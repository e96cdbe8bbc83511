"""Any audio folder plus a CSV ``file_name,caption[,split][,tags]`` (one row per caption;
``tags`` ``;``-joined). PATH is the CSV, or a folder holding exactly one CSV; audio paths are
relative to ``--audio-dir`` (default: the CSV's folder). Split defaults to ``train``.
"""

from __future__ import annotations

from pathlib import Path

from aacbatch.data.ingest.tables import read_csv, split_tags
from aacbatch.data.manifest import ClipEntry, Manifest
from aacbatch.errors import InputError, shown


def parse(path: Path, *, audio_dir: Path | None = None, limit: int | None = None) -> Manifest:
    listing = path if path.is_file() else _single_csv(path)
    folder = audio_dir or listing.parent
    clips: dict[str, ClipEntry] = {}
    for line, row in read_csv(listing, ("file_name", "caption"), optional=("split", "tags")).rows:
        name = row["file_name"].strip()
        if not name:
            raise InputError(f"{shown(listing)} line {line}: empty file_name")
        split = row.get("split", "").strip() or "train"
        clip = clips.get(name)
        if clip is None:
            clip = clips[name] = ClipEntry(name=name, source_split=split, path=folder / name, captions=[],
                                           origin=f"{shown(listing.name)} line {line}", tags=split_tags(row.get("tags", "")))
        elif clip.source_split != split:
            raise InputError(f"{shown(listing)} line {line}: {name!r} is in split {split!r} here but {clip.source_split!r} in {clip.origin}")
        clip.captions.append(row["caption"].strip())
    entries = list(clips.values())
    return Manifest("folder", listing.parent, entries[:limit] if limit else entries)


def _single_csv(folder: Path) -> Path:
    candidates = sorted(folder.glob("*.csv"))
    if len(candidates) != 1:
        raise InputError(f"{shown(folder)}: expected exactly one .csv listing (file_name,caption[,split][,tags]), found {len(candidates)}; pass the CSV itself")
    return candidates[0]
