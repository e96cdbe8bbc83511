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
                  min_size: int = 1, lengths: np.ndarray | None = None, groups: np.ndarray | None = None,
                  weights: Sequence[float] = ()) -> list[np.ndarray]:
    """Shuffled batches of example positions for one epoch, from ``seed + epoch`` alone (so a
    resumed run sees the same order). ``captions_per_clip`` > 0 keeps only that many random
    examples (captions) of each clip this epoch — a cheaper epoch that still sees every clip;
    batches smaller than ``min_size`` are dropped (a contrastive batch needs two examples).
    With ``lengths`` (per example), batches are length-bucketed (:func:`bucketed_batches`).
    With ``groups`` (per example, its mixture member) and per-member ``weights``, each member's
    examples are drawn by weight (:func:`weighted_draw`); weights of 1 change nothing."""
    rng = np.random.default_rng(seed + epoch)
    chosen = per_clip_sample(clips, captions_per_clip, rng) if captions_per_clip > 0 else np.arange(len(clips))
    if groups is not None and any(w != 1 for w in weights):
        chosen = weighted_draw(chosen, groups, weights, seed, epoch)
    order = rng.permutation(chosen)
    if lengths is not None:
        return bucketed_batches(lengths, order, batch_size, min_size)
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size) if len(order[i:i + batch_size]) >= min_size]


def per_clip_sample(clips: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of ``n`` random examples of each clip (all of a clip with fewer), ascending:
    one random key per example, sorted within each clip — array arithmetic, no loop over
    clips (300k examples in milliseconds)."""
    clips = np.asarray(clips)
    order = np.argsort(rng.random(len(clips)))
    order = order[np.argsort(clips[order], kind="stable")]  # by clip, then by random key
    grouped = clips[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    rank = np.arange(len(clips)) - np.repeat(starts, np.diff(np.r_[starts, len(clips)]))
    return np.sort(order[rank < n])


def weighted_draw(chosen: np.ndarray, groups: np.ndarray, weights: Sequence[float], seed: int,
                  epoch: int) -> np.ndarray:
    """The epoch's examples of each mixture member, by its weight ``w``: every example of
    ``chosen`` in member m ``floor(w)`` times, plus a random ``w - floor(w)`` share of them
    (drawn without replacement from ``(seed, epoch, m)`` alone: deterministic, resume-exact).
    Weight 2 shows a member's examples twice per epoch, 0.5 a fresh random half."""
    parts = []
    for m, w in enumerate(weights):
        own = chosen[groups[chosen] == m]
        whole = int(np.floor(w))
        extra = int(round((w - whole) * len(own)))
        picked = np.random.default_rng([seed, epoch, m]).choice(own, extra, replace=False) if extra else own[:0]
        parts += [own] * whole + [np.sort(picked)]
    return np.concatenate(parts) if parts else chosen[:0]


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
        return self.assemble(self.values(batch, batch, crop))

    def values(self, batch: np.ndarray, keys: np.ndarray, crop: Crop | None) -> dict[str, list | np.ndarray]:
        """The examples at positions ``batch`` as read, before padding: a list of (T_i, ...)
        arrays per ragged source, (B, ...) arrays otherwise. ``keys`` number the examples for
        the crop's random windows (a mixture passes positions in the whole union)."""
        out: dict[str, list | np.ndarray] = {"clip_idx": self.clips[batch]}
        if self.captions is not None:
            out["caption_idx"] = self.captions[batch]
        for name, reader in self._readers.items():
            rows = self._rows[name][batch]
            if crop is not None and name == crop.source:
                out[name] = reader.windows(rows, *crop.windows(keys, reader.lengths[rows]))
            else:
                out[name] = reader[rows]
        return out

    def assemble(self, values: dict[str, list | np.ndarray]) -> dict[str, np.ndarray]:
        """Read values as a batch: ragged sources zero-padded, with ``<name>_lengths``."""
        out = {}
        for name, value in values.items():
            if name in self._readers and self._readers[name].ragged:
                out[name], out[f"{name}_lengths"] = pad_ragged(value)
            else:
                out[name] = value
        return out


class MixedBatches:
    """Batches over the union of several datasets' examples, each read from its own caches.

    Example positions run member after member (member 0's examples first); ``clips`` and
    ``captions`` are numbered over the union (member m's indices shifted past those of the
    members before it), so a clip is one clip across the whole mixture and two members'
    clips never count as the same one. A batch is read with one grouped read per member
    and source, as for one dataset, then merged in the batch's order.
    """

    def __init__(self, members: Sequence[CachedBatches], weights: Sequence[float], clip_counts: Sequence[int],
                 caption_counts: Sequence[int]):
        self.members, self.weights = list(members), tuple(float(w) for w in weights)
        sizes = np.array([len(m) for m in members], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(sizes)])
        self.groups = np.repeat(np.arange(len(members)), sizes)
        clip_shift = np.concatenate([[0], np.cumsum(clip_counts)])[:-1]
        caption_shift = np.concatenate([[0], np.cumsum(caption_counts)])[:-1]
        self.shifts = {"clip_idx": clip_shift, "caption_idx": caption_shift}  # per member
        self.clips = np.concatenate([m.clips + s for m, s in zip(members, clip_shift)])
        has_captions = all(m.captions is not None for m in members)
        self.captions = np.concatenate([m.captions + s for m, s in zip(members, caption_shift)]) if has_captions else None

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, batch: Sequence[int]) -> dict[str, np.ndarray]:
        return self.read(batch)

    def lengths(self, name: str) -> np.ndarray:
        return np.concatenate([m.lengths(name) for m in self.members])

    def read(self, batch: Sequence[int], crop: Crop | None = None) -> dict[str, np.ndarray]:
        batch = np.asarray(batch, dtype=np.int64)
        if not len(batch):
            return self.members[0].read(batch)
        member = self.groups[batch]
        merged: dict[str, list] = {}
        slots: list[np.ndarray] = []
        for m in np.unique(member):
            where = np.flatnonzero(member == m)
            slots.append(where)
            for name, value in self.members[m].values(batch[where] - self.starts[m], batch[where], crop).items():
                if name in self.shifts:
                    value = value + self.shifts[name][m]
                merged.setdefault(name, []).append(value)
        order = np.argsort(np.concatenate(slots), kind="stable")  # back to the batch's order
        values = {}
        for name, parts in merged.items():
            if isinstance(parts[0], list):
                flat = [x for part in parts for x in part]
                values[name] = [flat[i] for i in order]
            else:
                values[name] = np.concatenate(parts)[order]
        return self.members[0].assemble(values)
