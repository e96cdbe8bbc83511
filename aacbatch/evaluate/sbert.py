"""Sentence-BERT similarity of a candidate and its references: the semantic half of FENSE.

FENSE (Zhou et al., 2022) scores a candidate by the cosine similarity of its Sentence-BERT
embedding with each reference's, averaged over the references, and multiplies that by the
fluency penalty (:mod:`aacbatch.evaluate.fense`). Embeddings are L2-normalised, so the cosine
is a dot product, as in FENSE's and aac-metrics' code.

The official model is ``paraphrase-TinyBERT-L6-v2`` from sentence-transformers. It cannot be
downloaded here, so it is a user asset like the fluency checkpoint: a local
sentence-transformers folder (one with ``modules.json``), by default
``<assets>/fense/paraphrase-TinyBERT-L6-v2``. Any other local sentence-transformers folder may
be named instead; scores made with another model are not FENSE's numbers, which is why the
folder's name and content hash are recorded with every score (:mod:`aacbatch.evaluate.provenance`).
sentence-transformers (and torch) are imported only when a similarity is computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aacbatch.device import current

FENSE_SBERT = "paraphrase-TinyBERT-L6-v2"
MODEL_MARKER = "modules.json"  # what makes a folder a sentence-transformers model


def sbert_dir(assets_dir: Path) -> Path:
    """Where FENSE's official Sentence-BERT folder lives inside an assets directory."""
    return Path(assets_dir) / "fense" / FENSE_SBERT


def is_sbert_dir(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / MODEL_MARKER).is_file()


class SentenceSimilarity:
    """Mean cosine similarity of each candidate's embedding with its references' embeddings."""

    def __init__(self, model_dir: Path, *, device: str | None = None, batch_size: int = 32) -> None:
        self.model_dir = Path(model_dir)
        self.device = device
        self.batch_size = batch_size

    def missing(self) -> str | None:
        """Why the similarity cannot be computed (no model folder), or None when it can."""
        if not is_sbert_dir(self.model_dir):  # short: reports show it per cell
            return (f"FENSE needs a local sentence-transformers folder ({FENSE_SBERT}) at {self.model_dir}: "
                    "run `aacbatch metrics install --from DIR`")
        return None

    def compute(self, candidates: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
        """(N,) mean over each item's references of cos(candidate, reference)."""
        from sentence_transformers import SentenceTransformer

        device = self.device or str(current())  # the process's --device
        model = SentenceTransformer(str(self.model_dir), device=device, local_files_only=True)
        n_refs = np.array([len(refs) for refs in references], dtype=np.int64)
        flat = [ref for refs in references for ref in refs]
        cands = self._encode(model, list(candidates))
        refs = self._encode(model, flat)
        owner = np.repeat(np.arange(len(candidates)), n_refs)
        cosine = np.einsum("rd,rd->r", cands[owner], refs)
        return np.bincount(owner, weights=cosine, minlength=len(candidates)) / n_refs

    def _encode(self, model, sentences: list[str]) -> np.ndarray:
        """(len(sentences), d) unit-length float64 embeddings."""
        embeddings = model.encode(sentences, batch_size=self.batch_size, convert_to_numpy=True,
                                  normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(embeddings, dtype=np.float64)
