"""ESC-50: ``meta/esc50.csv`` (``filename,fold,target,category,esc10,src_file,take``) and
``audio/<filename>`` (or ``--audio-dir``).

A classification corpus: clips have no captions, their class (``category``) is kept as the
clip's single tag, and the class names in ``target`` order become the dataset's label
vocabulary (``tag_labels``, as SynthCaps' ``labels.txt``), which zero-shot evaluation reads.
Each fold is a source split ``fold1`` … ``fold5``, so a fold can be scored on its own
(``--split fold1``) and per-fold scores are stored under those names. ``src_file`` is the
FreeSound id the clip was cut from (the clip's source, which data hygiene compares across
corpora).
"""

from __future__ import annotations

from pathlib import Path

from aacbatch.data.ingest.labelled import LabelIndex, find_listing, fold_split
from aacbatch.data.ingest.tables import read_csv
from aacbatch.data.manifest import ClipEntry, Manifest, Source
from aacbatch.errors import InputError, shown

COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
LISTING = Path("meta") / "esc50.csv"


def parse(path: Path, *, audio_dir: Path | None = None, limit: int | None = None) -> Manifest:
    listing, root = find_listing(path, LISTING, "ESC-50")
    audio = audio_dir or root / "audio"
    labels = LabelIndex(listing, "target", "category")
    clips = []
    for line, row in read_csv(listing, COLUMNS).rows:
        name = row["filename"].strip()
        if not name:
            raise InputError(f"{shown(listing)} line {line}: empty filename")
        category = labels.add(row["target"], row["category"], line)
        source_id = row["src_file"].strip()
        clips.append(ClipEntry(name=name, source_split=fold_split(row["fold"], listing, line), path=audio / name,
                               captions=[], origin=f"{shown(listing.name)} line {line}", tags=[category],
                               source=Source("freesound", source_id) if source_id.isdigit() else None))
    return Manifest("esc50", root, clips[:limit] if limit else clips, {"tag_labels": labels.ordered()},
                    captioned=False)
