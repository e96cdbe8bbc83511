"""Datasets, clips, captions and splits in the registry.

Ingest hands over plain rows (the data layer validates and builds them); re-ingesting the
same content is a no-op, other content under an existing name replaces the dataset's rows
in one transaction, keeping its id. Splits are written in one transaction that checks the
dataset did not change since its clips were read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select

from aacbatch.errors import InputError, NotFoundError
from aacbatch.registry.schema import AuditMatch, Caption, Clip, Dataset, Mixture, SplitMember, new_id
from aacbatch.registry.store import Registry

SOURCE_RECIPE = "source"


def dataset_by_name(session, name: str) -> Dataset:
    dataset = session.scalar(select(Dataset).where(Dataset.name == name))
    if dataset is None:
        known = ", ".join(session.scalars(select(Dataset.name).order_by(Dataset.name))) or "none yet"
        raise NotFoundError(f"unknown dataset {name!r} (known: {known}); ingest it first with `aacbatch ingest`")
    return dataset


def get_dataset(registry: Registry, name: str) -> Dataset:
    with registry.transaction() as session:
        return dataset_by_name(session, name)


def find_dataset(registry: Registry, name: str) -> Dataset | None:
    with registry.transaction() as session:
        return session.scalar(select(Dataset).where(Dataset.name == name))


def dataset_name(registry: Registry, dataset_id: str | None) -> str | None:
    with registry.transaction() as session:
        row = session.get(Dataset, dataset_id) if dataset_id else None
        return row.name if row is not None else None


def dataset_names(registry: Registry, fmt: str | None = None) -> list[str]:
    with registry.transaction() as session:
        query = select(Dataset.name).order_by(Dataset.name)
        return list(session.scalars(query.where(Dataset.format == fmt) if fmt else query))


def recordings(registry: Registry, *, besides: str, formats: Iterable[str]) -> dict[tuple[str, str], str]:
    """(source kind, source id) → dataset name, for the clips of every dataset of one of
    ``formats`` other than ``besides`` that know the recording they were cut from."""
    with registry.transaction() as session:
        rows = session.execute(select(Clip.source, Clip.source_id, Dataset.name).join(Dataset, Dataset.id == Clip.dataset_id)
                               .where(Dataset.name != besides, Dataset.format.in_(list(formats)),
                                      Clip.source.is_not(None), Clip.source_id.is_not(None))
                               .order_by(Dataset.name)).all()
    found: dict[tuple[str, str], str] = {}
    for kind, source_id, name in rows:
        found.setdefault((kind, source_id), name)
    return found


@dataclass(frozen=True)
class StoredDataset:
    dataset_id: str
    status: str  # "created", "unchanged" or "replaced"
    n_clips: int
    n_captions: int


def store_dataset(registry: Registry, name: str, *, fmt: str, source_path: str, fingerprint: str, meta: dict,
                  clips: list[dict], captions: list[list[str]], replace: bool) -> StoredDataset:
    """Register dataset ``name``: its ``clips`` (dicts of :class:`Clip` columns without ids,
    in dataset order) and each clip's captions; every clip joins its ``source_split``."""
    n_captions = sum(len(c) for c in captions)
    with registry.transaction() as session:
        existing = session.scalar(select(Dataset).where(Dataset.name == name))
        if existing is not None and existing.fingerprint == fingerprint:
            return StoredDataset(existing.id, "unchanged", existing.n_clips, existing.n_captions)
        if existing is not None and not replace:
            raise InputError(
                f"dataset {name!r} already exists with different content (from {existing.source_path}): "
                "pass --replace to overwrite it, or ingest under another --name")
        fields = dict(format=fmt, source_path=registry.stored_path(source_path), fingerprint=fingerprint, n_clips=len(clips),
                      n_captions=n_captions, meta_json=json.dumps(meta, ensure_ascii=False))
        if existing is None:
            if session.scalar(select(Mixture.id).where(Mixture.name == name)) is not None:
                raise InputError(f"{name!r} is the name of a mixture (aacbatch mixture list): ingest under another --name")
            dataset = Dataset(id=new_id(), name=name, **fields)
            session.add(dataset)
            status = "created"
        else:
            dataset = existing
            for key, value in fields.items():
                setattr(dataset, key, value)
            old = select(Clip.id).where(Clip.dataset_id == dataset.id)  # their audit matches go too
            session.execute(delete(AuditMatch).where(AuditMatch.clip_a_id.in_(old) | AuditMatch.clip_b_id.in_(old)))
            for table in (Caption, SplitMember, Clip):
                session.execute(delete(table).where(table.dataset_id == dataset.id))
            status = "replaced"
        session.flush()
        _insert_rows(session, dataset.id, [dict(c, path=registry.stored_path(c["path"])) for c in clips], captions)
        return StoredDataset(dataset.id, status, len(clips), n_captions)


def _insert_rows(session, dataset_id: str, clips: list[dict], captions: list[list[str]]) -> None:
    clip_rows, caption_rows, members = [], [], []
    for i, (clip, texts) in enumerate(zip(clips, captions)):
        clip_id = new_id()
        clip_rows.append(dict(clip, id=clip_id, dataset_id=dataset_id, idx=i))
        members.append(dict(id=new_id(), dataset_id=dataset_id, name=clip["source_split"], clip_id=clip_id,
                            recipe=SOURCE_RECIPE))
        caption_rows.extend(dict(id=new_id(), dataset_id=dataset_id, clip_id=clip_id, idx=len(caption_rows) + j,
                                 caption_index=j, text=text) for j, text in enumerate(texts))
    for table, rows in ((Clip, clip_rows), (Caption, caption_rows), (SplitMember, members)):
        if rows:
            session.execute(insert(table), rows)


@dataclass(frozen=True)
class SplitRows:
    """A dataset row with the clips of one split (all clips for ``split=None``) and their
    captions, both in dataset order."""

    dataset: Dataset
    clips: list[Clip]
    captions: list[Caption]


def split_rows(registry: Registry, dataset: str, split: str | None = None) -> SplitRows:
    with registry.transaction() as session:
        ds = dataset_by_name(session, dataset)
        clip_query = select(Clip).where(Clip.dataset_id == ds.id).order_by(Clip.idx)
        if split is not None:
            members = select(SplitMember.clip_id).where(SplitMember.dataset_id == ds.id, SplitMember.name == split)
            clip_query = clip_query.where(Clip.id.in_(members))
        clips = session.scalars(clip_query).all()
        if split is not None and not clips:
            names = sorted(set(session.scalars(select(SplitMember.name).where(SplitMember.dataset_id == ds.id))))
            raise InputError(f"dataset {dataset!r} has no split {split!r} (it has {', '.join(names) or 'none'})")
        ids = {c.id for c in clips}
        captions = [c for c in session.scalars(select(Caption).where(Caption.dataset_id == ds.id).order_by(Caption.idx))
                    if c.clip_id in ids]
    return SplitRows(registry.resolved(ds, "source_path"), [registry.resolved(c) for c in clips], captions)


def source_splits(registry: Registry, dataset: str) -> tuple[Dataset, dict[str, list[tuple[str, str]]]]:
    """The dataset and, per source split, its clips as (clip name, clip id)."""
    with registry.transaction() as session:
        ds = dataset_by_name(session, dataset)
        rows = session.execute(select(SplitMember.name, Clip.id, Clip.name).join(Clip, Clip.id == SplitMember.clip_id)
                               .where(SplitMember.dataset_id == ds.id, SplitMember.recipe == SOURCE_RECIPE)).all()
    by_split: dict[str, list[tuple[str, str]]] = {}
    for split_name, clip_id, clip_name in rows:
        by_split.setdefault(split_name, []).append((clip_name, clip_id))
    return ds, by_split


def write_splits(registry: Registry, dataset: Dataset, recipes: dict[str, str], members: Iterable[tuple[str, str]],
                 *, replace: bool, on_clash: Callable[[list[tuple[str, str]]], str]) -> str:
    """Make the derived splits ``recipes`` (split name → recipe) hold ``members`` (clip id,
    split name): "unchanged" when they already exist with these recipes, "created" or
    "replaced" otherwise. Existing splits made differently are kept unless ``replace``
    (``on_clash(existing)`` gives the error message)."""
    members = list(members)
    with registry.transaction() as session:
        current = session.get(Dataset, dataset.id)
        if current is None or current.fingerprint != dataset.fingerprint:
            raise InputError(f"dataset {dataset.name!r} was re-ingested while it was being split: run split again")
        existing = session.execute(select(SplitMember.name, SplitMember.recipe).where(
            SplitMember.dataset_id == dataset.id, SplitMember.name.in_(list(recipes)),
            SplitMember.recipe != SOURCE_RECIPE).distinct()).all()
        if existing and dict(existing) == recipes:
            return "unchanged"
        if existing and not replace:
            raise InputError(on_clash(existing))
        session.execute(delete(SplitMember).where(SplitMember.dataset_id == dataset.id,
                                                  SplitMember.name.in_(list(recipes)),
                                                  SplitMember.recipe != SOURCE_RECIPE))
        session.execute(insert(SplitMember), [dict(id=new_id(), dataset_id=dataset.id, name=name, clip_id=clip_id,
                                                   recipe=recipes[name]) for clip_id, name in members])
        return "replaced" if existing else "created"
