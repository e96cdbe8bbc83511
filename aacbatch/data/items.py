"""A dataset's items — clips and captions — read from the registry in a stable order.

Clip kinds (mel, tags, encoded) run over clips, caption kinds (tokens, images, text_emb) over
captions, both in the dataset's ``idx`` order, optionally restricted to one split. The list
and the dataset fingerprint are part of the feature set's fingerprint; trainers read their
examples and references through the same lists.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    source: tuple[str, str] | None = None  # (kind, id) of the recording it was cut from, where known


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
        clips=[ClipItem(c.idx, c.name, c.path, c.n_frames, c.sample_rate, c.tags, c.id,
                        (c.source, c.source_id) if c.source and c.source_id else None) for c in rows.clips],
        captions=[CaptionItem(c.idx, by_id[c.clip_id], c.caption_index, c.text) for c in rows.captions],
    )


def index_spans(parts: Iterable[Items]) -> tuple[list[int], list[int]]:
    """(clip, caption) index counts that number several datasets' items apart: each part's
    largest index + 1, so that shifting part k by the sum of the counts before it keeps the
    indices of different datasets distinct."""
    parts = list(parts)
    return ([max((c.idx for c in p.clips), default=-1) + 1 for p in parts],
            [max((c.idx for c in p.captions), default=-1) + 1 for p in parts])
