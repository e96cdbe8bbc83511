"""CLAP-TAG training step with cached teacher scores vs running the frozen teacher every step
(target ≥ 1.25× faster), and CLAP training examples/s for the demo model size.

Both sides run the same student step (CNN14 forward + backward with the MSLE tag term and a
contrastive term on locked text embeddings) on the same batch in this process; the
"recomputed" side adds the teacher's no-grad forward, which is what the `tags` cache saves.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from aacbatch.losses import info_nce, tag_regression
from aacbatch.models.clap import Clap, ClapConfig
from aacbatch.models.checkpoints import create_cnn14
from aacbatch.models.cnn14 import CNN14_CONFIGS
from result import result

BATCH, FRAMES, K, D_TEXT = 32, 256, 32, 384


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    from dataclasses import asdict

    audio_cfg = {**asdict(CNN14_CONFIGS["cnn14-tiny"]), "n_classes": K}
    model = Clap(ClapConfig(audio=audio_cfg, text_dim=D_TEXT, text_model=None))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    mel = torch.from_numpy(rng.normal(-30, 10, (BATCH, FRAMES, 64)).astype(np.float32))
    lengths = torch.full((BATCH,), FRAMES)
    text = torch.from_numpy(rng.normal(size=(BATCH, D_TEXT)).astype(np.float32))
    cached = torch.rand(BATCH, K)
    clips = torch.arange(BATCH)

    def step(teacher) -> None:
        if teacher is not None:
            with torch.no_grad():
                target = teacher(mel, lengths, is_logmel=True).tag_scores[:, :K]
        else:
            target = cached
        audio, scores = model.encode_audio(mel, lengths)
        loss = info_nce(audio, model.encode_text(cls=text), model.scale(), clips) + tag_regression(scores, target, "mse_log")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def seconds(teacher, n=4) -> float:
        step(teacher)  # warm-up: first call per shape plans the convolutions
        t0 = time.perf_counter()
        for _ in range(n):
            step(teacher)
        return (time.perf_counter() - t0) / n

    cached_s = seconds(None)
    print(f"student step with cached teacher scores: {cached_s * 1e3:.0f} ms "
          f"({BATCH / cached_s:.1f} examples/s, batch {BATCH} x {FRAMES} frames, cnn14-tiny)")
    result("CLAP training examples/s (cnn14-tiny, locked text, 2 threads)", BATCH / cached_s)
    for name in ("cnn14-tiny", "cnn14"):
        teacher = create_cnn14(name).eval()
        recomputed_s = seconds(teacher, n=2 if name == "cnn14" else 4)
        ratio = recomputed_s / cached_s
        print(f"teacher {name} recomputed per step: {recomputed_s * 1e3:.0f} ms → cached is {ratio:.2f}x faster")
        result(f"CLAP-TAG step, cached vs recomputed {name} teacher", ratio, ">=", 1.25)


if __name__ == "__main__":
    main()
