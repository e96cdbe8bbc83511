"""The in-memory form of a dataset between parsing and registering.

Every ingest format parses its files into a :class:`Manifest`; :func:`validate` then checks
the whole thing (captions, duplicates, audio headers) before a single row is written, so a
bad input never leaves a half-ingested dataset behind.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aacbatch.audio.files import AudioInfo, probe
from aacbatch.errors import InputError

# Real captions are sentences (Clotho's longest is ~20 words); a caption this long is almost
# always a broken CSV row (an unclosed quote swallowing the rest of the file).
MAX_CAPTION_CHARS = 1000


@dataclass
class ClipEntry:
    """One audio file with its captions, as the corpus lists it."""

    name: str
    source_split: str
    path: Path
    captions: list[str]
    origin: str  # where it was listed, for error messages, e.g. "clotho_captions_development.csv line 12"
    tags: list[str] | None = None
    info: AudioInfo | None = None


@dataclass
class Manifest:
    format: str
    source_path: Path
    clips: list[ClipEntry]
    meta: dict = field(default_factory=dict)

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
            digest.update(json.dumps(record, ensure_ascii=False).encode())
        return digest.hexdigest()


def validate(manifest: Manifest, progress: Callable[[int], None] | None = None) -> None:
    """Check everything before writing: non-empty captions, unique names, readable audio.

    Fills ``clip.info`` from the audio headers. Raises :class:`InputError` naming the first
    offending entry.
    """
    if not manifest.clips:
        raise InputError(f"{manifest.format}: no clips found under {manifest.source_path}: check the path and layout")
    seen: dict[str, str] = {}
    for clip in manifest.clips:
        if clip.name in seen:
            raise InputError(
                f"duplicate file name {clip.name!r} ({clip.origin} and {seen[clip.name]}): "
                "each clip must be listed once"
            )
        seen[clip.name] = clip.origin
        if not clip.captions:
            raise InputError(f"{clip.origin}: clip {clip.name!r} has no caption: add one or remove the row")
        for i, caption in enumerate(clip.captions, 1):
            if not caption.strip():
                raise InputError(f"{clip.origin}: caption {i} of {clip.name!r} is empty: fill it in or remove the row")
            if len(caption) > MAX_CAPTION_CHARS:
                raise InputError(f"{clip.origin}: caption {i} of {clip.name!r} is {len(caption)} characters long "
                                 f"(limit {MAX_CAPTION_CHARS}): check the CSV for an unclosed quote")
    for clip in manifest.clips:
        clip.info = probe(clip.path, clip.origin)
        if progress is not None:
            progress(1)
