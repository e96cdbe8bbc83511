"""Retrieval metrics in both directions, with per-query values kept for intervals.

Text→audio (``t2a/``), one relevant clip per caption query: for query ``q`` whose clip sits at
0-based rank ``r``, ``R@k = mean[r < k]`` and ``mAP@10 = mean[1/(r+1) if r < 10 else 0]`` (with
one relevant item, average precision is the reciprocal rank).

Audio→text (``a2t/``) as DCASE's retrieval task defines it: a clip query has several relevant
captions (its own, usually 5). With the captions ranked by similarity and ``n`` relevant ones,

* ``R@k`` = (relevant captions in the top k) / n, averaged over clips;
* ``mAP@10`` = sum over the relevant captions at positions ``p <= 10`` of (relevant captions
  at positions <= p) / p, divided by n, averaged over clips.

The older "first hit" convention -- the rank of a clip's best-scored caption, ``R@k`` = whether
it is in the top k, and its reciprocal rank -- is kept under the distinct names
``a2t_first/R@k`` and ``a2t_first/MRR@10`` (its reciprocal rank is not an average precision
over several relevant captions, so it is not called mAP).

Ties are pessimistic everywhere: among equal scores the irrelevant items come first, so a
constant similarity matrix scores near zero instead of near one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aacbatch.evaluate.statistics import CorpusStatistic, grouped_mean_statistic, mean_statistic

METRICS = ("R@1", "R@5", "R@10", "mAP@10")
FIRST_HIT_METRICS = ("R@1", "R@5", "R@10", "MRR@10")
_CUTOFFS = (1, 5, 10)
_BLOCK_ELEMENTS = 1 << 23  # similarity entries per block of the (captions x captions) comparison (64 MB)


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


def text_to_audio_per_query(similarity: np.ndarray, relevant: np.ndarray) -> dict[str, np.ndarray]:
    """``{"R@1", "R@5", "R@10", "mAP@10"}`` -> (Q,) per-query values; their means are :func:`retrieval_metrics`."""
    return _from_first_hit(ranks(similarity, relevant), "mAP@10")


def retrieval_metrics(similarity: np.ndarray, relevant: np.ndarray) -> dict[str, float]:
    """``{"R@1", "R@5", "R@10", "mAP@10"}`` for ``similarity[q, a]`` and ``relevant[q]``."""
    return _means(text_to_audio_per_query(similarity, relevant))


def audio_to_text_positions(similarity: np.ndarray, caption_clip: np.ndarray) -> np.ndarray:
    """(T,) 1-based pessimistic position of each caption in its own clip's ranking of all T captions.

    similarity: (A, T) for clip ``a`` and caption ``t``; caption_clip: (T,) clip of each caption.
    Among equal scores the other clips' captions come first; a clip's own tied captions take
    consecutive positions. The position of a clip's i-th best relevant caption is therefore
    ``i + (other clips' captions scored >= it)``.
    """
    return _a2t_ranking(*_check_a2t(similarity, caption_clip))[0]


def audio_to_text_per_clip(similarity: np.ndarray, caption_clip: np.ndarray) -> dict[str, np.ndarray]:
    """DCASE's a2t ``{"R@1", "R@5", "R@10", "mAP@10"}`` -> (A,) per-clip values (see the module docstring)."""
    similarity, caption_clip = _check_a2t(similarity, caption_clip)
    positions, hits_so_far = _a2t_ranking(similarity, caption_clip)
    n_clips = similarity.shape[0]
    n_relevant = np.bincount(caption_clip, minlength=n_clips).astype(np.float64)

    def per_clip_mean(values: np.ndarray) -> np.ndarray:
        return np.bincount(caption_clip, weights=values, minlength=n_clips) / n_relevant

    per_clip = {f"R@{k}": per_clip_mean((positions <= k).astype(np.float64)) for k in _CUTOFFS}
    per_clip["mAP@10"] = per_clip_mean(np.where(positions <= 10, hits_so_far / positions, 0.0))
    return per_clip


def audio_to_text_metrics(similarity: np.ndarray, caption_clip: np.ndarray) -> dict[str, float]:
    """DCASE's a2t ``{"R@1", "R@5", "R@10", "mAP@10"}``: ``similarity[a, t]``, ``caption_clip[t]``."""
    return _means(audio_to_text_per_clip(similarity, caption_clip))


def audio_to_text_first_hit_per_clip(similarity: np.ndarray, caption_clip: np.ndarray) -> dict[str, np.ndarray]:
    """First-hit a2t ``{"R@1", "R@5", "R@10", "MRR@10"}`` -> (A,): from the 0-based pessimistic
    rank of each clip's best-scored caption among the other clips' captions."""
    similarity, caption_clip = _check_a2t(similarity, caption_clip)
    positions = audio_to_text_positions(similarity, caption_clip)
    best = np.full(similarity.shape[0], np.iinfo(np.int64).max)
    np.minimum.at(best, caption_clip, positions)
    return _from_first_hit(best - 1, "MRR@10")


def audio_to_text_first_hit_metrics(similarity: np.ndarray, caption_clip: np.ndarray) -> dict[str, float]:
    """Means of :func:`audio_to_text_first_hit_per_clip` (the WavCaps/CLAP-style R@k)."""
    return _means(audio_to_text_first_hit_per_clip(similarity, caption_clip))


def retrieval_scores(similarity: np.ndarray, relevant: np.ndarray, *, first_hit: bool = False) -> dict[str, float]:
    """Both directions of a split as stored in the registry: ``t2a/R@1`` … ``a2t/mAP@10``
    (DCASE's definition), plus ``a2t_first/R@1`` … ``a2t_first/MRR@10`` when ``first_hit``.

    similarity: (captions, clips); relevant: (captions,) column of each caption's clip.
    """
    scores = {f"t2a/{k}": v for k, v in retrieval_metrics(similarity, relevant).items()}
    scores |= {f"a2t/{k}": v for k, v in audio_to_text_metrics(np.asarray(similarity).T, relevant).items()}
    if first_hit:
        scores |= {f"a2t_first/{k}": v for k, v in audio_to_text_first_hit_metrics(np.asarray(similarity).T, relevant).items()}
    return scores


def retrieval_statistics(similarity: np.ndarray, relevant: np.ndarray, clip_ids: Sequence[str] | None = None, *,
                         first_hit: bool = False) -> dict[str, CorpusStatistic]:
    """:func:`retrieval_scores`' metrics as corpus statistics resampled by clip.

    A t2a metric is the mean over caption queries, and a clip's captions are resampled together;
    an a2t metric is the mean over clip queries. Ranks are computed once against the full
    gallery: an interval describes which queries were drawn, not the gallery's size.
    clip_ids: (clips,) ids of the similarity columns (default "0", "1", …).
    """
    similarity = np.asarray(similarity)
    ids = tuple(clip_ids) if clip_ids is not None else tuple(str(i) for i in range(similarity.shape[1]))
    if len(ids) != similarity.shape[1]:
        raise ValueError(f"need {similarity.shape[1]} clip ids, got {len(ids)}")
    relevant = np.asarray(relevant, dtype=np.int64)
    out = {f"t2a/{name}": grouped_mean_statistic(ids, relevant, values)
           for name, values in text_to_audio_per_query(similarity, relevant).items()}
    out |= {f"a2t/{name}": mean_statistic(ids, values)
            for name, values in audio_to_text_per_clip(similarity.T, relevant).items()}
    if first_hit:
        out |= {f"a2t_first/{name}": mean_statistic(ids, values)
                for name, values in audio_to_text_first_hit_per_clip(similarity.T, relevant).items()}
    return out


def _check_a2t(similarity: np.ndarray, caption_clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    similarity = np.asarray(similarity, dtype=np.float64)
    caption_clip = np.asarray(caption_clip, dtype=np.int64)
    if similarity.ndim != 2 or caption_clip.shape != (similarity.shape[1],):
        raise ValueError(f"need similarity (A, T) and caption_clip (T,), got {similarity.shape} and {caption_clip.shape}")
    if caption_clip.size and (caption_clip.min() < 0 or caption_clip.max() >= similarity.shape[0]):
        raise ValueError("caption_clip indices must lie in [0, A)")
    if not np.isfinite(similarity).all():
        raise ValueError("similarity contains NaN or infinite values")
    if (np.bincount(caption_clip, minlength=similarity.shape[0]) == 0).any():
        raise ValueError("every clip needs at least one caption")
    return similarity, caption_clip


def _a2t_ranking(similarity: np.ndarray, caption_clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions, i): each caption's 1-based position in its clip's ranking, and its index i
    (1-based) among its clip's own captions, best-scored first -- the hits so far at that position."""
    n_captions = caption_clip.size
    own = similarity[caption_clip, np.arange(n_captions)]  # each caption's score in its clip's row
    others_above = np.empty(n_captions, dtype=np.int64)
    step = max(1, _BLOCK_ELEMENTS // max(n_captions, 1))
    for start in range(0, n_captions, step):
        block = slice(start, start + step)
        rows = similarity[caption_clip[block]]  # (b, T): the row of each caption's clip
        other = caption_clip[None, :] != caption_clip[block, None]
        others_above[block] = ((rows >= own[block, None]) & other).sum(axis=1)
    order = np.lexsort((-own, caption_clip))  # by clip, best-scored caption first
    first_of_clip = np.searchsorted(caption_clip[order], caption_clip[order], side="left")
    within = np.empty(n_captions, dtype=np.int64)
    within[order] = np.arange(n_captions) - first_of_clip + 1
    return within + others_above, within


def _from_first_hit(r: np.ndarray, reciprocal_name: str) -> dict[str, np.ndarray]:
    """Per-query values from 0-based ranks of a single (or first) relevant item."""
    values = {f"R@{k}": (r < k).astype(np.float64) for k in _CUTOFFS}
    values[reciprocal_name] = np.where(r < 10, 1.0 / (r + 1), 0.0)
    return values


def _means(per_query: dict[str, np.ndarray]) -> dict[str, float]:
    return {name: float(np.mean(values)) for name, values in per_query.items()}
