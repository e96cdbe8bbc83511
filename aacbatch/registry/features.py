"""Feature sets (and search indexes, which are stored as feature sets) in the registry."""

from __future__ import annotations

from sqlalchemy import select

from aacbatch.errors import InputError
from aacbatch.registry.datasets import dataset_by_name
from aacbatch.registry.schema import FeatureSet, utcnow
from aacbatch.registry.store import Registry


def find_feature_set(registry: Registry, dataset: str, name: str) -> FeatureSet | None:
    """The feature set ``name`` of ``dataset`` (an unknown dataset is an error), None if absent."""
    with registry.transaction() as session:
        ds = dataset_by_name(session, dataset)
        row = session.scalar(select(FeatureSet).where(FeatureSet.dataset_id == ds.id, FeatureSet.name == name))
    return registry.resolved(row)


def feature_set_names(registry: Registry, dataset: str) -> list[str]:
    with registry.transaction() as session:
        ds = dataset_by_name(session, dataset)
        return list(session.scalars(select(FeatureSet.name).where(FeatureSet.dataset_id == ds.id)
                                    .order_by(FeatureSet.name)))


def feature_set_by_id(registry: Registry, set_id: str) -> FeatureSet | None:
    with registry.transaction() as session:
        row = session.get(FeatureSet, set_id)
    return registry.resolved(row)


def record_feature_set(registry: Registry, dataset_id: str, name: str, fields: dict) -> None:
    """Create or update the row of feature set ``name``; a ``complete`` row is never set back
    to ``building``/``partial`` by a job with the same fingerprint (another shard finished it)."""
    with registry.transaction() as session:
        row = session.scalar(select(FeatureSet).where(FeatureSet.dataset_id == dataset_id, FeatureSet.name == name))
        fields = dict(fields, updated_at=utcnow(), path=registry.stored_path(fields["path"]))
        if row is None:
            session.add(FeatureSet(name=name, dataset_id=dataset_id, **fields))
        elif not (row.status == "complete" and fields["status"] != "complete"
                  and row.fingerprint == fields["fingerprint"]):
            for key, value in fields.items():
                setattr(row, key, value)


def require_complete(registry: Registry, dataset: str, name: str, how: str) -> FeatureSet:
    """The complete feature set ``name`` of ``dataset``; ``how`` is the command that makes it."""
    row = find_feature_set(registry, dataset, name)
    if row is None:
        raise InputError(f"dataset {dataset!r} has no feature set {name!r}: run `{how}`")
    if row.status != "complete":
        raise InputError(f"feature set {name!r} of {dataset!r} is {row.status}: finish it with `{how}`")
    return row
