"""The training input pipeline: an epoch's batches read by DataLoader worker processes.

A GPU step on a paper-size CNN14 takes milliseconds; reading and padding a batch of
log-mels from Zarr takes as long, so with ``loader_workers`` > 0 the reads run in worker
processes, ``prefetch_batches`` ahead, into pinned memory when the model is on a GPU. The
batches are the in-process ones exactly: the loader is handed the epoch's list of batches
(a function of seed and epoch, :meth:`Task.train_batches`), yields them in that order, and
each is read by :meth:`Task.fetch`, whose only randomness (crops) is seeded per example.
Under DDP each rank's loader reads only that rank's slice of every global batch.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from aacbatch.batches import padded_fraction
from aacbatch.train import distributed
from aacbatch.train.task import Task


class _EpochBatches(Dataset):
    """Item ``i`` is this rank's part of the epoch's ``i``-th batch, fetched."""

    def __init__(self, task: Task, epoch: int):
        self.task, self.epoch = task, epoch
        self.batches = [distributed.local_slice(b) for b in task.train_batches(epoch)]

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return self.task.fetch(self.batches[i], self.epoch)


def _one_thread(_: int) -> None:
    """Workers read and pad arrays; a thread pool per worker would only fight the trainer."""
    torch.set_num_threads(1)


def epoch_loader(task: Task, epoch: int, workers: int = 0, prefetch: int = 2, pin: bool = False) -> DataLoader:
    """The epoch's fetched batches in order: dicts of CPU tensors (pinned with ``pin``).

    The loader draws its workers' base seed from a generator of its own, so the training RNG
    stream (dropout, SpecAugment) is the one the model alone consumes: the same with or
    without a loader, with any number of workers."""
    return DataLoader(_EpochBatches(task, epoch), batch_size=None, shuffle=False, num_workers=workers,
                      pin_memory=pin, prefetch_factor=prefetch if workers else None,
                      worker_init_fn=_one_thread if workers else None, generator=torch.Generator())


class ThroughputMeter:
    """Where an epoch's time went: waiting for batches or computing steps, and the padding."""

    def __init__(self) -> None:
        self.wait = 0.0
        self.steps = self.examples = self.padded = self.frames = 0
        self.started = time.perf_counter()

    def timed(self, batches: Iterable[dict]) -> Iterator[dict]:
        """``batches``, timing how long each took to arrive."""
        iterator = iter(batches)
        while True:
            asked = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                return
            self.wait += time.perf_counter() - asked
            padded, total = padded_fraction(batch)
            self.steps += 1
            self.examples += len(batch["clip_idx"])
            self.padded += padded
            self.frames += total
            yield batch

    def summary(self) -> dict[str, float | None]:
        """``step_s``, ``data_wait``, ``examples_per_s`` (this rank's) and ``padded``."""
        elapsed = time.perf_counter() - self.started
        return {"step_s": elapsed / self.steps if self.steps else None,
                "data_wait": self.wait / elapsed if elapsed > 0 else None,
                "examples_per_s": self.examples / elapsed if elapsed > 0 else None,
                "padded": self.padded / self.frames if self.frames else None}
