"""Which clips of an evaluation split a run has heard in training, itself or through an ancestor.

A score on a split is only a test score if none of the split's audio was trained on. For a
run, :func:`run_leakage` walks its lineage (:func:`aacbatch.registry.audits.lineage`: the
``--init-from`` parent, encoder and teacher runs, the runs behind its feature sets) and
counts the evaluation clips that one of those runs trained on:

* **same clip**: the clip itself is in the training split;
* **source id**: a training clip was cut from the same recording (equal FreeSound or YouTube
  id, recorded at ingest);
* **audit**: an acoustic audit (``aacbatch audit overlap``) matched the clip with a training clip.

Where source ids are missing (a Clotho copy ingested without its metadata CSVs), the
published lists still tell that a training set kept clips overlapping the evaluation corpus
(``ingest --keep-overlap``): those are counted as ``listed`` training clips, as the lists do
not say which evaluation clip each one is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from aacbatch.data.ingest.exclusion import PUBLISHED
from aacbatch.registry.audits import lineage, matched_pairs, split_clips
from aacbatch.registry.datasets import get_dataset
from aacbatch.registry.store import Registry

REASONS = ("same clip", "source id", "audit")


@dataclass
class Leakage:
    """``leaked``: evaluation clip id → the first reason it was seen (:data:`REASONS`);
    ``runs``: the runs of the lineage that trained on them; ``listed``: per published list,
    training clips on it that were kept although it names the evaluation corpus."""

    dataset: str
    split: str
    n_clips: int
    leaked: dict[str, str] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)
    listed: dict[str, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.leaked)

    def note(self) -> str | None:
        """``leak: …`` for a non-zero count, None otherwise."""
        if not self.leaked and not self.listed:
            return None
        parts = []
        if self.leaked:
            by = {r: sum(v == r for v in self.leaked.values()) for r in REASONS}
            how = ", ".join(f"{n} by {r}" for r, n in by.items() if n)
            parts.append(f"{self.count} of {self.n_clips} {self.dataset} {self.split} clips were trained on "
                         f"({how}) by run {', '.join(r[:8] for r in self.runs)}")
        parts += [f"training data kept {n} clips on the {key} list" for key, n in self.listed.items()]
        return "leak: " + "; ".join(parts)


def run_leakage(registry: Registry, run_id: str, dataset: str, split: str) -> Leakage:
    """The evaluation clips of ``dataset``/``split`` that run ``run_id`` or an ancestor trained on."""
    target = get_dataset(registry, dataset)
    evaluated = split_clips(registry, target.id, split)
    out = Leakage(dataset, split, len(evaluated))
    by_source = {c.source: c.id for c in evaluated if c.source}
    ids = {c.id for c in evaluated}
    pairs = matched_pairs(registry, sorted(ids))
    lists = [key for key, info in PUBLISHED.items() if info.format == target.format]
    for trained in lineage(registry, run_id):
        if trained.dataset_id is None:
            continue
        seen = split_clips(registry, trained.dataset_id, trained.split)
        seen_ids = {c.id for c in seen}
        found = {i: "same clip" for i in ids & seen_ids}
        for clip in seen:
            if clip.source in by_source:
                found.setdefault(by_source[clip.source], "source id")
        for a, b in pairs:
            for mine, theirs in ((a, b), (b, a)):
                if mine in ids and theirs in seen_ids:
                    found.setdefault(mine, "audit")
        for key in lists:
            n = sum(key in c.overlap_lists for c in seen)
            if n:
                out.listed[key] = max(out.listed.get(key, 0), n)
        if found:
            if trained.run_id not in out.runs:  # a mixture run trains on several datasets
                out.runs.append(trained.run_id)
            for clip_id, reason in found.items():
                out.leaked.setdefault(clip_id, reason)
    return out


def members_leakage(registry: Registry, run_ids: Sequence[str], dataset: str, split: str) -> Leakage:
    """One report for a system: the union over its members."""
    total = Leakage(dataset, split, 0)
    for run_id in run_ids:
        one = run_leakage(registry, run_id, dataset, split)
        total.n_clips = one.n_clips
        for clip_id, reason in one.leaked.items():
            total.leaked.setdefault(clip_id, reason)
        total.runs += [r for r in one.runs if r not in total.runs]
        for key, n in one.listed.items():
            total.listed[key] = max(total.listed.get(key, 0), n)
    return total


def leak_notes(registry: Registry, run_ids: Sequence[str], dataset: str, splits: Sequence[str]) -> list[str]:
    """The ``leak: …`` line of each split with a non-zero count, for a run or a system's members."""
    notes = [(split, members_leakage(registry, run_ids, dataset, split).note()) for split in splits]
    return [f"{split} {note}" for split, note in notes if note]
