"""What every training task provides, as declared hooks of one base class.

The runner (:mod:`aacbatch.train.run`) and the loop (:mod:`aacbatch.train.loop`) know no task
by name: they build the class the catalog names with ``(registry, dataset, info, config)``
and call these hooks. A new task overrides what differs from the defaults below; a task
fitted in one pass (a baseline) derives from :class:`ClosedFormTask` instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch

from aacbatch.catalog import TaskInfo
from aacbatch.featurize.sets import CachedSet
from aacbatch.models.checkpoints import CheckpointRecord
from aacbatch.registry.runs import RunRecorder, SplitResult
from aacbatch.registry.store import Registry


class Task:
    """A task built from a registered dataset's feature sets and a typed config.

    Subclasses set :attr:`Config` (the config dataclass; the catalog names the task class)
    and build ``self.model`` in ``__init__``.
    """

    Config: ClassVar[type]
    model: torch.nn.Module

    def __init__(self, registry: Registry, dataset: str, info: TaskInfo, cfg) -> None:
        self.registry, self.dataset, self.info, self.cfg = registry, dataset, info, cfg

    @property
    def name(self) -> str:
        return self.info.name

    # --- what a run records -----------------------------------------------------------------

    def inputs(self) -> list[CachedSet]:
        """The feature sets this task reads (their fingerprints are the run's lineage)."""
        return []

    def record(self) -> dict:
        """Facts added to the run's stored config, for SQL (e.g. a captioner's encoder run)."""
        return {}

    def describe(self) -> dict:
        """Task facts a checkpoint keeps beside the model's own family and config, needed to
        use it (e.g. a captioner's vocabulary, a tagger's labels)."""
        return {}

    # --- compatibility with stored weights ------------------------------------------------

    def check_parent(self, parent: CheckpointRecord) -> None:
        """Refuse an ``--init-from`` parent whose weights would mean something else here."""

    def check_saved(self, saved: CheckpointRecord, why: str) -> None:
        """Refuse resuming or re-scoring a run whose inputs changed since it was trained."""

    # --- the epoch loop -------------------------------------------------------------------

    def train_batches(self, epoch: int) -> list:
        raise NotImplementedError

    def loss(self, batch) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def evaluate(self, split: str) -> dict[str, float | None]:
        """Per-epoch validation metrics (cheap ones; the selection metric among them)."""
        raise NotImplementedError

    def final_evaluate(self, split: str, run_dir: Path | None) -> SplitResult:
        """Final scores of the best checkpoint on ``split``; with ``run_dir`` (the rank that
        writes), any split-level artifacts saved there."""
        return SplitResult(self.evaluate(split))


class ClosedFormTask(Task):
    """A task fitted in one pass over its data (no epochs, no optimiser)."""

    model = None

    def fit(self, recorder: RunRecorder, run_dir: Path) -> dict[str, dict]:
        """Fit, score every split, record checkpoint and scores, mark the run finished."""
        raise NotImplementedError
