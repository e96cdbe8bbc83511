"""Text-to-audio retrieval metrics, defined exactly (and tested against brute force).

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
    return _summarise(ranks(similarity, relevant))


def _summarise(r: np.ndarray) -> dict[str, float]:
    return {
        "R@1": float(np.mean(r < 1)),
        "R@5": float(np.mean(r < 5)),
        "R@10": float(np.mean(r < 10)),
        "mAP@10": float(np.mean(np.where(r < 10, 1.0 / (r + 1), 0.0))),
    }


def audio_to_text_metrics(similarity: np.ndarray, caption_clip: np.ndarray) -> dict[str, float]:
    """Audio→text: ``similarity[a, t]`` for clip ``a`` and caption ``t`` whose clip is
    ``caption_clip[t]``. A clip has several relevant captions; ``r`` is the pessimistic rank
    of its best-scored one among the *other clips'* captions, and R@k and mAP@10 use that
    ``r`` exactly as text→audio does (mAP@10 is the reciprocal rank of the first hit)."""
    similarity = np.asarray(similarity, dtype=np.float64)
    caption_clip = np.asarray(caption_clip, dtype=np.int64)
    if similarity.ndim != 2 or caption_clip.shape != (similarity.shape[1],):
        raise ValueError(f"need similarity (A, T) and caption_clip (T,), got {similarity.shape} and {caption_clip.shape}")
    if not np.isfinite(similarity).all():
        raise ValueError("similarity contains NaN or infinite values")
    relevant = caption_clip[None, :] == np.arange(similarity.shape[0])[:, None]
    if not relevant.any(axis=1).all():
        raise ValueError("every clip needs at least one caption")
    best = np.where(relevant, similarity, -np.inf).max(axis=1)
    r = ((similarity >= best[:, None]) & ~relevant).sum(axis=1)
    return _summarise(r)


def retrieval_scores(similarity: np.ndarray, relevant: np.ndarray) -> dict[str, float]:
    """Both directions of a split as stored in the registry: ``t2a/R@1`` … ``a2t/mAP@10``.

    similarity: (captions, clips); relevant: (captions,) column of each caption's clip.
    """
    t2a = {f"t2a/{k}": v for k, v in retrieval_metrics(similarity, relevant).items()}
    a2t = {f"a2t/{k}": v for k, v in audio_to_text_metrics(np.asarray(similarity).T, relevant).items()}
    return {**t2a, **a2t}
