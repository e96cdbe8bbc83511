"""What every training task provides, as declared hooks of one base class.

The runner (:mod:`aacbatch.train.run`) and the loop (:mod:`aacbatch.train.loop`) know no task
by name: they build the class the catalog names with ``(registry, corpus, info, config)``
and call these hooks. ``corpus`` is what the run trains on — one dataset, or a mixture for
tasks the catalog marks ``mixtures`` — and ``self.dataset`` the dataset it is validated and
scored on. A new task overrides what differs from the defaults below; a task
fitted in one pass (a baseline) derives from :class:`ClosedFormTask` instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from aacbatch.audio.logmel import FRAMES_PER_SECOND
from aacbatch.batches import CachedBatches, Crop, MixedBatches, epoch_batches
from aacbatch.catalog import TaskInfo
from aacbatch.data.corpus import Corpus
from aacbatch.device import to_device
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

    def __init__(self, registry: Registry, corpus: Corpus, info: TaskInfo, cfg) -> None:
        self.registry, self.corpus, self.info, self.cfg = registry, corpus, info, cfg
        self.dataset = corpus.val_dataset
        self.member_counts: dict[str, tuple[int, int]] = {}  # training dataset → (examples, clips left out)

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

    @property
    def device(self) -> torch.device:
        """Where the model's weights are (the loop moves it there; inputs follow it)."""
        return next(self.model.parameters()).device

    def tensors(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """A batch read for evaluation as tensors on the model's device."""
        return to_device(batch, self.device)

    def train_batches(self, epoch: int) -> list[np.ndarray]:
        """The epoch's global batches of training-example positions (a function of seed and
        epoch alone; under DDP each rank reads its slice of every batch)."""
        raise NotImplementedError

    def fetch(self, batch: np.ndarray, epoch: int) -> dict[str, np.ndarray]:
        """This rank's training examples ``batch``, read from the caches as numpy arrays.
        Runs in DataLoader worker processes, so it reads only and touches no model."""
        raise NotImplementedError

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of a fetched batch, its arrays now tensors on the model's device. Under DDP the
        returned loss is this rank's share of the global-batch loss (gradients are summed)."""
        raise NotImplementedError

    # --- helpers for tasks that read ragged inputs ----------------------------------------

    def epoch_batches(self, examples: CachedBatches | MixedBatches, epoch: int, ragged: str,
                      captions_per_clip: int = 0, min_size: int = 1) -> list[np.ndarray]:
        """Shuffled batches of ``examples``; length-bucketed on ``ragged`` when ``bucket`` is set
        (lengths as read: capped by ``max_seconds``); a mixture's members drawn by weight."""
        lengths = None
        if self.cfg.bucket:
            lengths = examples.lengths(ragged)
            crop = self.crop(epoch)
            if crop is not None:
                lengths = np.minimum(lengths, crop.frames)
        mixed = isinstance(examples, MixedBatches)
        return epoch_batches(examples.clips, self.cfg.seed, epoch, self.cfg.batch_size, captions_per_clip, min_size,
                             lengths, examples.groups if mixed else None, examples.weights if mixed else ())

    def crop(self, epoch: int) -> Crop | None:
        """This epoch's random log-mel crops (``max_seconds``), or None: clips are read whole."""
        if self.cfg.max_seconds is None:
            return None
        return Crop("mel", max(1, int(round(self.cfg.max_seconds * FRAMES_PER_SECOND))), self.cfg.seed, epoch)

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
