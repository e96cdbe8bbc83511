"""Where models run: the one place a device is chosen, and the mixed-precision modes.

Every stage that runs a model (train, featurize, evaluate, caption, index, search, serve)
asks :func:`current` for its device instead of deciding for itself. The CLI's global
``--device`` (or ``AACBATCH_DEVICE``) sets it for the process; ``auto`` means the GPU
when one is present. A training config's own ``device`` field, when not ``auto``, wins for
that run. Under ``torchrun`` every rank takes the GPU numbered by its ``LOCAL_RANK``.

Checkpoints hold CPU copies of the weights and are read with ``map_location="cpu"``
(:mod:`aacbatch.models.checkpoints`), so a run trained on a GPU resumes or is scored on a
CPU and the other way round; moving the rebuilt model is the caller's one ``.to(device)``.
"""

from __future__ import annotations

import contextlib
import os
import re

import torch

from aacbatch.catalog import DEVICE_SPEC
from aacbatch.errors import InputError

AMP_MODES = ("off", "bf16", "fp16")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_SPEC = re.compile(rf"^({DEVICE_SPEC})$")
ENV = "AACBATCH_DEVICE"


def resolve(spec: str = "auto") -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` → a device that exists on this machine.

    ``cuda`` under ``torchrun`` is this rank's GPU (``LOCAL_RANK``)."""
    spec = str(spec).strip().lower()
    if not _SPEC.match(spec):
        raise InputError(f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N")
    if spec == "cpu" or (spec == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise InputError(f"device {spec!r} asked for, but this machine has no usable CUDA GPU "
                         "(torch.cuda.is_available() is False): use --device cpu")
    index = int(spec.split(":")[1]) if ":" in spec else int(os.environ.get("LOCAL_RANK", "0"))
    count = torch.cuda.device_count()
    if index >= count:
        raise InputError(f"device cuda:{index} asked for, but this machine has {count} GPU(s) "
                         f"(cuda:0{f'..cuda:{count - 1}' if count > 1 else ''})")
    return torch.device("cuda", index)


def use(spec: str) -> torch.device:
    """Choose the process's device (what the CLI's ``--device`` does), checked now."""
    chosen = resolve(spec)
    os.environ[ENV] = str(spec).strip().lower()
    return chosen


def current() -> torch.device:
    """The process's device: ``AACBATCH_DEVICE`` (set by ``--device`` or :func:`use`), else auto."""
    return resolve(os.environ.get(ENV, "auto"))


def for_run(spec: str) -> torch.device:
    """A run's device: its config's ``device`` unless that is ``auto``, then the process's."""
    return current() if str(spec).strip().lower() == "auto" else resolve(spec)


def check_amp(mode: str, device: torch.device) -> None:
    """Refuse a precision the device cannot run: fp16 needs a GPU (its loss scaling is CUDA's)."""
    if mode not in AMP_MODES:
        raise InputError(f"amp = {mode!r}: use one of {', '.join(AMP_MODES)}")
    if mode == "fp16" and device.type != "cuda":
        raise InputError(f"amp = 'fp16' needs a CUDA device but this run is on {device}: use amp = 'bf16' "
                         "(runs on CPUs and GPUs without loss scaling) or amp = 'off'")


def autocast(mode: str, device: torch.device):
    """Autocast for ``device`` in ``mode`` (``off``: no autocast)."""
    if mode == "off":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AMP_DTYPES[mode])


def grad_scaler(mode: str, device: torch.device) -> torch.amp.GradScaler:
    """A loss scaler, enabled only for fp16 (bf16 has float32's range and needs none)."""
    return torch.amp.GradScaler(device.type, enabled=mode == "fp16")


def to_device(batch: dict, device: torch.device) -> dict:
    """A fetched batch (numpy arrays or tensors) as tensors on ``device``; pinned host memory
    copies asynchronously."""
    out = {}
    for key, value in batch.items():
        tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
        out[key] = tensor.to(device, non_blocking=tensor.is_pinned())
    return out
