"""Zarr feature sets: computed once, resumable, shardable, self-describing.

Layout of one feature set (a Zarr v3 group, on a local path or any fsspec URL)::

    attrs["aacbatch"]   kind, spec, fingerprint, format version, item count, block size,
                        the command that rebuilds it, the layout chunks' (size, crc) records
    item_index (n,)     dataset row index (clip or caption ``idx``) of each item
    <array> (n, ...)    dense per-item arrays (tag scores, token ids, image embeddings),
                        chunked by block along the item axis
    <array> (F, ...)    ragged per-item arrays (log-mels, encoded frames): all items
                        concatenated along time, item i at rows ``starts[i] : starts[i]+lengths[i]``
    <array>.starts/.lengths (n,)
    bad (n,)            1 where an item's input was unusable and its values are placeholders
    manifest (n_blocks, W)  per block: the (size, crc) of every chunk it owns; one chunk per block
    done (n_blocks,)    1 once a block is fully written; one chunk per block

Items are processed in fixed blocks of ``block_size`` items. Each block owns whole chunks of
every array — ragged blocks start on a chunk boundary — so processes working on different
blocks (``--shard K/N``) never write the same chunk, and a block interrupted mid-write is
simply rewritten on resume, giving byte-identical arrays. Completion is the ``done`` array,
never an attribute that concurrent writers would race on.

Format 2 checksums every chunk and records each block's chunks when it is marked done
(:mod:`aacbatch.cache_integrity`): readers refuse a damaged set with one line naming its
blocks, :meth:`FeatureStore.verify` reports them, :meth:`FeatureStore.repair` marks them for
recomputation. Format-1 sets (no checksums) are still read as before; ``verify`` says so.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from zarr.core.sync import sync

from aacbatch.cache_integrity import (DONE_UNKNOWN, MANIFEST, RAW_CODECS, WRITE_ALL_CHUNKS, CheckedStore, ChunkGuard,
                                      ChunkMap, DamagedCacheError, VerifyReport, damage_line, data_codecs,
                                      layout_arrays, manifest_row, read_layout, read_records, split_key, verify)
from aacbatch.config import Settings
from aacbatch.errors import InputError
from aacbatch.names import inside

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: written before checksums; read as before, verify says it has none
NO_CHECKSUMS = ("format 1 has no checksums (a missing chunk reads as zeros, an altered one goes unnoticed): "
                "rebuild it with --rebuild to get them")
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
    """Where a feature set lives: ``<cache>/<dataset>/<set>.zarr`` (a path or an fsspec URL),
    refused if the names would lead outside the cache root (names are checked when they are
    created; this also guards names registered before that check existed)."""
    if isinstance(settings.cache_dir, str):  # an fsspec URL: zarr opens it through fsspec
        for part in (dataset, set_name):
            if "/" in part or part in ("", ".", ".."):
                raise InputError(f"name {part!r} would be outside the cache {settings.cache_dir}: rename it")
        return f"{settings.cache_dir}/{dataset}/{set_name}.zarr"
    root = Path(settings.cache_dir)
    return str(inside(root, root / dataset / f"{set_name}.zarr", "feature cache"))


def _open_group(url: str, mode: str):
    try:
        return zarr.open_group(store=url, mode=mode)
    except FileNotFoundError:
        return None
    except Exception as exc:  # unreadable metadata, wrong zarr format, …
        raise InputError(f"feature cache {url} cannot be opened ({str(exc).splitlines()[0]}): delete it or pass --rebuild") from exc


class FeatureStore:
    """Reader/writer for one feature set group.

    Opened for reading (``mode="r"``), a format-2 store fetches every chunk through a
    :class:`~aacbatch.cache_integrity.CheckedStore` that refuses a missing, truncated or
    altered chunk with one line naming its block, instead of letting zarr fill it with zeros.
    """

    def __init__(self, url: str, group, writable: bool = False):
        self.url = url
        self.meta: dict = dict(group.attrs.get(ATTR, {}))
        self.writable = writable
        self._raw = group.store  # unchecked: verify reads damaged objects without raising
        self._item_index = None
        self._ragged = None
        self._chunk_map = None
        self._intact = False
        self._records = None  # read on opening for reading; the readers' check reuses them
        self.guard = None
        if self.checksums:
            self.guard = ChunkGuard(url, self.repair_hint(), strict=not writable,
                                    expected={k: tuple(v) for k, v in self.meta["layout_chunks"].items()})
            group = zarr.open_group(store=CheckedStore(group.store, self.guard), mode="r+" if writable else "r")
            if not writable:
                self._records = read_records(self._raw, self.meta)
                self.guard.chunk_map, self._ragged = self._records.chunk_map, self._records.ragged
                self.guard.expected.update(self._records.expected)
        self.group = group

    @property
    def checksums(self) -> bool:
        """False for a format-1 set, written before chunks carried checksums."""
        return int(self.meta.get("format_version", 0)) >= 2

    def repair_hint(self, flag: str = "--repair") -> str:
        """The command that repairs (or, with ``flag="--rebuild"``, rebuilds) this set."""
        command = self.meta.get("command")
        return f"{command} {flag}" if command else f"the command that built it again with {flag}"

    # --- creation and opening -------------------------------------------------------------

    @classmethod
    def open(cls, url: str, mode: str = "r") -> "FeatureStore":
        """Open an existing feature set; refuse groups we did not write or cannot read."""
        group = _open_group(url, mode)
        if group is None or ATTR not in group.attrs:
            raise InputError(f"{url} is not an aacbatch feature set: featurize it first")
        version = group.attrs[ATTR].get("format_version")
        if version not in READABLE_VERSIONS:
            raise InputError(
                f"feature cache {url} has format version {version}, this aacbatch reads "
                f"{', '.join(map(str, READABLE_VERSIONS))}: rebuild it with this version (--rebuild) or upgrade aacbatch"
            )
        return cls(url, group, writable=mode != "r")

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
        time length of each ragged array, known before any compute. ``meta["command"]``, if
        given, is the command that builds the set, quoted (with ``--repair``/``--rebuild``) in
        damage messages.
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
            if meta.get("command"):
                store.meta.setdefault("command", meta["command"])  # a format-1 set did not record it
            return store
        if existing is not None and ATTR not in existing.attrs and len(list(existing.keys())) and not rebuild:
            raise InputError(f"{url} exists and is not an aacbatch feature set: choose another cache path")
        return cls._create(url, meta, item_index, arrays, lengths or {}, block_size, time_chunk)

    @classmethod
    def _create(cls, url, meta, item_index, arrays, lengths, block_size, time_chunk) -> "FeatureStore":
        """Write the layout through a recording store, then the attributes (last: a shard
        waiting for the layout opens the group only once they exist)."""
        raw_group = zarr.open_group(store=url, mode="w")
        guard = ChunkGuard(url, "")
        group = zarr.open_group(store=CheckedStore(raw_group.store, guard), mode="r+")
        n = len(item_index)
        n_blocks = max(1, -(-n // block_size))
        small = {"chunks": (block_size,), "compressors": RAW_CODECS, "config": WRITE_ALL_CHUNKS}
        group.create_array("item_index", data=np.asarray(item_index, dtype=np.int64), **small)
        group.create_array("done", shape=(n_blocks,), chunks=(1,), dtype="uint8", fill_value=DONE_UNKNOWN,
                           compressors=RAW_CODECS, config=WRITE_ALL_CHUNKS)[:] = 0
        group.create_array("bad", shape=(n,), chunks=(block_size,), dtype="uint8", fill_value=0,
                           compressors=data_codecs(True), config=WRITE_ALL_CHUNKS)
        layout, ragged = {}, {}
        for name, spec in arrays.items():
            if spec.ragged:
                lens = np.asarray(lengths[name], dtype=np.int64)
                starts = _aligned_starts(lens, block_size, time_chunk)
                total = int(starts[-1] + lens[-1]) if n else 0
                group.create_array(f"{name}.starts", data=starts, **small)
                group.create_array(f"{name}.lengths", data=lens, **small)
                group.create_array(name, shape=(total, *spec.tail), chunks=(time_chunk, *spec.tail), dtype=spec.dtype,
                                   fill_value=0, compressors=data_codecs(spec.compress), config=WRITE_ALL_CHUNKS)
                ragged[name] = (starts, lens, time_chunk)
            else:
                group.create_array(name, shape=(n, *spec.tail), chunks=(block_size, *spec.tail), dtype=spec.dtype,
                                   fill_value=0, compressors=data_codecs(spec.compress), config=WRITE_ALL_CHUNKS)
            layout[name] = {"tail": list(spec.tail), "dtype": spec.dtype, "ragged": spec.ragged,
                            "chunk_rows": time_chunk if spec.ragged else block_size}
        full = dict(meta, format_version=FORMAT_VERSION, n_items=n, block_size=block_size, n_blocks=n_blocks,
                    arrays=layout)
        chunk_map = ChunkMap(full, ragged)
        width = chunk_map.width()
        group.create_array(MANIFEST, shape=(n_blocks, width), chunks=(1, width), dtype="int64", fill_value=-1,
                           compressors=RAW_CODECS, config=WRITE_ALL_CHUNKS)
        small_arrays = set(layout_arrays(chunk_map.ragged_names))
        full["layout_chunks"] = {k: list(v) for k, v in guard.written.items() if split_key(k)[0] in small_arrays}
        raw_group.attrs[ATTR] = full
        return cls(url, raw_group, writable=True)

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
        return [b for b in range(shard, self.n_blocks, n_shards) if done[b] != 1]

    def write_block(self, block: int, values: Mapping[str, Sequence[np.ndarray] | np.ndarray],
                    bad: Sequence[int] = ()) -> None:
        """Write every array of ``block``, then its manifest row, then mark it done (the order
        makes resume safe: a block is either done with its record or rewritten).

        ``bad`` lists positions inside the block whose values are placeholders (``--skip-bad``).
        Ragged regions are padded to the block's last chunk boundary so every chunk is written
        whole (zarr never has to read back a chunk it is overwriting).
        """
        lo, hi = self.block_range(block)
        ragged = self._ragged_layout()  # first: nothing is written over a damaged layout
        if self.guard is not None:
            self.guard.written.clear()
        flags = np.zeros(hi - lo, dtype=np.uint8)
        flags[list(bad)] = 1
        self._writable("bad")[lo:hi] = flags
        for name, info in self.meta["arrays"].items():
            data = values[name]
            if info["ragged"]:
                starts_all, lens_all, time_chunk = ragged[name]
                lens, starts = lens_all[lo:hi], starts_all[lo:hi]
                for k, item in enumerate(data):
                    if item.shape[0] != lens[k]:
                        raise ValueError(f"{name}: item {lo + k} has {item.shape[0]} frames, layout expects {lens[k]}")
                if hi > lo:
                    array = self._writable(name)
                    end = int(starts[-1] + lens[-1])
                    stop = min(-(-end // time_chunk) * time_chunk, array.shape[0])
                    region = np.zeros((stop - int(starts[0]), *info["tail"]), dtype=info["dtype"])
                    for k, item in enumerate(data):
                        a = int(starts[k] - starts[0])
                        region[a:a + lens[k]] = item
                    array[int(starts[0]):stop] = region
            else:
                self._writable(name)[lo:hi] = np.asarray(data, dtype=info["dtype"])
        if self.guard is not None:
            self._record_block(block)
        self._writable("done")[block] = 1

    def _record_block(self, block: int) -> None:
        keys = self._chunks().data_keys(block)
        unstored = [k for k in keys if k not in self.guard.written]
        if unstored:  # every owned chunk is written whole, so this is a bug, not bad input
            raise RuntimeError(f"{self.url}: block {block} did not store chunks {', '.join(unstored[:3])}")
        manifest = self._writable(MANIFEST)
        manifest[block] = manifest_row(block, [self.guard.written[k] for k in keys], manifest.shape[1])

    def _writable(self, name: str):
        """Array ``name`` writing every chunk, even one equal to the fill value (its absence
        would otherwise be indistinguishable from a deleted chunk); format 1 kept zarr's default."""
        array = self.group[name]
        return array.with_config(WRITE_ALL_CHUNKS) if self.checksums else array

    def _ragged_layout(self) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
        """name → (starts (n,), lengths (n,), time chunk) of each ragged array, read once."""
        if self._ragged is None:
            if self.checksums:
                ragged, damage = read_layout(self._raw, self.meta)
                if damage:
                    raise DamagedCacheError(damage_line(self.url, damage, self.repair_hint()))
            else:
                ragged = {name: (self.group[f"{name}.starts"][:], self.group[f"{name}.lengths"][:],
                                 self.group[name].chunks[0])
                          for name, info in self.meta["arrays"].items() if info["ragged"]}
            self._ragged = ragged
        return self._ragged

    def _chunks(self) -> ChunkMap:
        if self._chunk_map is None:
            self._chunk_map = ChunkMap(self.meta, self._ragged_layout())
        return self._chunk_map

    def is_complete(self) -> bool:
        return bool((self.group["done"][:] == 1).all())

    def bad_items(self) -> np.ndarray:
        """Positions of items written as placeholders because their input was unusable."""
        if not self.writable:
            self.require_intact()
        return np.flatnonzero(self.group["bad"][:])

    # --- integrity ------------------------------------------------------------------------

    def verify(self, deep: bool = True) -> VerifyReport:
        """Find missing, truncated and altered chunks of done blocks, and name their blocks.

        ``deep=False`` is the cheap check: every done block's records readable and every chunk
        object present with its recorded size (one size query per chunk, no data read).
        ``deep=True`` also reads every chunk once and checks its CRC against the codec's and
        the block's record, which catches flipped bytes and swapped chunks.
        """
        if not self.checksums:
            done = self.group["done"][:]
            return VerifyReport(self.url, deep, False, self.n_blocks, int((done == 1).sum()), 0, 0, {}, NO_CHECKSUMS)
        return verify(self._raw, self.meta, self.url, deep)

    def require_intact(self) -> None:
        """The cheap check, once per opened store; DamagedCacheError (one line: the blocks,
        why, and the command that repairs them) if it fails. Readers call it."""
        if not self._intact:
            report = (verify(self._raw, self.meta, self.url, False, self._records) if self._records is not None
                      else self.verify(deep=False))
            if not report.ok:
                raise DamagedCacheError(report.line(self.repair_hint()))
            self._intact = True

    def invalidate(self, blocks: Iterable[int]) -> None:
        """Mark ``blocks`` not done, so the featurize job recomputes exactly them. Blocks are
        deterministic and own their chunks, so the recomputed arrays are byte-identical."""
        if not self.writable:
            raise ValueError(f"{self.url} is open read-only")
        done = self._writable("done")
        for block in sorted(set(blocks)):
            done[block] = 0

    def repair(self, item_index: np.ndarray, lengths: Mapping[str, np.ndarray],
               shard: tuple[int, int] = (0, 1)) -> list[int]:
        """Deep-verify, restore damaged layout chunks from ``item_index`` (n,) and the ragged
        ``lengths`` (the values the set was created from), and invalidate the damaged blocks
        of ``shard``; returns those blocks (recompute them with the usual pending loop)."""
        if not self.checksums:
            raise InputError(f"feature cache {self.url} has format version 1, without checksums, so damage cannot be "
                             f"located: run {self.repair_hint('--rebuild')}")
        k, n_shards = shard
        blocks = [b for b in self.verify(deep=True).damaged_blocks if b % n_shards == k]
        if blocks:
            self._rewrite_layout(blocks, np.asarray(item_index, dtype=np.int64), lengths)
            self.invalidate(blocks)
        return blocks

    def _rewrite_layout(self, blocks: list[int], item_index: np.ndarray, lengths: Mapping[str, np.ndarray]) -> None:
        """Rewrite ``blocks``' layout chunks (whole chunks) and update their records if the
        encoding changed; the attribute write is the creator's, so repair runs on its own."""
        if len(item_index) != self.n_items:
            raise ValueError(f"{self.url}: repair got {len(item_index)} items, the set has {self.n_items}")
        size = int(self.meta["block_size"])
        columns = {"item_index": item_index}
        for name, info in self.meta["arrays"].items():
            if info["ragged"]:
                lens = np.asarray(lengths[name], dtype=np.int64)
                columns[f"{name}.starts"] = _aligned_starts(lens, size, int(info["chunk_rows"]))
                columns[f"{name}.lengths"] = lens
        self.guard.written.clear()
        for block in blocks:
            lo, hi = self.block_range(block)
            for name, values in columns.items():
                if hi > lo:
                    self._writable(name)[lo:hi] = values[lo:hi]
        records = dict(self.meta["layout_chunks"]) | {key: list(v) for key, v in self.guard.written.items()}
        if records != self.meta["layout_chunks"]:
            self.meta["layout_chunks"] = records
            self.group.attrs[ATTR] = self.meta
        self.guard.expected.update((key, tuple(v)) for key, v in records.items())
        self._ragged = self._chunk_map = None

    # --- reading --------------------------------------------------------------------------

    @property
    def item_index(self) -> np.ndarray:
        if self._item_index is None:
            if not self.writable:
                self.require_intact()
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
        """Batch reader of array ``name``, after the cheap integrity check (so training and
        evaluation refuse a damaged set up front, not midway)."""
        self.require_intact()
        return ArrayReader(self, name, cache_bytes)


async def _gather(reads: list) -> list:
    """``reads`` awaited together on zarr's event loop (where :func:`sync` runs this)."""
    return await asyncio.gather(*reads)


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
    and then served from memory. A larger one is read chunk-aligned: the chunks a batch
    touches are decoded together in one call and kept in an LRU cache of ``cache_bytes``, so
    a batch costs at most one decode per distinct chunk it touches.
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
        if hit is None:
            self._fetch([c])
            hit = self._cache[c]
        self._cache.move_to_end(c)
        return hit

    def _fetch(self, chunks: Sequence[int]) -> None:
        """Decode the uncached ``chunks`` in one concurrent zarr call (one call per chunk costs
        ~3 ms of event-loop round trip each) and keep them, evicting the least recently used
        chunks outside this request while over the budget."""
        wanted = {int(c) for c in chunks}
        missing = sorted(wanted - set(self._cache))
        if not missing:
            return
        rows = self.array.shape[0]
        reads = [self.array.async_array.getitem(slice(c * self.chunk_rows, min((c + 1) * self.chunk_rows, rows)))
                 for c in missing]
        for c, data in zip(missing, sync(_gather(reads))):
            self._cache[c] = data
            self._held += data.nbytes
        for c in list(self._cache):
            if self._held <= self._cache_bytes:
                break
            if c not in wanted:
                self._held -= self._cache.pop(c).nbytes

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
            return self.windows(items, np.zeros(len(items), np.int64), self.lengths[items])
        return np.stack([self._rows(int(i), int(i) + 1)[0] for i in items]) if len(items) else np.zeros((0,) + self.array.shape[1:], self.array.dtype)

    def windows(self, items: np.ndarray, offsets: np.ndarray, sizes: np.ndarray) -> list[np.ndarray]:
        """Of ragged items, (sizes[k], ...) frames from ``offsets[k]`` on: only the chunks a
        window touches are read — all of a batch's in one call — so a 10 s crop of a 5-minute
        clip costs a 10 s read, and a set larger than the budget is read chunk-aligned."""
        lo = self.starts[items] + offsets
        hi = lo + sizes
        if not self._fits and len(items):
            first, last = lo // self.chunk_rows, np.maximum(hi - 1, lo) // self.chunk_rows
            self._fetch(np.concatenate([np.arange(a, b + 1) for a, b in zip(first, last)]))
        return [self._rows(int(a), int(b)) for a, b in zip(lo, hi)]
