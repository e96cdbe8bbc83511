"""Typed training configs: dataclass defaults ← recipe TOML ← ``--set key=value``.

Every hyper-parameter is a field of a task's config dataclass, so it has one default, one
type and one place; recipe files (``aacbatch/recipes/*.toml`` or any path) and ``--set``
only override, checked by :mod:`aacbatch.typed` (unknown keys get the closest valid name).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from aacbatch.errors import shown
from aacbatch.resources import resource_dir
from aacbatch.typed import build, find_file, parse_pairs, read_toml


@dataclasses.dataclass(frozen=True)
class TrainingFields:
    """Fields every epoch-trained task shares (the loop reads them); tasks add their own,
    including the defaults that differ between them (epochs, batch size, learning rate)."""

    warmup_epochs: float = 1.0
    weight_decay: float = 0.0
    grad_clip: float | None = None
    amp: bool = False  # bfloat16 autocast (mixed precision)
    seed: int = 0
    train_split: str = "train"
    val_split: str = "val"
    select_metric: str | None = None  # picks the best epoch; None: the task's (aacbatch.catalog)
    init_partial: bool = False  # --init-from: load only the parameters that fit a differing architecture
    allow_zero_lr: bool = False  # lr = 0 trains nothing; allowed only on purpose (e.g. to re-score a parent)

    def __post_init__(self):
        """Values out of range are refused before a run exists (each task's fields too:
        subclasses call this first). The fields the loop reads are checked here."""
        checks = [("epochs", self.epochs >= 1, "at least 1"), ("batch_size", self.batch_size >= 1, "at least 1"),
                  ("lr", self.lr > 0 or (self.lr == 0 and self.allow_zero_lr),
                   "positive (lr = 0 trains nothing: add --set allow_zero_lr=true to mean it)"),
                  ("warmup_epochs", self.warmup_epochs >= 0, ">= 0"), ("weight_decay", self.weight_decay >= 0, ">= 0"),
                  ("grad_clip", self.grad_clip is None or self.grad_clip > 0, "positive or unset")]
        for name, ok, need in checks:
            if not ok or (isinstance(getattr(self, name), float) and not math.isfinite(getattr(self, name))):
                raise ValueError(f"{name} = {getattr(self, name)!r} is out of range: must be {need}")


def load_config(cls, recipe: str | Path | None = None, sets: tuple[str, ...] | list[str] = (), base: dict | None = None):
    """Build ``cls`` from ``base`` (e.g. a resumed run's config), a recipe file and ``--set`` pairs."""
    layers: list[tuple[str, dict]] = []
    if recipe is not None:
        path = find_file(recipe, resource_dir("recipes"), "config")
        layers.append((shown(path), read_toml(path, "config")))
    layers.append(("--set", parse_pairs(sets)))
    return build(cls, layers, base=base)


def as_dict(config) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
