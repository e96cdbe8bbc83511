"""Bootstrap intervals over clips and paired A-vs-B comparisons, seeded and reproducible.

A metric's value on one evaluation split is one draw: another 1045 clips from the same
distribution would give another number. Both tools here resample *clips* -- the unit that was
sampled -- and keep a clip's captions together (for captioning a clip is one item with its
references; for text→audio its 5 caption queries move as one).

* :func:`bootstrap_intervals` -- percentile intervals from ``resamples`` draws of N clips with
  replacement. Every metric of one call uses the same draws, so intervals of one evaluation
  are jointly resampled.
* :func:`paired_comparison` / :func:`compare` -- systems A and B on the same clips: the
  difference ``A - B``, its paired-bootstrap percentile interval (both scored on the same
  resampled clips), and a two-sided p-value by approximate randomisation (each clip's A and B
  rows are swapped with probability 1/2; ``p = (1 + #{|null| >= |observed|}) / (R + 1)``).

Resampling never re-runs a metric: each metric is a :class:`CorpusStatistic`, a function of
summed per-clip rows (:mod:`aacbatch.evaluate.statistics`), so B resamples are one (B, N) x
(N, k) product. METEOR is resampled from the jar's per-segment statistics and BLEU from
pycocoevalcap's n-gram counts, so their resampled values are their true corpus scores.

CIDEr-D's document frequencies are computed once on the whole evaluated set and held fixed:
a resample is scored with the split's n-gram weights. Recomputing them per resample would
count a duplicated clip's references twice in the frequencies and make a clip's score depend
on the other clips drawn; the fixed-weight interval answers "how much does CIDEr-D move with
the choice of clips, weighted by this reference set", and for A vs B on one split (same
references, same weights) it is exactly the paired quantity. Vocab (a count of distinct
words) gets no interval: a bootstrap resample holds only ~63% distinct clips, so resampled
vocabulary sizes sit far below the observed one and a percentile interval would not cover it.

Seeds: the draws depend only on ``seed`` and the *set* of clip ids (clips are put in sorted
id order before drawing), not on the order in which they were passed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aacbatch.evaluate.statistics import CorpusStatistic

RESAMPLES = 1000
LEVEL = 0.95
SEED = 0
NO_INTERVAL = {"vocab": "a count of distinct words has no bootstrap interval (resamples hold ~63% distinct clips)"}


@dataclass(frozen=True)
class Interval:
    """A corpus score and its bootstrap percentile interval at ``level``."""

    value: float
    low: float
    high: float
    level: float
    resamples: int
    seed: int


@dataclass(frozen=True)
class Comparison:
    """A vs B on the same clips: the difference A - B, its paired-bootstrap interval, a randomisation p-value."""

    a: float
    b: float
    difference: float
    low: float
    high: float
    p_value: float
    level: float
    resamples: int
    seed: int


def clip_weights(ids: Sequence[str], resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(B, N) int: how often each clip (in the order of ``ids``) is drawn in each bootstrap resample."""
    if resamples < 1:
        raise ValueError(f"need at least one resample, got {resamples}")
    n = len(ids)
    if n == 0 or len(set(ids)) != n:
        raise ValueError("clip ids must be non-empty and distinct")
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(np.array(ids, dtype=object), kind="stable")] = np.arange(n)  # sorted position of each id
    draws = np.random.default_rng([seed, 0]).integers(0, n, size=(resamples, n))
    counts = np.bincount((draws + n * np.arange(resamples)[:, None]).ravel(), minlength=resamples * n)
    return counts.reshape(resamples, n)[:, rank]


def bootstrap_intervals(statistics: Mapping[str, CorpusStatistic], *, resamples: int = RESAMPLES,
                        level: float = LEVEL, seed: int = SEED) -> dict[str, Interval]:
    """A percentile interval per metric; metrics over the same clips share the same draws."""
    weights: dict[tuple[str, ...], np.ndarray] = {}
    intervals = {}
    for name, statistic in statistics.items():
        if statistic.ids not in weights:
            weights[statistic.ids] = clip_weights(statistic.ids, resamples, seed)
        low, high = _percentiles(statistic.resampled(weights[statistic.ids]), level)
        intervals[name] = Interval(statistic.value(), low, high, level, resamples, seed)
    return intervals


def bootstrap_interval(statistic: CorpusStatistic, *, resamples: int = RESAMPLES, level: float = LEVEL,
                       seed: int = SEED) -> Interval:
    """:func:`bootstrap_intervals` for one metric."""
    return bootstrap_intervals({"": statistic}, resamples=resamples, level=level, seed=seed)[""]


def paired_comparison(a: CorpusStatistic, b: CorpusStatistic, *, resamples: int = RESAMPLES,
                      level: float = LEVEL, seed: int = SEED) -> Comparison:
    """System A vs system B on the same metric and the same clips (B's rows are matched to A's ids).

    ``resamples`` is used for both the bootstrap interval and the randomisation test.
    """
    try:
        b = b.aligned_to(a.ids)
    except ValueError:
        raise ValueError("paired comparison needs both systems scored on the same clips") from None
    if a.rows.shape != b.rows.shape:
        raise ValueError(f"paired comparison needs the same metric on both sides: rows {a.rows.shape} vs {b.rows.shape}")
    observed = a.value() - b.value()
    weights = clip_weights(a.ids, resamples, seed)
    low, high = _percentiles(a.resampled(weights) - b.resampled(weights), level)
    return Comparison(a.value(), b.value(), observed, low, high, _randomisation_p(a, b, observed, resamples, seed),
                      level, resamples, seed)


def compare(a: Mapping[str, CorpusStatistic], b: Mapping[str, CorpusStatistic], *, resamples: int = RESAMPLES,
            level: float = LEVEL, seed: int = SEED) -> dict[str, Comparison]:
    """:func:`paired_comparison` for every metric both systems have, in A's order."""
    return {name: paired_comparison(stat, b[name], resamples=resamples, level=level, seed=seed)
            for name, stat in a.items() if name in b}


def _randomisation_p(a: CorpusStatistic, b: CorpusStatistic, observed: float, resamples: int, seed: int) -> float:
    """Two-sided approximate-randomisation p-value: swap each clip's A and B rows with probability 1/2."""
    order = np.argsort(np.array(a.ids, dtype=object), kind="stable")
    swaps = np.empty((resamples, len(a.ids)))
    swaps[:, order] = np.random.default_rng([seed, 1]).random((resamples, len(a.ids))) < 0.5
    moved = swaps @ (b.rows - a.rows)  # what the swapped clips add to A's sums and take from B's
    null = a.combine(a.rows.sum(axis=0) + moved) - b.combine(b.rows.sum(axis=0) - moved)
    if np.isnan(observed) or np.isnan(null).any():
        return float("nan")
    at_least = np.abs(null) >= abs(observed) - 1e-12 * max(1.0, abs(observed))  # float noise counts as a tie
    return float((1 + at_least.sum()) / (resamples + 1))


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if np.isnan(values).any():
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)
