"""Checksummed feature sets: every kind of chunk damage is found by verify (naming its
blocks), refused by readers with one line, and repaired byte-identically; format-1 sets are
still read; concurrent shard writers still produce a verifiable set."""

from __future__ import annotations

import multiprocessing as mp
import re
import shutil
import subprocess
import sys
from pathlib import Path

import google_crc32c
import numpy as np
import pytest

from aacbatch.cache import ArraySpec, FeatureStore
from aacbatch.cache_integrity import DamagedCacheError
from aacbatch.data.ingest import ingest
from aacbatch.errors import InputError
from aacbatch.featurize.job import featurize

from conftest import make_clotho

FORMAT1 = Path(__file__).parent / "data" / "format1.zarr"


# --- damage and comparison helpers --------------------------------------------------------


def tree(url: str | Path) -> dict[str, bytes]:
    """Every stored object of a set, by relative path: the strongest "byte-identical"."""
    root = Path(url)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def damage(url: str | Path, key: str, how: str, other: str | None = None) -> None:
    path = Path(url) / key
    data = path.read_bytes()
    if how == "delete":
        path.unlink()
    elif how == "truncate":
        path.write_bytes(data[:len(data) // 2])
    elif how == "flip":
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0x5A
        path.write_bytes(bytes(flipped))
    elif how == "swap":
        other_path = Path(url) / other
        theirs = other_path.read_bytes()
        assert theirs != data
        path.write_bytes(theirs)
        other_path.write_bytes(data)
    else:
        raise ValueError(how)


def read_everything(store: FeatureStore) -> None:
    """What training and evaluation do with a set: its rows, flags and every array."""
    store.rows(store.item_index)
    store.is_complete()
    store.bad_items()
    for name in store.meta["arrays"]:
        store.reader(name)[np.arange(store.n_items)]


def blocks_pattern(blocks: list[int]) -> str:
    label = f"block {blocks[0]}" if len(blocks) == 1 else "blocks " + ", ".join(map(str, blocks))
    return rf"^feature cache \S+: {label} damaged \(.+\): run aacbatch featurize \S+ --dataset \S+ --repair$"


# --- through the featurize job (mel: ragged; tokens: dense) -------------------------------


@pytest.fixture
def dataset(registry, tmp_path) -> str:
    ingest(registry, "clotho", make_clotho(tmp_path / "c", {"development": 8, "validation": 3, "evaluation": 3}), name="c")
    return "c"


@pytest.fixture
def specs(tmp_path) -> dict[str, str]:
    """Small blocks, so a few clips make several blocks: mel 5 blocks, tokens 5 blocks."""
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "mel.toml").write_text('kind = "mel"\ndtype = "float16"\nblock_size = 3\n')
    (folder / "tokens.toml").write_text('kind = "tokens"\nblock_size = 16\n')
    return {name: str(folder / f"{name}.toml") for name in ("mel", "tokens")}


JOB_CASES = [  # (spec, damaged object, how, other object, damaged blocks)
    ("mel", "mel/c/2/0", "delete", None, [2]),
    ("mel", "mel/c/1/0", "truncate", None, [1]),
    ("mel", "mel/c/3/0", "flip", None, [3]),
    ("mel", "mel/c/1/0", "swap", "mel/c/2/0", [1, 2]),
    ("mel", "done/c/1", "delete", None, [1]),
    ("mel", "done/c/4", "flip", None, [4]),
    ("mel", "bad/c/0", "delete", None, [0]),
    ("mel", "manifest/c/2/0", "truncate", None, [2]),
    ("mel", "manifest/c/1/0", "swap", "manifest/c/3/0", [1, 3]),
    ("mel", "item_index/c/1", "swap", "item_index/c/2", [1, 2]),
    ("mel", "mel.starts/c/3", "flip", None, [3]),
    ("mel", "mel.lengths/c/0", "delete", None, [0]),
    ("tokens", "input_ids/c/2/0", "delete", None, [2]),
    ("tokens", "input_ids/c/4/0", "truncate", None, [4]),
    ("tokens", "attention_mask/c/1/0", "flip", None, [1]),
    ("tokens", "item_index/c/0", "flip", None, [0]),
]


@pytest.mark.parametrize("spec, key, how, other, blocks", JOB_CASES,
                         ids=[f"{s}-{k}-{h}" for s, k, h, _, _ in JOB_CASES])
def test_damage_is_found_refused_and_repaired(registry, dataset, specs, spec, key, how, other, blocks):
    built = featurize(registry, specs[spec], dataset)
    assert FeatureStore.open(built.url).verify().ok
    before = tree(built.url)
    damage(built.url, key, how, other)

    deep = FeatureStore.open(built.url).verify(deep=True)
    assert deep.damaged_blocks == blocks, deep.damaged
    cheap = FeatureStore.open(built.url).verify(deep=False)
    assert set(cheap.damaged_blocks) <= set(blocks)
    if how in ("delete", "truncate"):
        assert cheap.damaged_blocks == blocks  # size changes need no data read

    with pytest.raises(DamagedCacheError) as refused:
        read_everything(FeatureStore.open(built.url))
    assert "\n" not in str(refused.value) and re.match(blocks_pattern(blocks), str(refused.value)), str(refused.value)
    if how in ("delete", "truncate") or not key.split("/")[0] in ("mel", "input_ids", "attention_mask"):
        with pytest.raises(InputError, match=r"damaged .*--repair"):
            featurize(registry, specs[spec], dataset)  # a plain rerun no longer says "complete"

    repaired = featurize(registry, specs[spec], dataset, repair=True)
    assert repaired.repaired == blocks and repaired.computed_blocks == len(blocks) and repaired.status == "complete"
    assert tree(built.url) == before
    assert FeatureStore.open(built.url).verify(deep=True).ok
    assert featurize(registry, specs[spec], dataset, repair=True).repaired == []


def test_repair_names_itself_in_the_message(registry, dataset, specs):
    built = featurize(registry, specs["mel"], dataset, split="development", name="logmels")
    damage(built.url, "mel/c/0/0", "delete")
    with pytest.raises(DamagedCacheError, match=r"block 0 damaged \(mel chunk 0 missing\): run aacbatch featurize "
                                                r"\S+mel\.toml --dataset c --split development --name logmels --repair$"):
        FeatureStore.open(built.url).reader("mel")


# --- store level: a synthetic set with deterministic values --------------------------------

N, BLOCK, TIME_CHUNK = 10, 3, 16
LENGTHS = np.array([5 + (i * 7) % 13 for i in range(N)])  # 5..17 frames: 2-3 time chunks per block
COMMAND = "aacbatch featurize synthetic --dataset d"


def item_values(i: int) -> tuple[np.ndarray, np.ndarray]:
    mel = (i * 100 + np.arange(LENGTHS[i])[:, None] + np.arange(4)).astype(np.float16)
    return mel, (i + np.arange(8) / 16).astype(np.float16)


def build(url: str, compress: bool = True, blocks: list[int] | None = None) -> FeatureStore:
    """Create (or resume) the synthetic set and write ``blocks`` (default: every pending one)."""
    store = FeatureStore.create_or_resume(
        url, meta={"fingerprint": f"synthetic-{compress}", "command": COMMAND}, item_index=np.arange(N) * 2,
        arrays={"mel": ArraySpec((4,), "float16", True, compress), "emb": ArraySpec((8,), "float16", compress=compress)},
        lengths={"mel": LENGTHS}, block_size=BLOCK, time_chunk=TIME_CHUNK)
    for b in store.pending_blocks() if blocks is None else blocks:
        write(store, b)
    return store


def write(store: FeatureStore, block: int) -> None:
    lo, hi = store.block_range(block)
    values = [item_values(i) for i in range(lo, hi)]
    store.write_block(block, {"mel": [m for m, _ in values], "emb": np.stack([e for _, e in values])})


def test_every_chunk_carries_a_checksum_and_a_record(tmp_path):
    url = str(tmp_path / "s.zarr")
    build(url)
    chunks = {k: v for k, v in tree(url).items() if "/c/" in k}
    assert chunks and all(int.from_bytes(v[-4:], "little") == google_crc32c.value(v[:-4]) for v in chunks.values())
    report = FeatureStore.open(url).verify(deep=True)
    data_chunks = [k for k in chunks if k.split("/")[0] in ("mel", "emb", "bad")]
    assert report.ok and report.chunks_checked == len(data_chunks) == 4 * 2 + 8  # emb + bad per block, 8 mel chunks
    assert report.bytes_read == sum(len(chunks[k]) for k in data_chunks)


@pytest.mark.parametrize("key, other, blocks", [
    ("mel/c/0/0", "mel/c/1/0", [0]),   # two time chunks of one block
    ("emb/c/1/0", "emb/c/2/0", [1, 2]),  # dense chunks of two blocks
    ("mel/c/4/0", "mel/c/6/0", [1, 2]),  # ragged chunks of two blocks
])
def test_swapped_chunks_of_the_same_size(tmp_path, key, other, blocks):
    url = str(tmp_path / "s.zarr")
    build(url, compress=False)  # raw chunks: all full chunks of an array have one size
    before = tree(url)
    assert len(before[key]) == len(before[other])
    damage(url, key, "swap", other)
    assert FeatureStore.open(url).verify(deep=False).ok  # sizes match: only the CRCs tell
    assert FeatureStore.open(url).verify(deep=True).damaged_blocks == blocks
    with pytest.raises(DamagedCacheError, match=r"holds other data"):
        read_everything(FeatureStore.open(url))
    store = FeatureStore.open(url, "r+")
    assert store.repair(np.arange(N) * 2, {"mel": LENGTHS}) == blocks
    build(url, compress=False)
    assert tree(url) == before


@pytest.mark.parametrize("cache_bytes", [2 << 30, 256], ids=["whole-array", "chunk-lru"])
def test_a_chunk_deleted_after_the_open_check_is_never_read_as_zeros(tmp_path, cache_bytes):
    url = str(tmp_path / "s.zarr")
    build(url)
    reader = FeatureStore.open(url).reader("mel", cache_bytes)  # passes the cheap check
    damage(url, "mel/c/3/0", "delete")
    with pytest.raises(DamagedCacheError, match=r"^feature cache \S+: block 1 damaged \(mel chunk 3 missing\): "
                                                rf"run {COMMAND} --repair$"):
        reader[np.arange(N)]


def test_an_unfinished_block_is_not_read_as_zeros(tmp_path):
    url = str(tmp_path / "s.zarr")
    build(url, blocks=[0, 1, 3])
    store = FeatureStore.open(url)
    assert store.verify().ok and store.verify().done_blocks == 3  # pending is not damage
    mel = store.reader("mel", cache_bytes=256)  # chunk by chunk: finished blocks stay readable
    assert np.array_equal(mel[[4]][0], item_values(4)[0])
    with pytest.raises(DamagedCacheError, match=r"block 2 is not computed yet .*: finish it with " + COMMAND + "$"):
        mel[[7]]


def test_repair_invalidates_only_its_shard_and_layout_is_restored(tmp_path):
    url = str(tmp_path / "s.zarr")
    build(url)
    before = tree(url)
    damage(url, "mel.starts/c/1", "flip")
    damage(url, "emb/c/2/0", "delete")
    damage(url, "item_index/c/3", "flip")  # the last block holds one item: a partial chunk
    with pytest.raises(DamagedCacheError, match=r"blocks 1, 3 damaged \(block 1: mel.starts chunk 1 corrupt"):
        write(FeatureStore.open(url, "r+"), 1)  # a writer never trusts a damaged layout
    odd = FeatureStore.open(url, "r+")
    assert odd.repair(np.arange(N) * 2, {"mel": LENGTHS}, shard=(1, 2)) == [1, 3]
    assert odd.pending_blocks() == [1, 3]
    even = FeatureStore.open(url, "r+")
    assert even.repair(np.arange(N) * 2, {"mel": LENGTHS}, shard=(0, 2)) == [2]
    build(url)
    assert tree(url) == before


def _shard_writer(url: str, shard: int, n_shards: int) -> None:
    store = FeatureStore.open(url, "r+")
    for block in store.pending_blocks(shard, n_shards):
        write(store, block)


def test_concurrent_shard_processes_write_a_verifiable_set(tmp_path):
    url, serial = str(tmp_path / "shards.zarr"), str(tmp_path / "serial.zarr")
    build(url, blocks=[])
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_shard_writer, args=(url, k, 2)) for k in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert FeatureStore.open(url).verify(deep=True).ok and FeatureStore.open(url).is_complete()
    build(serial)
    assert tree(url) == tree(serial)


def test_the_refusal_is_one_line_without_asyncio_noise(tmp_path):
    """A refused chunk fails zarr's gather while hundreds of sibling reads are in flight;
    without care, asyncio prints "Task was destroyed but it is pending!" for each at exit."""
    url, n = str(tmp_path / "many.zarr"), 200
    store = FeatureStore.create_or_resume(url, meta={"fingerprint": "many", "command": COMMAND}, item_index=np.arange(n),
                                          arrays={"mel": ArraySpec((4,), "float16", True)}, lengths={"mel": np.full(n, 16)},
                                          block_size=2, time_chunk=8)
    for b in range(store.n_blocks):
        store.write_block(b, {"mel": [np.ones((16, 4), np.float16)] * 2})
    damage(url, "mel/c/1/0", "flip")
    code = (f"from aacbatch.cache import FeatureStore\nimport numpy as np\n"
            f"try:\n    FeatureStore.open({url!r}).reader('mel')[np.arange({n})]\n"
            f"except Exception as e:\n    print(e)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).parent.parent)
    assert run.stderr == "" and run.stdout.count("\n") == 1 and "block 0 damaged (mel chunk 1 corrupt" in run.stdout


# --- format 1 (before checksums) ----------------------------------------------------------


def format1_values(i: int) -> tuple[np.ndarray, np.ndarray]:
    """The values tests/data/format1.zarr holds: written by aacbatch's format-1 cache code
    (7 items, blocks of 3, time chunks of 8; item i has 5 + 7i mod 11 frames)."""
    frames = 5 + (i * 7) % 11
    return ((i * 100 + np.arange(frames)[:, None] + np.arange(4)).astype(np.float16),
            (i + np.arange(3) / 8).astype(np.float32))


@pytest.fixture
def format1(tmp_path) -> str:
    url = str(tmp_path / "old.zarr")
    shutil.copytree(FORMAT1, url)
    return url


def test_a_format1_set_is_still_read(format1):
    store = FeatureStore.open(format1)
    assert not store.checksums and store.is_complete()
    mel, tags = store.reader("mel")[np.arange(7)], store.reader("tags")[np.arange(7)]
    for i in range(7):
        assert np.array_equal(mel[i], format1_values(i)[0]) and np.array_equal(tags[i], format1_values(i)[1])
    report = store.verify(deep=True)
    assert report.ok and not report.checksums and "no checksums" in report.line("x") and "--rebuild" in report.line("x")


def test_a_format1_set_cannot_be_repaired_only_rebuilt(format1):
    store = FeatureStore.create_or_resume(format1, meta={"fingerprint": "format1-fixture", "command": COMMAND},
                                          item_index=np.arange(7) * 2, arrays={}, block_size=3)
    with pytest.raises(InputError, match=rf"format version 1, without checksums.*: run {COMMAND} --rebuild$"):
        store.repair(np.arange(7) * 2, {})


def test_a_format1_set_resumes_in_its_own_format(format1):
    before = tree(format1)
    store = FeatureStore.open(format1, "r+")
    store.invalidate([1])
    assert store.pending_blocks() == [1]
    lo, hi = store.block_range(1)
    values = [format1_values(i) for i in range(lo, hi)]
    store.write_block(1, {"mel": [m for m, _ in values], "tags": np.stack([t for _, t in values])})
    assert tree(format1) == before and FeatureStore.open(format1).is_complete()
