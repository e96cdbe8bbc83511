"""Write a validated :class:`Manifest` into the registry as one transaction.

Re-ingesting identical data under the same name is a no-op (same fingerprint); different
data under an existing name is refused unless ``replace`` — then the dataset keeps its id
and its clips, captions and splits are swapped, all in one transaction
(:func:`aacbatch.registry.datasets.store_dataset`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aacbatch.data.manifest import ClipEntry, Manifest
from aacbatch.names import check_name
from aacbatch.registry.datasets import store_dataset
from aacbatch.registry.store import Registry


@dataclass(frozen=True)
class IngestResult:
    dataset_id: str
    name: str
    status: str  # "created", "unchanged" or "replaced"
    n_clips: int
    n_captions: int
    dropped: dict[str, int] = field(default_factory=dict)  # overlapping entries left out, by reason
    kept: dict[str, int] = field(default_factory=dict)  # ... or kept with --keep-overlap
    warnings: list[str] = field(default_factory=list)


def register_dataset(registry: Registry, manifest: Manifest, name: str, *, replace: bool = False) -> IngestResult:
    """Register ``manifest`` (already validated) as dataset ``name``."""
    for split, origin in {e.source_split: e.origin for e in reversed(manifest.clips)}.items():
        check_name(split, f"split name ({origin})")
    clips = [dict(name=e.name, source_split=e.source_split, path=str(e.path.absolute()), duration=e.info.duration,
                  n_frames=e.info.frames, sample_rate=e.info.sample_rate, channels=e.info.channels,
                  tags=";".join(e.tags) if e.tags else None, **_source_columns(e)) for e in manifest.clips]
    stored = store_dataset(registry, name, fmt=manifest.format, source_path=str(manifest.source_path),
                           fingerprint=manifest.fingerprint(), meta=manifest.meta, clips=clips,
                           captions=[e.captions for e in manifest.clips], replace=replace)
    return IngestResult(stored.dataset_id, name, stored.status, stored.n_clips, stored.n_captions)


def _source_columns(entry: ClipEntry) -> dict:
    source = entry.source
    return dict(source=source and source.kind, source_id=source and source.id, source_start=source and source.start,
                licence=source and source.licence, overlap_lists=";".join(entry.overlap_lists) or None)
