"""Zarr feature sets: computed once, resumable, shardable, self-describing.

Layout of one feature set (a Zarr v3 group, on a local path or any fsspec URL)::

    attrs["aacbatch"]   kind, spec, fingerprint, format version, item count, block size
    item_index (n,)     dataset row index (clip or caption ``idx``) of each item
    <array> (n, ...)    dense per-item arrays (tag scores, token ids, image embeddings),
                        chunked by block along the item axis
    <array> (F, ...)    ragged per-item arrays (log-mels, encoded frames): all items
                        concatenated along time, item i at rows ``starts[i] : starts[i]+lengths[i]``
    <array>.starts/.lengths (n,)
    done (n_blocks,)    1 once a block is fully written; one chunk per block

Items are processed in fixed blocks of ``block_size`` items. Each block owns whole chunks of
every array — ragged blocks start on a chunk boundary — so processes working on different
blocks (``--shard K/N``) never write the same chunk, and a block interrupted mid-write is
simply rewritten on resume, giving byte-identical arrays. Completion is the ``done`` array,
never an attribute that concurrent writers would race on.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aacbatch.config import Settings
from aacbatch.errors import InputError

FORMAT_VERSION = 1
ATTR = "aacbatch"
DEFAULT_TIME_CHUNK = 4096


@dataclass(frozen=True)
class ArraySpec:
    """Shape of one array per item: ``tail`` trailing dims; ``ragged`` items vary along time.

    ``compress=False`` stores chunks raw: for data that does not compress (float embeddings)
    and is read whole at once, where decompression would only add time (a search index).
    """

    tail: tuple[int, ...]
    dtype: str
    ragged: bool = False
    compress: bool = True


def cache_url(settings: Settings, dataset: str, set_name: str) -> str:
    """Where a feature set lives: ``<cache>/<dataset>/<set>.zarr`` (a path or an fsspec URL)."""
    if isinstance(settings.cache_dir, str):  # an fsspec URL: zarr opens it through fsspec
        return f"{settings.cache_dir}/{dataset}/{set_name}.zarr"
    return str(Path(settings.cache_dir) / dataset / f"{set_name}.zarr")


def _open_group(url: str, mode: str):
    import zarr

    try:
        return zarr.open_group(store=url, mode=mode)
    except FileNotFoundError:
        return None
    except Exception as exc:  # unreadable metadata, wrong zarr format, …
        raise InputError(f"feature cache {url} cannot be opened ({str(exc).splitlines()[0]}): delete it or pass --rebuild") from exc


class FeatureStore:
    """Reader/writer for one feature set group."""

    def __init__(self, url: str, group):
        self.url = url
        self.group = group
        self.meta: dict = dict(group.attrs.get(ATTR, {}))
        self._item_index = None

    # --- creation and opening -------------------------------------------------------------

    @classmethod
    def open(cls, url: str, mode: str = "r") -> "FeatureStore":
        """Open an existing feature set; refuse groups we did not write or cannot read."""
        group = _open_group(url, mode)
        if group is None or ATTR not in group.attrs:
            raise InputError(f"{url} is not an aacbatch feature set: featurize it first")
        store = cls(url, group)
        version = store.meta.get("format_version")
        if version != FORMAT_VERSION:
            raise InputError(
                f"feature cache {url} has format version {version}, this aacbatch reads {FORMAT_VERSION}: "
                "rebuild it with this version (--rebuild) or upgrade aacbatch"
            )
        return store

    @classmethod
    def create_or_resume(
        cls,
        url: str,
        *,
        meta: Mapping,
        item_index: np.ndarray,
        arrays: Mapping[str, ArraySpec],
        lengths: Mapping[str, np.ndarray] | None = None,
        block_size: int = 256,
        time_chunk: int = DEFAULT_TIME_CHUNK,
        rebuild: bool = False,
    ) -> "FeatureStore":
        """Open ``url`` for writing, creating the layout if needed.

        An existing group must carry the same ``meta["fingerprint"]``; otherwise it is refused
        unless ``rebuild`` (then it is recreated empty). ``lengths[name]`` gives the per-item
        time length of each ragged array, known before any compute.
        """
        existing = _open_group(url, "r")
        if existing is not None and ATTR in existing.attrs and not rebuild:
            store = cls.open(url, "r+")
            theirs, ours = store.meta.get("fingerprint"), meta["fingerprint"]
            if theirs != ours:
                raise InputError(
                    f"feature cache {url} was built from another spec, dataset or model "
                    f"(fingerprint {theirs[:12]}… vs {ours[:12]}…): pass --rebuild to replace it"
                )
            return store
        if existing is not None and ATTR not in existing.attrs and len(list(existing.keys())) and not rebuild:
            raise InputError(f"{url} exists and is not an aacbatch feature set: choose another cache path")
        return cls._create(url, meta, item_index, arrays, lengths or {}, block_size, time_chunk)

    @classmethod
    def _create(cls, url, meta, item_index, arrays, lengths, block_size, time_chunk) -> "FeatureStore":
        import zarr

        group = zarr.open_group(store=url, mode="w")
        n = len(item_index)
        n_blocks = max(1, -(-n // block_size))
        group.create_array("item_index", data=np.asarray(item_index, dtype=np.int64), chunks=(max(n, 1),))
        group.create_array("done", shape=(n_blocks,), chunks=(1,), dtype="uint8", fill_value=0)
        group.create_array("bad", shape=(n,), chunks=(block_size,), dtype="uint8", fill_value=0)
        layout = {}
        for name, spec in arrays.items():
            if spec.ragged:
                lens = np.asarray(lengths[name], dtype=np.int64)
                starts = _aligned_starts(lens, block_size, time_chunk)
                total = int(starts[-1] + lens[-1]) if n else 0
                group.create_array(f"{name}.starts", data=starts, chunks=(max(n, 1),))
                group.create_array(f"{name}.lengths", data=lens, chunks=(max(n, 1),))
                group.create_array(name, shape=(total, *spec.tail), chunks=(time_chunk, *spec.tail),
                                   dtype=spec.dtype, fill_value=0)
            else:
                group.create_array(name, shape=(n, *spec.tail), chunks=(block_size, *spec.tail),
                                   dtype=spec.dtype, fill_value=0, compressors="auto" if spec.compress else None)
            layout[name] = {"tail": list(spec.tail), "dtype": spec.dtype, "ragged": spec.ragged}
        full = dict(meta, format_version=FORMAT_VERSION, n_items=n, block_size=block_size, n_blocks=n_blocks,
                    arrays=layout)
        group.attrs[ATTR] = full
        return cls(url, group)

    # --- writing --------------------------------------------------------------------------

    @property
    def n_items(self) -> int:
        return int(self.meta["n_items"])

    @property
    def n_blocks(self) -> int:
        return int(self.meta["n_blocks"])

    def block_range(self, block: int) -> tuple[int, int]:
        size = int(self.meta["block_size"])
        return block * size, min((block + 1) * size, self.n_items)

    def pending_blocks(self, shard: int = 0, n_shards: int = 1) -> list[int]:
        """Blocks of shard ``shard``/``n_shards`` (block % n_shards == shard) not yet done."""
        done = self.group["done"][:]
        return [b for b in range(shard, self.n_blocks, n_shards) if not done[b]]

    def write_block(self, block: int, values: Mapping[str, Sequence[np.ndarray] | np.ndarray],
                    bad: Sequence[int] = ()) -> None:
        """Write every array of ``block`` and then mark it done (the order makes resume safe).

        ``bad`` lists positions inside the block whose values are placeholders (``--skip-bad``).
        """
        lo, hi = self.block_range(block)
        flags = np.zeros(hi - lo, dtype=np.uint8)
        flags[list(bad)] = 1
        self.group["bad"][lo:hi] = flags
        for name, info in self.meta["arrays"].items():
            data = values[name]
            if info["ragged"]:
                lens = self.group[f"{name}.lengths"][lo:hi]
                starts = self.group[f"{name}.starts"][lo:hi]
                for k, item in enumerate(data):
                    if item.shape[0] != lens[k]:
                        raise ValueError(f"{name}: item {lo + k} has {item.shape[0]} frames, layout expects {lens[k]}")
                if hi > lo:
                    region = np.zeros((int(starts[-1] + lens[-1] - starts[0]), *info["tail"]), dtype=info["dtype"])
                    for k, item in enumerate(data):
                        a = int(starts[k] - starts[0])
                        region[a:a + lens[k]] = item
                    self.group[name][int(starts[0]):int(starts[0]) + region.shape[0]] = region
            else:
                self.group[name][lo:hi] = np.asarray(data, dtype=info["dtype"])
        self.group["done"][block] = 1

    def is_complete(self) -> bool:
        return bool(self.group["done"][:].all())

    def bad_items(self) -> np.ndarray:
        """Positions of items written as placeholders because their input was unusable."""
        return np.flatnonzero(self.group["bad"][:])

    # --- reading --------------------------------------------------------------------------

    @property
    def item_index(self) -> np.ndarray:
        if self._item_index is None:
            self._item_index = self.group["item_index"][:]
        return self._item_index

    def rows(self, item_indices: Sequence[int]) -> np.ndarray:
        """Row positions of dataset items (clip or caption ``idx``); InputError if absent."""
        if not hasattr(self, "_row_of"):
            self._row_of = {int(idx): row for row, idx in enumerate(self.item_index)}
        try:
            return np.array([self._row_of[int(i)] for i in item_indices], dtype=np.int64)
        except KeyError as exc:
            raise InputError(f"feature set {self.url} has no item with dataset index {exc.args[0]}: "
                             "featurize the split (or whole dataset) you use") from None

    def reader(self, name: str, cache_bytes: int = 2 << 30) -> "ArrayReader":
        return ArrayReader(self, name, cache_bytes)


def _aligned_starts(lengths: np.ndarray, block_size: int, time_chunk: int) -> np.ndarray:
    """Start row of each item: contiguous inside a block, each block on a chunk boundary."""
    starts = np.zeros(len(lengths), dtype=np.int64)
    cursor = 0
    for i, length in enumerate(lengths):
        if i % block_size == 0:
            cursor = -(-cursor // time_chunk) * time_chunk
        starts[i] = cursor
        cursor += int(length)
    return starts


class ArrayReader:
    """Batch reads of one array without one small read per item.

    An array that fits in ``cache_bytes`` (default 2 GiB: a whole Clotho log-mel set in
    float16) is decoded in one call on first use — zarr decodes its chunks concurrently —
    and then served from memory. A larger one is read chunk by chunk, each decoded chunk
    kept in an LRU cache of ``cache_bytes``, so a batch costs at most one decode per
    distinct chunk it touches.
    """

    def __init__(self, store: FeatureStore, name: str, cache_bytes: int):
        info = store.meta["arrays"].get(name)
        if info is None:
            raise InputError(f"feature set {store.url} has no array {name!r} (it has {', '.join(store.meta['arrays'])})")
        self.array = store.group[name]
        self.ragged = info["ragged"]
        self.chunk_rows = self.array.chunks[0]
        if self.ragged:
            self.starts = store.group[f"{name}.starts"][:]
            self.lengths = store.group[f"{name}.lengths"][:]
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._held = 0
        self._fits = self.array.nbytes <= cache_bytes
        self._whole: np.ndarray | None = None

    def _chunk(self, c: int) -> np.ndarray:
        if self._whole is not None or (self._whole is None and self._fits):
            if self._whole is None:
                self._whole = self.array[:]
            lo = c * self.chunk_rows
            return self._whole[lo:lo + self.chunk_rows]
        hit = self._cache.get(c)
        if hit is not None:
            self._cache.move_to_end(c)
            return hit
        lo = c * self.chunk_rows
        data = self.array[lo:min(lo + self.chunk_rows, self.array.shape[0])]
        self._cache[c] = data
        self._held += data.nbytes
        while self._held > self._cache_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._held -= old.nbytes
        return data

    def _rows(self, lo: int, hi: int) -> np.ndarray:
        c0, c1 = lo // self.chunk_rows, (hi - 1) // self.chunk_rows if hi > lo else lo // self.chunk_rows
        if c0 == c1:
            base = c0 * self.chunk_rows
            return self._chunk(c0)[lo - base:hi - base]
        return np.concatenate([self._rows(max(lo, c * self.chunk_rows), min(hi, (c + 1) * self.chunk_rows))
                               for c in range(c0, c1 + 1)])

    def __getitem__(self, items: Sequence[int] | np.ndarray) -> list[np.ndarray] | np.ndarray:
        """Items by position: a list of (T_i, ...) arrays when ragged, else an (B, ...) array."""
        items = np.asarray(items, dtype=np.int64)
        if self.ragged:
            return [self._rows(int(self.starts[i]), int(self.starts[i] + self.lengths[i])) for i in items]
        return np.stack([self._rows(int(i), int(i) + 1)[0] for i in items]) if len(items) else np.zeros((0,) + self.array.shape[1:], self.array.dtype)
