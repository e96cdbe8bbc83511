"""Feature kinds that run a frozen CNN14 over the cached log-mels of a dataset.

``tags`` (a teacher's tag scores) and ``encoded`` (an encoder's frames) differ only in what
they keep of the model's output: both name the model as a registered run (full id or
prefix) or a checkpoint file, read the clips' ``mel`` set (so the STFT is never recomputed),
and put the checkpoint's content hash and the log-mels' fingerprint into their identity, so
a set can never silently mix models or inputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from aacbatch import catalog
from aacbatch.batches import pad_ragged
from aacbatch.featurize.kinds import FeatureKind
from aacbatch.featurize.sets import cached_set
from aacbatch.models.checkpoints import audio_encoder, read_checkpoint
from aacbatch.models.cnn14 import Cnn14, Cnn14Output
from aacbatch.registry.runs import checkpoint_file
from aacbatch.hashing import file_sha256


class FrozenCnn14Kind(FeatureKind):
    """Base of the kinds whose parameter ``run_param`` names the frozen model; its run must
    have the catalog role ``role`` (``teacher`` or ``encoder``)."""

    item = "clip"
    run_param: str
    role: str
    variant: str = "cnn14"  # architecture of a PANNs checkpoint file (no config of its own)

    @property
    def ref(self) -> str:
        return getattr(self.params, self.run_param)

    @cached_property
    def _resolved(self) -> tuple[str | None, Path]:
        return checkpoint_file(self.context.registry, self.ref, catalog.tasks_where(**{self.role: True}),
                               f"{self.role} run")

    @property
    def checkpoint(self) -> Path:
        return self._resolved[1]

    @cached_property
    def model(self) -> Cnn14:
        return audio_encoder(read_checkpoint(self.checkpoint), self.variant).eval()

    @cached_property
    def mel_set(self):
        return cached_set(self.context.registry, self.context.dataset, self.params.mel)

    @cached_property
    def _mel_reader(self):
        """One reader for the whole job: it holds the decoded log-mels across blocks."""
        return self.mel_set.store.reader("mel")

    def identity(self) -> dict:
        return {f"{self.role}_run": self._resolved[0], "checkpoint_path": str(self.checkpoint),
                "checkpoint_sha256": file_sha256(self.checkpoint), "mel_fingerprint": self.mel_set.fingerprint}

    def outputs(self, items: list, batch_size: int) -> Iterator[Cnn14Output]:
        """The model's outputs for ``items``, ``batch_size`` padded log-mels at a time."""
        rows = self.mel_set.store.rows([c.idx for c in items])
        with torch.no_grad():
            for lo in range(0, len(items), batch_size):
                mel, lengths = pad_ragged(self._mel_reader[rows[lo:lo + batch_size]])
                yield self.model(torch.from_numpy(mel), torch.from_numpy(lengths), is_logmel=True)

    def mel_lengths(self, items: list) -> np.ndarray:
        return self._mel_reader.lengths[self.mel_set.store.rows([c.idx for c in items])]
