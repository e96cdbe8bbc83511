"""Clotho v2.1: ``clotho_captions_{split}.csv`` (``file_name,caption_1..caption_5``) beside
audio folders ``development/``, ``validation/``, ``evaluation/``.

SynthCaps writes the same layout plus ``tags.csv`` (``file_name,tags``, ``;``-joined) and
``labels.txt`` (the ordered tag vocabulary); both are read when present. Fewer than five
caption columns are accepted (SynthCaps' pretraining profile has one).
"""

from __future__ import annotations

from pathlib import Path

from aacbatch.data.ingest.tables import read_csv, split_tags
from aacbatch.data.manifest import ClipEntry, Manifest
from aacbatch.errors import InputError

SPLITS = ("development", "validation", "evaluation")


def parse(path: Path, *, audio_dir: Path | None = None, limit: int | None = None) -> Manifest:
    root = audio_dir or path
    tags = _read_tags(path)
    clips: list[ClipEntry] = []
    listed = [s for s in SPLITS if (path / f"clotho_captions_{s}.csv").is_file()]
    if not listed:
        raise InputError(f"{path}: no clotho_captions_{{development,validation,evaluation}}.csv found: is this a Clotho folder?")
    for split in listed:
        csv_path = path / f"clotho_captions_{split}.csv"
        for line, row in read_csv(csv_path, ("file_name", "caption_1")):
            name = row["file_name"].strip()
            if not name:
                raise InputError(f"{csv_path} line {line}: empty file_name")
            columns = sorted((k for k in row if k.startswith("caption_")), key=lambda k: int(k.split("_")[1]))
            clips.append(ClipEntry(
                name=name, source_split=split, path=root / split / name,
                captions=[row[c].strip() for c in columns if row[c] is not None],
                origin=f"{csv_path.name} line {line}", tags=tags.get(name),
            ))
    if limit is not None:
        clips = clips[:limit]
    meta = {}
    labels = path / "labels.txt"
    if labels.is_file():
        meta["tag_labels"] = [l.strip() for l in labels.read_text(encoding="utf-8").splitlines() if l.strip()]
    return Manifest("clotho", path, clips, meta)


def _read_tags(path: Path) -> dict[str, list[str] | None]:
    tags_csv = path / "tags.csv"
    if not tags_csv.is_file():
        return {}
    return {row["file_name"].strip(): split_tags(row["tags"]) for _, row in read_csv(tags_csv, ("file_name", "tags"))}
