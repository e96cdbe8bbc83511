"""``aacbatch train``: build a task from its config, register the run, run the loop.

Resume (``--resume RUN_ID``) rebuilds the task from the config stored with the run and
continues from its last checkpoint; ``--init-from RUN_ID`` starts from another run's best
weights and records it as the parent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from aacbatch.data.register import dataset_by_name
from aacbatch.errors import InputError
from aacbatch.registry.lookup import checkpoint_of
from aacbatch.registry.store import Registry
from aacbatch.train.config import as_dict, load_config
from aacbatch.featurize.sets import cached_set
from aacbatch.train.loop import LoopConfig, seed_everything, train
from aacbatch.train import distributed
from aacbatch.train.runs import NullRecorder, RunRecorder, final_scores, find_finished, get_run


@dataclass(frozen=True)
class TaskSpec:
    config_cls: type
    build: Callable  # (registry, dataset, cfg) -> (task, [CachedSet])
    select_metric: str
    fit: Callable | None = None  # closed-form tasks: (registry, dataset, cfg, built, recorder, run_dir) -> final


def _tagger(registry, dataset, cfg):
    from aacbatch.train.tagger import TaggerTask

    mel = cached_set(registry, dataset, cfg.mel)
    return TaggerTask(registry, dataset, cfg, mel), [mel]


def _retrieval(task):
    def build(registry, dataset, cfg):
        from aacbatch.train.retrieval import RetrievalTask

        built = RetrievalTask(registry, dataset, task, cfg)
        return built, list(built.sets.values())
    return build


def _caption(registry, dataset, cfg):
    from aacbatch.train.caption import CaptionTask

    built = CaptionTask(registry, dataset, cfg)
    return built, [built.encoded]


def _bow(registry, dataset, cfg):
    mel = cached_set(registry, dataset, cfg.mel)
    return mel, [mel]


def _fit_bow(registry, dataset, cfg, built, recorder, run_dir):
    from aacbatch.train.bow import fit_bow

    return fit_bow(registry, dataset, cfg, built, recorder, run_dir)


def _fit_frequent_caption(registry, dataset, cfg, _built, recorder, run_dir):
    from aacbatch.train.frequent_caption import fit_frequent_caption

    return fit_frequent_caption(registry, dataset, cfg, recorder, run_dir)


def _tasks() -> dict[str, TaskSpec]:
    from aacbatch.train.bow import BowConfig
    from aacbatch.train.caption import CaptionConfig
    from aacbatch.train.frequent_caption import FrequentCaptionConfig
    from aacbatch.train.retrieval import RETRIEVAL_TASKS, RetrievalConfig
    from aacbatch.train.tagger import TaggerConfig

    return {
        "tagger": TaskSpec(TaggerConfig, _tagger, "mAP"),
        "bow": TaskSpec(BowConfig, _bow, "t2a/mAP@10", fit=_fit_bow),
        "frequent_caption": TaskSpec(FrequentCaptionConfig, lambda registry, dataset, cfg: (None, []), "cider_d",
                                     fit=_fit_frequent_caption),
        **{t: TaskSpec(RetrievalConfig, _retrieval(t), "t2a/mAP@10") for t in RETRIEVAL_TASKS},
        "caption": TaskSpec(CaptionConfig, _caption, "cider_d"),
    }


TASKS = ("tagger", "bow", "clap", "clap_tag", "claip", "claip_tag", "caption", "frequent_caption")
RETRIEVAL = TASKS[2:6]
DDP_TASKS = RETRIEVAL  # their losses gather embeddings across ranks (aacbatch.train.distributed)
# Which runs a task may start from with --init-from (their weights load by matching names).
INIT_FROM = {"tagger": ("tagger",), **{t: RETRIEVAL for t in RETRIEVAL}, "caption": ("caption",)}


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    task: str
    final: dict[str, dict]
    run_dir: Path


def run_dir_for(registry: Registry, run_id: str) -> Path:
    return Path(registry.settings.home) / "runs" / run_id


def train_task(registry: Registry, task: str, *, dataset: str | None = None, config: str | None = None,
               sets: tuple[str, ...] = (), seed: int | None = None, init_from: str | None = None,
               resume: str | None = None, reuse: bool = False, log: Callable[[str], None] = print) -> TrainResult:
    if resume is not None:
        return _resume(registry, resume, log)
    specs = _tasks()
    if task not in specs:
        raise InputError(f"unknown task {task!r}: choose one of {', '.join(TASKS)}")
    if dataset is None:
        raise InputError("--dataset is required for a new run")
    spec = specs[task]
    rank, size = distributed.init_from_env()
    if size > 1 and task not in DDP_TASKS:
        raise InputError(f"task {task!r} does not support distributed training; run it as one process")
    if rank != 0:
        log = _silent
    cfg = load_config(spec.config_cls, config, list(sets) + ([f"seed={seed}"] if seed is not None else []))
    seed_everything(cfg.seed)
    built, sets_used = spec.build(registry, dataset, cfg)
    parent = None
    if init_from is not None and spec.fit is not None:
        raise InputError(f"--init-from does not apply to the closed-form task {task!r}")
    if init_from is not None:
        parent = get_run(registry, init_from)
        _load_init(built, registry, parent.id, INIT_FROM[task])
    with registry.transaction() as session:
        dataset_id = dataset_by_name(session, dataset).id
    # Captioners also record the retrieval run whose encoder made their features (for SQL).
    encoder = {"encoder_run": built.encoder_run} if task == "caption" else {}
    config_record = {"dataset": dataset, **encoder, **as_dict(cfg)}
    lineage = [s.lineage() for s in sets_used]
    if reuse:
        done = find_finished(registry, task, config_record, lineage, parent.id if parent else None)
        if done is not None:
            log(f"reusing finished run {done.id} ({task} on {dataset}, same config and inputs)")
            return TrainResult(done.id, task, final_scores(registry, done.id), run_dir_for(registry, done.id))
    if rank == 0:
        recorder = RunRecorder.start(registry, task=task, config=config_record, dataset_id=dataset_id,
                                     parent_run_id=parent.id if parent else None, feature_sets=lineage, seed=cfg.seed,
                                     random_weights=any(s.random_weights for s in sets_used))
        log(f"run {recorder.run_id} ({task} on {dataset}){f' on {size} processes' if size > 1 else ''}")
    run_id = distributed.broadcast(recorder.run_id if rank == 0 else None)
    if rank != 0:
        recorder = NullRecorder(run_id)
    if spec.fit is not None:
        run_dir = run_dir_for(registry, recorder.run_id)
        try:
            final = spec.fit(registry, dataset, cfg, built, recorder, run_dir)
        except BaseException as exc:
            recorder.status("failed", _reason(exc))
            raise
        return TrainResult(recorder.run_id, task, final, run_dir)
    return _run(registry, recorder, task, dataset, cfg, built, spec, sets_used, parent.id if parent else None, None, log)


def _run(registry, recorder, task, dataset, cfg, built, spec, sets_used, parent_id, resume_from, log) -> TrainResult:
    run_dir = run_dir_for(registry, recorder.run_id)
    loop_cfg = LoopConfig(epochs=cfg.epochs, lr=cfg.lr, warmup_epochs=cfg.warmup_epochs, weight_decay=cfg.weight_decay,
                          grad_clip=cfg.grad_clip, seed=cfg.seed, val_split=cfg.val_split,
                          select_metric=getattr(cfg, "select_metric", spec.select_metric),
                          eval_splits=tuple(cfg.eval_splits), amp=cfg.amp)
    extra = {"run_id": recorder.run_id, "task": task, "dataset": dataset, "config": as_dict(cfg),
             "feature_sets": [s.lineage() for s in sets_used], "parent_run_id": parent_id}
    try:
        final = train(built, loop_cfg, recorder, run_dir, extra, resume_from=resume_from, log=log)
    except BaseException as exc:
        recorder.status("failed", _reason(exc))
        raise
    return TrainResult(recorder.run_id, task, final, run_dir)


def _silent(_: str) -> None:
    """Log sink of ranks other than 0."""


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def rebuild(registry: Registry, run_id: str):
    """A run's task rebuilt from its stored config, checking its inputs did not change."""
    run = get_run(registry, run_id)
    spec = _tasks()[run.task]
    stored = json.loads(run.config_json)
    dataset = stored.pop("dataset")
    cfg = load_config(spec.config_cls, base=stored)
    seed_everything(cfg.seed)
    built, sets_used = spec.build(registry, dataset, cfg)
    recorded = {s["name"]: s["fingerprint"] for s in json.loads(run.feature_sets_json)}
    changed = [s.name for s in sets_used if recorded.get(s.name) != s.fingerprint]
    if changed:
        raise InputError(f"feature set(s) {', '.join(changed)} changed since run {run.id} was trained")
    saved = run_dir_for(registry, run.id) / "last.pt"
    if hasattr(built, "vocab") and saved.is_file():
        _check_vocabulary(built, torch.load(saved, map_location="cpu", weights_only=False), run.id,
                          "the training captions changed since it was trained")
    return run, spec, dataset, cfg, built, sets_used


def _check_vocabulary(task, checkpoint: dict, run_id: str, why: str) -> None:
    """A captioner's weights only mean something with the vocabulary they were trained with."""
    if "vocab" in checkpoint and list(checkpoint["vocab"]) != list(task.vocab.words):
        raise InputError(f"run {run_id}'s vocabulary differs from the one built now ({len(checkpoint['vocab'])} vs "
                         f"{len(task.vocab)} words): {why}")


def _resume(registry: Registry, run_id: str, log) -> TrainResult:
    run = get_run(registry, run_id)
    last = run_dir_for(registry, run.id) / "last.pt"
    if run.status == "finished":
        raise InputError(f"run {run.id} already finished; start a new run (e.g. --init-from {run.id}) instead")
    if not last.is_file():
        raise InputError(f"run {run.id} has no checkpoint at {last} yet: start it again instead of resuming")
    run, spec, dataset, cfg, built, sets_used = rebuild(registry, run.id)
    recorder = RunRecorder(registry, run.id)
    return _run(registry, recorder, run.task, dataset, cfg, built, spec, sets_used, run.parent_run_id, last, log)


def evaluate_run(registry: Registry, run_id: str, splits: tuple[str, ...], tasks: tuple[str, ...] = TASKS) -> dict[str, dict]:
    """Re-score a finished run's best checkpoint on ``splits`` (``aacbatch evaluate``)."""
    from aacbatch.train.loop import score_splits

    task = get_run(registry, run_id).task
    if task not in tasks:
        raise InputError(f"run {run_id} is a {task} run; this command evaluates {' or '.join(tasks)} runs")
    run, spec, dataset, cfg, built, _ = rebuild(registry, run_id)
    if spec.fit is not None:
        raise InputError(f"run {run.id} is a {run.task} run: its scores are computed when it is fitted")
    built.model.load_state_dict(torch.load(checkpoint_of(registry, run.id, (run.task,)), map_location="cpu",
                                           weights_only=False)["model"])
    return score_splits(built, RunRecorder(registry, run.id), run_dir_for(registry, run.id), splits)


def _load_init(task, registry: Registry, parent_id: str, tasks: tuple[str, ...]) -> None:
    """Start from a parent run's best weights (all parameters whose names and shapes match).

    A captioner's word embeddings only mean something with the parent's vocabulary, so a
    different vocabulary is refused rather than silently leaving those layers random."""
    checkpoint = torch.load(checkpoint_of(registry, parent_id, tasks), map_location="cpu", weights_only=False)
    _check_vocabulary(task, checkpoint, parent_id, "give both runs the same captions with vocab_from")
    if checkpoint.get("encoder_run") != getattr(task, "encoder_run", checkpoint.get("encoder_run")):
        raise InputError(f"run {parent_id} read frames of encoder run {checkpoint['encoder_run']}, this run reads "
                         f"{task.encoder_run}'s: a captioner only continues on the frames it learned (featurize "
                         f"encoded --from-run {checkpoint['encoder_run']} for this dataset)")
    state, model = checkpoint["model"], task.model
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise InputError(f"run {parent_id}'s weights share no parameters with this model: check --init-from")
    model.load_state_dict(usable, strict=False)
