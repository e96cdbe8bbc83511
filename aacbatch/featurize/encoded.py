"""``encoded``: frame embeddings of a trained, frozen audio encoder — the captioner's input.

Captioning freezes the retrieval-trained CNN14 (E_A), so its frames (B, T', C) never change
during captioner training: computing them once here, from the cached log-mels, turns every
captioner step from a CNN14 forward pass into a table lookup. The encoder is a registered
retrieval or tagger run (its best checkpoint) or a checkpoint file; its content hash is part
of the fingerprint, so a set can never silently mix encoders. Stored ragged like ``mel``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from aacbatch.cache import ArraySpec
from aacbatch.featurize.kinds import FeatureKind, OnBad
from aacbatch.featurize.tags import file_sha256

ENCODER_TASKS = ("clap", "clap_tag", "claip", "claip_tag", "tagger")


class EncodedKind(FeatureKind):
    item = "clip"

    @dataclass(frozen=True)
    class Params:
        run: str = ""  # retrieval or tagger run id, or a checkpoint path
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

    @cached_property
    def checkpoint(self) -> Path:
        from aacbatch.registry.lookup import checkpoint_of

        return checkpoint_of(self.context.registry, self.params.run, ENCODER_TASKS)

    @cached_property
    def model(self):
        from aacbatch.models.cnn14 import load_tagger

        return load_tagger(self.checkpoint).eval()

    @cached_property
    def mel_set(self):
        from aacbatch.featurize.sets import cached_set

        return cached_set(self.context.registry, self.context.dataset, self.params.mel)

    @cached_property
    def _mel_reader(self):
        return self.mel_set.store.reader("mel")

    def identity(self) -> dict:
        return {"encoder_run": None if Path(self.params.run).is_file() else self.params.run,
                "checkpoint_path": str(self.checkpoint), "checkpoint_sha256": file_sha256(self.checkpoint),
                "frame_dim": self.model.config.channels[-1], "mel_fingerprint": self.mel_set.fingerprint}

    def arrays(self) -> dict[str, ArraySpec]:
        return {"frames": ArraySpec((self.model.config.channels[-1],), self.params.dtype, ragged=True)}

    def lengths(self, items: list) -> dict[str, np.ndarray]:
        """T' = T // 32 (at least 1, as CNN14's pooling keeps a too-short clip's first frame)."""
        mel_lengths = self._mel_reader.lengths[self.mel_set.store.rows([c.idx for c in items])]
        return {"frames": np.maximum(mel_lengths // self.model.config.time_stride, 1)}

    def compute(self, items: list, on_bad: OnBad) -> dict[str, list[np.ndarray]]:
        import torch

        from aacbatch.batches import pad_ragged

        rows = self.mel_set.store.rows([c.idx for c in items])
        out: list[np.ndarray] = []
        with torch.no_grad():
            for lo in range(0, len(items), self.params.batch_size):
                mel, lengths = pad_ragged(self._mel_reader[rows[lo:lo + self.params.batch_size]])
                result = self.model(torch.from_numpy(mel), torch.from_numpy(lengths), is_logmel=True)
                frames = result.frames.numpy().astype(self.params.dtype)
                out.extend(f[:n] for f, n in zip(frames, result.frame_lengths.tolist()))
        return {"frames": out}
