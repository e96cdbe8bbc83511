"""Bootstrap intervals and paired comparisons: coverage of a known population value, reproducibility,
the randomisation test's size and power.

Simulations draw clip populations whose true value is known in closed form; a wrong resampling
(e.g. resampling captions instead of clips, or not resampling at all) misses the nominal rate.
"""

from __future__ import annotations

import numpy as np
import pytest

from aacbatch.evaluate.statistics import CorpusStatistic, grouped_mean_statistic, mean_statistic
from aacbatch.evaluate.uncertainty import (bootstrap_interval, bootstrap_intervals, clip_weights, compare,
                                           paired_comparison)

N_CLIPS, REPLICATIONS, RESAMPLES = 150, 300, 500
IDS = tuple(f"clip{i:03d}" for i in range(N_CLIPS))


def ratio_of_sums(ids, x, y) -> CorpusStatistic:
    """sum x / sum y: a corpus score that is not a mean of per-clip values (like METEOR or BLEU)."""
    return CorpusStatistic(tuple(ids), np.stack([x, y], axis=1), lambda s: s[:, 0] / s[:, 1])


def test_intervals_cover_the_population_value_at_the_nominal_rate():
    """Mean of Beta(2, 5) clip values (true 2/7) and a ratio of sums (true E[u] = 0.4); 95% intervals."""
    rng = np.random.default_rng(123)
    covered = {"mean": 0, "ratio": 0, "grouped": 0}
    for rep in range(REPLICATIONS):
        values = rng.beta(2, 5, N_CLIPS)
        y = rng.poisson(10, N_CLIPS) + 1.0
        x = y * rng.beta(2, 3, N_CLIPS)
        # five correlated queries per clip (a clip effect), as text→audio queries are
        per_query = np.clip(np.repeat(rng.beta(2, 5, N_CLIPS), 5) + rng.normal(0, 0.05, 5 * N_CLIPS), 0, 1)
        intervals = bootstrap_intervals({
            "mean": mean_statistic(IDS, values),
            "ratio": ratio_of_sums(IDS, x, y),
            "grouped": grouped_mean_statistic(IDS, np.repeat(np.arange(N_CLIPS), 5), per_query),
        }, resamples=RESAMPLES, seed=rep)
        truths = {"mean": 2 / 7, "ratio": 0.4, "grouped": 2 / 7}
        for name, interval in intervals.items():
            covered[name] += interval.low <= truths[name] <= interval.high
    for name, count in covered.items():
        assert 0.90 <= count / REPLICATIONS <= 0.985, (name, count / REPLICATIONS)  # binomial sd ~0.013


def test_paired_difference_interval_covers_and_the_test_has_its_size_and_power():
    """A and B share a clip effect; B is better by 0.03 (power) or equal in distribution (size)."""
    rng = np.random.default_rng(7)
    covered, rejected_null, rejected_real = 0, 0, 0
    for rep in range(REPLICATIONS):
        clip = rng.beta(2, 5, N_CLIPS)
        a = np.clip(clip + rng.normal(0, 0.05, N_CLIPS), 0, 1)
        same = np.clip(clip + rng.normal(0, 0.05, N_CLIPS), 0, 1)
        better = np.clip(clip + 0.03 + rng.normal(0, 0.05, N_CLIPS), 0, 1)
        null = paired_comparison(mean_statistic(IDS, a), mean_statistic(IDS, same), resamples=RESAMPLES, seed=rep)
        real = paired_comparison(mean_statistic(IDS, a), mean_statistic(IDS, better), resamples=RESAMPLES, seed=rep)
        covered += null.low <= 0 <= null.high
        rejected_null += null.p_value < 0.05
        rejected_real += real.p_value < 0.05
    assert 0.90 <= covered / REPLICATIONS <= 0.985
    assert 0.015 <= rejected_null / REPLICATIONS <= 0.09  # size ~0.05
    assert rejected_real / REPLICATIONS > 0.95  # a 0.03 shift on 150 paired clips is found


def test_comparison_of_a_system_with_itself_and_a_clear_winner():
    values = np.random.default_rng(0).random(N_CLIPS)
    itself = paired_comparison(mean_statistic(IDS, values), mean_statistic(IDS, values))
    assert (itself.difference, itself.low, itself.high, itself.p_value) == (0.0, 0.0, 0.0, 1.0)
    winner = paired_comparison(mean_statistic(IDS, values + 0.2), mean_statistic(IDS, values))
    assert winner.difference == pytest.approx(0.2) and winner.low == pytest.approx(0.2) and winner.p_value < 0.01
    assert winner.resamples == 1000 and winner.level == 0.95


def test_draws_are_seeded_and_ignore_input_order():
    values = np.random.default_rng(1).random(N_CLIPS)
    first = bootstrap_interval(mean_statistic(IDS, values), seed=5)
    again = bootstrap_interval(mean_statistic(IDS, values), seed=5)
    order = np.random.default_rng(2).permutation(N_CLIPS)
    shuffled = bootstrap_interval(mean_statistic([IDS[i] for i in order], values[order]), seed=5)
    other_seed = bootstrap_interval(mean_statistic(IDS, values), seed=6)
    assert first == again
    assert (shuffled.low, shuffled.high) == pytest.approx((first.low, first.high), abs=1e-12)
    assert (other_seed.low, other_seed.high) != (first.low, first.high)
    assert first.low < first.value < first.high and first.value == pytest.approx(values.mean())
    weights = clip_weights(IDS, 200, 5)
    assert weights.shape == (200, N_CLIPS) and (weights.sum(axis=1) == N_CLIPS).all()


def test_compare_aligns_clips_and_refuses_other_sets():
    values = np.random.default_rng(3).random(N_CLIPS)
    reversed_b = {"m": mean_statistic(IDS[::-1], values[::-1] - 0.1)}
    result = compare({"m": mean_statistic(IDS, values), "only_a": mean_statistic(IDS, values)}, reversed_b)
    assert list(result) == ["m"] and result["m"].difference == pytest.approx(0.1)
    assert result["m"].low == pytest.approx(0.1) == result["m"].high  # the same clips, paired
    with pytest.raises(ValueError, match="same clips"):
        paired_comparison(mean_statistic(IDS, values), mean_statistic(IDS[:-1], values[:-1]))
