"""Captioner training from the encoded-frame cache vs running the frozen CNN14 on cached
log-mels every step (target ≥ 20× faster).

Both sides train the paper-size captioner (BiGRU 3×256 → 2-layer Transformer decoder, vocab
5000) on the same batches of 32 ten-second clips, reading from real Zarr feature sets in a
temporary directory: the cached side reads frames (31 × 2048 per clip, float16) from an
``encoded`` set; the recomputed side reads log-mels (1001 × 64, float16) from a ``mel`` set
and runs the frozen paper-size CNN14 (no grad) to make the frames — what ``featurize
encoded`` saves. Step times are per batch, so the ratio is the epoch ratio.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from aacbatch.batches import CachedBatches, Source
from aacbatch.cache import ArraySpec, FeatureStore
from aacbatch.models.captioner import Captioner, CaptionerConfig, caption_loss
from aacbatch.models.checkpoints import create_cnn14
from result import result

CLIPS, BATCH, MEL_FRAMES, FRAME_DIM, VOCAB, TOKENS = 64, 32, 1001, 2048, 5000, 22


def _store(root: Path, name: str, tail: int, length: int) -> FeatureStore:
    rng = np.random.default_rng(0)
    store = FeatureStore.create_or_resume(
        str(root / f"{name}.zarr"), meta={"kind": name, "fingerprint": name}, item_index=np.arange(CLIPS),
        arrays={name: ArraySpec((tail,), "float16", ragged=True)}, lengths={name: np.full(CLIPS, length)}, block_size=CLIPS)
    store.write_block(0, {name: [rng.normal(size=(length, tail)).astype(np.float16) for _ in range(CLIPS)]}, [])
    return store


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        frames = CachedBatches({"frames": Source(_store(Path(tmp), "frames", FRAME_DIM, MEL_FRAMES // 32), "frames", "clip")},
                               np.arange(CLIPS))
        mels = CachedBatches({"mel": Source(_store(Path(tmp), "mel", 64, MEL_FRAMES), "mel", "clip")}, np.arange(CLIPS))
        model = Captioner(CaptionerConfig(input_dim=FRAME_DIM, vocab_size=VOCAB))
        optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
        tokens = torch.randint(4, VOCAB, (BATCH, TOKENS))
        encoder = create_cnn14("cnn14").eval()

        def step(batch: np.ndarray, recompute: bool) -> None:
            if recompute:
                b = mels[batch]
                with torch.no_grad():
                    out = encoder(torch.from_numpy(b["mel"]), torch.from_numpy(b["mel_lengths"]), is_logmel=True)
                x, n = out.frames, out.frame_lengths
            else:
                b = frames[batch]
                x, n = torch.from_numpy(b["frames"]), torch.from_numpy(b["frames_lengths"])
            loss = caption_loss(model(x, n, tokens[:, :-1]), tokens[:, 1:])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        def seconds(recompute: bool, steps: int) -> float:
            step(np.arange(BATCH), recompute)  # warm-up: first call per shape plans the kernels
            t0 = time.perf_counter()
            for k in range(steps):
                step(np.arange(BATCH) + (k % 2) * BATCH, recompute)
            return (time.perf_counter() - t0) / steps

        cached = seconds(False, 6)
        recomputed = seconds(True, 2)
    print(f"captioner step from encoded cache: {cached * 1e3:.0f} ms; with frozen CNN14 on cached log-mels: "
          f"{recomputed * 1e3:.0f} ms (batch {BATCH} x 10 s clips)")
    result("captioner training step, encoded cache vs frozen CNN14 per step", recomputed / cached, ">=", 20)
    result("captioner training clips/s from the encoded cache (paper size, 2 threads)", BATCH / cached)


if __name__ == "__main__":
    main()
