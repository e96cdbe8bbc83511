"""Acoustic overlap audits and what a run's training data holds, in the registry.

An audit (``aacbatch audit overlap``) is one row in ``audits`` and one row per clip pair
that shares audio in ``audit_matches``. The leakage report of a run reads, through the
functions below, the runs it descends from, the clips each trained on and the matches
between those and the clips it is evaluated on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, or_, select

from aacbatch import catalog
from aacbatch.registry.mixtures import trained_on
from aacbatch.registry.schema import Audit, AuditMatch, Clip, Dataset, FeatureSet, Run, SplitMember, new_id
from aacbatch.registry.store import Registry

RUN_SETTINGS = ("audio_init", "encoder_run", "teacher")  # config keys that name another run


@dataclass(frozen=True)
class StoredMatch:
    """A match as stored, with each clip's dataset and name."""

    dataset_a: str
    clip_a: str
    dataset_b: str
    clip_b: str
    start_a: float
    start_b: float
    duration: float
    score: float


def store_audit(registry: Registry, *, datasets: Sequence[str], pairs: str, params: dict, n_clips: int,
                matches: Sequence[dict]) -> str:
    """One audit and its ``matches`` (dicts of :class:`AuditMatch` columns without ids)."""
    audit_id = new_id()
    with registry.transaction() as session:
        session.add(Audit(id=audit_id, datasets_json=json.dumps(list(datasets)), pairs=pairs,
                          params_json=json.dumps(params, sort_keys=True), n_clips=n_clips, n_matches=len(matches)))
        session.flush()
        if matches:
            session.execute(insert(AuditMatch), [dict(m, id=new_id(), audit_id=audit_id) for m in matches])
    return audit_id


def stored_matches(registry: Registry, datasets: Sequence[str] = ()) -> list[StoredMatch]:
    """Every stored match (one per clip pair, the latest audit's), touching ``datasets`` if given."""
    with registry.transaction() as session:
        names = dict(session.execute(select(Dataset.id, Dataset.name)).all())
        rows = session.execute(select(AuditMatch, Audit.created_at).join(Audit, Audit.id == AuditMatch.audit_id)
                               .order_by(Audit.created_at, AuditMatch.id)).all()
        clip_ids = {i for m, _ in rows for i in (m.clip_a_id, m.clip_b_id)}
        clips = {c.id: c for c in session.scalars(select(Clip).where(Clip.id.in_(list(clip_ids))))} if clip_ids else {}
    latest = {(m.clip_a_id, m.clip_b_id): m for m, _ in rows if m.clip_a_id in clips and m.clip_b_id in clips}
    out = [StoredMatch(names[clips[m.clip_a_id].dataset_id], clips[m.clip_a_id].name,
                       names[clips[m.clip_b_id].dataset_id], clips[m.clip_b_id].name,
                       m.start_a, m.start_b, m.duration, m.score) for m in latest.values()]
    if datasets:
        out = [m for m in out if m.dataset_a in datasets or m.dataset_b in datasets]
    return sorted(out, key=lambda m: (m.dataset_a, m.clip_a, m.dataset_b, m.clip_b))


@dataclass(frozen=True)
class ClipSource:
    id: str
    source: tuple[str, str] | None  # (kind, id)
    overlap_lists: tuple[str, ...]


def split_clips(registry: Registry, dataset_id: str, split: str) -> list[ClipSource]:
    """The clips of one split with where their audio came from."""
    with registry.transaction() as session:
        members = select(SplitMember.clip_id).where(SplitMember.dataset_id == dataset_id, SplitMember.name == split)
        rows = session.execute(select(Clip.id, Clip.source, Clip.source_id, Clip.overlap_lists)
                               .where(Clip.dataset_id == dataset_id, Clip.id.in_(members))).all()
    return [ClipSource(i, (kind, sid) if kind and sid else None, tuple(lists.split(";")) if lists else ())
            for i, kind, sid, lists in rows]


def matched_pairs(registry: Registry, clip_ids: Sequence[str]) -> list[tuple[str, str]]:
    """Stored matches with at least one clip among ``clip_ids``, as (clip a, clip b)."""
    if not clip_ids:
        return []
    ids = list(clip_ids)
    with registry.transaction() as session:
        return [tuple(r) for r in session.execute(select(AuditMatch.clip_a_id, AuditMatch.clip_b_id).where(
            or_(AuditMatch.clip_a_id.in_(ids), AuditMatch.clip_b_id.in_(ids))).distinct()).all()]


@dataclass(frozen=True)
class TrainedOn:
    """A run of a lineage and the split it trained on (``dataset_id`` None: none recorded)."""

    run_id: str
    task: str
    dataset_id: str | None
    dataset_format: str | None
    split: str


def lineage(registry: Registry, run_id: str) -> list[TrainedOn]:
    """What the run and every run it descends from trained on, run first: one entry per
    training dataset of a run (each member of a mixture). The runs it descends from: its
    ``--init-from`` parent, the runs its settings name (initial audio encoder, encoder,
    teacher) and the runs that made its feature sets (``featurize tags --teacher``,
    ``featurize encoded --run``)."""
    with registry.transaction() as session:
        formats = dict(session.execute(select(Dataset.id, Dataset.format)).all())
        order, queue, seen = [], [run_id], {run_id}
        while queue:
            run = session.get(Run, queue.pop(0))
            if run is None:
                continue
            config = json.loads(run.config_json)
            for dataset_id, split in trained_on(session, run.id) or [(run.dataset_id, config.get("train_split"))]:
                order.append(TrainedOn(run.id, run.task, dataset_id, formats.get(dataset_id), str(split or "train")))
            for ancestor in [run.parent_run_id, *(config.get(k) for k in RUN_SETTINGS), *_feature_runs(session, run)]:
                if isinstance(ancestor, str) and ancestor and ancestor not in seen:
                    seen.add(ancestor)
                    queue.append(ancestor)
    return order


def _feature_runs(session, run: Run) -> list[str]:
    ids = [s.get("id") for s in json.loads(run.feature_sets_json or "[]") if isinstance(s, dict)]
    found = []
    for row in session.scalars(select(FeatureSet).where(FeatureSet.id.in_([i for i in ids if i]))):
        kind = catalog.FEATURE_KINDS.get(row.kind)
        params = json.loads(row.spec_json).get("params", {})
        found += [params.get(param) for param, _ in (kind.run_params if kind else ())]
    return found
