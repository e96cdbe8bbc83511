"""Data-parallel training across processes (``torchrun``; NCCL on GPUs, gloo on CPUs).

Every rank draws the same global batch (the example order depends only on the seed and the
epoch) and encodes its contiguous slice. Contrastive losses need every rank's embeddings:
:func:`gather` concatenates them, with gradients flowing only into the local slice, so each
rank's backward yields exactly its slice's share of the global-batch gradient, and
:func:`sum_gradients` adds the shares — the result equals one process on the whole batch.
(BatchNorm statistics in training mode stay per rank, as in ordinary multi-GPU training.)
Only rank 0 writes to the registry and saves checkpoints.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_env(device: torch.device) -> tuple[int, int]:
    """Join the process group ``torchrun`` describes in the environment, if any: NCCL when
    this rank trains on its GPU (``device`` is ``cuda:LOCAL_RANK``), gloo on CPUs. Several
    nodes need nothing else: ``torchrun --nnodes N --rdzv-endpoint HOST:PORT`` sets the
    environment every rank reads here."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
    return world()


def _on_backend(t: torch.Tensor) -> torch.Tensor:
    """``t`` where the process group's backend can reduce it (NCCL: on this rank's GPU)."""
    return t.cuda() if dist.get_backend() == "nccl" else t


def local_slice(batch: np.ndarray) -> np.ndarray:
    """This rank's contiguous part of a global batch."""
    rank, size = world()
    return np.array_split(batch, size)[rank] if size > 1 else batch


def gather(local: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's (b_r, ...) tensor in rank order; gradients reach ``local`` only."""
    rank, size = world()
    if size == 1:
        return local
    sizes = [torch.zeros(1, dtype=torch.long, device=local.device) for _ in range(size)]
    dist.all_gather(sizes, torch.tensor([local.shape[0]], device=local.device))
    parts = [local.new_zeros((int(n), *local.shape[1:])) for n in sizes]
    dist.all_gather(parts, local.detach().contiguous())
    parts[rank] = local
    return torch.cat(parts)


def share(local_count: int) -> float:
    """Fraction of the global batch held by this rank (weights per-example-mean losses)."""
    _, size = world()
    if size == 1:
        return 1.0
    total = _on_backend(torch.tensor([float(local_count)], dtype=torch.float64))
    dist.all_reduce(total)
    return local_count / float(total)


def sum_gradients(model: torch.nn.Module) -> None:
    _, size = world()
    if size == 1:
        return
    for p in model.parameters():
        if p.grad is not None:  # the same parameters get gradients on every rank: same model, same loss
            dist.all_reduce(p.grad)


def sum_value(value: float) -> float:
    _, size = world()
    if size == 1:
        return value
    t = _on_backend(torch.tensor([value], dtype=torch.float64))
    dist.all_reduce(t)
    return float(t)


def broadcast(obj):
    """Rank 0's ``obj`` on every rank."""
    _, size = world()
    if size == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if world()[1] > 1:
        dist.barrier()


def broadcast_buffers(model: torch.nn.Module) -> None:
    """Rank 0's BatchNorm running statistics everywhere (each rank updated them on its slice)."""
    if world()[1] > 1:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)
