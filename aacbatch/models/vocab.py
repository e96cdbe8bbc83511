"""The captioner's vocabulary: PTB tokens of training captions, with four reserved ids.

Words are the tokens the caption metrics see (pycocoevalcap's PTB tokenizer, lower case, no
punctuation), so a generated caption is already in the metrics' form. Words are ordered
alphabetically after the reserved ids, not by frequency: the vocabulary of a pretraining
run and of its finetuning run are then identical whenever both see the same union of
caption sets (``vocab_from``), whichever of the two is the run's own dataset.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

PAD, START, END, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<start>", "<end>", "<unk>")


@dataclass(frozen=True)
class Vocabulary:
    words: tuple[str, ...]  # index → word; the first four are SPECIALS

    @classmethod
    def build(cls, captions: Iterable[Sequence[str]], min_count: int = 1) -> "Vocabulary":
        """From tokenised captions; words seen fewer than ``min_count`` times become ``<unk>``."""
        counts = Counter(w for caption in captions for w in caption)
        return cls(SPECIALS + tuple(sorted(w for w, n in counts.items() if n >= min_count and w not in SPECIALS)))

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, captions: Sequence[Sequence[str]], max_words: int) -> np.ndarray:
        """Tokenised captions → (N, max_words + 2) int64: START, ≤ max_words ids, END, PAD…"""
        index = {w: i for i, w in enumerate(self.words)}
        out = np.full((len(captions), max_words + 2), PAD, dtype=np.int64)
        for row, caption in enumerate(captions):
            ids = [index.get(w, UNK) for w in caption[:max_words]]
            out[row, :len(ids) + 2] = [START, *ids, END]
        return out

    def decode(self, ids: Sequence[int]) -> str:
        """Generated ids (no START/END) → caption text; ``<unk>`` stays visible."""
        return " ".join(self.words[i] for i in ids if i not in (PAD, START, END))
