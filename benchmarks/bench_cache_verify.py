"""What checksummed feature sets cost: reads with checks vs without, the open check, deep verify.

Writes one log-mel set (4000 clips of ~5 s, float16, 64 bins: ≈ 256 MB raw, blocks of 256
clips, time chunks of 4096 frames) in the current format — CRC-32C on every chunk, every
fetched chunk checked against its block's record — and a copy of the same arrays as a
format-1 set (same chunks and zstd, no CRC codec, no records, read unchecked). Both are warm
in the page cache (just written), so the figures are the CPU cost of the checks, not disk.

Interleaved A/B over several rounds (median ratio, min–max), as training reads a set:

* whole-set decode: open the set and read every clip through the batch reader (a set that
  fits the reader's memory budget is decoded in one call — training's first epoch);
* chunk-by-chunk: random batches of 32 clips through a 64 MB chunk cache (a set too large
  for memory).

Then absolute costs: the cheap check readers run on open (records + one size query per
chunk) and a deep verify (every chunk read once, its CRC recomputed).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aacbatch.cache import ATTR, ArraySpec, FeatureStore  # noqa: E402
from result import result  # noqa: E402

N_CLIPS, BLOCK, ROUNDS, BATCH = 4000, 256, 7, 32


def build(tmp: Path) -> tuple[str, str]:
    rng = np.random.default_rng(0)
    lengths = rng.integers(300, 700, N_CLIPS)
    checked = str(tmp / "checked.zarr")
    store = FeatureStore.create_or_resume(checked, meta={"fingerprint": "bench"}, item_index=np.arange(N_CLIPS),
                                          arrays={"mel": ArraySpec((64,), "float16", True)}, lengths={"mel": lengths},
                                          block_size=BLOCK)
    for b in range(store.n_blocks):
        lo, hi = store.block_range(b)
        store.write_block(b, {"mel": [rng.normal(-40, 10, (int(n), 64)).astype(np.float16) for n in lengths[lo:hi]]})
    return checked, format1_copy(checked, str(tmp / "format1.zarr"))


def format1_copy(src: str, dst: str) -> str:
    """The same arrays, chunks and zstd level without the CRC codec, marked format 1."""
    source = zarr.open_group(store=src, mode="r")
    target = zarr.open_group(store=dst, mode="w")
    for name in source.array_keys():
        if name == "manifest":
            continue
        array = source[name]
        copy = target.create_array(name, shape=array.shape, chunks=array.chunks, dtype=array.dtype,
                                   fill_value=array.fill_value, compressors=[ZstdCodec(level=0)])
        copy[...] = array[...]
    meta = {k: v for k, v in source.attrs[ATTR].items() if k != "layout_chunks"}
    target.attrs[ATTR] = dict(meta, format_version=1)
    return dst


def timed(work) -> tuple[float, float]:
    """(wall, CPU) seconds of ``work()``; CPU time counts zarr's threads and is less
    disturbed than wall time by other jobs on a shared host."""
    w0, c0 = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - w0, time.process_time() - c0


def whole_set(url: str) -> tuple[float, float]:
    return timed(lambda: FeatureStore.open(url).reader("mel")[np.arange(N_CLIPS)])


def chunk_by_chunk(url: str, seed: int) -> tuple[float, float]:
    reader = FeatureStore.open(url).reader("mel", cache_bytes=64 << 20)
    order = np.random.default_rng(seed).permutation(N_CLIPS)[:N_CLIPS // 2]
    return timed(lambda: [reader[order[i:i + BATCH]] for i in range(0, len(order), BATCH)])


def ab(label: str, run) -> tuple[float, float]:
    """Interleaved rounds; median (format-1 time / checked time), i.e. the checked side's
    relative speed, for wall and for CPU time."""
    ratios: dict[str, list[float]] = {"wall": [], "CPU": []}
    times: dict[str, list[float]] = {"checked": [], "format1": []}
    for r in range(ROUNDS):
        pair = {}
        for side in (("checked", "format1") if r % 2 == 0 else ("format1", "checked")):
            pair[side] = run(side, r)
            times[side].append(pair[side][0])
        for k, clock in enumerate(ratios):
            ratios[clock].append(pair["format1"][k] / pair["checked"][k])
    print(f"{label}: checked {statistics.median(times['checked']):.3f} s, format 1 "
          f"{statistics.median(times['format1']):.3f} s (wall medians)")
    for clock, values in ratios.items():
        print(f"  speed checked/unchecked, {clock}: median {statistics.median(values):.3f}x "
              f"(min {min(values):.3f}, max {max(values):.3f}, {ROUNDS} rounds)")
    return statistics.median(ratios["wall"]), statistics.median(ratios["CPU"])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        urls = dict(zip(("checked", "format1"), build(Path(tmp))))
        stored = sum(p.stat().st_size for p in Path(urls["checked"]).rglob("*") if p.is_file())
        chunks = sum(1 for p in Path(urls["checked"], "mel", "c").rglob("*") if p.is_file())
        print(f"set: {N_CLIPS} clips, {stored / 1e6:.0f} MB stored, {chunks} mel chunks, "
              f"{FeatureStore.open(urls['checked']).n_blocks} blocks")
        whole = ab("whole-set decode", lambda side, r: whole_set(urls[side]))
        lru = ab("chunk-by-chunk random batches", lambda side, r: chunk_by_chunk(urls[side], r))

        open_check, deep, open_plain = [], [], []
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            FeatureStore.open(urls["checked"]).require_intact()
            open_check.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            FeatureStore.open(urls["format1"]).require_intact()
            open_plain.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            report = FeatureStore.open(urls["checked"]).verify(deep=True)
            deep.append(time.perf_counter() - t0)
            assert report.ok
        print(f"open + cheap check: {1e3 * statistics.median(open_check):.1f} ms (min {1e3 * min(open_check):.1f}, "
              f"max {1e3 * max(open_check):.1f}); format-1 open {1e3 * statistics.median(open_plain):.1f} ms")
        print(f"deep verify: {statistics.median(deep):.3f} s (min {min(deep):.3f}, max {max(deep):.3f}) = "
              f"{report.bytes_read / statistics.median(deep) / 1e9:.2f} GB/s over {report.chunks_checked} chunks")
    result("Checked / unchecked speed, whole-set decode (wall)", whole[0])
    result("Checked / unchecked speed, whole-set decode (CPU)", whole[1], ">=", 0.85)
    result("Checked / unchecked speed, chunk-by-chunk batches (wall)", lru[0])
    result("Checked / unchecked speed, chunk-by-chunk batches (CPU)", lru[1], ">=", 0.85)
    result("Open + cheap integrity check (ms)", 1e3 * statistics.median(open_check))
    result("Deep verify throughput (GB/s, warm page cache)", report.bytes_read / statistics.median(deep) / 1e9)


if __name__ == "__main__":
    main()
