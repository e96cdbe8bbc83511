"""Keeping evaluation audio out of training data at ingest.

WavCaps re-distributes recordings that Clotho and AudioCaps were cut from: thousands of its
FreeSound entries are Clotho's FreeSound recordings, tens of thousands of its AudioSet_SL
entries are AudioCaps clips. Trained on naively, a model has heard the test set. Three
sources say which entries to drop:

* the **published lists** of aac-datasets 0.7.0 (shipped in ``aacbatch/data/published/``,
  see its NOTICE): FreeSound ids that overlap Clotho v2, AudioSet_SL file names that are
  AudioCaps clips;
* **registered recordings**: an entry whose source (e.g. FreeSound id) equals that of a clip
  of another registered corpus (Clotho ingested with its metadata CSVs, AudioCaps), whatever
  its split, as the published lists do;
* **your own lists** (``--exclude FILE``): a CSV with an ``id`` column (the published lists'
  ``index,id`` layout) or a text file of one id per line.

An id names an entry by its corpus id (or, without one, its file name with or without the
audio suffix) or its source id. With ``keep=True`` nothing is dropped, but the entries on published lists are
marked (``overlap_lists``) so that a run's leakage report can still name them.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from aacbatch.audio.files import AUDIO_SUFFIXES
from aacbatch.data.ingest.tables import read_csv
from aacbatch.data.manifest import ClipEntry
from aacbatch.errors import InputError, shown
from aacbatch.textfiles import read_utf8

PUBLISHED_DIR = Path(__file__).resolve().parents[1] / "published"
NOT_AN_ID = "not found"  # how Clotho's metadata (and so the v2 list) spells a missing FreeSound id


@dataclass(frozen=True)
class IdList:
    """Ids of entries to drop; ``subset``: the WavCaps subset whose entries the list names
    (None: any entry, for ids that cannot be mistaken across subsets)."""

    name: str
    ids: frozenset[str]
    subset: str | None = None


@dataclass(frozen=True)
class PublishedList:
    file: str
    subset: str | None
    overlaps: str  # the corpus whose recordings it lists ...
    format: str  # ... and its ingest format


PUBLISHED = {
    "clotho_v2": PublishedList("blacklist_clotho.full.v2.csv.gz", "freesound", "Clotho v2", "clotho"),
    # Y<youtube id>.wav names are AudioSet_SL's own, so the list applies whatever the subset
    "audiocaps": PublishedList("blacklist_audiocaps.full.csv.gz", None, "AudioCaps", "audiocaps"),
}


def normal_id(text: str) -> str:
    """An id as lists and entries are compared: stripped, without an audio file suffix."""
    text = text.strip()
    stem, dot, suffix = text.rpartition(".")
    return stem if dot and f".{suffix.lower()}" in AUDIO_SUFFIXES else text


@cache
def published_list(key: str) -> IdList:
    """One of :data:`PUBLISHED` as shipped (``index,id`` CSV, gzip-compressed)."""
    info = PUBLISHED[key]
    text = gzip.decompress((PUBLISHED_DIR / info.file).read_bytes()).decode("utf-8")
    rows = text.splitlines()[1:]
    ids = {normal_id(row.partition(",")[2]) for row in rows}
    return IdList(f"{key} list (aac-datasets 0.7.0: WavCaps overlapping {info.overlaps})",
                  frozenset(i for i in ids if i and i.lower() != NOT_AN_ID), info.subset)


def read_id_list(path: Path) -> IdList:
    """Your own list: a CSV whose header has an ``id`` column, or one id per line."""
    text = read_utf8(path, "exclusion list")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise InputError(f"exclusion list {shown(path)} is empty: give one id per line or a CSV with an id column")
    if lines[0][:1] in "{[" or "," not in lines[0] and any("," in line for line in lines[1:]):
        raise InputError(f"exclusion list {shown(path)} is in an unknown format: give a CSV with an id column "
                         "(index,id as in aac-datasets' lists) or a text file of one id per line")
    if "," in lines[0]:
        table = read_csv(path, ("id",), optional=None)
        ids = [row["id"] for _, row in table.rows]
    else:
        ids = lines[1:] if lines[0].lower() == "id" else lines
    return IdList(f"list {shown(path.name)}", frozenset(normal_id(i) for i in ids if normal_id(i)))


@dataclass
class Exclusion:
    """What :func:`exclude` did: the entries left, and per reason how many it dropped (or,
    with ``keep``, kept although they overlap); warnings for the user."""

    entries: list[ClipEntry]
    keep: bool = False
    dropped: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def record(self) -> dict:
        """What the dataset row keeps of it (its ``meta``): what was dropped and why, or
        that overlapping entries were kept on purpose."""
        return {"overlap": {"excluded": self.dropped, "keep_overlap": self.keep, "kept": self.kept}}


def _names(entry: ClipEntry) -> set[str]:
    """The corpus id of an entry (its file name where it has none) and its source id; not
    both the id and the file name, which may be another entry's id (``3.wav`` of id 7)."""
    names = {normal_id(entry.key or entry.name)}
    if entry.source is not None:
        names.add(normal_id(entry.source.id))
    return names


def exclude(entries: Iterable[ClipEntry], *, subset: str | None, published: Iterable[str] = (),
            own: Iterable[IdList] = (), registered: Mapping[tuple[str, str], str] | None = None,
            keep: bool = False) -> Exclusion:
    """Drop the ``entries`` that overlap evaluation audio (see the module docstring).

    ``published``: keys of :data:`PUBLISHED` to apply (each only to its ``subset``);
    ``own``: further lists; ``registered``: (source kind, source id) → the registered dataset
    holding that recording. An entry is counted under the first reason that names it.
    """
    entries = list(entries)
    out = Exclusion([], keep)
    lists = []
    for key in published:
        lst = published_list(key)
        if lst.subset in (None, subset):
            lists.append((lst, key))
        elif subset is None:
            out.warnings.append(f"the WavCaps subset of this listing is unknown, so the {key} list (for its "
                                f"{lst.subset} entries) was not applied: name the JSON as the release does "
                                "(fsd_final.json, as_final.json, ...)")
    own = list(own)
    hits: dict[str, set[str]] = {lst.name: set() for lst in own}
    for entry in entries:
        names = _names(entry)
        marks = tuple(key for lst, key in lists if names & lst.ids)
        reasons = [lst.name for lst, key in lists if key in marks]
        for lst in own:
            if names & lst.ids:
                reasons.append(lst.name)
                hits[lst.name] |= names & lst.ids
        source = entry.source
        owner = registered.get((source.kind, source.id)) if registered and source is not None else None
        if owner is not None:
            reasons.append(f"same {source.kind} recording as a clip of {owner!r}")
        if not reasons:
            out.entries.append(entry)
        elif keep:
            out.entries.append(replace(entry, overlap_lists=marks))
            out.kept[reasons[0]] = out.kept.get(reasons[0], 0) + 1
        else:
            out.dropped[reasons[0]] = out.dropped.get(reasons[0], 0) + 1
    for lst in own:
        if len(hits[lst.name]) < len(lst.ids):
            out.warnings.append(f"{lst.name}: {len(lst.ids) - len(hits[lst.name])} of {len(lst.ids)} ids match no entry")
    return out
