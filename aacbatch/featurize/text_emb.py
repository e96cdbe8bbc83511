"""``text_emb``: CLS embeddings of a frozen text encoder per caption (LiT-style locked text).

With the text encoder locked, its outputs never change, so they are computed once here and
training costs nothing on the text side — what makes the CPU demo possible, and a useful
mode for real runs too. Fine-tuning the text encoder (the paper's default) reads the
``tokens`` kind instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from aacbatch.cache import ArraySpec
from aacbatch.featurize.kinds import OnBad
from aacbatch.featurize.tokens import TokensKind
from aacbatch.models.text import TextEncoder


class TextEmbKind(TokensKind):
    item = "caption"

    @dataclass(frozen=True)
    class Params(TokensKind.Params):
        batch_size: int = 128
        dtype: str = "float32"

    @cached_property
    def encoder(self) -> TextEncoder:
        return TextEncoder(self.model_dir).freeze()

    def arrays(self) -> dict[str, ArraySpec]:
        return {"cls": ArraySpec((self.encoder.hidden_size,), self.params.dtype)}

    def compute(self, items: list, on_bad: OnBad) -> dict[str, np.ndarray]:
        tokens = TokensKind.compute(self, items, on_bad)
        out = []
        with torch.no_grad():
            for lo in range(0, len(items), self.params.batch_size):
                hi = lo + self.params.batch_size
                ids = torch.from_numpy(tokens["input_ids"][lo:hi])
                mask = torch.from_numpy(tokens["attention_mask"][lo:hi])
                out.append(self.encoder(ids, mask).numpy())
        return {"cls": np.concatenate(out).astype(self.params.dtype)}

