"""BLEU-1..4 and ROUGE-L computed by pycocoevalcap's own scorers on the shared PTB tokens.

These two are kept exactly as pycocoevalcap computes them (they are cheap, and published
numbers depend on their quirks), so nothing is re-implemented except what the bootstrap needs:

* BLEU (``BleuScorer``, ``option="closest"`` as pycocoevalcap's ``Bleu`` calls it): the corpus
  BLEU-n is *not* the mean of per-item BLEU-n. It is the geometric mean of the corpus n-gram
  precisions ``(sum correct_k + 1e-15) / (sum guess_k + 1e-9)`` for k = 1..n, times the brevity
  penalty ``exp(1 - r/c)`` of the summed candidate length ``c`` and summed closest reference
  length ``r`` (when ``c < r``). We keep pycocoevalcap's corpus values and its per-item values,
  and read each segment's sufficient statistics -- ``testlen``, closest ``reflen``, ``guess``
  and ``correct`` per order -- from the same scorer object, so :func:`bleu_from_sums` gives the
  corpus BLEU of any multiset of segments (tested: all segments once == pycocoevalcap's value).
* ROUGE-L (``Rouge.calc_score``, beta 1.2, the best LCS precision and recall over references):
  per item; the corpus value is their mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
from pycocoevalcap.bleu.bleu_scorer import BleuScorer
from pycocoevalcap.rouge.rouge import Rouge

from aacbatch.evaluate.statistics import CorpusStatistic

ORDERS = 4
# pycocoevalcap's guards against log(0) and division by zero, kept so sums reproduce its values.
_TINY, _SMALL = 1e-15, 1e-9
# Column layout of :meth:`Bleu.compute`'s statistics: lengths, then guesses and matches per order.
STATS = ("testlen", "reflen", *(f"guess_{k}" for k in range(1, ORDERS + 1)),
         *(f"correct_{k}" for k in range(1, ORDERS + 1)))


class Bleu:
    """pycocoevalcap's BLEU-1..4 and the per-segment statistics behind its corpus value."""

    def compute(self, candidates: Sequence[str],
                references: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(corpus BLEU-1..4 (4,), per-item BLEU-1..4 (N, 4), statistics (N, 10)) for tokenised captions."""
        scorer = BleuScorer(n=ORDERS)
        for cand, refs in zip(candidates, references):
            scorer += (cand, list(refs))
        corpus, per_item = scorer.compute_score(option="closest", verbose=0)
        stats = np.array([[c["testlen"], scorer._single_reflen(c["reflen"], "closest", c["testlen"]),
                           *c["guess"], *c["correct"]] for c in scorer.ctest], dtype=np.float64)
        return np.array(corpus, dtype=np.float64), np.array(per_item, dtype=np.float64).T, stats


def bleu_from_sums(sums: np.ndarray, order: int) -> np.ndarray:
    """BLEU-``order`` of summed statistics, pycocoevalcap's corpus formula. sums: (..., 10) -> (...)."""
    sums = np.asarray(sums, dtype=np.float64)
    precision = np.ones(sums.shape[:-1])
    for k in range(order):
        precision = precision * (sums[..., STATS.index(f"correct_{k + 1}")] + _TINY) \
            / (sums[..., STATS.index(f"guess_{k + 1}")] + _SMALL)
    score = precision ** (1.0 / order)
    ratio = (sums[..., 0] + _TINY) / (sums[..., 1] + _SMALL)
    with np.errstate(over="ignore", divide="ignore"):
        brevity = np.where(ratio < 1, np.exp(1 - 1 / ratio), 1.0)
    return score * brevity


def bleu_statistic(ids: Sequence[str], stats: np.ndarray, order: int) -> CorpusStatistic:
    """BLEU-``order`` as a resamplable corpus statistic of (N, 10) per-segment statistics."""
    return CorpusStatistic(tuple(ids), np.asarray(stats, dtype=np.float64), partial(bleu_from_sums, order=order))


class RougeL:
    """pycocoevalcap's ROUGE-L, item by item."""

    def compute(self, candidates: Sequence[str], references: Sequence[Sequence[str]]) -> tuple[float, np.ndarray]:
        """(mean, per-item ROUGE-L) for tokenised captions."""
        scorer = Rouge()
        per_item = np.array([scorer.calc_score([cand], list(refs)) for cand, refs in zip(candidates, references)],
                            dtype=np.float64)
        return float(per_item.mean()), per_item
