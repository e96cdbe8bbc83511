"""Checksummed feature sets: damage is found, named by block, and never read back as zeros.

Two records, because each catches what the other cannot:

* Every chunk object ends with a CRC-32C of its encoded bytes (zarr's standard ``crc32c``
  codec, last in every array's codec chain), so a truncated or altered chunk is caught by any
  zarr reader, ours or not.
* When a block is marked done, its *manifest row* records the size and CRC of every chunk
  object the block owns. A chunk that is missing (zarr would silently read the fill value),
  truncated, or replaced by another self-consistent chunk (a swap, a stale copy) no longer
  matches its record. The record costs nothing to compute — the codec just produced that CRC —
  and is checked without decompressing: the cheap check compares object sizes, a deep verify
  reads each object once at disk speed, and every chunk a reader fetches is compared with its
  record on the way in (:class:`CheckedStore`).

A digest of the *decoded* values was not used: it needs a second pass over decompressed data
per block and can only be checked for a whole block, while readers fetch single chunks.

The manifest is an array with one chunk per block, written by the block's own writer just
before its ``done`` flag, so concurrent shard writers never write the same object. The layout
arrays (``item_index``, ``<ragged>.starts``/``.lengths``) are written once, by the creator,
chunked by block; their records live in the group attributes written by that creator. These
small arrays (and ``done``, ``manifest``) are stored uncompressed — raw little-endian values
followed by the CRC — so a whole set's records are parsed straight from the objects, one
concurrent fetch each, and one damaged object names its block instead of failing the read.
"""

from __future__ import annotations

import asyncio
import atexit
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import google_crc32c
import numpy as np
from zarr.codecs import Crc32cCodec, ZstdCodec
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import WrapperStore

from aacbatch.errors import InputError

MANIFEST = "manifest"
DONE_UNKNOWN = 255  # fill value of ``done``: a flag that was never written (or was deleted)
WRITE_ALL_CHUNKS = {"write_empty_chunks": True}  # every chunk exists, so a missing one is damage
CONCURRENCY = 64
_CHUNK_KEY = re.compile(r"^(?P<array>.+)/c/(?P<coords>\d+(?:/\d+)*)$")


def data_codecs(compress: bool) -> list:
    """Bytes-to-bytes codecs of a data array: CRC-32C last, so it covers what is stored."""
    return [ZstdCodec(level=0), Crc32cCodec()] if compress else [Crc32cCodec()]


RAW_CODECS = [Crc32cCodec()]  # done, manifest, layout arrays: parsed by :func:`parse_raw`


def chunk_key(array: str, first: int, ndim: int) -> str:
    """Key of chunk ``(first, 0, …)`` of an ``ndim``-dimensional array (zarr v3 default keys)."""
    return f"{array}/c/" + "/".join([str(first)] + ["0"] * (ndim - 1))


def split_key(key: str) -> tuple[str, int] | None:
    """``"mel/c/12/0"`` → ``("mel", 12)``; None for metadata keys."""
    m = _CHUNK_KEY.match(key)
    return (m["array"], int(m["coords"].split("/")[0])) if m else None


def crc_of(data) -> int:
    return int(google_crc32c.value(data))


def chunk_problem(data: np.ndarray | None, expected: tuple[int, int] | None) -> str | None:
    """Why a stored chunk object (uint8 bytes, or None if absent) is unusable, or None.

    ``expected`` is its recorded (size, crc); without one only the object's own CRC is checked.
    """
    if data is None:
        return "missing"
    if len(data) < 4:
        return f"truncated ({len(data)} bytes)"
    if expected is not None and len(data) != expected[0]:
        return (f"truncated ({len(data)} of {expected[0]} bytes)" if len(data) < expected[0]
                else f"wrong size ({len(data)} bytes, recorded {expected[0]})")
    trailer = int.from_bytes(bytes(data[-4:]), "little")
    if crc_of(data[:-4]) != trailer:
        return "corrupt (checksum mismatch)"
    if expected is not None and trailer != expected[1]:
        return "holds other data (its checksum differs from the block's record)"
    return None


def record_of(data) -> tuple[int, int]:
    """(size, crc) of an encoded chunk whose last 4 bytes are its CRC-32C."""
    view = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    return len(view), int.from_bytes(bytes(view[-4:]), "little")


def parse_raw(data: np.ndarray | None, dtype: str, expected: tuple[int, int] | None = None) -> np.ndarray | str:
    """Values of an uncompressed chunk (raw little-endian values + CRC), or why it is unusable."""
    problem = chunk_problem(data, expected)
    if problem is not None:
        return problem
    payload = data[:-4]
    if len(payload) % np.dtype(dtype).itemsize:
        return "corrupt (size is not a whole number of values)"
    return np.frombuffer(bytes(payload), dtype=np.dtype(dtype).newbyteorder("<"))


class DamagedCacheError(InputError):
    """A feature set whose stored chunks do not match their records (one line: blocks, why, fix)."""


def damage_line(url: str, damaged: Mapping[int, Iterable[str]], hint: str, max_reasons: int = 4) -> str:
    """``feature cache URL: blocks 3, 7 damaged (block 3: mel chunk 12 missing; …): run HINT``."""
    blocks = sorted(damaged)
    reasons = [r if len(blocks) == 1 else f"block {b}: {r}" for b in blocks for r in damaged[b]]
    shown = "; ".join(reasons[:max_reasons]) + (f"; and {len(reasons) - max_reasons} more" if len(reasons) > max_reasons else "")
    label = f"block {blocks[0]}" if len(blocks) == 1 else "blocks " + ", ".join(map(str, blocks))
    return f"feature cache {url}: {label} damaged ({shown}): run {hint}"


class ChunkMap:
    """Which chunk objects each block owns, derived from the layout (no keys are stored).

    Data arrays, in manifest slot order, are the set's arrays sorted by name, then ``bad``.
    A dense array (or ``bad``) chunk ``b`` belongs to block ``b``; a ragged block owns the
    time chunks from its first item's start (a chunk boundary) up to the one holding its
    last row. ``ragged[name]`` is ``(starts, lengths, time_chunk)`` with (n,) int64 arrays;
    a block whose layout could not be read has start -1 and owns no known chunks.
    """

    def __init__(self, meta: Mapping, ragged: Mapping[str, tuple[np.ndarray, np.ndarray, int]]):
        self.n_items, self.block_size, self.n_blocks = int(meta["n_items"]), int(meta["block_size"]), int(meta["n_blocks"])
        arrays = meta["arrays"]
        self.names = sorted(arrays) + ["bad"]
        self.ndim = {name: 1 + len(arrays[name]["tail"]) for name in arrays} | {"bad": 1}
        self.ragged_names = [name for name in sorted(arrays) if arrays[name]["ragged"]]
        self._ranges: dict[str, np.ndarray] = {}  # name → (n_blocks, 2) chunk range per block
        self._chunk_block: dict[str, np.ndarray] = {}  # name → block owning each time chunk, -1 if unknown
        for name, (starts, lengths, time_chunk) in ragged.items():
            ranges = np.zeros((self.n_blocks, 2), dtype=np.int64)
            for b in range(self.n_blocks):
                lo, hi = self.block_range(b)
                if hi > lo and starts[lo] >= 0 and starts[hi - 1] >= 0:
                    end = int(starts[hi - 1] + lengths[hi - 1])
                    ranges[b] = (int(starts[lo]) // time_chunk, -(-end // time_chunk))
            owner = np.full(int(ranges[:, 1].max(initial=0)), -1, dtype=np.int64)
            for b, (c0, c1) in enumerate(ranges):
                owner[c0:c1] = b
            self._ranges[name], self._chunk_block[name] = ranges, owner

    def block_range(self, block: int) -> tuple[int, int]:
        return block * self.block_size, min((block + 1) * self.block_size, self.n_items)

    def data_keys(self, block: int) -> list[str]:
        """Keys of the data chunks ``block`` owns, in manifest slot order."""
        lo, hi = self.block_range(block)
        if hi <= lo:
            return []
        keys = []
        for name in self.names:
            if name in self._ranges:
                c0, c1 = self._ranges[name][block]
                keys += [chunk_key(name, c, self.ndim[name]) for c in range(c0, c1)]
            else:
                keys.append(chunk_key(name, block, self.ndim[name]))
        return keys

    def width(self) -> int:
        """Manifest row width: the block number, then (size, crc) per owned chunk."""
        return 1 + 2 * max((len(self.data_keys(b)) for b in range(self.n_blocks)), default=0)

    def block_of(self, key: str) -> int | None:
        parsed = split_key(key)
        if parsed is None:
            return None
        array, first = parsed
        if array in self._chunk_block:
            owner = self._chunk_block[array]
            return int(owner[first]) if first < len(owner) and owner[first] >= 0 else None
        return first  # one chunk per block: dense arrays, bad, done, manifest, layout arrays

    @staticmethod
    def describe(key: str) -> str:
        array, first = split_key(key)
        return f"{array} flag" if array == "done" else f"{array} record" if array == MANIFEST else f"{array} chunk {first}"


def layout_arrays(ragged_names: Iterable[str]) -> list[str]:
    return ["item_index"] + [f"{name}.{part}" for name in ragged_names for part in ("starts", "lengths")]


@dataclass
class ChunkGuard:
    """What every chunk fetched through a :class:`CheckedStore` is checked against.

    ``expected`` maps chunk keys to their recorded (size, crc); ``strict`` (readers) refuses
    any absent chunk, the lenient writer mode lets zarr see an absent chunk of a block not yet
    written. ``written`` collects the (size, crc) of chunks this process stores.
    """

    url: str
    hint: str
    chunk_map: ChunkMap | None = None
    expected: dict[str, tuple[int, int]] = field(default_factory=dict)
    strict: bool = False
    written: dict[str, tuple[int, int]] = field(default_factory=dict)

    def check(self, key: str, data: np.ndarray | None) -> None:
        expected = self.expected.get(key)
        if data is None and expected is None and not self.strict:
            return
        problem = chunk_problem(data, expected)
        if problem is not None:
            raise self.error(key, problem)

    def error(self, key: str, problem: str) -> DamagedCacheError:
        _settle_zarr_at_exit()
        block = self.chunk_map.block_of(key) if self.chunk_map is not None else None
        what = f"{ChunkMap.describe(key)} {problem}"
        if block is None:
            return DamagedCacheError(f"feature cache {self.url}: {what}: run {self.hint}")
        if problem == "missing" and key not in self.expected and split_key(key)[0] != "done":
            return DamagedCacheError(f"feature cache {self.url}: block {block} is not computed yet ({what}): "
                                     f"finish it with {self.hint.replace(' --repair', '')}")
        return DamagedCacheError(damage_line(self.url, {block: [what]}, self.hint))


class CheckedStore(WrapperStore):
    """A zarr store that checks every whole chunk it returns and records every chunk it stores."""

    def __init__(self, store, guard: ChunkGuard):
        super().__init__(store)
        self.guard = guard

    def _with_store(self, store):
        return type(self)(store, self.guard)

    async def get(self, key, prototype, byte_range=None):
        buf = await self._store.get(key, prototype, byte_range)
        if byte_range is None and split_key(key) is not None:
            self.guard.check(key, None if buf is None else buf.as_numpy_array())
        return buf

    async def set(self, key, value) -> None:
        if split_key(key) is not None:
            self.guard.written[key] = record_of(value.as_numpy_array())
        await self._store.set(key, value)

    async def getsize(self, key: str) -> int:
        return await self._store.getsize(key)


# --- reading a set's records and verifying its chunks ---------------------------------------


async def _map_limited(func, items: list, limit: int = CONCURRENCY) -> list:
    """``[await func(x) for x in items]`` with at most ``limit`` in flight (no task per item)."""
    results: list = [None] * len(items)
    cursor = iter(range(len(items)))

    async def worker() -> None:
        for i in cursor:
            results[i] = await func(items[i])

    await asyncio.gather(*(worker() for _ in range(min(limit, len(items)))))
    return results


async def _fetch(store, key: str) -> np.ndarray | None:
    buf = await store.get(key, default_buffer_prototype())
    return None if buf is None else buf.as_numpy_array()


async def _size(store, key: str) -> int | None:
    try:
        return await store.getsize(key)
    except FileNotFoundError:
        return None


def fetch_all(store, keys: list[str]) -> list[np.ndarray | None]:
    """Raw bytes of ``keys`` (None where absent), fetched concurrently from a zarr store."""
    return sync(_map_limited(lambda k: _fetch(store, k), keys))


def sizes_of(store, keys: list[str]) -> list[int | None]:
    return sync(_map_limited(lambda k: _size(store, k), keys))


@dataclass
class Records:
    """A set's records as read from its objects: layout, done flags, manifest rows, damage."""

    chunk_map: ChunkMap
    ragged: dict[str, tuple[np.ndarray, np.ndarray, int]]
    done: np.ndarray  # (n_blocks,) bool: flag read and equal to 1
    expected: dict[str, tuple[int, int]]  # data chunk → (size, crc) of done, readable blocks
    damage: dict[int, list[str]]


def read_layout(store, meta: Mapping) -> tuple[dict[str, tuple[np.ndarray, np.ndarray, int]], dict[int, list[str]]]:
    """The ragged arrays' (starts, lengths, time_chunk), every layout chunk checked against its
    record; a block with an unreadable layout chunk gets start -1 and a damage reason."""
    n, size, n_blocks = int(meta["n_items"]), int(meta["block_size"]), int(meta["n_blocks"])
    ragged_names = [name for name in sorted(meta["arrays"]) if meta["arrays"][name]["ragged"]]
    records = {k: tuple(v) for k, v in meta.get("layout_chunks", {}).items()}
    names = layout_arrays(ragged_names)
    blocks = [b for b in range(n_blocks) if b * size < n]
    keys = [chunk_key(name, b, 1) for b in blocks for name in names]
    values = dict(zip(keys, fetch_all(store, keys)))
    damage: dict[int, list[str]] = {}
    columns = {name: np.full(n, -1, dtype=np.int64) for name in names}
    for b in blocks:
        lo, hi = b * size, min((b + 1) * size, n)
        for name in names:
            key = chunk_key(name, b, 1)
            parsed = parse_raw(values[key], "int64", records.get(key, (-1, -1)))
            if isinstance(parsed, str) or len(parsed) < hi - lo:
                damage.setdefault(b, []).append(f"{ChunkMap.describe(key)} {parsed if isinstance(parsed, str) else 'too short'}")
                columns[name][lo:hi] = -1
                if name.endswith((".starts", ".lengths")):
                    columns[name.rsplit(".", 1)[0] + ".starts"][lo:hi] = -1
            else:
                columns[name][lo:hi] = parsed[:hi - lo]
    ragged = {name: (columns[f"{name}.starts"], columns[f"{name}.lengths"], int(meta["arrays"][name]["chunk_rows"]))
              for name in ragged_names}
    return ragged, damage


def read_records(store, meta: Mapping) -> Records:
    """Everything the checks need, from ``n_blocks`` × (layout + done + manifest) small objects."""
    ragged, damage = read_layout(store, meta)
    chunk_map = ChunkMap(meta, ragged)
    n_blocks = chunk_map.n_blocks
    done = np.zeros(n_blocks, dtype=bool)
    for b, data in enumerate(fetch_all(store, [chunk_key("done", b, 1) for b in range(n_blocks)])):
        flag = parse_raw(data, "uint8")
        if isinstance(flag, str):
            damage.setdefault(b, []).append(f"done flag {flag}")
        else:
            done[b] = flag[0] == 1
    # Rows only after the flags: a writer stores the row before the flag, so a block read as
    # done has its final row even while other shards are still writing.
    checked = [int(b) for b in np.flatnonzero(done) if b not in damage]  # unreadable layout: chunks unknown
    expected: dict[str, tuple[int, int]] = {}
    for b, data in zip(checked, fetch_all(store, [chunk_key(MANIFEST, b, 2) for b in checked])):
        row = parse_raw(data, "int64")
        keys = chunk_map.data_keys(b)
        if isinstance(row, str):
            damage.setdefault(b, []).append(f"{MANIFEST} record {row}")
        elif row[0] != b or len(row) < 1 + 2 * len(keys) or (row[1 + 2 * len(keys):] != -1).any():
            damage.setdefault(b, []).append(f"{MANIFEST} record belongs to another block or layout")
        else:
            expected.update((k, (int(row[1 + 2 * i]), int(row[2 + 2 * i]))) for i, k in enumerate(keys))
    return Records(chunk_map, ragged, done, expected, damage)


def manifest_row(block: int, records: list[tuple[int, int]], width: int) -> np.ndarray:
    """(width,) int64: the block number, then (size, crc) of each owned chunk, -1 padded."""
    row = np.full(width, -1, dtype=np.int64)
    row[0] = block
    for i, (size, crc) in enumerate(records):
        row[1 + 2 * i:3 + 2 * i] = (size, crc)
    return row


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`aacbatch.cache.FeatureStore.verify` found.

    ``damaged`` maps each damaged block to its reasons (``"mel chunk 12 missing"``). A
    pending block (not done) is not damage: featurize computes it anyway. ``note`` says why a
    check could not be made (a format-1 set has no checksums).
    """

    url: str
    deep: bool
    checksums: bool
    n_blocks: int
    done_blocks: int
    chunks_checked: int
    bytes_read: int
    damaged: dict[int, tuple[str, ...]]
    note: str | None = None

    @property
    def ok(self) -> bool:
        return not self.damaged

    @property
    def damaged_blocks(self) -> list[int]:
        return sorted(self.damaged)

    def line(self, hint: str) -> str:
        """One line for the user: what is wrong and the command that fixes it."""
        if self.damaged:
            return damage_line(self.url, self.damaged, hint)
        what = "deep" if self.deep else "quick"
        head = f"feature cache {self.url}: {self.done_blocks}/{self.n_blocks} blocks done"
        if not self.checksums:
            return f"{head}; {self.note}"
        return f"{head}, {self.chunks_checked} chunks pass the {what} check ({self.bytes_read:,} bytes read)"


def verify(store, meta: Mapping, url: str, deep: bool, records: Records | None = None) -> VerifyReport:
    """Check every done block's chunks: sizes against the records (cheap), or each object's
    bytes against its CRC and record (``deep``). ``store`` is the set's raw zarr store;
    ``records`` (default: read now) are its records as read by :func:`read_records`."""
    records = records or read_records(store, meta)
    damage = {b: list(r) for b, r in records.damage.items()}
    keys = list(records.expected)
    bytes_read = 0
    if deep:
        async def check(key: str) -> tuple[str | None, int]:
            data = await _fetch(store, key)  # dropped once checked: memory stays ~CONCURRENCY chunks
            return chunk_problem(data, records.expected[key]), 0 if data is None else len(data)

        for key, (problem, n_bytes) in zip(keys, sync(_map_limited(check, keys))):
            bytes_read += n_bytes
            if problem:
                damage.setdefault(records.chunk_map.block_of(key), []).append(f"{ChunkMap.describe(key)} {problem}")
    else:
        for key, size in zip(keys, sizes_of(store, keys)):
            recorded = records.expected[key][0]
            if size is None or size != recorded:
                problem = ("missing" if size is None else f"truncated ({size} of {recorded} bytes)" if size < recorded
                           else f"wrong size ({size} bytes, recorded {recorded})")
                damage.setdefault(records.chunk_map.block_of(key), []).append(f"{ChunkMap.describe(key)} {problem}")
    return VerifyReport(url, deep, True, records.chunk_map.n_blocks, int(records.done.sum()), len(keys), bytes_read,
                        {b: tuple(r) for b, r in sorted(damage.items())})


# --- quiet exit after a refused read ------------------------------------------------------

_settle_registered = False


def _settle_zarr_at_exit() -> None:
    """A refused chunk fails zarr's gather while sibling chunk reads still run on zarr's IO
    loop; let them finish before interpreter exit so asyncio does not print "Task was
    destroyed but it is pending" after the one-line error."""
    global _settle_registered
    if not _settle_registered:
        _settle_registered = True
        atexit.register(_settle)


def _settle(timeout: float = 2.0) -> None:
    async def wait_others() -> None:
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if others:
            await asyncio.wait(others, timeout=timeout)

    try:
        sync(wait_others())
    except Exception:  # the loop may already be gone; nothing left to wait for then
        pass
