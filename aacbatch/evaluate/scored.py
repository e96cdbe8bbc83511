"""A final evaluation as the registry stores it: every metric with its bootstrap interval over
clips and its provenance — computed once, where the scores are computed, so a report never
re-runs a metric to show its uncertainty.

Intervals are 95 % percentile intervals from 1,000 seeded resamples of clips (a clip's
captions move together; :mod:`aacbatch.evaluate.uncertainty`); the same draws serve every
metric of one evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from aacbatch.evaluate.provenance import retrieval_provenance
from aacbatch.evaluate.retrieval import retrieval_scores, retrieval_statistics
from aacbatch.evaluate.statistics import CorpusStatistic
from aacbatch.evaluate.uncertainty import LEVEL, RESAMPLES, SEED, bootstrap_intervals


@dataclass(frozen=True)
class Scored:
    metrics: dict[str, float | None]
    reasons: dict[str, str] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # metric → (low, high, level)
    provenance: dict[str, dict] = field(default_factory=dict)


def intervals_of(statistics: Mapping[str, CorpusStatistic], *, resamples: int = RESAMPLES, level: float = LEVEL,
                 seed: int = SEED) -> dict[str, tuple[float, float, float]]:
    return {name: (i.low, i.high, i.level) for name, i in
            bootstrap_intervals(statistics, resamples=resamples, level=level, seed=seed).items()}


def score_retrieval(similarity: np.ndarray, relevant: np.ndarray, clip_ids: Sequence[str] | None = None) -> Scored:
    """Both directions' metrics of a (captions × clips) similarity matrix, with intervals."""
    metrics = retrieval_scores(similarity, relevant)
    statistics = retrieval_statistics(similarity, relevant, clip_ids)
    record = retrieval_provenance()
    return Scored(metrics, {}, intervals_of({k: v for k, v in statistics.items() if k in metrics}),
                  {k: record for k in metrics})
