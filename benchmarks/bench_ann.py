"""ANN candidates vs exact search over 1,000,000 indexed windows (1024-d), after load: query
time of each (interleaved, query by query), recall@10 of the ANN path against exact search,
and the ANN build time (targets: ≤ 50 ms a query, recall@10 ≥ 0.95, build ≤ 5 min on 2 cores).

The windows are synthetic but not uniform: real audio embeddings cluster by sound (uniform
random 1024-d vectors have no near neighbours for any index to find), so each window is one
of N / 50 random unit "sound" centres plus Gaussian noise (cosine ≈ 0.67 to its centre), and
each query is a centre plus noise of its own, like a caption near the clips it describes.
Both paths run the search page's code on a :class:`LoadedIndex` held in memory (float16, as
an index stores it): ``Searcher._spans``, which takes candidates from the ANN index or from a
float16 pass over every window, re-scores them in float32 and merges windows into hits.
``AACBATCH_BENCH_ANN_N`` sets a smaller size for a quick look.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import faiss
import numpy as np

from aacbatch.search import ann
from aacbatch.search.query import LoadedIndex, Searcher, _one_thread
from result import result

N = int(os.environ.get("AACBATCH_BENCH_ANN_N", 1_000_000))
DIM, PER_SOUND, NOISE, QUERIES, K = 1024, 50, 0.035, 40, 10
CENTRES = max(1, N // PER_SOUND)  # 50 windows per sound: a query's 10 nearest windows are its sound's


def clustered(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    """(n, DIM) float16 unit vectors: random centres plus noise, written a slice at a time."""
    out = np.empty((n, DIM), np.float16)
    for lo in range(0, n, 50_000):
        hi = min(n, lo + 50_000)
        v = centres[rng.integers(0, len(centres), hi - lo)] + NOISE * rng.standard_normal((hi - lo, DIM), np.float32)
        out[lo:hi] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def loaded(embeddings: np.ndarray, index: ann.AnnIndex | None) -> LoadedIndex:
    n = len(embeddings)
    spec = {"runs": ["bench"], "weights": [1.0], "system": None, "caption_runs": [], "max_seconds": 60.0,
            "window": 10.0, "hop": 10.0}  # one 10 s window per file: every window its own hit
    return LoadedIndex(name="bench", folder=Path("/nonexistent"), spec=spec, identity={}, ids=np.arange(n),
                       names=np.array([f"f{i}.wav" for i in range(n)]), durations=np.full(n, 10.0, np.float32),
                       captions=None, embeddings=[embeddings], window_file=np.arange(n),
                       starts=np.zeros(n, np.float32), ends=np.full(n, 10.0, np.float32), ann=index)


def main() -> None:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((CENTRES, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    t0 = time.perf_counter()
    windows = clustered(rng, centres, N)
    queries = clustered(rng, centres, QUERIES).astype(np.float32)
    print(f"generated {N} windows in {time.perf_counter() - t0:.0f} s; FAISS {faiss.__version__}, "
          f"{faiss.omp_get_max_threads()} threads for the build")
    t0 = time.perf_counter()
    members = ann.build([windows])
    build_s = time.perf_counter() - t0
    print(f"ANN build: {build_s:.0f} s ({members[0].nlist} cells, {ann.n_probe(members[0].nlist)} scanned a query)")
    fast = Searcher(loaded(windows, ann.AnnIndex(members, {})), encoders=[])
    exact = Searcher(loaded(windows, None), encoders=[])
    none = np.zeros(0, np.int64)
    times = {"ann": [], "exact": []}
    recalls = []
    with _one_thread():  # as a query runs in the page
        for q in queries:
            hits = {}
            for name, searcher in (("ann", fast), ("exact", exact)) if len(times["ann"]) % 2 else \
                    (("exact", exact), ("ann", fast)):  # interleaved, alternating which goes first
                t0 = time.perf_counter()
                hits[name] = searcher._spans([q], K, none, exact=False)
                times[name].append(time.perf_counter() - t0)
            recalls.append(len({s.best for s in hits["ann"]} & {s.best for s in hits["exact"]}) / K)
    a, e = (np.median(times[n]) * 1000 for n in ("ann", "exact"))
    ratio = np.array(times["exact"]) / np.array(times["ann"])
    print(f"{N} windows, {QUERIES} queries: ANN {a:.1f} ms, exact {e:.1f} ms a query (median); exact/ANN "
          f"{np.median(ratio):.0f}× ({ratio.min():.0f}–{ratio.max():.0f}); recall@10 {np.mean(recalls):.3f} "
          f"(min {min(recalls):.1f})")
    result(f"one query over {N // 1000}k windows after load, ANN candidates + exact re-score, ms", float(a), "<=", 50.0)
    result(f"one query over {N // 1000}k windows after load, exact, ms", float(e))
    result(f"ANN recall@10 against exact search ({N // 1000}k windows)", float(np.mean(recalls)), ">=", 0.95)
    result(f"ANN index build, {N // 1000}k windows × {DIM}, s", build_s, "<=", 300.0)


if __name__ == "__main__":
    main()
