"""The one training loop (nanoGPT order): data → forward → loss → backward → step → log →
eval → checkpoint, shared by every task.

Determinism on CPU: the example order of epoch ``e`` comes from ``seed + e`` alone, torch's
RNG state (dropout, SpecAugment) is saved in every checkpoint, and torch runs with
deterministic algorithms, so a run resumed from its last checkpoint ends with the same
weights and metrics as an uninterrupted one.

Checkpoints describe themselves (:mod:`aacbatch.models.checkpoints`): task, full config, model
config, feature-set fingerprints, parent run, optimiser state, epoch, best metric and RNG state.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from aacbatch.errors import AacbatchError
from aacbatch.models.checkpoints import CheckpointRecord, read_checkpoint, write_checkpoint
from aacbatch.registry.runs import RunRecorder
from aacbatch.train import distributed
from aacbatch.train.schedule import warmup_cosine
from aacbatch.train.task import Task


class TrainingDiverged(AacbatchError):
    """The loss became NaN or infinite; the run stops and keeps its last good checkpoint."""


@dataclass
class LoopConfig:
    epochs: int
    lr: float
    warmup_epochs: float
    weight_decay: float
    grad_clip: float | None
    seed: int
    val_split: str
    select_metric: str  # e.g. "mAP" or "t2a/mAP@10"; higher is better
    eval_splits: tuple[str, ...]
    amp: bool = False  # bfloat16 autocast for forward + loss (CPU and GPU; no loss scaling needed)


@dataclass
class LoopState:
    epoch: int = 0  # next epoch to run
    step: int = 0
    best: float = -math.inf
    history: list = field(default_factory=list)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    torch.use_deterministic_algorithms(True, warn_only=True)


def checkpoint_record(path: Path, task: Task, lineage: dict, training: dict | None = None) -> CheckpointRecord:
    """The self-describing record of ``task``'s current weights (see
    :mod:`aacbatch.models.checkpoints`); ``lineage`` holds run_id, task, dataset, config,
    feature_sets and parent_run_id."""
    model = task.model
    return CheckpointRecord(path, model.MODEL_FAMILY, dataclasses.asdict(model.config), model.state_dict(),
                            extras=task.describe(), training=training, **lineage)


def _save(path: Path, task: Task, optimizer, state: LoopState, lineage: dict) -> None:
    if distributed.world()[0] != 0:
        return  # rank 0 writes; every rank holds identical weights
    training = {"optimizer": optimizer.state_dict(), "epoch": state.epoch, "step": state.step, "best": state.best,
                "history": state.history, "torch_rng": torch.get_rng_state()}
    write_checkpoint(path, checkpoint_record(path, task, lineage, training))


def _plain(metrics: dict) -> dict:
    """Metric values as Python floats, so checkpoints stay readable with ``weights_only``."""
    return {k: None if v is None else float(v) for k, v in metrics.items()}


def train(task: Task, cfg: LoopConfig, recorder: RunRecorder, run_dir: Path, lineage: dict,
          resume_from: Path | None = None, log: Callable[[str], None] = print) -> dict[str, dict]:
    """Train, evaluate each epoch on ``cfg.val_split``, keep the best checkpoint by
    ``cfg.select_metric``, then score the best on every split in ``cfg.eval_splits``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    optimizer = torch.optim.Adam(task.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = LoopState()
    if resume_from is not None:
        saved = read_checkpoint(resume_from)
        task.model.load_state_dict(saved.state)
        optimizer.load_state_dict(saved.training["optimizer"])
        state = LoopState(saved.training["epoch"], saved.training["step"], saved.training["best"],
                          saved.training["history"])
        torch.set_rng_state(saved.training["torch_rng"])
        log(f"resuming at epoch {state.epoch + 1}/{cfg.epochs}")
    recorder.status("running")

    steps_per_epoch = len(task.train_batches(0))
    total = steps_per_epoch * cfg.epochs
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    device_type = next(task.model.parameters()).device.type  # autocast where the tensors are
    for epoch in range(state.epoch, cfg.epochs):
        task.model.train()
        losses = []
        for batch in task.train_batches(epoch):
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * warmup_cosine(state.step, warmup, total)
            with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=cfg.amp):
                loss, logs = task.loss(batch)
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss is {loss.item()} at epoch {epoch + 1}, step {state.step + 1}: lower the learning rate or "
                    f"set grad_clip; the last good checkpoint is {run_dir / 'last.pt'}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            distributed.sum_gradients(task.model)
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(task.model.parameters(), cfg.grad_clip)
            optimizer.step()
            state.step += 1
            losses.append(logs.get("loss", loss.item()))
        distributed.broadcast_buffers(task.model)
        task.model.eval()
        with torch.no_grad():
            metrics = task.evaluate(cfg.val_split)
        metrics = _plain(metrics)
        metrics["loss"] = float(np.mean(losses)) if losses else None
        recorder.scores(cfg.val_split, metrics, epoch=epoch + 1)
        value = metrics.get(cfg.select_metric)
        improved = value is not None and value > state.best
        state.epoch = epoch + 1
        state.history.append({"epoch": epoch + 1, **metrics})
        if improved:
            state.best = value
            _save(run_dir / "best.pt", task, optimizer, state, lineage)
            recorder.checkpoint(run_dir / "best.pt", state.epoch, state.step, is_best=True)
        _save(run_dir / "last.pt", task, optimizer, state, lineage)
        recorder.checkpoint(run_dir / "last.pt", state.epoch, state.step, is_best=False)
        distributed.barrier()
        shown = " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if v is not None)
        log(f"epoch {epoch + 1}/{cfg.epochs}: {shown}{' *' if improved else ''}")

    best_path = run_dir / "best.pt" if (run_dir / "best.pt").exists() else run_dir / "last.pt"
    task.model.load_state_dict(read_checkpoint(best_path).state)
    final = score_splits(task, recorder, run_dir, cfg.eval_splits)
    recorder.status("finished")
    return final


def score_splits(task: Task, recorder: RunRecorder, run_dir: Path, splits) -> dict[str, dict]:
    """Final scores of the loaded model on ``splits`` (rows with epoch NULL), with the reasons
    for NULL metrics, generated captions and split-level artifacts the task saves (only the
    rank that writes saves them). Every split is scored before anything is recorded, in one
    transaction."""
    task.model.eval()
    writes = distributed.world()[0] == 0
    with torch.no_grad():
        results = {split: task.final_evaluate(split, run_dir if writes else None) for split in splits}
    recorder.final(results)
    return {split: result.metrics for split, result in results.items()}
