"""DDP parity: two gloo processes on halves of a global batch give the one-process loss and
gradients (the same code path `torchrun -m aacbatch train` uses), for every task that allows
DDP: retrieval variants, the tagger and the captioner. Each rank fetches its slice of the
batch exactly as the training loop's loader does."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from aacbatch import catalog
from aacbatch.device import to_device
from aacbatch.models.captioner import Captioner, CaptionerConfig
from aacbatch.models.clap import Clap, ClapConfig
from aacbatch.models.cnn14 import CNN14_CONFIGS, Cnn14Config
from aacbatch.models.checkpoints import create_cnn14
from aacbatch.train import distributed
from aacbatch.train.caption import CaptionConfig, CaptionTask, SplitData
from aacbatch.train.retrieval import RetrievalConfig, RetrievalTask
from aacbatch.train.tagger import TaggerConfig, TaggerTask

B, T, D_TEXT, D_IMAGE, K, V = 8, 96, 16, 12, 5, 11


def _batch() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "clip_idx": np.array([0, 0, 1, 2, 3, 3, 4, 5]),  # same-clip pairs straddle the rank split
        "caption_idx": np.arange(B),
        "mel": rng.normal(-30, 10, (B, T, 64)).astype(np.float32),
        "mel_lengths": np.array([96, 80, 96, 64, 96, 96, 72, 96]),
        "frames": rng.normal(size=(B, 6, 32)).astype(np.float32),
        "frames_lengths": np.array([6, 4, 6, 5, 6, 3, 6, 6]),
        "cls": rng.normal(size=(B, D_TEXT)).astype(np.float32),
        "tags": rng.uniform(size=(B, K)).astype(np.float32),
        "images": rng.normal(size=(B, D_IMAGE)).astype(np.float32),
    }


class _Examples:
    """Stands in for CachedBatches: reading positions returns the batch rows."""

    def __init__(self, data):
        self.data = data

    def read(self, rows, crop=None):
        assert crop is None
        return {k: v[np.asarray(rows)] for k, v in self.data.items()}

    __getitem__ = read


def _task(task: str):
    torch.manual_seed(0)
    info = catalog.task(task)
    if info.family == "retrieval":
        built = RetrievalTask.__new__(RetrievalTask)
        built.info, built.cfg = info, RetrievalConfig(text="locked", tag_loss="mae")
        built.use_tags, built.use_images = info.uses_tags, info.uses_images
        audio = {**asdict(CNN14_CONFIGS["cnn14-tiny"]), "n_classes": K}
        built.model = Clap(ClapConfig(audio=audio, text_dim=D_TEXT, text_model=None, image_dim=D_IMAGE)).eval()
        built.splits = {"train": _Examples(_batch())}
    elif info.family == "tagger":
        built = TaggerTask.__new__(TaggerTask)
        built.info, built.cfg = info, TaggerConfig()
        built.model = create_cnn14(Cnn14Config(**{**asdict(CNN14_CONFIGS["cnn14-tiny"]), "n_classes": K})).eval()
        targets = (np.random.default_rng(1).uniform(size=(B, K)) > 0.6).astype(np.float32)
        built.splits = {"train": (_Examples(_batch()), targets)}
    else:
        built = CaptionTask.__new__(CaptionTask)
        built.info, built.cfg = info, CaptionConfig(features="encoded-x")
        built.model = Captioner(CaptionerConfig(input_dim=32, vocab_size=V, gru_hidden=16, gru_layers=1, d_model=16,
                                                n_heads=2, ff_dim=32, decoder_layers=1)).eval()
        rng = np.random.default_rng(2)  # captions of uneven length: ranks hold unequal token counts
        built.targets = {i: np.concatenate([[1], rng.integers(4, V, 2 + 3 * (i % 3)), [2], np.zeros(8 - 3 * (i % 3), int)])
                         for i in range(B)}
        built.splits = {"train": SplitData(_Examples(_batch()), np.arange(B), [], [])}
        built.mixture = None  # one dataset
    return built


def loss_and_grads(task: str) -> tuple[float, dict[str, torch.Tensor]]:
    built = _task(task)
    local = distributed.local_slice(np.arange(B))
    loss, logs = built.loss(to_device(built.fetch(local, 0), torch.device("cpu")))
    loss.backward()
    distributed.sum_gradients(built.model)
    return logs["loss"] if "loss" in logs else next(iter(logs.values())), \
        {n: p.grad.clone() for n, p in built.model.named_parameters() if p.grad is not None}


TASKS = ("clap", "claip_tag", "tagger", "caption")


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    """Every DDP task's loss and gradients in one process group (one spawn for all of them)."""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        results = {task: loss_and_grads(task) for task in TASKS}
        if rank == 0:
            torch.save({task: {"loss": loss, "grads": grads} for task, (loss, grads) in results.items()}, out)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("ddp")
    mp.start_processes(_worker, args=(2, str(tmp / "init"), str(tmp / "rank0.pt")), nprocs=2, start_method="spawn")
    return torch.load(tmp / "rank0.pt")


@pytest.mark.parametrize("task", TASKS)
def test_two_processes_equal_one_on_the_same_global_batch(task, two_ranks):
    single_loss, single_grads = loss_and_grads(task)
    got = two_ranks[task]
    assert got["loss"] == pytest.approx(single_loss, rel=1e-5)
    assert set(got["grads"]) == set(single_grads)
    for name, grad in single_grads.items():
        torch.testing.assert_close(got["grads"][name], grad, atol=1e-5, rtol=1e-4, msg=name)
    assert sum(float(g.abs().sum()) for g in single_grads.values()) > 0
