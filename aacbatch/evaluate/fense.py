"""FENSE's fluency-error detector, the penalty behind SPIDEr-FL (DCASE 2023 Task 6a's ranking metric) and FENSE.

SPIDEr-FL scales an item's SPIDEr, and FENSE its Sentence-BERT similarity, by 0.1 when FENSE's
BERT classifier (the "echecker", Zhou et al., 2022) gives its last class, "error", a sigmoid
probability above 0.9. The detector reads the *PTB-tokenised* candidate: aac-metrics'
``evaluate``, which DCASE 2023 and 2024 score with, tokenises candidates and references first and
hands the same tokens to every metric, the echecker included. FENSE's own clean-up (punctuation
stripped, lower case) then runs on those tokens. One set of flags serves FENSE and SPIDEr-FL.

The checkpoint ``echecker_clotho_audiocaps_base.ckpt`` and the ``bert-base-uncased``
configuration and vocabulary it was trained from are user-supplied assets under
``<assets>/fense/``. All weights come from the checkpoint, so the BERT folder needs only
``config.json`` and ``vocab.txt``; torch and transformers are imported only when it is used.

NOT verified against the real checkpoint (it cannot be downloaded here). The loader follows
FENSE's published format -- ``{"model_type", "num_classes", "state_dict"}`` with ``encoder.*``
(a BertModel) and ``clf.*`` (a linear head on the [CLS] state) -- and the tests run it on a
tiny random checkpoint of that format. Install checks the file against FENSE's published
SHA-256.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from aacbatch.device import current
from aacbatch.models.checkpoints import load_file

CHECKPOINT = "echecker_clotho_audiocaps_base.ckpt"
CHECKPOINT_SHA256 = "1a719f090af70614bbdb9f9437530b7e133c48cfa4a58d964de0d47fc974a2fa"  # FENSE release V0.1
BERT_DIR = "bert-base-uncased"
BERT_FILES = ("config.json", "vocab.txt")
ERROR_THRESHOLD = 0.9
MAX_TOKENS = 64
_NOT_WORD = re.compile(r"[^\w\s]")


def fense_dir(assets_dir: Path) -> Path:
    """Where the checkpoint and the BERT folder live inside an assets directory."""
    return Path(assets_dir) / "fense"


class FluencyErrors:
    """Per-candidate fluency-error flags from FENSE's echecker."""

    def __init__(self, assets_dir: Path, *, device: str | None = None, batch_size: int = 32) -> None:
        self.checkpoint = fense_dir(assets_dir) / CHECKPOINT
        self.bert = fense_dir(assets_dir) / BERT_DIR
        self.device = device
        self.batch_size = batch_size

    def missing(self) -> str | None:
        """Why the detector cannot run (missing assets), or None when it can."""
        needed = [self.checkpoint, *(self.bert / name for name in BERT_FILES)]
        if any(not path.is_file() for path in needed):  # short: reports show it per cell
            return f"SPIDEr-FL needs the FENSE checkpoint and {BERT_DIR}: run `aacbatch metrics install --from DIR`"
        return None

    def compute(self, candidates: Sequence[str]) -> np.ndarray:
        """Boolean array: True where the "error" probability exceeds 0.9."""
        from transformers import AutoTokenizer

        device = self.device or str(current())  # the process's --device
        tokenizer = AutoTokenizer.from_pretrained(self.bert)
        encoder, head = self._load(device)
        probs = []
        with torch.inference_mode():
            for start in range(0, len(candidates), self.batch_size):
                texts = [_NOT_WORD.sub("", text).lower() for text in candidates[start:start + self.batch_size]]
                batch = tokenizer(texts, truncation=True, padding="max_length", max_length=MAX_TOKENS,
                                  return_tensors="pt").to(device)
                cls = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                              token_type_ids=batch["token_type_ids"]).last_hidden_state[:, 0]
                probs.append(torch.sigmoid(head(cls))[:, -1].cpu().numpy())
        return np.concatenate(probs) > ERROR_THRESHOLD

    def _load(self, device: str) -> tuple[torch.nn.Module, torch.nn.Module]:
        """(BertModel, linear head) with the checkpoint's weights, in eval mode on ``device``."""
        from transformers import AutoConfig, AutoModel

        saved = load_file(self.checkpoint)
        encoder = AutoModel.from_config(AutoConfig.from_pretrained(self.bert))
        head = torch.nn.Linear(encoder.config.hidden_size, int(saved["num_classes"]))
        # Older transformers saved buffers such as position_ids that today's BertModel rebuilds instead.
        rebuilt = {name for name, _ in encoder.named_buffers()} - encoder.state_dict().keys()
        weights = saved["state_dict"]
        encoder.load_state_dict({key.removeprefix("encoder."): value for key, value in weights.items()
                                 if key.startswith("encoder.") and key.removeprefix("encoder.") not in rebuilt})
        head.load_state_dict({key.removeprefix("clf."): value for key, value in weights.items() if key.startswith("clf.")})
        return encoder.eval().to(device), head.eval().to(device)
