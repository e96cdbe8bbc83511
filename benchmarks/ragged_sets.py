"""A ragged float16 log-mel set written both as a Zarr feature set and as one .npy file, for
benchmarks that compare the two readers on the same data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aacbatch.cache import ArraySpec, FeatureStore


def write_both(tmp: Path, lengths: np.ndarray, seed: int = 0) -> tuple[FeatureStore, Path, np.ndarray]:
    """(Zarr store, path of the .npy of all frames, start row of each clip in it)."""
    rng = np.random.default_rng(seed)
    clips = [rng.normal(-40, 10, (int(n), 64)).astype(np.float16) for n in lengths]
    store = FeatureStore.create_or_resume(str(tmp / "mel.zarr"), meta={"fingerprint": "bench"},
                                          item_index=np.arange(len(lengths)),
                                          arrays={"mel": ArraySpec((64,), "float16", True)},
                                          lengths={"mel": lengths}, block_size=128)
    for b in range(store.n_blocks):
        lo, hi = store.block_range(b)
        store.write_block(b, {"mel": clips[lo:hi]})
    np.save(tmp / "mel.npy", np.concatenate(clips))
    return store, tmp / "mel.npy", np.concatenate([[0], np.cumsum(lengths)[:-1]])
