"""Deterministic re-splits (Clotho development+validation → 9:1 train/val, as in the paper).

Clips are ordered by name (not by ingest order, so the split survives re-ingest), shuffled
with a seeded NumPy generator, and the first ``floor(ratio · n)`` become the first split:
4884 Clotho clips at 0.9 → 4395 / 489. An existing split with the same recipe is left as it
is; a different recipe over existing split names is refused unless ``replace``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from aacbatch.errors import InputError
from aacbatch.names import check_name
from aacbatch.registry.audits import matched_pairs
from aacbatch.registry.datasets import source_splits, write_splits
from aacbatch.registry.store import Registry


def assign(names: list[str], ratio: float, seed: int) -> set[str]:
    """The names that go to the first split: floor(ratio · n) of them, by seeded shuffle."""
    pool = sorted(names)
    n_first = math.floor(ratio * len(pool))
    if n_first == 0 or n_first == len(pool):
        raise InputError(f"--ratio {ratio} leaves one split empty for {len(pool)} clips")
    order = np.random.default_rng(seed).permutation(len(pool))
    return {pool[k] for k in order[:n_first]}


@dataclass(frozen=True)
class SplitResult:
    status: str  # "created", "unchanged" or "replaced"
    counts: dict[str, int]
    warnings: tuple[str, ...] = ()


def resplit(
    registry: Registry,
    dataset: str,
    *,
    sources: tuple[str, ...] = ("development", "validation"),
    ratio: float = 0.9,
    seed: int = 0,
    into: tuple[str, str] = ("train", "val"),
    eval_from: str | None = "auto",
    replace: bool = False,
) -> SplitResult:
    """Re-split the clips of ``sources`` into ``into`` and alias an evaluation split as ``eval``.

    ``eval_from="auto"`` aliases ``evaluation`` (Clotho) or ``test`` (AudioCaps) when present.
    """
    if not 0.0 < ratio < 1.0:
        raise InputError(f"--ratio must be strictly between 0 and 1, got {ratio}")
    if len(into) != 2 or into[0] == into[1]:
        raise InputError(f"--into needs two different split names, got {','.join(into)}")
    for split in into:
        check_name(split, "--into split name")
    recipe = f"resplit from={','.join(sources)} ratio={ratio} seed={seed}"
    ds, by_split = source_splits(registry, dataset)
    missing = [s for s in sources if s not in by_split]
    if missing:
        raise InputError(f"dataset {dataset!r} has no source split {', '.join(missing)} (it has {', '.join(sorted(by_split))})")
    clash = [n for n in into if n in by_split]
    if clash:
        raise InputError(f"--into name {clash[0]!r} is already a source split of {dataset!r}: choose other names")
    if eval_from == "auto":
        eval_from = next((s for s in ("evaluation", "test") if s in by_split), None)
    elif eval_from is not None and eval_from not in by_split:
        raise InputError(f"dataset {dataset!r} has no source split {eval_from!r} to use as eval")

    pool = dict(c for s in sources for c in by_split[s])  # clip name → clip id
    first = assign(list(pool), ratio, seed)
    wanted = {pool[n]: into[0] if n in first else into[1] for n in pool}
    targets = {into[0]: recipe, into[1]: recipe}
    if eval_from is not None:
        targets["eval"] = f"alias of {eval_from}"
        wanted.update({clip_id: "eval" for _, clip_id in by_split[eval_from]})

    def clash_message(existing) -> str:
        described = "; ".join(f"{n}: {r}" for n, r in existing)
        return f"dataset {dataset!r} already has splits made differently ({described}): pass --replace to redo them"

    status = write_splits(registry, ds, targets, wanted.items(), replace=replace, on_clash=clash_message)
    return SplitResult(status, dict(Counter(wanted.values())), _audited_duplicates(registry, wanted, into[0]))


def _audited_duplicates(registry: Registry, wanted: dict[str, str], train: str) -> tuple[str, ...]:
    """A warning when an audit matched a clip of ``eval`` with one of ``train`` (Clotho has
    recordings in more than one of its splits)."""
    evaluated = {c for c, split in wanted.items() if split == "eval"}
    trained = {c for c, split in wanted.items() if split == train}
    leaked = {a if a in evaluated else b for a, b in matched_pairs(registry, sorted(evaluated))
              if (a in evaluated and b in trained) or (b in evaluated and a in trained)}
    if not leaked:
        return ()
    return (f"{len(leaked)} of {len(evaluated)} eval clips have an audited duplicate in {train} "
            "(aacbatch audit matches lists them): drop them or accept the leak",)
