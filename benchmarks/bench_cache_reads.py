"""Zarr ragged batch reads vs the same data as a memory-mapped .npy (target ≥ 0.8× its clips/s).

Writes 2000 clips of ~5 s log-mels (float16, 64 bins; ≈ 130 MB raw) both ways, then reads
random batches of 32 clips for 20 epochs (the paper's retrieval recipe) through
:class:`aacbatch.batches.CachedBatches` (the set fits the reader's memory budget, so it is
decoded once on first use) and through numpy slicing of the memmap (warm in the page cache,
since it was just written), with the same padding work on both sides. Prints clips/s per
epoch, the cold first-epoch ratio, the ratio over a 5-epoch run, and the ratio over the whole
20-epoch run (the target).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aacbatch.batches import CachedBatches, Source, pad_ragged  # noqa: E402
from aacbatch.cache import FeatureStore  # noqa: E402
from ragged_sets import write_both  # noqa: E402
from result import result  # noqa: E402

N_CLIPS, BATCH, EPOCHS = 2000, 32, 20


def build(tmp: Path) -> tuple[FeatureStore, np.ndarray, np.ndarray, np.ndarray]:
    lengths = np.random.default_rng(0).integers(300, 700, N_CLIPS)
    store, npy, starts = write_both(tmp, lengths, seed=1)
    return store, np.load(npy, mmap_mode="r"), starts, lengths


def epochs(read) -> list[float]:
    rates = []
    for epoch in range(EPOCHS):
        order = np.random.default_rng(epoch).permutation(N_CLIPS)
        t0 = time.perf_counter()
        for i in range(0, N_CLIPS, BATCH):
            read(order[i:i + BATCH])
        rates.append(N_CLIPS / (time.perf_counter() - t0))
    return rates


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store, memmap, starts, lengths = build(Path(tmp))
        batches = CachedBatches({"mel": Source(store, "mel", "clip")}, clips=np.arange(N_CLIPS))
        zarr_rates = epochs(lambda b: batches[b])
        npy_rates = epochs(lambda b: pad_ragged([memmap[starts[i]:starts[i] + lengths[i]] for i in b]))
    total = lambda rates: len(rates) / sum(1 / r for r in rates)  # noqa: E731
    ratio = total(zarr_rates) / total(npy_rates)
    print(f"zarr clips/s per epoch: {', '.join(f'{r:,.0f}' for r in zarr_rates[:6])}, …")
    print(f"npy  clips/s per epoch: {', '.join(f'{r:,.0f}' for r in npy_rates[:6])}, …")
    print(f"zarr / npy, first epoch only (includes decoding the set): {zarr_rates[0] / npy_rates[0]:.2f}x")
    print(f"zarr / npy over the first 5 epochs: {total(zarr_rates[:5]) / total(npy_rates[:5]):.2f}x")
    print(f"zarr / npy over a {EPOCHS}-epoch run: {ratio:.2f}x (target >= 0.8x)")
    result(f"Zarr / npy memmap ragged batch reads ({EPOCHS}-epoch run)", ratio, ">=", 0.8)
    result("Zarr / npy memmap, first (cold) epoch alone", zarr_rates[0] / npy_rates[0])


if __name__ == "__main__":
    main()
