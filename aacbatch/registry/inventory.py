"""The files the registry refers to, by kind: what ``db check`` (and relocation) walk."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from aacbatch.registry.schema import Checkpoint, Clip, Dataset, FeatureSet, Prediction
from aacbatch.registry.store import Registry


@dataclass(frozen=True)
class Referenced:
    """One file a row names: its table, the row id, a label for people, and the path."""

    table: str
    row_id: str
    label: str
    path: str


def referenced_files(registry: Registry) -> list[Referenced]:
    """Checkpoints, split artifacts (similarity matrices) and complete feature sets."""
    with registry.transaction() as session:
        out = [Referenced("checkpoints", c.id, f"run {c.run_id[:8]} checkpoint", registry.real_path(c.path))
               for c in session.scalars(select(Checkpoint))]
        out += [Referenced("predictions", p.id, f"{'run ' + p.run_id[:8] if p.run_id else 'system'} {p.kind} "
                                                f"({p.split})", registry.real_path(p.artifact_path))
                for p in session.scalars(select(Prediction).where(Prediction.artifact_path.is_not(None)))]
        out += [Referenced("feature_sets", f.id, f"feature set {f.name}", registry.real_path(f.path))
                for f in session.scalars(select(FeatureSet).where(FeatureSet.status == "complete"))]
    return out


def source_audio(registry: Registry) -> dict[str, list[tuple[str, str]]]:
    """Per corpus dataset (not indexes), each clip's (name, audio path)."""
    with registry.transaction() as session:
        rows = session.execute(select(Dataset.name, Clip.name, Clip.path).join(Clip, Clip.dataset_id == Dataset.id)
                               .where(Dataset.format != "index").order_by(Dataset.name, Clip.idx)).all()
    out: dict[str, list[tuple[str, str]]] = {}
    for dataset, clip, path in rows:
        out.setdefault(dataset, []).append((clip, registry.real_path(path)))
    return out
