"""``tags``: the frozen teacher's tag scores per clip — CLAP-TAG's regression target.

The teacher is a registered tagger run (its best checkpoint) or a PANNs checkpoint file
(``Cnn14_mAP=0.431.pth`` with ``model = "cnn14"``). It reads the clips' cached log-mels
(feature set ``mel`` of the same dataset), so the STFT is never recomputed; its identity —
checkpoint hash and label set — is part of the fingerprint.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from aacbatch.cache import ArraySpec
from aacbatch.errors import InputError
from aacbatch.featurize.kinds import FeatureKind, OnBad


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class TagsKind(FeatureKind):
    item = "clip"

    @dataclass(frozen=True)
    class Params:
        teacher: str = ""  # tagger run id, or a PANNs checkpoint path
        model: str = "cnn14"  # architecture of a PANNs checkpoint file
        mel: str = "mel"  # feature set with the clips' log-mels
        batch_size: int = 32

        def __post_init__(self):
            if not self.teacher:
                raise ValueError("teacher is required: a tagger run id or a PANNs checkpoint path "
                                 "(e.g. --set teacher=RUN_ID)")

    @cached_property
    def checkpoint(self) -> Path:
        from aacbatch.registry.lookup import checkpoint_of

        return checkpoint_of(self.context.registry, self.params.teacher, ("tagger",))

    @cached_property
    def model(self):
        from aacbatch.models.cnn14 import load_tagger

        model = load_tagger(self.checkpoint, self.params.model)
        return model.eval()

    @cached_property
    def mel_set(self):
        from aacbatch.featurize.sets import cached_set

        return cached_set(self.context.registry, self.context.dataset, self.params.mel)

    def identity(self) -> dict:
        return {"teacher_run": None if Path(self.params.teacher).is_file() else self.params.teacher,
                "checkpoint_path": str(self.checkpoint), "checkpoint_sha256": file_sha256(self.checkpoint),
                "n_classes": self.model.config.n_classes, "mel_fingerprint": self.mel_set.fingerprint}

    def arrays(self) -> dict[str, ArraySpec]:
        return {"scores": ArraySpec((self.model.config.n_classes,), "float32")}

    @cached_property
    def _mel_reader(self):
        """One reader for the whole job: it holds the decoded log-mels across blocks."""
        return self.mel_set.store.reader("mel")

    def compute(self, items: list, on_bad: OnBad) -> dict[str, np.ndarray]:
        import torch

        from aacbatch.batches import pad_ragged

        rows = self.mel_set.store.rows([c.idx for c in items])
        scores = []
        with torch.no_grad():
            for lo in range(0, len(items), self.params.batch_size):
                mel, lengths = pad_ragged(self._mel_reader[rows[lo:lo + self.params.batch_size]])
                out = self.model(torch.from_numpy(mel), torch.from_numpy(lengths), is_logmel=True)
                scores.append(out.tag_scores.numpy())
        return {"scores": np.concatenate(scores)}
