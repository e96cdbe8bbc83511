"""``tags``: the frozen teacher's tag scores per clip — CLAP-TAG's regression target.

The teacher is a registered tagger run (its best checkpoint) or a PANNs checkpoint file
(``Cnn14_mAP=0.431.pth`` with ``model = "cnn14"``), run over the cached log-mels
(:class:`~aacbatch.featurize.frozen.FrozenCnn14Kind`); its identity — checkpoint hash and
label count — is part of the fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aacbatch.cache import ArraySpec
from aacbatch.featurize.frozen import FrozenCnn14Kind
from aacbatch.featurize.kinds import OnBad


class TagsKind(FrozenCnn14Kind):
    run_param, role = "teacher", "teacher"

    @dataclass(frozen=True)
    class Params:
        teacher: str = ""  # tagger run id (or prefix), or a PANNs checkpoint path
        model: str = "cnn14"  # architecture of a PANNs checkpoint file
        mel: str = "mel"  # feature set with the clips' log-mels
        batch_size: int = 32

        def __post_init__(self):
            if not self.teacher:
                raise ValueError("teacher is required: a tagger run id or a PANNs checkpoint path "
                                 "(e.g. --set teacher=RUN_ID)")

    @property
    def variant(self) -> str:
        return self.params.model

    def identity(self) -> dict:
        return {**super().identity(), "n_classes": self.model.config.n_classes}

    def arrays(self) -> dict[str, ArraySpec]:
        return {"scores": ArraySpec((self.model.config.n_classes,), "float32")}

    def compute(self, items: list, on_bad: OnBad) -> dict[str, np.ndarray]:
        return {"scores": np.concatenate([out.tag_scores.numpy() for out in self.outputs(items, self.params.batch_size)])}
