"""A corpus score written as a function of summed per-clip statistics, so it can be resampled.

Every corpus metric aacbatch reports is ``combine(sum over clips of rows[clip])`` for some
per-clip row of numbers:

* a mean of per-item values (CIDEr-D, ROUGE-L, SPICE, SPIDEr, SPIDEr-FL, FENSE, ...) -- the row
  is ``(value, 1)`` and ``combine`` divides the two sums;
* a retrieval metric averaged over a clip's several queries -- the row is ``(sum of the clip's
  query values, number of its queries)``, same division;
* METEOR -- the row is the jar's 23 sufficient statistics (:mod:`aacbatch.evaluate.meteor`);
* BLEU-n -- the row is pycocoevalcap's lengths and n-gram counts (:mod:`aacbatch.evaluate.bleu`).

A bootstrap resample or a randomisation of the clips is then a (B, N) matrix of clip weights
(how often each clip is drawn); ``weights @ rows`` gives the B resampled sums and one
vectorised ``combine`` call the B corpus scores -- no metric is re-run. The row of a clip
never depends on which other clips are in the set, which is what makes this exact for the
metrics above (CIDEr-D's document frequencies are the one caveat: they are computed once on
the whole evaluated set and held fixed; see :mod:`aacbatch.evaluate.uncertainty`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CorpusStatistic:
    """A corpus score as ``combine(weights @ rows)``.

    ids: (N,) clip ids, the unit that is resampled; rows: (N, k) per-clip statistics;
    combine: (B, k) sums -> (B,) corpus scores.
    """

    ids: tuple[str, ...]
    rows: np.ndarray
    combine: Callable[[np.ndarray], np.ndarray]

    def __post_init__(self) -> None:
        if self.rows.ndim != 2 or self.rows.shape[0] != len(self.ids):
            raise ValueError(f"need rows (N, k) for N = {len(self.ids)} ids, got {self.rows.shape}")

    def value(self) -> float:
        """The corpus score of the full set (every clip once)."""
        return float(self.combine(self.rows.sum(axis=0)[None, :])[0])

    def resampled(self, weights: np.ndarray) -> np.ndarray:
        """(B,) corpus scores for (B, N) clip weights (counts of each clip in each resample)."""
        return np.asarray(self.combine(weights @ self.rows), dtype=np.float64)

    def aligned_to(self, ids: Sequence[str]) -> "CorpusStatistic":
        """The same statistic with its rows in the order of ``ids`` (which must be the same set)."""
        if tuple(ids) == self.ids:
            return self
        position = {key: i for i, key in enumerate(self.ids)}
        if len(ids) != len(position) or any(key not in position for key in ids):
            raise ValueError("the two statistics are not over the same clips")
        return CorpusStatistic(tuple(ids), self.rows[[position[key] for key in ids]], self.combine)


def _ratio(sums: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums[:, 0] / sums[:, 1]


def mean_statistic(ids: Sequence[str], per_item: np.ndarray) -> CorpusStatistic:
    """The mean of one value per clip (NaN values propagate, as in the plain mean)."""
    values = np.asarray(per_item, dtype=np.float64)
    return CorpusStatistic(tuple(ids), np.stack([values, np.ones_like(values)], axis=1), _ratio)


def grouped_mean_statistic(ids: Sequence[str], group: np.ndarray, per_query: np.ndarray) -> CorpusStatistic:
    """The mean over queries, resampled by clip: a clip's queries stay together.

    ids: (N,) clip ids; group: (Q,) clip index in [0, N) of each query; per_query: (Q,) values.
    """
    group = np.asarray(group, dtype=np.int64)
    totals = np.bincount(group, weights=np.asarray(per_query, dtype=np.float64), minlength=len(ids))
    counts = np.bincount(group, minlength=len(ids)).astype(np.float64)
    return CorpusStatistic(tuple(ids), np.stack([totals, counts], axis=1), _ratio)
