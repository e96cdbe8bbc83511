"""Text-to-audio retrieval metrics with DESIGN.md's exact definitions.

For query ``q`` whose one relevant audio sits at 0-based rank ``r``: ``R@k = mean[r < k]`` and
``mAP@10 = mean[1/(r+1) if r < 10 else 0]`` (with one relevant item, average precision is the
reciprocal rank). Ties are pessimistic: ``r`` counts every *other* item scored ≥ the relevant
one, so a constant similarity matrix scores near zero instead of near one.
"""

from __future__ import annotations

import numpy as np

METRICS = ("R@1", "R@5", "R@10", "mAP@10")


def ranks(similarity: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """0-based pessimistic rank of each query's relevant item.

    similarity: (Q, N) scores, higher is better; relevant: (Q,) column index per query.
    """
    similarity = np.asarray(similarity)
    relevant = np.asarray(relevant, dtype=np.int64)
    if similarity.ndim != 2 or relevant.shape != (similarity.shape[0],):
        raise ValueError(f"need similarity (Q, N) and relevant (Q,), got {similarity.shape} and {relevant.shape}")
    if relevant.size and (relevant.min() < 0 or relevant.max() >= similarity.shape[1]):
        raise ValueError("relevant indices must lie in [0, N)")
    if not np.isfinite(similarity).all():
        raise ValueError("similarity contains NaN or infinite values")
    target = similarity[np.arange(similarity.shape[0]), relevant]
    return (similarity >= target[:, None]).sum(axis=1) - 1


def retrieval_metrics(similarity: np.ndarray, relevant: np.ndarray) -> dict[str, float]:
    """``{"R@1", "R@5", "R@10", "mAP@10"}`` for ``similarity[q, a]`` and ``relevant[q]``."""
    r = ranks(similarity, relevant)
    return {
        "R@1": float(np.mean(r < 1)),
        "R@5": float(np.mean(r < 5)),
        "R@10": float(np.mean(r < 10)),
        "mAP@10": float(np.mean(np.where(r < 10, 1.0 / (r + 1), 0.0))),
    }
