"""The in-memory form of a dataset between parsing and registering.

Every ingest format parses its files into a :class:`Manifest`; :func:`validate` then checks
the whole thing (captions, duplicates, audio headers) before a single row is written, so a
bad input never leaves a half-ingested dataset behind.

Characters: captions, file names and tags are one-line fields. In a caption a tab becomes a
space (spreadsheets paste them); every other control character (U+0000–U+001F,
U+007F–U+009F), U+2028/U+2029 and lone surrogates are refused, naming the entry and the
character, in captions, file names and tags alike (see :mod:`aacbatch.textfiles`). A tag may
not hold ``;``, which separates tags where they are stored. Split names follow the stricter
rule of :mod:`aacbatch.names` (checked when the dataset is registered).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import astuple, dataclass, field
from pathlib import Path

from aacbatch.audio.files import AudioInfo, probe
from aacbatch.errors import InputError, shown
from aacbatch.textfiles import describe_character, first_forbidden

# Real captions are sentences (Clotho's longest is ~20 words); a caption this long is almost
# always a broken CSV row (an unclosed quote swallowing the rest of the file).
MAX_CAPTION_CHARS = 1000


@dataclass(frozen=True)
class Source:
    """The recording a clip was cut from, as its corpus names it: ``kind`` is the namespace
    of ``id`` (``freesound``, ``youtube``, ``bbc``, ``soundbible``), so equal pairs in two
    datasets are the same recording; ``start`` is where the clip begins in it (seconds)."""

    kind: str
    id: str
    start: float | None = None
    licence: str | None = None


@dataclass
class ClipEntry:
    """One audio file with its captions, as the corpus lists it; ``key`` is the corpus' own
    id of the entry when it has one (a WavCaps entry's ``id``), which exclusion lists name."""

    name: str
    source_split: str
    path: Path
    captions: list[str]
    origin: str  # where it was listed, for error messages, e.g. "clotho_captions_development.csv line 12"
    tags: list[str] | None = None
    info: AudioInfo | None = None
    source: Source | None = None
    key: str | None = None
    overlap_lists: tuple[str, ...] = ()  # published overlap lists naming it, when kept


@dataclass
class Manifest:
    format: str
    source_path: Path
    clips: list[ClipEntry]
    meta: dict = field(default_factory=dict)
    captioned: bool = True  # False: a classification corpus (ESC-50, labelled folders), clips have none

    @property
    def n_captions(self) -> int:
        return sum(len(c.captions) for c in self.clips)

    def fingerprint(self) -> str:
        """Content hash: names, splits, captions, tags and audio header facts (not paths or
        mtimes, so a copied or moved corpus is recognised as the same data)."""
        digest = hashlib.sha256()
        digest.update(json.dumps({"format": self.format, "meta": self.meta}, sort_keys=True).encode())
        for clip in self.clips:
            info = clip.info
            record = [clip.name, clip.source_split, clip.captions, clip.tags,
                      None if info is None else [info.frames, info.sample_rate, info.channels]]
            if clip.source is not None or clip.overlap_lists:  # absent: the hash ingest always gave
                record += [None if clip.source is None else list(astuple(clip.source)), list(clip.overlap_lists)]
            digest.update(json.dumps(record, ensure_ascii=False).encode())
        return digest.hexdigest()


def validate(manifest: Manifest, progress: Callable[[int], None] | None = None) -> None:
    """Check everything before writing: one-line text fields, non-empty captions (at least
    one per clip unless the corpus has none), unique names, readable audio.

    Turns tabs in captions into spaces (see the module docstring) and fills ``clip.info``
    from the audio headers. Raises :class:`InputError` naming the first offending entry.
    """
    if not manifest.clips:
        raise InputError(f"{manifest.format}: no clips found under {shown(manifest.source_path)}: "
                         "check the path and layout")
    seen: dict[str, str] = {}
    for clip in manifest.clips:
        check_text(clip.name, f"{clip.origin}: file name {clip.name!r}", "rename the file and its entry")
        for tag in clip.tags or ():
            check_tag(tag, f"{clip.origin}: a tag of {clip.name!r}")
        if clip.name in seen:
            raise InputError(
                f"duplicate file name {clip.name!r} ({clip.origin} and {seen[clip.name]}): "
                "each clip must be listed once"
            )
        seen[clip.name] = clip.origin
        if manifest.captioned and not clip.captions:
            raise InputError(f"{clip.origin}: clip {clip.name!r} has no caption: add one or remove the row")
        clip.captions = [caption.replace("\t", " ") for caption in clip.captions]
        for i, caption in enumerate(clip.captions, 1):
            if not caption.strip():
                raise InputError(f"{clip.origin}: caption {i} of {clip.name!r} is empty: fill it in or remove the row")
            if len(caption) > MAX_CAPTION_CHARS:
                raise InputError(f"{clip.origin}: caption {i} of {clip.name!r} is {len(caption)} characters long "
                                 f"(limit {MAX_CAPTION_CHARS}): check the CSV for an unclosed quote")
            check_text(caption, f"{clip.origin}: caption {i} of {clip.name!r}",
                       "remove it (tabs become spaces; other control characters are refused)")
    for clip in manifest.clips:
        clip.info = probe(clip.path, clip.origin)
        if progress is not None:
            progress(1)


def check_text(text: str, what: str, fix: str) -> None:
    """Refuse a one-line field holding a character no field may hold; ``what`` names the
    field (``"list.csv line 3: caption 2 of 'a.wav'"``), ``fix`` says what to do."""
    at = first_forbidden(text)
    if at is not None:
        raise InputError(f"{what} holds {describe_character(text[at])} at character {at + 1}: {fix}")


def check_tag(tag: str, what: str) -> None:
    """A tag is a one-line field without ``;`` (the separator of stored tag lists)."""
    check_text(tag, f"{what} ({tag!r})", "remove it from the tag")
    if ";" in tag:
        raise InputError(f"{what} ({tag!r}) holds ';', which separates tags: rename the tag")
