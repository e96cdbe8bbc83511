"""The training input pipeline: length bucketing, and reads of a set larger than the cache budget.

1. Bucketing (targets: >= 30 % fewer padded frames). 4000 clips of 15-30 s (Clotho's length
   spread; 100 log-mel frames per second), batches of 32, padded as training pads them
   (:func:`aacbatch.batches.pad_ragged`, to a multiple of 32 frames): the padded fraction of an
   epoch's batches with and without ``bucket = true``. Deterministic: no spread to report.
2. A set 4x the reader's memory budget (target: >= 0.8x the clips/s of an npy memmap of the
   same data, both read by 2 DataLoader worker processes). 2000 clips of ~10 s of float16
   log-mels (~256 MB) against a 64 MB budget, so the reader serves chunks from its LRU instead
   of decoding the set once; random batches of 32, the same padding work on both sides. The two
   readers alternate, epoch by epoch, for ROUNDS rounds; the median ratio and its min-max print.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aacbatch.batches import PAD_MULTIPLE, CachedBatches, Source, epoch_batches, pad_ragged  # noqa: E402
from ragged_sets import write_both  # noqa: E402
from result import result  # noqa: E402

BATCH, ROUNDS, WORKERS = 32, 5, 2
N_CLIPS, BUDGET = 2000, 64 << 20


def padded_fraction(lengths: np.ndarray, batches: list[np.ndarray]) -> float:
    padded = total = 0
    for b in batches:
        width = -(-int(lengths[b].max()) // PAD_MULTIPLE) * PAD_MULTIPLE
        total += width * len(b)
        padded += width * len(b) - int(lengths[b].sum())
    return padded / total


def bucketing() -> None:
    lengths = np.random.default_rng(0).uniform(1500, 3000, 4000).astype(np.int64)
    clips = np.arange(len(lengths))
    plain = np.mean([padded_fraction(lengths, epoch_batches(clips, 0, e, BATCH)) for e in range(5)])
    bucketed = np.mean([padded_fraction(lengths, epoch_batches(clips, 0, e, BATCH, lengths=lengths)) for e in range(5)])
    removed = 1 - bucketed / plain
    print(f"padded frames, 15-30 s clips, batch {BATCH}: {plain:.1%} plain, {bucketed:.1%} bucketed "
          f"({removed:.0%} of the padding removed; target >= 30 %)")
    result("length bucketing: share of padded frames removed (Clotho-like lengths)", removed, ">=", 0.3)


class _Batches(Dataset):
    def __init__(self, read, batches):
        self.read, self.batches = read, batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, i):
        return self.read(self.batches[i])


class _Memmap:
    """The npy side: slices of a memory-mapped file, opened in each worker on first use."""

    def __init__(self, path: Path, starts: np.ndarray, lengths: np.ndarray):
        self.path, self.starts, self.lengths, self.data = path, starts, lengths, None

    def __call__(self, batch):
        if self.data is None:
            self.data = np.load(self.path, mmap_mode="r")
        return pad_ragged([self.data[self.starts[i]:self.starts[i] + self.lengths[i]] for i in batch])


def clips_per_second(read, epoch: int) -> float:
    batches = epoch_batches(np.arange(N_CLIPS), 0, epoch, BATCH)
    loader = DataLoader(_Batches(read, batches), batch_size=None, num_workers=WORKERS, prefetch_factor=4)
    started = time.perf_counter()
    for _ in loader:
        pass
    return N_CLIPS / (time.perf_counter() - started)


def larger_than_memory() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        lengths = np.random.default_rng(0).integers(900, 1100, N_CLIPS)
        store, npy_path, starts = write_both(tmp, lengths)
        size = store.group["mel"].nbytes
        print(f"set: {N_CLIPS} clips, {size / 2**20:.0f} MiB of log-mels; reader budget {BUDGET / 2**20:.0f} MiB "
              f"({size / BUDGET:.1f}x); {WORKERS} loader workers")
        zarr = CachedBatches({"mel": Source(store, "mel", "clip")}, np.arange(N_CLIPS), cache_bytes=BUDGET)
        npy = _Memmap(npy_path, starts, lengths)
        ratios, rates = [], []
        for epoch in range(ROUNDS):
            a, b = clips_per_second(zarr.read, epoch), clips_per_second(npy, epoch)
            ratios.append(a / b)
            rates.append((a, b))
    for (a, b), r in zip(rates, ratios):
        print(f"  zarr {a:7,.0f} clips/s   npy memmap {b:7,.0f} clips/s   ratio {r:.2f}")
    median = statistics.median(ratios)
    print(f"zarr / npy memmap, set 4x the budget: median {median:.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f}; "
          "target >= 0.8x)")
    result("reads of a set 4x the cache budget / npy memmap (2 workers)", median, ">=", 0.8)


if __name__ == "__main__":
    bucketing()
    larger_than_memory()
