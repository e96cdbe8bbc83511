"""What a run trains on: one dataset, or a mixture of several with sampling weights.

``train --dataset clotho`` is a corpus of one member; ``--dataset clotho,audiocaps,macs``
(or the name of a registered mixture) is the union of the members' training splits, each
member read through its own feature sets, validated and scored on one dataset's splits
(``--val-dataset``, default the first member). Weights scale how many of a member's
examples an epoch draws: 1 each once, 2 each twice, 0.5 a fresh random half.

A clip found in an earlier member too — the same source recording (e.g. a FreeSound id in
Clotho and in WavCaps) or an audited duplicate — is trained on once: the later member's
copy is left out, and how many were is recorded with the run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from aacbatch.data.items import Items, load_items
from aacbatch.errors import InputError
from aacbatch.registry.audits import matched_pairs
from aacbatch.registry.datasets import get_dataset
from aacbatch.names import check_name
from aacbatch.registry.mixtures import create_mixture, find_mixture
from aacbatch.registry.store import Registry


@dataclass(frozen=True)
class Member:
    dataset: str
    weight: float = 1.0


@dataclass(frozen=True)
class Corpus:
    members: tuple[Member, ...]
    val_dataset: str
    mixture: str | None = None  # the registered mixture it was named by

    @classmethod
    def single(cls, dataset: str) -> "Corpus":
        return cls((Member(dataset),), dataset)

    @property
    def datasets(self) -> list[str]:
        return [m.dataset for m in self.members]

    @property
    def weights(self) -> list[float]:
        return [m.weight for m in self.members]

    @property
    def mixed(self) -> bool:
        """More than plain training on one dataset (a task without mixture support refuses it)."""
        return self != Corpus.single(self.val_dataset)

    @property
    def label(self) -> str:
        return self.mixture or ",".join(self.datasets)

    def record(self) -> dict | None:
        """What a run's stored config keeps of it (None for one dataset: configs as before)."""
        if not self.mixed:
            return None
        return {"mixture": self.mixture, "members": [[m.dataset, m.weight] for m in self.members]}

    @classmethod
    def from_record(cls, record: dict | None, val_dataset: str) -> "Corpus":
        if record is None:
            return cls.single(val_dataset)
        return cls(tuple(Member(d, float(w)) for d, w in record["members"]), val_dataset, record.get("mixture"))


def resolve_corpus(registry: Registry, spec: str, val_dataset: str | None = None,
                   weights: Sequence[float] = ()) -> Corpus:
    """``--dataset`` (one name, a comma-separated list, or a mixture's name) as a corpus,
    every name checked against the registry and every weight checked."""
    mixture = find_mixture(registry, spec.strip()) if "," not in spec else None
    if mixture is not None:
        if weights:
            raise InputError(f"{mixture.name!r} is a mixture with its own weights: drop --weight, or redefine it with "
                             "`aacbatch mixture create --replace`")
        members = tuple(Member(d, w) for d, w in mixture.members)
    else:
        members = parse_members(registry, spec, weights)
    val = val_dataset or members[0].dataset
    get_dataset(registry, val)
    return Corpus(members, val, mixture.name if mixture else None)


def parse_members(registry: Registry, spec: str, weights: Sequence[float] = ()) -> tuple[Member, ...]:
    """Datasets ``a,b,c`` with one weight each (default 1), checked: registered datasets (not
    mixtures), each named once, positive finite weights, as many weights as datasets."""
    names = [n.strip() for n in spec.split(",")]
    if not all(names):
        raise InputError(f"--dataset {spec!r} has an empty name: separate dataset names with single commas")
    for name in names:
        if find_mixture(registry, name) is not None:
            raise InputError(f"{name!r} is a mixture: list its datasets instead of naming it among others")
        get_dataset(registry, name)  # unknown names: one line listing the known ones
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"--dataset names {', '.join(map(repr, repeated))} more than once: give each dataset once "
                         "(a weight above 1 draws its examples more often)")
    weights = [1.0] * len(names) if not weights else [float(w) for w in weights]
    if len(weights) != len(names):
        raise InputError(f"{len(weights)} weight(s) for {len(names)} dataset(s): give one --weight per dataset, "
                         f"in the order of --dataset {spec!r}")
    bad = [w for w in weights if not (math.isfinite(w) and w > 0)]
    if bad:
        raise InputError(f"weight {bad[0]!r} is out of range: weights must be positive numbers "
                         "(leave a dataset out instead of weighting it 0)")
    return tuple(Member(n, w) for n, w in zip(names, weights))


def define_mixture(registry: Registry, name: str, spec: str, weights: Sequence[float] = (),
                   replace: bool = False) -> tuple[str, tuple[Member, ...]]:
    """Register mixture ``name`` of the datasets ``spec`` (``aacbatch mixture create``):
    (status, members)."""
    check_name(name, "mixture name")
    members = parse_members(registry, spec, weights)
    return create_mixture(registry, name, [(m.dataset, m.weight) for m in members], replace), members


@dataclass(frozen=True)
class MemberItems:
    """One member's training items, with the clips left out as copies of earlier members'."""

    dataset: str
    weight: float
    items: Items
    n_duplicates: int


def member_items(registry: Registry, corpus: Corpus, split: str) -> list[MemberItems]:
    """Every member's ``split``, in member order, each clip that an earlier member holds too
    (same source recording, or an audited duplicate) left out of the later member."""
    loaded = [load_items(registry, m.dataset, split) for m in corpus.members]
    seen_sources: set[tuple[str, str]] = set()
    seen_ids: set[str] = set()
    twins = _audited_twins(registry, [c.id for items in loaded for c in items.clips])
    out = []
    for member, items in zip(corpus.members, loaded):
        kept = [c for c in items.clips
                if (c.source is None or c.source not in seen_sources) and not (twins.get(c.id, set()) & seen_ids)]
        seen_sources |= {c.source for c in kept if c.source is not None}
        seen_ids |= {c.id for c in kept}
        keep = {c.idx for c in kept}
        trimmed = dataclasses.replace(items, clips=kept, captions=[c for c in items.captions if c.clip_idx in keep])
        out.append(MemberItems(member.dataset, member.weight, trimmed, len(items.clips) - len(kept)))
    if not any(m.items.clips for m in out):
        raise InputError(f"the {split!r} splits of {corpus.label} hold no clips to train on")
    return out


def _audited_twins(registry: Registry, clip_ids: list[str]) -> dict[str, set[str]]:
    """Clip id → the clips an audit found sharing its audio."""
    twins: dict[str, set[str]] = {}
    for a, b in matched_pairs(registry, clip_ids):
        twins.setdefault(a, set()).add(b)
        twins.setdefault(b, set()).add(a)
    return twins
