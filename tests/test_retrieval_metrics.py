"""Retrieval metrics against hand-computed cases and a brute-force ranking."""

from __future__ import annotations

import numpy as np
import pytest

from aacbatch.evaluate.retrieval import ranks, retrieval_metrics


def test_hand_computed_example():
    sim = np.array([
        [0.9, 0.1, 0.2],   # relevant 0 → rank 0
        [0.5, 0.4, 0.6],   # relevant 1 → rank 2
        [0.3, 0.3, 0.3],   # relevant 2, all tied → pessimistic rank 2
    ])
    assert ranks(sim, np.array([0, 1, 2])).tolist() == [0, 2, 2]
    m = retrieval_metrics(sim, np.array([0, 1, 2]))
    assert m["R@1"] == pytest.approx(1 / 3)
    assert m["R@5"] == 1.0
    assert m["mAP@10"] == pytest.approx((1 + 1 / 3 + 1 / 3) / 3)


def test_constant_matrix_scores_near_zero_not_one():
    m = retrieval_metrics(np.zeros((50, 40)), np.arange(50) % 40)
    assert m == {"R@1": 0.0, "R@5": 0.0, "R@10": 0.0, "mAP@10": 0.0}


def test_matches_brute_force_with_ties_and_duplicate_queries():
    rng = np.random.default_rng(0)
    sim = rng.integers(0, 20, size=(300, 60)).astype(np.float32)  # many ties
    relevant = np.repeat(np.arange(60), 5)  # five captions per audio, as in Clotho
    expected = []
    for q in range(300):
        order = sorted(range(60), key=lambda a: (-sim[q, a], a == relevant[q]))  # relevant last among equals
        expected.append(order.index(relevant[q]))
    assert ranks(sim, relevant).tolist() == expected
    r = np.array(expected)
    m = retrieval_metrics(sim, relevant)
    assert m["R@10"] == pytest.approx(np.mean(r < 10))
    assert m["mAP@10"] == pytest.approx(np.mean([1 / (x + 1) if x < 10 else 0 for x in r]))


@pytest.mark.parametrize("sim, rel", [
    (np.zeros((3, 4)), np.array([0, 1])),
    (np.zeros((2, 4)), np.array([0, 4])),
    (np.array([[np.nan, 0.0]]), np.array([0])),
])
def test_bad_shapes_and_values(sim, rel):
    with pytest.raises(ValueError):
        retrieval_metrics(sim, rel)
