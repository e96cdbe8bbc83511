"""Throughput of the CNN14 front end and encoder on CPU; prints a small table.

    python benchmarks/bench_logmel.py [--threads 1] [--repeats 5]

Log-mel speed is reported as × real time per core (one thread, one process): featurization
scales by running more processes, so per-core speed is what sizes a job. The target is
300× (a 10 s clip in ≤ 33 ms). The in-model torch front end (conv DFT) is shown for
comparison. CNN14 rows give the no-grad forward time per 10 s clip in batches of 8 from
cached log-mels (``is_logmel=True``, the training/featurization path).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from functools import partial

TARGET_X_REALTIME = 300.0
CLIP_SECONDS = 10.0
BATCH = 8


from result import result  # noqa: E402


def _best_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` timed runs after a warm-up (timeit's convention: on a shared
    machine the minimum is the run least disturbed by other processes)."""
    fn()  # warm-up: allocations, thread pools, oneDNN kernels for this shape
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS/torch threads (default 1: per-core numbers)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy/torch load their thread pools

    import numpy as np
    import torch

    from aacbatch.audio.logmel import SAMPLE_RATE, log_mel
    from aacbatch.models.checkpoints import create_cnn14
    from aacbatch.models.cnn14 import LogMel, Spectrogram

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    clips = (0.1 * rng.standard_normal((BATCH, int(CLIP_SECONDS * SAMPLE_RATE)))).astype(np.float32)

    numpy_s = _best_seconds(lambda: [log_mel(clip) for clip in clips], args.repeats) / BATCH
    spectrogram, to_mel = Spectrogram(), LogMel()
    waves = torch.from_numpy(clips)
    with torch.no_grad():
        torch_s = _best_seconds(lambda: to_mel(spectrogram(waves)), args.repeats) / BATCH

    print(f"threads={args.threads}, {BATCH} clips x {CLIP_SECONDS:g} s, best of {args.repeats}\n")
    print("| log-mel front end | ms / 10 s clip | x real time | / target 300x |")
    print("|---|---|---|---|")
    for name, seconds in (("numpy (audio.logmel)", numpy_s), ("torch conv DFT (in-model)", torch_s)):
        speed = CLIP_SECONDS / seconds
        print(f"| {name} | {seconds * 1e3:.1f} | {speed:.0f} | {speed / TARGET_X_REALTIME:.2f} |")
    result("log-mel featurize, x real time per core", CLIP_SECONDS / numpy_s, ">=", TARGET_X_REALTIME)

    mels = torch.from_numpy(log_mel(clips))
    print("\n| CNN14 forward (no grad, batch 8, log-mel input) | params | ms / 10 s clip | clips / s |")
    print("|---|---|---|---|")
    for name in ("cnn14", "cnn14-small", "cnn14-tiny"):
        model = create_cnn14(name).eval()
        params = sum(p.numel() for p in model.parameters())
        with torch.no_grad():
            seconds = _best_seconds(partial(model, mels, is_logmel=True), max(1, args.repeats // 2)) / BATCH
        print(f"| {name} | {params / 1e6:.2f} M | {seconds * 1e3:.1f} | {1 / seconds:.1f} |")
        result(f"{name} teacher forward per 10 s clip, ms (what cached tags save per clip per epoch)", seconds * 1e3)


if __name__ == "__main__":
    main()
