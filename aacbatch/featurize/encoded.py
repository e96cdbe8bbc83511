"""``encoded``: frame embeddings of a trained, frozen audio encoder — the captioner's input.

Captioning freezes the retrieval-trained CNN14 (E_A), so its frames (B, T', C) never change
during captioner training: computing them once here, from the cached log-mels, turns every
captioner step from a CNN14 forward pass into a table lookup. The encoder is a registered
run whose catalog entry can be an encoder (its best checkpoint) or a checkpoint file; its
content hash is part of the fingerprint, so a set can never silently mix encoders. Stored
ragged like ``mel``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aacbatch.cache import ArraySpec
from aacbatch.featurize.frozen import FrozenCnn14Kind
from aacbatch.featurize.kinds import OnBad


class EncodedKind(FrozenCnn14Kind):
    run_param, role = "run", "encoder"

    @dataclass(frozen=True)
    class Params:
        run: str = ""  # retrieval or tagger run id (or prefix), or a checkpoint path
        mel: str = "mel"  # feature set with the clips' log-mels
        dtype: str = "float16"
        batch_size: int = 32

        def __post_init__(self):
            if not self.run:
                raise ValueError("run is required: the retrieval run whose audio encoder to freeze "
                                 "(aacbatch featurize encoded --from-run RUN_ID)")
            if self.dtype not in ("float16", "float32"):
                raise ValueError(f"dtype must be float16 or float32, got {self.dtype!r}")

    def default_name(self, spec_name: str) -> str:
        """One set per encoder: ``encoded-<first 8 characters of the run id>``, or for a
        checkpoint file ``encoded-<file stem>-<hash of its absolute path>`` (``best.pt`` of
        two runs must not share a name)."""
        run = self.params.run
        if not Path(run).is_file():
            return f"{spec_name}-{run[:8]}"
        where = hashlib.sha256(str(Path(run).resolve()).encode()).hexdigest()[:8]
        return f"{spec_name}-{Path(run).stem}-{where}"

    def identity(self) -> dict:
        return {**super().identity(), "frame_dim": self.model.config.channels[-1]}

    def arrays(self) -> dict[str, ArraySpec]:
        return {"frames": ArraySpec((self.model.config.channels[-1],), self.params.dtype, ragged=True)}

    def lengths(self, items: list) -> dict[str, np.ndarray]:
        """T' = T // 32 (at least 1, as CNN14's pooling keeps a too-short clip's first frame)."""
        return {"frames": np.maximum(self.mel_lengths(items) // self.model.config.time_stride, 1)}

    def compute(self, items: list, on_bad: OnBad) -> dict[str, list[np.ndarray]]:
        out: list[np.ndarray] = []
        for result in self.outputs(items, self.params.batch_size):
            frames = result.frames.numpy().astype(self.params.dtype)
            out.extend(f[:n] for f, n in zip(frames, result.frame_lengths.tolist()))
        return {"frames": out}
