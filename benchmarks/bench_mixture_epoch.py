"""Epoch assembly over a mixture, and reading its batches.

1. Assembly (target: <= 1 s for 300k examples). The paper's retrieval pretraining corpus has
   about 300k (caption, clip) examples over four datasets (Clotho 19k, AudioCaps 50k, MACS 18k,
   WavCaps-FreeSound 260k-ish, here 213k so the union is 300k). An epoch's batches are drawn
   for A = the same 300k examples as one dataset and B = the four-member mixture with weights
   (2, 1, 1, 0.5); both as every caption (``captions_per_clip = 0``, the paper's) and with one
   random caption per clip. A and B alternate for ROUNDS rounds; medians, their ratio and
   min-max print.
2. Reads: batches of 32 read from a two-member mixture of ragged log-mel sets against the same
   batches read from one set holding both members' clips (A/B alternate; median ratio).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aacbatch.batches import CachedBatches, MixedBatches, Source, epoch_batches  # noqa: E402
from ragged_sets import write_both  # noqa: E402
from result import result  # noqa: E402

ROUNDS, BATCH = 5, 128
MEMBERS = {"clotho": (3_839, 5), "audiocaps": (49_838, 1), "macs": (3_930, 4.5), "wavcaps-fsd": (213_000, 1)}
WEIGHTS = (2.0, 1.0, 1.0, 0.5)


def _union() -> tuple[np.ndarray, np.ndarray]:
    """(clip of each example, member of each example) for the four members, clips numbered apart."""
    clips, groups, offset = [], [], 0
    for m, (n_clips, per_clip) in enumerate(MEMBERS.values()):
        per = np.random.default_rng(m).poisson(per_clip - 1, n_clips) + 1 if per_clip != int(per_clip) else \
            np.full(n_clips, int(per_clip))
        clips.append(np.repeat(np.arange(n_clips) + offset, per))
        groups.append(np.full(len(clips[-1]), m))
        offset += n_clips
    return np.concatenate(clips), np.concatenate(groups)


def _median_s(fn) -> tuple[float, list[float]]:
    times = []
    for epoch in range(ROUNDS):
        t = time.perf_counter()
        fn(epoch)
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def assembly() -> None:
    clips, groups = _union()
    print(f"{len(clips):,} examples over {len(MEMBERS)} members, {len(np.unique(clips)):,} clips")
    for per_clip in (0, 1):
        a_times, b_times = [], []
        for epoch in range(ROUNDS):  # interleaved
            t = time.perf_counter()
            epoch_batches(clips, 0, epoch, BATCH, per_clip, 2)
            a_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            epoch_batches(clips, 0, epoch, BATCH, per_clip, 2, groups=groups, weights=WEIGHTS)
            b_times.append(time.perf_counter() - t)
        a, b = statistics.median(a_times), statistics.median(b_times)
        ratios = [y / x for x, y in zip(a_times, b_times)]
        what = "every caption" if per_clip == 0 else "1 caption per clip"
        print(f"epoch assembly, {what}: one dataset {a:.3f} s, weighted mixture {b:.3f} s "
              f"(ratio {statistics.median(ratios):.2f}, {min(ratios):.2f}-{max(ratios):.2f}; target <= 1 s)")
        result(f"mixture epoch assembly, 300k examples, {what} (s)", b, "<=", 1.0)


def reads() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1500, 3000, 1200)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "a").mkdir(), (tmp / "b").mkdir(), (tmp / "ab").mkdir()
        store_a, _, _ = write_both(tmp / "a", lengths[:600], seed=1)
        store_b, _, _ = write_both(tmp / "b", lengths[600:], seed=2)
        store_ab, _, _ = write_both(tmp / "ab", lengths, seed=3)
        one = CachedBatches({"mel": Source(store_ab, "mel", "clip")}, np.arange(1200))
        members = [CachedBatches({"mel": Source(s, "mel", "clip")}, np.arange(600)) for s in (store_a, store_b)]
        mixed = MixedBatches(members, (1.0, 1.0), (600, 600), (0, 0))
        batches = epoch_batches(np.arange(1200), 0, 0, 32)[:20]
        for b in batches[:2]:  # warm both readers' chunk caches alike
            one.read(b), mixed.read(b)
        a_times, b_times = [], []
        for _ in range(ROUNDS):
            t = time.perf_counter()
            for b in batches:
                one.read(b)
            a_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            for b in batches:
                mixed.read(b)
            b_times.append(time.perf_counter() - t)
        ratios = [y / x for x, y in zip(a_times, b_times)]
        print(f"reads of 20 batches of 32 clips (15-30 s): one set {statistics.median(a_times):.3f} s, "
              f"two-member mixture {statistics.median(b_times):.3f} s (ratio {statistics.median(ratios):.2f}, "
              f"{min(ratios):.2f}-{max(ratios):.2f})")
        result("mixture batch reads / one-set reads", statistics.median(ratios))


if __name__ == "__main__":
    assembly()
    reads()
