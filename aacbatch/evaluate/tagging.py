"""Tagging metric: mean average precision over classes (the AudioSet / PANNs mAP)."""

from __future__ import annotations

import numpy as np


def average_precision(targets: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AP per class for (N, K) binary targets and scores; NaN for classes with no positive.

    AP = mean over positives of precision at their rank (descending scores; ties broken
    pessimistically: positives rank after the negatives they tie with).
    """
    targets = np.asarray(targets, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    ap = np.full(targets.shape[1], np.nan)
    for k in range(targets.shape[1]):
        pos = targets[:, k]
        if not pos.any():
            continue
        order = np.lexsort((pos, -scores[:, k]))  # by score desc, negatives before positives on ties
        hits = pos[order]
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        ap[k] = precision[hits].mean()
    return ap


def mean_average_precision(targets: np.ndarray, scores: np.ndarray) -> float:
    """Macro mAP over classes that have at least one positive."""
    ap = average_precision(targets, scores)
    return float(np.nanmean(ap)) if np.isfinite(ap).any() else float("nan")
