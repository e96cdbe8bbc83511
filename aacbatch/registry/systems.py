"""Systems (ensembles chosen by an SQL query) in the registry: read, and written whole.

A system's rows — the system, its members, scores and predictions — are replaced in one
transaction, so a failed or interrupted build leaves the previous version intact.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, or_, select

from aacbatch.errors import NotFoundError
from aacbatch.registry.runs import finite_interval, not_zeroshot, put_provenance
from aacbatch.registry.schema import Prediction, Score, System, SystemMember, utcnow
from aacbatch.registry.store import Registry


@dataclass(frozen=True)
class SystemRows:
    """What a build writes: the definition, members as (run id, rank, weight), per-split scores
    with reasons for NULLs, artifact paths per split and captions per split (clip id → text)."""

    kind: str
    dataset_id: str | None  # the dataset the members were selected and scored on
    query: str
    params: dict
    fingerprint: str
    warnings: list[str]
    members: Sequence[tuple[str, int, float]]
    scores: dict[str, dict[str, float | None]]
    reasons: dict[str, dict[str, str]]
    artifacts: dict[str, Path]
    captions: dict[str, dict[str, str]]
    intervals: dict[str, dict[str, tuple[float, float, float]]] = field(default_factory=dict)  # split → metric →
    provenance: dict[str, dict[str, dict]] = field(default_factory=dict)  # split → metric → record


def find_system(registry: Registry, name: str) -> System | None:
    with registry.transaction() as session:
        return session.scalar(select(System).where(System.name == name))


def system_by_name(registry: Registry, name: str) -> System:
    with registry.transaction() as session:
        system = session.scalar(select(System).where(System.name == name))
        if system is None:
            known = ", ".join(session.scalars(select(System.name).order_by(System.name))) or "none yet"
            raise NotFoundError(f"unknown system {name!r} (known: {known}): build it with `aacbatch system build {name}`")
        return system


def members_of(registry: Registry, system: System) -> list[tuple[str, float]]:
    """(run id, weight) of each member in rank order."""
    with registry.transaction() as session:
        return [(r, float(w)) for r, w in session.execute(
            select(SystemMember.run_id, SystemMember.weight).where(SystemMember.system_id == system.id)
            .order_by(SystemMember.rank)).all()]


def stored_scores(registry: Registry, system_id: str, dataset_id: str | None = None) -> tuple[dict, dict]:
    """Final scores and reasons of a system on ``dataset_id`` (default: the dataset it was
    built on): split → metric → value / reason."""
    scores: dict[str, dict] = {}
    reasons: dict[str, dict] = {}
    with registry.transaction() as session:
        if dataset_id is None:
            dataset_id = session.get(System, system_id).dataset_id
        on = or_(Score.dataset_id == dataset_id, Score.dataset_id.is_(None)) if dataset_id else Score.dataset_id.is_(None)
        for row in session.scalars(select(Score).where(Score.system_id == system_id, Score.epoch.is_(None), on)):
            scores.setdefault(row.split, {})[row.metric] = row.value
            if row.reason:
                reasons.setdefault(row.split, {})[row.metric] = row.reason
    return scores, reasons


def system_predictions(registry: Registry, system_id: str, kind: str, split: str,
                       dataset_id: str | None) -> list[Prediction]:
    """A system's predictions of ``kind`` (captions, or its similarity artifact) on a split of
    ``dataset_id`` (rows written before datasets were recorded count as its own dataset's)."""
    with registry.transaction() as session:
        system = session.get(System, system_id)
        on = Prediction.dataset_id == dataset_id
        if dataset_id == system.dataset_id:
            on = or_(on, Prediction.dataset_id.is_(None))
        rows = session.scalars(select(Prediction).where(Prediction.system_id == system_id, Prediction.kind == kind,
                                                        Prediction.split == split, on)).all()
    return [registry.resolved(p, "artifact_path") for p in rows]


def artifacts_present(registry: Registry, system_id: str) -> bool:
    with registry.transaction() as session:
        paths = session.scalars(select(Prediction.artifact_path).where(Prediction.system_id == system_id,
                                                                       Prediction.artifact_path.is_not(None))).all()
    return all(Path(registry.real_path(p)).is_file() for p in paths)


def _add_scores(session, system_id: str, dataset_id: str | None, split: str, metrics: dict, reasons: dict,
                intervals: dict, provenance: dict) -> None:
    provenance_ids = put_provenance(session, provenance)
    for metric, value in metrics.items():
        reason = None if value is not None else (reasons.get(metric) or "the evaluation gave no value and no reason")
        low, high, level = finite_interval(intervals.get(metric))
        session.add(Score(system_id=system_id, dataset_id=dataset_id, split=split, metric=metric, value=value,
                          reason=reason, ci_low=low, ci_high=high, ci_level=level,
                          provenance_id=provenance_ids.get(metric)))


def put_system_scores(registry: Registry, system_id: str, dataset_id: str, scores: dict[str, dict],
                      reasons: dict[str, dict[str, str]], artifacts: dict[str, Path],
                      captions: dict[str, dict[str, str]], intervals: dict | None = None,
                      provenance: dict | None = None) -> None:
    """Scores (and similarity matrices or captions) of an existing system on ``dataset_id``,
    replacing earlier ones of the same splits, in one transaction; its members stay."""
    with registry.transaction() as session:
        for split in scores:
            session.execute(delete(Score).where(Score.system_id == system_id, Score.dataset_id == dataset_id,
                                                Score.split == split, not_zeroshot(Score.metric)))
            session.execute(delete(Prediction).where(Prediction.system_id == system_id,
                                                     Prediction.dataset_id == dataset_id, Prediction.split == split))
            _add_scores(session, system_id, dataset_id, split, scores[split], reasons.get(split, {}),
                        (intervals or {}).get(split, {}), (provenance or {}).get(split, {}))
            if split in artifacts:
                session.add(Prediction(system_id=system_id, dataset_id=dataset_id, split=split, kind="similarity",
                                       artifact_path=registry.stored_path(artifacts[split])))
            session.add_all(Prediction(system_id=system_id, dataset_id=dataset_id, split=split, kind="caption",
                                       clip_id=clip_id, text=text) for clip_id, text in captions.get(split, {}).items())


def write_system(registry: Registry, name: str, rows: SystemRows) -> tuple[str, str]:
    """All rows of the system in one transaction; a rebuilt system keeps its id and row.
    Returns (system id, "created" or "replaced")."""
    with registry.transaction() as session:
        system = session.scalar(select(System).where(System.name == name))
        status = "replaced" if system is not None else "created"
        if system is None:
            system = System(name=name)
            session.add(system)
        else:
            for table in (SystemMember, Score, Prediction):
                session.execute(delete(table).where(table.system_id == system.id))
        system.kind, system.query_text, system.fingerprint = rows.kind, rows.query, rows.fingerprint
        system.dataset_id = rows.dataset_id
        system.params_json = json.dumps(rows.params, sort_keys=True)
        system.warnings = "\n".join(rows.warnings) or None
        system.created_at = utcnow()
        session.flush()
        session.add_all(SystemMember(system_id=system.id, run_id=run_id, rank=rank, weight=weight)
                        for run_id, rank, weight in rows.members)
        for split, metrics in rows.scores.items():
            _add_scores(session, system.id, rows.dataset_id, split, metrics, rows.reasons.get(split, {}),
                        rows.intervals.get(split, {}), rows.provenance.get(split, {}))
        for split, path in rows.artifacts.items():
            session.add(Prediction(system_id=system.id, dataset_id=rows.dataset_id, split=split, kind="similarity",
                                   artifact_path=registry.stored_path(path)))
        for split, captions in rows.captions.items():
            session.add_all(Prediction(system_id=system.id, dataset_id=rows.dataset_id, split=split, kind="caption",
                                       clip_id=clip_id, text=text)
                            for clip_id, text in captions.items())
        return system.id, status
