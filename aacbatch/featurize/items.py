"""The items a feature set is computed over, read from the registry in a stable order.

Clip kinds (mel, tags, encoded) run over clips, caption kinds (tokens, images, text_emb) over
captions, both in the dataset's ``idx`` order, optionally restricted to one split. The list
and the dataset fingerprint are part of the feature set's fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from aacbatch.data.register import dataset_by_name
from aacbatch.errors import InputError
from aacbatch.registry.schema import Caption, Clip, SplitMember
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
    with registry.transaction() as session:
        ds = dataset_by_name(session, dataset)
        clip_query = select(Clip).where(Clip.dataset_id == ds.id).order_by(Clip.idx)
        if split is not None:
            members = select(SplitMember.clip_id).where(SplitMember.dataset_id == ds.id, SplitMember.name == split)
            clip_query = clip_query.where(Clip.id.in_(members))
        clips = session.scalars(clip_query).all()
        if split is not None and not clips:
            names = sorted(set(session.scalars(select(SplitMember.name).where(SplitMember.dataset_id == ds.id))))
            raise InputError(f"dataset {dataset!r} has no split {split!r} (it has {', '.join(names)})")
        by_id = {c.id: c.idx for c in clips}
        captions = session.scalars(select(Caption).where(Caption.dataset_id == ds.id).order_by(Caption.idx)).all()
        return Items(
            dataset_id=ds.id, dataset_fingerprint=ds.fingerprint, dataset_meta=ds.meta_json,
            clips=[ClipItem(c.idx, c.name, c.path, c.n_frames, c.sample_rate, c.tags, c.id) for c in clips],
            captions=[CaptionItem(c.idx, by_id[c.clip_id], c.caption_index, c.text) for c in captions if c.clip_id in by_id],
        )
