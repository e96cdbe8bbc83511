"""DDP parity: two gloo processes on halves of a global batch give the one-process loss and
gradients (the same code path `torchrun -m aacbatch train` uses)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from aacbatch import catalog
from aacbatch.models.clap import Clap, ClapConfig
from aacbatch.models.cnn14 import CNN14_CONFIGS
from aacbatch.train.retrieval import RetrievalConfig, RetrievalTask

from dataclasses import asdict

B, T, D_TEXT, D_IMAGE, K = 8, 96, 16, 12, 5


def _batch() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "clip_idx": np.array([0, 0, 1, 2, 3, 3, 4, 5]),  # same-clip pairs straddle the rank split
        "caption_idx": np.arange(B),
        "mel": rng.normal(-30, 10, (B, T, 64)).astype(np.float32),
        "mel_lengths": np.array([96, 80, 96, 64, 96, 96, 72, 96]),
        "cls": rng.normal(size=(B, D_TEXT)).astype(np.float32),
        "tags": rng.uniform(size=(B, K)).astype(np.float32),
        "images": rng.normal(size=(B, D_IMAGE)).astype(np.float32),
    }


class _Examples:
    """Stands in for CachedBatches: indexing with positions returns the batch rows."""

    def __init__(self, data):
        self.data = data

    def __getitem__(self, rows):
        return {k: v[np.asarray(rows)] for k, v in self.data.items()}


def _task(task: str) -> RetrievalTask:
    torch.manual_seed(0)
    audio = {**asdict(CNN14_CONFIGS["cnn14-tiny"]), "n_classes": K}
    built = RetrievalTask.__new__(RetrievalTask)
    built.info, built.cfg = catalog.task(task), RetrievalConfig(text="locked", tag_loss="mae")
    built.use_tags, built.use_images = built.info.uses_tags, built.info.uses_images
    built.model = Clap(ClapConfig(audio=audio, text_dim=D_TEXT, text_model=None, image_dim=D_IMAGE)).eval()
    built.splits = {"train": _Examples(_batch())}
    return built


def loss_and_grads(task: str) -> tuple[float, dict[str, torch.Tensor]]:
    from aacbatch.train import distributed

    built = _task(task)
    loss, logs = built.loss(np.arange(B))
    loss.backward()
    distributed.sum_gradients(built.model)
    return logs["loss"], {n: p.grad.clone() for n, p in built.model.named_parameters() if p.grad is not None}


def _worker(rank: int, world: int, init_file: str, task: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        loss, grads = loss_and_grads(task)
        if rank == 0:
            torch.save({"loss": loss, "grads": grads}, out)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("task", ["clap", "claip_tag"])
def test_two_processes_equal_one_on_the_same_global_batch(task, tmp_path):
    single_loss, single_grads = loss_and_grads(task)
    out = tmp_path / "rank0.pt"
    mp.start_processes(_worker, args=(2, str(tmp_path / "init"), task, str(out)), nprocs=2, start_method="spawn")
    got = torch.load(out)
    assert got["loss"] == pytest.approx(single_loss, rel=1e-5)
    assert set(got["grads"]) == set(single_grads)
    for name, grad in single_grads.items():
        torch.testing.assert_close(got["grads"][name], grad, atol=1e-5, rtol=1e-4, msg=name)
    assert single_grads["logit_scale"].abs() > 0 and single_grads["audio_head.weight"].abs().sum() > 0
