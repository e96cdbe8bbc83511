"""A dataset's items — clips and captions — read from the registry in a stable order.

Clip kinds (mel, tags, encoded) run over clips, caption kinds (tokens, images, text_emb) over
captions, both in the dataset's ``idx`` order, optionally restricted to one split. The list
and the dataset fingerprint are part of the feature set's fingerprint; trainers read their
examples and references through the same lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from aacbatch.registry.datasets import split_rows
from aacbatch.registry.store import Registry


@dataclass(frozen=True)
class ClipItem:
    idx: int
    name: str
    path: str
    n_frames: int
    sample_rate: int
    tags: str | None
    id: str  # registry id (predictions and captions are keyed by it)


@dataclass(frozen=True)
class CaptionItem:
    idx: int
    clip_idx: int
    caption_index: int
    text: str


@dataclass(frozen=True)
class Items:
    dataset_id: str
    dataset_fingerprint: str
    dataset_meta: str
    clips: list[ClipItem]
    captions: list[CaptionItem]

    def references(self) -> dict[int, list[str]]:
        """Each clip's captions in caption order, keyed by clip idx (clips without any are absent)."""
        out: dict[int, list[str]] = {}
        for c in self.captions:
            out.setdefault(c.clip_idx, []).append(c.text)
        return out


def load_items(registry: Registry, dataset: str, split: str | None = None) -> Items:
    rows = split_rows(registry, dataset, split)
    by_id = {c.id: c.idx for c in rows.clips}
    return Items(
        dataset_id=rows.dataset.id, dataset_fingerprint=rows.dataset.fingerprint, dataset_meta=rows.dataset.meta_json,
        clips=[ClipItem(c.idx, c.name, c.path, c.n_frames, c.sample_rate, c.tags, c.id) for c in rows.clips],
        captions=[CaptionItem(c.idx, by_id[c.clip_id], c.caption_index, c.text) for c in rows.captions],
    )
