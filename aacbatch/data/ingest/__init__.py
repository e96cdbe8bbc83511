"""Parsers for the corpora aacbatch reads, each turning a folder into a :class:`Manifest`.

A parser only reads listings (CSV/YAML/JSON) and resolves audio paths; validation and
registration are shared (:mod:`aacbatch.data.manifest`, :mod:`aacbatch.data.register`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aacbatch.catalog import INGEST_FORMATS
from aacbatch.data.ingest import audiocaps, clotho, folder, macs, wavcaps
from aacbatch.data.manifest import Manifest, validate
from aacbatch.data.register import register_dataset
from aacbatch.errors import InputError, shown
from aacbatch.names import check_name

Parser = Callable[..., Manifest]
PARSERS: dict[str, Parser] = {"clotho": clotho.parse, "audiocaps": audiocaps.parse, "macs": macs.parse,
                              "wavcaps": wavcaps.parse, "folder": folder.parse}


def parse(fmt: str, path: Path, *, audio_dir: Path | None = None, limit: int | None = None) -> Manifest:
    """Parse ``path`` in format ``fmt`` (one of :data:`aacbatch.catalog.INGEST_FORMATS`)."""
    if fmt not in PARSERS:
        raise InputError(f"unknown format {fmt!r}: use one of {', '.join(INGEST_FORMATS)}")
    if not path.exists():
        raise InputError(f"{shown(path)} does not exist: give the folder (or file) of the {fmt} corpus")
    if limit is not None and limit <= 0:
        raise InputError(f"--limit must be a positive number of clips, got {limit}")
    return PARSERS[fmt](path, audio_dir=audio_dir, limit=limit)


def ingest(registry, fmt: str, path: Path, *, name: str, audio_dir: Path | None = None, limit: int | None = None,
           replace: bool = False, progress: Callable | None = None):
    """Parse, validate fully, then register in one transaction (``aacbatch ingest``).

    ``progress(total)`` may return a tqdm-like bar for the audio checks.
    """
    check_name(name, "dataset name")
    manifest = parse(fmt, path, audio_dir=audio_dir, limit=limit)
    bar = progress(len(manifest.clips)) if progress else None
    try:
        validate(manifest, progress=bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()
    return register_dataset(registry, manifest, name, replace=replace)
