"""``aacbatch train``: build a task from its catalog entry and config, register the run, run the loop.

Resume (``--resume RUN_ID``) rebuilds the task from the config stored with the run and
continues from its last checkpoint; ``--init-from RUN_ID`` starts from another run's best
weights — refusing a parent whose architecture would leave this model partly initialised —
and records it as the parent. Every run reference takes a full id or a unique prefix.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from aacbatch import catalog
from aacbatch.catalog import TaskInfo
from aacbatch.data.corpus import Corpus, resolve_corpus
from aacbatch.device import current, for_run
from aacbatch.errors import InputError, first_line
from aacbatch.models.checkpoints import init_from_state, read_checkpoint
from aacbatch.registry.datasets import get_dataset
from aacbatch.registry.mixtures import UsedDataset, mixture_id
from aacbatch.registry.runs import (NullRecorder, RunRecorder, best_checkpoint, exact_ref, final_scores,
                                    find_finished, get_run)
from aacbatch.registry.schema import Run
from aacbatch.registry.store import Registry
from aacbatch.train import distributed
from aacbatch.train.config import EXECUTION_FIELDS, as_dict, load_config
from aacbatch.train.loop import LoopConfig, score_splits, seed_everything, train
from aacbatch.train.task import ClosedFormTask, Task


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    task: str
    final: dict[str, dict]
    run_dir: Path


@dataclass(frozen=True)
class Rebuilt:
    """A registered run's task, rebuilt from its stored config with unchanged inputs."""

    run: Run
    info: TaskInfo
    dataset: str  # the dataset it is validated and scored on
    cfg: object
    task: Task


def run_dir_for(registry: Registry, run_id: str) -> Path:
    return Path(registry.settings.home) / "runs" / run_id


def build_task(registry: Registry, info: TaskInfo, corpus: Corpus, cfg) -> Task:
    seed_everything(cfg.seed)
    return info.task_class()(registry, corpus, info, cfg)


def train_task(registry: Registry, task: str | None, *, dataset: str | None = None, config: str | None = None,
               sets: tuple[str, ...] = (), seed: int | None = None, init_from: str | None = None,
               resume: str | None = None, reuse: bool = False, val_dataset: str | None = None,
               weights: tuple[float, ...] = (), log: Callable[[str], None] = print) -> TrainResult:
    """A new run of ``task`` on ``dataset`` — one dataset, ``a,b,…`` or a mixture's name (with
    per-dataset ``weights``, validated on ``val_dataset``) — or, with ``resume``, a run continued."""
    if resume is not None:
        return _resume(registry, resume, log)
    info = catalog.task(task)
    if dataset is None:
        raise InputError("--dataset is required for a new run")
    if init_from is not None and info.closed_form:
        raise InputError(f"--init-from does not apply to the closed-form task {task!r}")
    cfg = load_config(info.task_class().Config, config, list(sets) + ([f"seed={seed}"] if seed is not None else []))
    rank, size = distributed.init_from_env(_run_device(cfg))
    if size > 1 and not info.ddp:
        raise InputError(f"task {task!r} does not support distributed training; run it as one process")
    if rank != 0:
        log = _silent
    corpus = resolve_corpus(registry, dataset, val_dataset, weights)
    if corpus.mixed and not info.mixtures:
        raise InputError(f"task {task!r} trains on one dataset; several datasets or a mixture are for "
                         f"{', '.join(t for t, i in catalog.TASKS.items() if i.mixtures)} runs")
    cfg = _exact_runs(registry, cfg)
    parent = _parent(registry, info, init_from)
    built = build_task(registry, info, corpus, cfg)
    if parent is not None:
        _init_from(built, parent, cfg, log)
    config_record = {"dataset": corpus.val_dataset, **_corpus_field(corpus), **built.record(), **as_dict(cfg)}
    inputs = built.inputs()
    lineage = [s.lineage() for s in inputs]
    parent_id = parent.run_id if parent is not None else None
    if reuse:
        done = find_finished(registry, task, config_record, lineage, parent_id, ignore=EXECUTION_FIELDS)
        if done is not None:
            log(f"reusing finished run {done.id} ({task} on {corpus.label}, same config and inputs)")
            return TrainResult(done.id, task, final_scores(registry, done.id), run_dir_for(registry, done.id))
    if rank == 0:
        recorder = RunRecorder.start(registry, task=task, config=config_record,
                                     dataset_id=get_dataset(registry, corpus.val_dataset).id,
                                     parent_run_id=parent_id, feature_sets=lineage, seed=cfg.seed,
                                     random_weights=any(s.random_weights for s in inputs),
                                     mixture_id=mixture_id(registry, corpus.mixture) if corpus.mixture else None,
                                     datasets=_used_datasets(registry, built, cfg))
        log(f"run {recorder.run_id} ({task} on {corpus.label}){f' on {size} processes' if size > 1 else ''}")
        for name, (n, left_out) in built.member_counts.items():
            if corpus.mixed and left_out:
                log(f"  {name}: {n} examples; {left_out} clip(s) left out as copies of an earlier member's")
    run_id = distributed.broadcast(recorder.run_id if rank == 0 else None)
    if rank != 0:
        recorder = NullRecorder(run_id)
    return _run(registry, recorder, built, cfg, parent_id, None, log)


def _corpus_field(corpus: Corpus) -> dict:
    """The stored config's ``corpus`` entry: only for a mixture, so one-dataset configs (and
    ``--reuse`` of runs made before mixtures existed) are as they were."""
    record = corpus.record()
    return {"corpus": record} if record is not None else {}


def _used_datasets(registry: Registry, task: Task, cfg) -> list[UsedDataset]:
    """The ``run_datasets`` rows of a new run: each training member, then the val dataset."""
    train_split, val_split = getattr(cfg, "train_split", "train"), getattr(cfg, "val_split", "val")
    used = []
    for k, member in enumerate(task.corpus.members):
        n, left_out = task.member_counts.get(member.dataset, (None, None))
        used.append(UsedDataset(member.dataset, "train", k, train_split, get_dataset(registry, member.dataset).fingerprint,
                                member.weight, n, left_out))
    val = task.corpus.val_dataset
    return used + [UsedDataset(val, "val", 0, val_split, get_dataset(registry, val).fingerprint)]


def _exact_runs(registry: Registry, cfg):
    """The config with every run it names (``RUN_FIELDS``, e.g. ``audio_init``) as a full id,
    so the run records — and ``--reuse`` compares — exactly which run it used."""
    exact = {name: exact_ref(registry, getattr(cfg, name), catalog.tasks_where(**{role: True}), f"run given as {name}=")
             for name, role in getattr(cfg, "RUN_FIELDS", {}).items()}
    return dataclasses.replace(cfg, **exact)


def _parent(registry: Registry, info: TaskInfo, ref: str | None):
    """The ``--init-from`` run's best checkpoint, read, checked to be a run this task may start from."""
    if ref is None:
        return None
    _, path = best_checkpoint(registry, ref, catalog.init_parents(info.name), f"--init-from parent of a {info.name} run")
    return read_checkpoint(path)


def _init_from(task: Task, parent, cfg, log) -> None:
    task.check_parent(parent)
    report = init_from_state(task.model, parent, allow_partial=cfg.init_partial)
    unloaded = report.missing + report.mismatched
    if unloaded:
        log(f"warning: --init-from {parent.run_id}: {len(unloaded)} parameter(s) not loaded (init_partial): "
            f"{', '.join(unloaded[:5])}{', ...' if len(unloaded) > 5 else ''}")


def _run_device(cfg) -> torch.device:
    """The device a run trains on: its config's, or the process's (closed-form tasks: the CPU)."""
    return for_run(getattr(cfg, "device", "cpu"))


def _place(task: Task, cfg) -> None:
    """Move the model to the run's device (before the optimiser sees its parameters); under
    DDP on GPUs, optionally with BatchNorm synchronised across ranks."""
    device = _run_device(cfg)
    if cfg.sync_bn and distributed.world()[1] > 1:
        if device.type != "cuda":
            raise InputError("sync_bn needs GPUs (NCCL): on CPUs each rank keeps its own BatchNorm statistics; "
                             "drop --set sync_bn=true")
        task.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(task.model)
    task.model.to(device)


def _run(registry, recorder, task: Task, cfg, parent_id, resume_from, log) -> TrainResult:
    run_dir = run_dir_for(registry, recorder.run_id)
    try:
        if isinstance(task, ClosedFormTask):
            final = task.fit(recorder, run_dir)
        else:
            _place(task, cfg)
            loop_cfg = LoopConfig(epochs=cfg.epochs, lr=cfg.lr, warmup_epochs=cfg.warmup_epochs,
                                  weight_decay=cfg.weight_decay, grad_clip=cfg.grad_clip, seed=cfg.seed,
                                  val_split=cfg.val_split, select_metric=cfg.select_metric or task.info.select_metric,
                                  eval_splits=tuple(cfg.eval_splits), train_split=cfg.train_split,
                                  batch_size=cfg.batch_size, amp=cfg.amp, loader_workers=cfg.loader_workers,
                                  prefetch_batches=cfg.prefetch_batches)
            lineage = {"run_id": recorder.run_id, "task": task.name, "dataset": task.dataset,
                       "config": {**as_dict(cfg), **_corpus_field(task.corpus)},
                       "feature_sets": [s.lineage() for s in task.inputs()], "parent_run_id": parent_id}
            final = train(task, loop_cfg, recorder, run_dir, lineage, resume_from=resume_from, log=log)
    except BaseException as exc:
        recorder.status("failed", _reason(exc))
        raise
    return TrainResult(recorder.run_id, task.name, final, run_dir)


def _silent(_: str) -> None:
    """Log sink of ranks other than 0."""


def _reason(exc: BaseException) -> str:
    """Why a run failed, as ``runs.error`` keeps it: the exception's type and first line."""
    return f"{type(exc).__name__}: {first_line(exc)}" if str(exc).strip() else type(exc).__name__


def rebuild(registry: Registry, run_id: str) -> Rebuilt:
    """A run's task rebuilt from its stored config, checking its inputs did not change."""
    run = get_run(registry, run_id)
    info = catalog.task(run.task)
    stored = json.loads(run.config_json)
    dataset = stored.pop("dataset")
    corpus = Corpus.from_record(stored.pop("corpus", None), dataset)
    cls = info.task_class()
    here = {"device": "auto"} if "device" in _fields(cls.Config) else {}  # where it runs now, not where it ran
    cfg = load_config(cls.Config, base={**{k: v for k, v in stored.items() if k in _fields(cls.Config)}, **here})
    built = build_task(registry, info, corpus, cfg)
    recorded = {s["id"]: s["fingerprint"] for s in json.loads(run.feature_sets_json)}
    changed = sorted({s.name for s in built.inputs() if recorded.get(s.id) != s.fingerprint})
    if changed:
        raise InputError(f"feature set(s) {', '.join(changed)} changed since run {run.id} was trained")
    saved = run_dir_for(registry, run.id) / "last.pt"
    if not info.closed_form and saved.is_file():
        built.check_saved(read_checkpoint(saved), "the training captions changed since it was trained")
    return Rebuilt(run, info, dataset, cfg, built)


def _fields(config_cls) -> set[str]:
    return set(config_cls.__dataclass_fields__)


def _resume(registry: Registry, run_id: str, log) -> TrainResult:
    run = get_run(registry, run_id)
    last = run_dir_for(registry, run.id) / "last.pt"
    if run.status == "finished":
        raise InputError(f"run {run.id} already finished; start a new run (e.g. --init-from {run.id}) instead")
    if catalog.task(run.task).closed_form:
        raise InputError(f"run {run.id} is a closed-form {run.task} run: start it again instead of resuming")
    if not last.is_file():
        raise InputError(f"run {run.id} has no checkpoint at {last} yet: start it again instead of resuming")
    rebuilt = rebuild(registry, run.id)
    recorder = RunRecorder(registry, run.id)
    return _run(registry, recorder, rebuilt.task, rebuilt.cfg, run.parent_run_id, last, log)


def evaluate_run(registry: Registry, run_id: str, splits: tuple[str, ...],
                 outputs: tuple[str, ...] = catalog.OUTPUTS) -> dict[str, dict]:
    """Re-score a finished run's best checkpoint on ``splits`` (``aacbatch evaluate``);
    ``outputs`` (e.g. ("caption",)) limits which kinds of run the command accepts."""
    run = get_run(registry, run_id)
    info = catalog.task(run.task)
    if info.output not in outputs:
        accepted = ", ".join(t for o in outputs for t in catalog.tasks_where(output=o) if not catalog.task(t).closed_form)
        raise InputError(f"run {run.id} is a {run.task} run; this command evaluates {accepted} runs")
    if info.closed_form:
        raise InputError(f"run {run.id} is a {run.task} run: its scores are computed when it is fitted")
    rebuilt = rebuild(registry, run.id)
    _, path = best_checkpoint(registry, run.id, (run.task,))
    rebuilt.task.model.load_state_dict(read_checkpoint(path).state)
    rebuilt.task.model.to(current())
    return score_splits(rebuilt.task, RunRecorder(registry, run.id), run_dir_for(registry, run.id), splits)
