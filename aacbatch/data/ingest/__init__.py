"""Parsers for the corpora aacbatch reads, each turning a folder into a :class:`Manifest`.

A parser only reads listings (CSV/YAML/JSON) and resolves audio paths; validation and
registration are shared (:mod:`aacbatch.data.manifest`, :mod:`aacbatch.data.register`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from aacbatch.catalog import INGEST_FORMATS
from aacbatch.data.ingest.exclusion import PUBLISHED, Exclusion, IdList, exclude, read_id_list
from aacbatch.data.ingest import audiocaps, clotho, esc50, folder, macs, urbansound8k, wavcaps
from aacbatch.data.manifest import Manifest, validate
from aacbatch.data.register import register_dataset
from aacbatch.errors import InputError, shown
from aacbatch.names import check_name
from aacbatch.registry.datasets import recordings

Parser = Callable[..., Manifest]
PARSERS: dict[str, Parser] = {"clotho": clotho.parse, "audiocaps": audiocaps.parse, "macs": macs.parse,
                              "wavcaps": wavcaps.parse, "folder": folder.parse, "esc50": esc50.parse,
                              "urbansound8k": urbansound8k.parse}


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
           replace: bool = False, progress: Callable | None = None, keep_overlap: bool = False,
           exclude: Sequence[Path] = ()):
    """Parse, screen out evaluation audio, validate fully, then register in one transaction
    (``aacbatch ingest``).

    WavCaps listings are screened by default (:mod:`aacbatch.data.ingest.exclusion`: the published
    lists and the recordings of registered corpora), any format by the id lists ``exclude``;
    ``keep_overlap`` keeps what would be dropped and says so in the dataset row. ``limit``
    counts the entries left after screening. ``progress(total)`` may return a tqdm-like bar
    for the audio checks.
    """
    check_name(name, "dataset name")
    own = [read_id_list(p) for p in exclude]
    screened = fmt == "wavcaps" or bool(own)
    manifest = parse(fmt, path, audio_dir=audio_dir, limit=None if screened else limit)
    outcome = None
    if screened:
        outcome = screen(registry, manifest, name, own=own, keep=keep_overlap)
        manifest = dataclasses.replace(manifest, clips=outcome.entries[:limit] if limit else outcome.entries,
                                       meta={**manifest.meta, **outcome.record()})
    bar = progress(len(manifest.clips)) if progress else None
    try:
        validate(manifest, progress=bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()
    result = register_dataset(registry, manifest, name, replace=replace)
    if outcome is None:
        return result
    return dataclasses.replace(result, dropped=outcome.dropped, kept=outcome.kept, warnings=outcome.warnings)


def screen(registry, manifest: Manifest, name: str, *, own: Sequence[IdList] = (), keep: bool = False) -> Exclusion:
    """:func:`aacbatch.data.ingest.exclusion.exclude` with what applies to ``manifest``: for
    WavCaps the published lists and the recordings of registered evaluation corpora (every
    format but WavCaps itself), for any format the lists ``own``."""
    wavcaps = manifest.format == "wavcaps"
    registered = recordings(registry, besides=name, formats=[f for f in INGEST_FORMATS if f != "wavcaps"]) if wavcaps else None
    return exclude(manifest.clips, subset=manifest.meta.get("wavcaps_subset"), published=PUBLISHED if wavcaps else (),
                   own=own, registered=registered, keep=keep)
