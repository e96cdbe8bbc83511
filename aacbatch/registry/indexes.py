"""Search indexes in the registry.

An index is registered like a corpus with one feature set: a ``datasets`` row (format
``index``, ``source_path`` = the indexed folder) and a ``feature_sets`` row (kind ``index``)
whose ``path`` is the index's current version. Switching versions is one transaction that
refuses when another process switched the index meanwhile.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select

from aacbatch.errors import InputError
from aacbatch.registry.schema import Dataset, FeatureSet, utcnow
from aacbatch.registry.store import Registry

INDEX_FORMAT = "index"  # datasets.format and feature_sets.kind of an index
SET_NAME = "index"


@dataclass(frozen=True)
class Registered:
    """An index's registry rows: its folder, model spec and current version."""

    dataset: Dataset
    feature_set: FeatureSet

    @property
    def spec(self) -> dict:
        return json.loads(self.feature_set.spec_json)

    @property
    def identity(self) -> dict:
        return json.loads(self.feature_set.model_identity)


def registered_index(registry: Registry, name: str) -> Registered | None:
    """The index ``name``, None if there is none; an error if ``name`` is a corpus."""
    with registry.transaction() as session:
        ds = session.scalar(select(Dataset).where(Dataset.name == name))
        fs = ds and session.scalar(select(FeatureSet).where(FeatureSet.dataset_id == ds.id, FeatureSet.name == SET_NAME))
    registry.resolved(fs)
    if ds is not None and ds.format != INDEX_FORMAT:
        raise InputError(f"{name!r} is a {ds.format} dataset, not an index: name another index "
                         "(`aacbatch sql --query indexes` lists them)")
    return Registered(ds, fs) if ds is not None and fs is not None else None


def switch_version(registry: Registry, *, name: str, folder: str, fingerprint: str, url: str, spec: dict,
                   identity: dict, n_files: int, captions: bool, random_weights: bool, replaces: str | None) -> None:
    """Make the complete version at ``url`` index ``name``'s current one, in one transaction.

    ``replaces`` is the fingerprint of the version it was planned from (None for a new
    index): if the registry holds another one, a concurrent run switched the index meanwhile
    and nothing is written."""
    with registry.transaction() as session:
        ds = session.scalar(select(Dataset).where(Dataset.name == name))
        fs = ds and session.scalar(select(FeatureSet).where(FeatureSet.dataset_id == ds.id, FeatureSet.name == SET_NAME))
        if (fs.fingerprint if fs is not None else None) != replaces:
            raise InputError(f"index {name!r} was changed by another process while this one was building it: "
                             "run the command again")
        fields = dict(format=INDEX_FORMAT, source_path=folder, fingerprint=fingerprint, n_clips=n_files,
                      n_captions=n_files if captions else 0)
        if ds is None:
            ds = Dataset(name=name, **fields)
            session.add(ds)
            session.flush()
        else:
            for key, value in fields.items():
                setattr(ds, key, value)
        row = dict(kind=INDEX_FORMAT, fingerprint=fingerprint, spec_json=json.dumps(spec),
                   model_identity=json.dumps(identity), random_weights=random_weights, path=registry.stored_path(url),
                   status="complete", n_items=n_files, updated_at=utcnow())
        if fs is None:
            session.add(FeatureSet(name=SET_NAME, dataset_id=ds.id, **row))
        else:
            for key, value in row.items():
                setattr(fs, key, value)
