"""Write a validated :class:`Manifest` into the registry as one transaction.

Re-ingesting identical data under the same name is a no-op (same fingerprint); different
data under an existing name is refused unless ``replace`` — then the dataset keeps its id
and its clips, captions and splits are swapped, all in one transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import delete, insert, select

from aacbatch.data.manifest import Manifest
from aacbatch.errors import InputError, NotFoundError
from aacbatch.registry.schema import Caption, Clip, Dataset, SplitMember, new_id
from aacbatch.registry.store import Registry

SOURCE_RECIPE = "source"


@dataclass(frozen=True)
class IngestResult:
    dataset_id: str
    name: str
    status: str  # "created", "unchanged" or "replaced"
    n_clips: int
    n_captions: int


def register_dataset(registry: Registry, manifest: Manifest, name: str, *, replace: bool = False) -> IngestResult:
    """Register ``manifest`` (already validated) as dataset ``name``."""
    fingerprint = manifest.fingerprint()
    with registry.transaction() as session:
        existing = session.scalar(select(Dataset).where(Dataset.name == name))
        if existing is not None and existing.fingerprint == fingerprint:
            return IngestResult(existing.id, name, "unchanged", existing.n_clips, existing.n_captions)
        if existing is not None and not replace:
            raise InputError(
                f"dataset {name!r} already exists with different content (from {existing.source_path}): "
                "pass --replace to overwrite it, or ingest under another --name"
            )
        fields = dict(format=manifest.format, source_path=str(manifest.source_path), fingerprint=fingerprint,
                      n_clips=len(manifest.clips), n_captions=manifest.n_captions,
                      meta_json=json.dumps(manifest.meta, ensure_ascii=False))
        if existing is None:
            dataset = Dataset(id=new_id(), name=name, **fields)
            session.add(dataset)
            status = "created"
        else:
            dataset = existing
            for key, value in fields.items():
                setattr(dataset, key, value)
            for table in (Caption, SplitMember, Clip):
                session.execute(delete(table).where(table.dataset_id == dataset.id))
            status = "replaced"
        session.flush()
        _insert_rows(session, dataset.id, manifest)
        return IngestResult(dataset.id, name, status, len(manifest.clips), manifest.n_captions)


def _insert_rows(session, dataset_id: str, manifest: Manifest) -> None:
    clips, captions, members = [], [], []
    for i, entry in enumerate(manifest.clips):
        clip_id = new_id()
        info = entry.info
        clips.append(dict(id=clip_id, dataset_id=dataset_id, idx=i, name=entry.name, source_split=entry.source_split,
                          path=str(entry.path.absolute()), duration=info.duration, n_frames=info.frames, sample_rate=info.sample_rate,
                          channels=info.channels, tags=";".join(entry.tags) if entry.tags else None))
        members.append(dict(id=new_id(), dataset_id=dataset_id, name=entry.source_split, clip_id=clip_id,
                            recipe=SOURCE_RECIPE))
        for j, text in enumerate(entry.captions):
            captions.append(dict(id=new_id(), dataset_id=dataset_id, clip_id=clip_id, idx=len(captions),
                                 caption_index=j, text=text))
    for table, rows in ((Clip, clips), (Caption, captions), (SplitMember, members)):
        session.execute(insert(table), rows)


def dataset_by_name(session, name: str) -> Dataset:
    dataset = session.scalar(select(Dataset).where(Dataset.name == name))
    if dataset is None:
        known = ", ".join(session.scalars(select(Dataset.name).order_by(Dataset.name))) or "none yet"
        raise NotFoundError(f"unknown dataset {name!r} (known: {known}); ingest it first with `aacbatch ingest`")
    return dataset
