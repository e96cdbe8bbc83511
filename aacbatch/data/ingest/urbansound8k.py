"""UrbanSound8K: ``metadata/UrbanSound8K.csv`` (``slice_file_name,fsID,start,end,salience,fold,
classID,class``) and ``audio/fold<N>/<slice_file_name>`` (or ``--audio-dir`` holding the
``fold<N>`` folders).

As ESC-50 (:mod:`aacbatch.data.ingest.esc50`): no captions, ``class`` is the clip's single tag,
the class names in ``classID`` order are the label vocabulary, each fold is a source split
``fold1`` … ``fold10``. ``fsID`` is the FreeSound recording and ``start`` the slice's offset
in it (seconds), kept as the clip's source.
"""

from __future__ import annotations

from pathlib import Path

from aacbatch.data.ingest.labelled import LabelIndex, find_listing, fold_split
from aacbatch.data.ingest.tables import read_csv
from aacbatch.data.manifest import ClipEntry, Manifest, Source
from aacbatch.errors import InputError, shown

COLUMNS = ("slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class")
LISTING = Path("metadata") / "UrbanSound8K.csv"


def parse(path: Path, *, audio_dir: Path | None = None, limit: int | None = None) -> Manifest:
    listing, root = find_listing(path, LISTING, "UrbanSound8K")
    audio = audio_dir or root / "audio"
    labels = LabelIndex(listing, "classID", "class")
    clips = []
    for line, row in read_csv(listing, COLUMNS).rows:
        name = row["slice_file_name"].strip()
        if not name:
            raise InputError(f"{shown(listing)} line {line}: empty slice_file_name")
        split = fold_split(row["fold"], listing, line)
        label = labels.add(row["classID"], row["class"], line)
        source_id = row["fsID"].strip()
        clips.append(ClipEntry(name=name, source_split=split, path=audio / split / name, captions=[],
                               origin=f"{shown(listing.name)} line {line}", tags=[label],
                               source=Source("freesound", source_id, _start(row["start"], listing, line))
                               if source_id.isdigit() else None))
    return Manifest("urbansound8k", root, clips[:limit] if limit else clips, {"tag_labels": labels.ordered()},
                    captioned=False)


def _start(text: str, listing: Path, line: int) -> float:
    try:
        start = float(text)
    except ValueError:
        start = -1.0
    if not 0 <= start < float("inf"):
        raise InputError(f"{shown(listing)} line {line}: start {text!r} is not a number of seconds >= 0")
    return start
