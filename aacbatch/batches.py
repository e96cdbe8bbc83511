"""PyTorch access to cached features: padded batches read with few chunk reads.

Training never touches audio or text models it does not train: it reads feature sets. A
:class:`CachedBatches` dataset is indexed by *batches* (a list of example positions) rather
than by single examples, so each source array is read once per batch, grouped by chunk
(:class:`~aacbatch.cache.ArrayReader`), instead of once per example. Use it with
``DataLoader(ds, sampler=BatchSampler(...), batch_size=None)``.

An example is a (clip, caption) pair or a clip alone; each source says whether it is
per-clip or per-caption, and rows are found through the feature set's ``item_index``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aacbatch.cache import FeatureStore


@dataclass(frozen=True)
class Source:
    """One array of one feature set, keyed by clip or caption dataset index."""

    store: FeatureStore
    array: str
    key: str  # "clip" or "caption"


PAD_MULTIPLE = 32


def pad_ragged(items: Sequence[np.ndarray], multiple: int = PAD_MULTIPLE) -> tuple[np.ndarray, np.ndarray]:
    """[(T_i, ...)] → ((B, T_pad, ...) float32 zero-padded, (B,) int64 lengths).

    T_pad is T_max rounded up to ``multiple``: CPU convolution backends re-plan for every new
    input shape (0.2–1 s each), so a few distinct shapes are much cheaper than many.
    """
    lengths = np.array([len(x) for x in items], dtype=np.int64)
    width = -(-int(lengths.max(initial=0)) // multiple) * multiple
    out = np.zeros((len(items), width, *items[0].shape[1:]), dtype=np.float32)
    for k, x in enumerate(items):
        out[k, :len(x)] = x
    return out, lengths


def epoch_batches(clips: np.ndarray, seed: int, epoch: int, batch_size: int, captions_per_clip: int = 0,
                  min_size: int = 1, lengths: np.ndarray | None = None) -> list[np.ndarray]:
    """Shuffled batches of example positions for one epoch, from ``seed + epoch`` alone (so a
    resumed run sees the same order). ``captions_per_clip`` > 0 keeps only that many random
    examples (captions) of each clip this epoch — a cheaper epoch that still sees every clip;
    batches smaller than ``min_size`` are dropped (a contrastive batch needs two examples).
    With ``lengths`` (per example), batches are length-bucketed (:func:`bucketed_batches`)."""
    rng = np.random.default_rng(seed + epoch)
    if captions_per_clip > 0:
        by_clip: dict[int, list[int]] = {}
        for e, clip in enumerate(clips):
            by_clip.setdefault(int(clip), []).append(e)
        chosen = [e for clip in sorted(by_clip) for e in
                  rng.choice(by_clip[clip], min(captions_per_clip, len(by_clip[clip])), replace=False)]
        order = rng.permutation(np.array(chosen))
    else:
        order = rng.permutation(len(clips))
    if lengths is not None:
        return bucketed_batches(lengths, order, batch_size, min_size)
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size) if len(order[i:i + batch_size]) >= min_size]


@dataclass(frozen=True)
class Crop:
    """Random training crops of long clips: at most ``frames`` frames of ragged source
    ``source``, from an offset drawn per example from ``(seed, epoch, example)`` alone — the
    same crop whichever process reads it, in whatever batch, and again after a resume."""

    source: str
    frames: int
    seed: int
    epoch: int

    def windows(self, examples: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, sizes) of each example's window; clips no longer than ``frames`` stay whole."""
        sizes = np.minimum(lengths, self.frames)
        offsets = np.array([np.random.default_rng([self.seed, self.epoch, int(e)]).integers(0, n - s + 1)
                            for e, n, s in zip(examples, lengths, sizes)], dtype=np.int64)
        return offsets, sizes


def bucketed_batches(lengths: np.ndarray, order: np.ndarray, batch_size: int, min_size: int = 1,
                     pool: int = 50) -> list[np.ndarray]:
    """Batches of similar-length examples, still random: ``order`` (an epoch's shuffled example
    positions) is cut into pools of ``pool`` batches, each pool sorted by length and cut into
    batches, and the batch order shuffled with a generator seeded by the first example of the
    order — so the result is a function of ``order`` alone (deterministic, resume-exact).
    Batches of padded clips then hold lengths from one narrow range instead of the whole spread."""
    batches = []
    for lo in range(0, len(order), pool * batch_size):
        chunk = order[lo:lo + pool * batch_size]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    batches = [b for b in batches if len(b) >= min_size]
    rng = np.random.default_rng([int(order[0]) if len(order) else 0, len(order)])
    return [batches[i] for i in rng.permutation(len(batches))]


def padded_fraction(batch: dict[str, np.ndarray]) -> tuple[int, int]:
    """(padded, total) time steps of a read batch's ragged arrays (``X`` with ``X_lengths``)."""
    padded = total = 0
    for key, lengths in batch.items():
        if key.endswith("_lengths") and key[:-len("_lengths")] in batch:
            width = batch[key[:-len("_lengths")]].shape[1]
            total += width * len(lengths)
            padded += width * len(lengths) - int(lengths.sum())
    return padded, total


class CachedBatches:
    """Batches of examples from aligned feature sets.

    ``clips[e]`` / ``captions[e]`` are the dataset indices of example ``e`` (``captions`` may
    be None for clip-level tasks). Indexing with a list of example positions returns a dict of
    numpy arrays: dense sources stacked (B, ...), ragged ones padded (B, T, ...) with
    ``<name>_lengths`` (B,).
    """

    def __init__(self, sources: dict[str, Source], clips: np.ndarray, captions: np.ndarray | None = None,
                 cache_bytes: int = 2 << 30):
        self.clips = np.asarray(clips, dtype=np.int64)
        self.captions = None if captions is None else np.asarray(captions, dtype=np.int64)
        self._readers = {}
        self._rows = {}
        for name, src in sources.items():
            keys = self.clips if src.key == "clip" else self.captions
            if keys is None:
                raise ValueError(f"source {name!r} is per caption but the examples have no captions")
            self._rows[name] = src.store.rows(keys)
            self._readers[name] = src.store.reader(src.array, cache_bytes)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, batch: Sequence[int]) -> dict[str, np.ndarray]:
        return self.read(batch)

    def lengths(self, name: str) -> np.ndarray:
        """(E,) time length of ragged source ``name`` for every example (for length bucketing)."""
        return self._readers[name].lengths[self._rows[name]]

    def read(self, batch: Sequence[int], crop: Crop | None = None) -> dict[str, np.ndarray]:
        """The examples at positions ``batch``; with ``crop``, its ragged source cut to a random
        window of at most ``crop.frames`` frames (only that window is read)."""
        batch = np.asarray(batch, dtype=np.int64)
        out: dict[str, np.ndarray] = {"clip_idx": self.clips[batch]}
        if self.captions is not None:
            out["caption_idx"] = self.captions[batch]
        for name, reader in self._readers.items():
            rows = self._rows[name][batch]
            if crop is not None and name == crop.source:
                values = reader.windows(rows, *crop.windows(batch, reader.lengths[rows]))
            else:
                values = reader[rows]
            if reader.ragged:
                out[name], out[f"{name}_lengths"] = pad_ragged(values)
            else:
                out[name] = values
        return out
