"""Runs in the registry: the one run-id resolver, a run's rows (scores, predictions,
checkpoints, status) and the lookups other layers need.

Every option that takes a run (``--run``, ``--from-run``, ``--init-from``, ``--resume``,
``teacher=``, ``audio_init=``, ``--caption-run``) goes through :func:`get_run`, so the
8-character prefixes that every command prints work everywhere. Each write is its own short
transaction, so a long training run never holds the registry and other processes
(featurize shards, other runs, queries) interleave freely.
"""

from __future__ import annotations

import json
import math
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import and_, delete, or_, select, update

from aacbatch.errors import InputError, NotFoundError
from aacbatch.hashing import fingerprint
from aacbatch.registry.mixtures import UsedDataset, put_run_datasets
from aacbatch.registry.schema import Checkpoint, Prediction, ProvenanceRecord, Run, Score, new_id, utcnow
from aacbatch.registry.store import Registry
from aacbatch.resources import code_revision

MIN_PREFIX = 4  # shorter prefixes match too much to be what a user meant
LIST_RUNS = "`aacbatch sql \"SELECT id, task, status FROM runs\"`"
# Zero-shot scores share (run or system, dataset, split) with the retrieval scores of the same
# clips but come from their own command, so re-scoring either leaves the other's rows alone.
ZEROSHOT_PREFIX = "zeroshot/"


def find_run(session, ref: str) -> Run:
    """The run whose id is ``ref`` or starts with it (a unique prefix of ≥ 4 characters)."""
    ref = ref.strip()
    run = session.get(Run, ref)
    if run is not None:
        return run
    matches = session.scalars(select(Run).where(Run.id.like(f"{ref}%")).order_by(Run.started_at, Run.id)
                              .limit(6)).all() if len(ref) >= MIN_PREFIX and "%" not in ref and "_" not in ref else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(f"{m.id} ({m.task})" for m in matches[:5])
        raise InputError(f"run id prefix {ref!r} is ambiguous: it matches {shown}"
                         f"{' and more' if len(matches) > 5 else ''}; give more characters")
    raise NotFoundError(f"unknown run id {ref!r}: list runs with {LIST_RUNS}")


def get_run(registry: Registry, ref: str) -> Run:
    """:func:`find_run` in its own transaction (the row is detached and safe to read after)."""
    with registry.transaction() as session:
        return find_run(session, ref)


def runs_by_id(registry: Registry, ids: Sequence[str]) -> dict[str, Run]:
    with registry.transaction() as session:
        return {r.id: r for r in session.scalars(select(Run).where(Run.id.in_(list(ids))))}


def best_checkpoint(registry: Registry, ref: str, tasks: Sequence[str], what: str = "run") -> tuple[Run, Path]:
    """The run ``ref`` (full id or prefix) and its best checkpoint file.

    The run's task must be one of ``tasks`` and the file must exist; ``what`` names the role
    in the error (e.g. "encoder run")."""
    with registry.transaction() as session:
        run = find_run(session, ref)
        best = session.scalar(select(Checkpoint.path).where(Checkpoint.run_id == run.id, Checkpoint.is_best))
    best = registry.real_path(best) if best is not None else None
    if run.task not in tasks:
        raise InputError(f"run {run.id} is a {run.task} run; expected {' or '.join(tasks)} (as the {what})")
    if best is None or not Path(best).is_file():
        raise InputError(f"run {run.id} ({run.status}) has no best checkpoint on disk ({best}): did it finish?")
    return run, Path(best)


def checkpoint_file(registry: Registry, ref: str, tasks: Sequence[str], what: str = "run") -> tuple[str | None, Path]:
    """``ref`` as an existing checkpoint file (run id None), or a run's best checkpoint."""
    path = Path(ref)
    if path.is_file():
        return None, path
    try:
        run, best = best_checkpoint(registry, ref, tasks, what)
    except NotFoundError:
        raise InputError(f"{ref!r} is neither a checkpoint file nor a registered run id") from None
    return run.id, best


def exact_ref(registry: Registry, ref: str, tasks: Sequence[str], what: str = "run") -> str:
    """A run reference made exact before it is recorded or fingerprinted: a checkpoint file
    stays as given, a run id or unique prefix becomes the full id of a run of ``tasks``."""
    run_id, _ = checkpoint_file(registry, ref, tasks, what) if ref else (None, None)
    return run_id or ref


def best_checkpoints(registry: Registry, ids: Sequence[str]) -> dict[str, Checkpoint]:
    with registry.transaction() as session:
        rows = session.scalars(select(Checkpoint).where(Checkpoint.run_id.in_(list(ids)), Checkpoint.is_best)).all()
    return {c.run_id: registry.resolved(c) for c in rows}


def artifacts(registry: Registry, ids: Sequence[str], kind: str, splits: Sequence[str],
              dataset_id: str | None = None) -> dict[tuple[str, str], Prediction]:
    """Split-level artifact rows (e.g. ``similarity`` matrices) of runs on ``dataset_id``
    (default: each run's own dataset), by (run id, split)."""
    with registry.transaction() as session:
        rows = session.scalars(select(Prediction).where(
            Prediction.run_id.in_(list(ids)), Prediction.kind == kind, Prediction.split.in_(list(splits)),
            _on_dataset(Prediction.dataset_id, Prediction.run_id, dataset_id))).all()
    return {(p.run_id, p.split): registry.resolved(p, "artifact_path") for p in rows}


def run_captions(registry: Registry, run_id: str, split: str, dataset_id: str | None = None) -> dict[str, str]:
    """A run's generated captions (clip id → text) on a split of ``dataset_id`` (default: its own)."""
    with registry.transaction() as session:
        rows = session.execute(select(Prediction.clip_id, Prediction.text).where(
            Prediction.run_id == run_id, Prediction.kind == "caption", Prediction.split == split,
            _on_dataset(Prediction.dataset_id, Prediction.run_id, dataset_id))).all()
    return dict(rows)


def find_finished(registry: Registry, task: str, config: dict, feature_sets: list[dict],
                  parent_run_id: str | None, ignore: tuple[str, ...] = ()) -> Run | None:
    """A finished run with exactly this task, config (but the ``ignore`` keys), inputs and
    parent (for ``--reuse``)."""
    def kept(c: dict) -> str:
        return json.dumps({k: v for k, v in c.items() if k not in ignore}, sort_keys=True)

    want = kept(config), json.dumps(feature_sets, sort_keys=True)
    with registry.transaction() as session:
        for run in session.scalars(select(Run).where(Run.task == task, Run.status == "finished")
                                   .order_by(Run.started_at.desc())):
            have = (kept(json.loads(run.config_json)),
                    json.dumps(json.loads(run.feature_sets_json), sort_keys=True))
            if have == want and run.parent_run_id == parent_run_id:
                return run
    return None


def not_zeroshot(metric):
    """Rows other than zero-shot scores (see :data:`ZEROSHOT_PREFIX`)."""
    return ~metric.startswith(ZEROSHOT_PREFIX, autoescape=True)


def _on_dataset(row_dataset, row_run, dataset_id: str | None):
    """Rows on ``dataset_id`` — by default, on the dataset their run was trained on. A row
    without a dataset (written before rows recorded it) is on its run's dataset."""
    own = select(Run.dataset_id).where(Run.id == row_run).scalar_subquery()
    if dataset_id is None:
        return or_(row_dataset == own, row_dataset.is_(None))
    return or_(row_dataset == dataset_id, and_(row_dataset.is_(None), own == dataset_id))


def final_scores(registry: Registry, run_id: str, dataset_id: str | None = None) -> dict[str, dict[str, float | None]]:
    """A run's final scores on ``dataset_id`` (default: its own dataset): split → metric → value."""
    with registry.transaction() as session:
        rows = session.execute(select(Score.split, Score.metric, Score.value).where(
            Score.run_id == run_id, Score.epoch.is_(None), _on_dataset(Score.dataset_id, Score.run_id, dataset_id))).all()
    out: dict[str, dict] = {}
    for split, metric, value in rows:
        out.setdefault(split, {})[metric] = value
    return out


def final_reasons(registry: Registry, run_id: str, split: str, dataset_id: str | None = None) -> dict[str, str]:
    """Why each NULL final metric of a run on a split is NULL (e.g. a missing SPICE asset)."""
    with registry.transaction() as session:
        rows = session.execute(select(Score.metric, Score.reason).where(
            Score.run_id == run_id, Score.split == split, Score.epoch.is_(None), Score.value.is_(None),
            _on_dataset(Score.dataset_id, Score.run_id, dataset_id))).all()
    return dict(rows)


@dataclass(frozen=True)
class SplitResult:
    """A final evaluation of one split: metrics (None = not computable), why, the generated
    captions (clip id → text) for captioning tasks, saved artifacts (kind → path), each
    metric's bootstrap interval (low, high, level) and provenance record."""

    metrics: dict[str, float | None]
    reasons: dict[str, str] = field(default_factory=dict)
    captions: dict[str, str] | None = None
    artifacts: dict[str, Path] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    provenance: dict[str, dict] = field(default_factory=dict)


def seed_group_of(task: str, dataset_id: str | None, config: dict, feature_sets: list[dict],
                  parent_group: str | None) -> str:
    """What runs that differ only in their seed share: task, dataset, config but ``seed``, the
    fingerprints of their inputs and their parent's group (seeds of a fine-tune from seeds of a
    pretrain form one group)."""
    return fingerprint(task, dataset_id, {k: v for k, v in config.items() if k != "seed"},
                       sorted(s.get("fingerprint", "") for s in feature_sets), parent_group)


def finite_interval(interval: tuple[float, float, float] | None) -> tuple:
    """(low, high, level) to store, or NULLs when there is none or it is not a number."""
    if interval is None or not all(math.isfinite(v) for v in interval):
        return None, None, None
    return tuple(float(v) for v in interval)


def put_provenance(session, records: dict[str, dict]) -> dict[str, str]:
    """Metric → provenance id, inserting the records not stored yet."""
    ids = {metric: fingerprint(record) for metric, record in records.items()}
    known = set(session.scalars(select(ProvenanceRecord.id).where(ProvenanceRecord.id.in_(list(set(ids.values()))))))
    for metric, record_id in ids.items():
        if record_id not in known:
            session.add(ProvenanceRecord(id=record_id, record_json=json.dumps(records[metric], sort_keys=True)))
            known.add(record_id)
    return ids


class RunRecorder:
    """Registry writes of one run; scores and predictions are on ``dataset_id`` (by default
    the dataset the run was trained on)."""

    def __init__(self, registry: Registry, run_id: str, dataset_id: str | None = None):
        self.registry = registry
        self.run_id = run_id
        self._dataset_id = dataset_id

    @property
    def dataset_id(self) -> str | None:
        if self._dataset_id is None:
            self._dataset_id = get_run(self.registry, self.run_id).dataset_id
        return self._dataset_id

    @classmethod
    def start(cls, registry: Registry, *, task: str, config: dict, dataset_id: str | None, parent_run_id: str | None,
              feature_sets: list[dict], seed: int, random_weights: bool, mixture_id: str | None = None,
              datasets: Sequence[UsedDataset] = ()) -> "RunRecorder":
        """A new ``running`` run row, with the datasets it reads (``run_datasets``)."""
        run_id, revision = new_id(), code_revision()  # outside the transaction: never hold the lock for git
        with registry.transaction() as session:
            parent = session.get(Run, parent_run_id) if parent_run_id else None
            group = seed_group_of(task, dataset_id, config, feature_sets, parent.seed_group if parent else None)
            session.add(Run(id=run_id, task=task, dataset_id=dataset_id, parent_run_id=parent_run_id,
                            config_json=json.dumps(config), feature_sets_json=json.dumps(feature_sets), seed=seed,
                            status="running", random_weights=random_weights, host=socket.gethostname(),
                            git_rev=revision, seed_group=group, mixture_id=mixture_id))
            put_run_datasets(session, run_id, datasets)
        return cls(registry, run_id, dataset_id)

    def scores(self, split: str, metrics: dict[str, float | None], epoch: int | None,
               reasons: dict[str, str] | None = None) -> None:
        """Store one evaluation's metrics, replacing earlier rows of the same split and epoch
        (a resumed run repeats the epoch it was interrupted in; re-scoring replaces final rows)."""
        with self.registry.transaction() as session:
            self._put_scores(session, split, metrics, epoch, reasons or {})

    def final(self, results: dict[str, SplitResult]) -> None:
        """Final scores, captions and artifacts of every split, in one transaction: a failure
        while scoring any split leaves none of them half-recorded."""
        with self.registry.transaction() as session:
            for split, result in results.items():
                self._put_scores(session, split, result.metrics, None, result.reasons, result.intervals,
                                 put_provenance(session, result.provenance))
                if result.captions is not None:
                    self._replace_predictions(session, split, "caption")
                    session.add_all(Prediction(run_id=self.run_id, dataset_id=self.dataset_id, split=split,
                                               kind="caption", clip_id=clip_id, text=text)
                                    for clip_id, text in result.captions.items())
                for kind, path in result.artifacts.items():
                    self._replace_predictions(session, split, kind)
                    session.add(Prediction(run_id=self.run_id, dataset_id=self.dataset_id, split=split, kind=kind,
                                           artifact_path=self.registry.stored_path(path)))

    def _put_scores(self, session, split: str, metrics: dict, epoch: int | None, reasons: dict[str, str],
                    intervals: dict | None = None, provenance_ids: dict | None = None) -> None:
        same_epoch = Score.epoch.is_(None) if epoch is None else Score.epoch == epoch
        dataset_id = self.dataset_id
        session.execute(delete(Score).where(Score.run_id == self.run_id, Score.split == split, same_epoch,
                                            _on_dataset(Score.dataset_id, Score.run_id, dataset_id),
                                            not_zeroshot(Score.metric)))
        for metric, value in metrics.items():
            low, high, level = finite_interval((intervals or {}).get(metric))
            session.add(Score(run_id=self.run_id, dataset_id=dataset_id, split=split, metric=metric, value=value,
                              reason=reasons.get(metric) if value is None else None, epoch=epoch, ci_low=low,
                              ci_high=high, ci_level=level, provenance_id=(provenance_ids or {}).get(metric)))

    def _replace_predictions(self, session, split: str, kind: str) -> None:
        session.execute(delete(Prediction).where(Prediction.run_id == self.run_id, Prediction.split == split,
                                                 Prediction.kind == kind,
                                                 _on_dataset(Prediction.dataset_id, Prediction.run_id, self.dataset_id)))

    def checkpoint(self, path: Path, epoch: int, step: int, is_best: bool) -> None:
        stored = self.registry.stored_path(path)
        with self.registry.transaction() as session:
            row = session.scalar(select(Checkpoint).where(Checkpoint.run_id == self.run_id, Checkpoint.path == stored))
            if is_best:
                session.execute(update(Checkpoint).where(Checkpoint.run_id == self.run_id).values(is_best=False))
            if row is None:
                session.add(Checkpoint(run_id=self.run_id, epoch=epoch, step=step, path=stored, is_best=is_best))
            else:
                row.epoch, row.step, row.is_best, row.created_at = epoch, step, is_best, utcnow()

    def status(self, status: str, error: str | None = None) -> None:
        with self.registry.transaction() as session:
            run = session.get(Run, self.run_id)
            run.status = status
            run.error = error
            run.finished_at = utcnow() if status in ("finished", "failed") else None


class NullRecorder(RunRecorder):
    """What ranks other than 0 record under DDP: nothing (rank 0 writes the registry)."""

    def __init__(self, run_id: str):
        self.registry = None
        self.run_id = run_id

    def scores(self, *args, **kwargs) -> None:
        pass

    def final(self, *args, **kwargs) -> None:
        pass

    def checkpoint(self, *args, **kwargs) -> None:
        pass

    def status(self, *args, **kwargs) -> None:
        pass
