"""Named mixtures of datasets, and the datasets each run read, in the registry.

A mixture is a name for an ordered list of datasets with sampling weights, so a recipe, a
command line or an SQL query can say ``paper-pretrain`` instead of four dataset names. Its
name lives in the same namespace as datasets': ``--dataset NAME`` means either, never both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select

from aacbatch.errors import InputError, NotFoundError
from aacbatch.registry.datasets import dataset_by_name
from aacbatch.registry.schema import Dataset, Mixture, MixtureMember, RunDataset
from aacbatch.registry.store import Registry


@dataclass(frozen=True)
class MixtureRow:
    name: str
    members: tuple[tuple[str, float], ...]  # (dataset name, weight) in member order


@dataclass(frozen=True)
class UsedDataset:
    """One ``run_datasets`` row as the runner hands it over."""

    dataset: str
    role: str  # "train" or "val"
    position: int
    split: str
    fingerprint: str
    weight: float | None = None
    n_examples: int | None = None
    n_duplicates: int | None = None


def create_mixture(registry: Registry, name: str, members: Sequence[tuple[str, float]], replace: bool = False) -> str:
    """Register (or with ``replace``, redefine) mixture ``name``; returns "created",
    "unchanged" or "replaced"."""
    with registry.transaction() as session:
        if session.scalar(select(Dataset.id).where(Dataset.name == name)) is not None:
            raise InputError(f"mixture name {name!r} is already a dataset's name: choose another name")
        ids = [dataset_by_name(session, d).id for d, _ in members]
        row = session.scalar(select(Mixture).where(Mixture.name == name))
        if row is not None:
            if _members(session, row.id) == tuple((d, float(w)) for d, w in members):
                return "unchanged"
            if not replace:
                raise InputError(f"mixture {name!r} exists with other members: add --replace to redefine it")
            session.execute(delete(MixtureMember).where(MixtureMember.mixture_id == row.id))
            status = "replaced"
        else:
            row = Mixture(name=name)
            session.add(row)
            session.flush()
            status = "created"
        session.add_all(MixtureMember(mixture_id=row.id, dataset_id=i, position=k, weight=float(w))
                        for k, (i, (_, w)) in enumerate(zip(ids, members)))
    return status


def _members(session, mixture_id: str) -> tuple[tuple[str, float], ...]:
    rows = session.execute(select(Dataset.name, MixtureMember.weight).join(Dataset, Dataset.id == MixtureMember.dataset_id)
                           .where(MixtureMember.mixture_id == mixture_id).order_by(MixtureMember.position)).all()
    return tuple((n, float(w)) for n, w in rows)


def find_mixture(registry: Registry, name: str) -> MixtureRow | None:
    with registry.transaction() as session:
        row = session.scalar(select(Mixture).where(Mixture.name == name))
        return None if row is None else MixtureRow(row.name, _members(session, row.id))


def mixture_id(registry: Registry, name: str) -> str:
    with registry.transaction() as session:
        found = session.scalar(select(Mixture.id).where(Mixture.name == name))
    if found is None:
        raise NotFoundError(f"unknown mixture {name!r}: see `aacbatch mixture list`")
    return found


def mixtures(registry: Registry) -> list[MixtureRow]:
    with registry.transaction() as session:
        return [MixtureRow(r.name, _members(session, r.id))
                for r in session.scalars(select(Mixture).order_by(Mixture.name))]


def put_run_datasets(session, run_id: str, used: Sequence[UsedDataset]) -> None:
    """The datasets a starting run reads (inside the transaction that creates the run row)."""
    for u in used:
        session.add(RunDataset(run_id=run_id, dataset_id=dataset_by_name(session, u.dataset).id, role=u.role,
                               position=u.position, split=u.split, fingerprint=u.fingerprint, weight=u.weight,
                               n_examples=u.n_examples, n_duplicates=u.n_duplicates))


def trained_on(session, run_id: str) -> list[tuple[str, str]]:
    """(dataset id, split) of every dataset ``run_id`` trained on, in member order."""
    return [tuple(r) for r in session.execute(select(RunDataset.dataset_id, RunDataset.split).where(
        RunDataset.run_id == run_id, RunDataset.role == "train").order_by(RunDataset.position)).all()]
