"""Audio→text as DCASE defines it, the first-hit variant, and retrieval metrics as resamplable statistics.

The reference is a brute-force implementation of the definitions: each clip sorts all captions
by score with its own captions last among equals (pessimistic ties) and walks the list.
"""

from __future__ import annotations

import numpy as np
import pytest

from aacbatch.evaluate.provenance import retrieval_provenance
from aacbatch.evaluate.retrieval import (audio_to_text_first_hit_metrics, audio_to_text_metrics,
                                         audio_to_text_positions, retrieval_metrics, retrieval_scores,
                                         retrieval_statistics)


def brute_force_a2t(sim: np.ndarray, caption_clip: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
    """(DCASE a2t metrics, first-hit metrics) straight from the definitions."""
    dcase = {"R@1": [], "R@5": [], "R@10": [], "mAP@10": []}
    first = {"R@1": [], "R@5": [], "R@10": [], "MRR@10": []}
    for a in range(sim.shape[0]):
        order = sorted(range(sim.shape[1]), key=lambda t: (-sim[a, t], caption_clip[t] == a))
        hits = [caption_clip[t] == a for t in order]
        n = sum(hits)
        for k in (1, 5, 10):
            dcase[f"R@{k}"].append(sum(hits[:k]) / n)
            first[f"R@{k}"].append(float(any(hits[:k])))
        precision_sum, found = 0.0, 0
        for position, hit in enumerate(hits[:10], start=1):
            if hit:
                found += 1
                precision_sum += found / position
        dcase["mAP@10"].append(precision_sum / n)
        first_position = hits.index(True) + 1
        first["MRR@10"].append(1 / first_position if first_position <= 10 else 0.0)
    return ({k: float(np.mean(v)) for k, v in dcase.items()}, {k: float(np.mean(v)) for k, v in first.items()})


def test_hand_computed_clip():
    """Clip 0 owns captions 0 and 1; caption 2 (clip 1) ties caption 1 and, pessimistically, goes first."""
    sim = np.array([[0.9, 0.5, 0.5, 0.1],
                    [0.0, 0.0, 0.0, 0.0]])
    caption_clip = np.array([0, 0, 1, 1])
    assert audio_to_text_positions(sim, caption_clip).tolist() == [1, 3, 3, 4]  # clip 1: all four tie
    m = audio_to_text_metrics(sim, caption_clip)
    # clip 0: hits at 1 and 3 -> R@1 1/2, AP (1/1 + 2/3)/2; clip 1: hits at 3 and 4 -> AP (1/3 + 2/4)/2
    assert m["R@1"] == pytest.approx((0.5 + 0) / 2)
    assert m["R@5"] == 1.0
    assert m["mAP@10"] == pytest.approx(((1 + 2 / 3) / 2 + (1 / 3 + 2 / 4) / 2) / 2)
    first = audio_to_text_first_hit_metrics(sim, caption_clip)
    assert first["R@1"] == 0.5 and first["MRR@10"] == pytest.approx((1 + 1 / 3) / 2)


@pytest.mark.parametrize("seed", [0, 1])
def test_dcase_a2t_matches_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    n_clips = 40
    caption_clip = rng.permutation(np.repeat(np.arange(n_clips), 5))  # five captions per clip, shuffled columns
    sim = rng.integers(0, 6, size=(n_clips, caption_clip.size)).astype(np.float32)  # heavy ties
    sim[np.arange(n_clips), np.argmax(caption_clip[None, :] == np.arange(n_clips)[:, None], axis=1)] += 3
    dcase, first = brute_force_a2t(sim, caption_clip)
    assert audio_to_text_metrics(sim, caption_clip) == pytest.approx(dcase, abs=1e-12)
    assert audio_to_text_first_hit_metrics(sim, caption_clip) == pytest.approx(first, abs=1e-12)
    assert dcase["R@10"] != pytest.approx(first["R@10"])  # the two definitions really differ here


def test_constant_matrix_scores_near_zero():
    caption_clip = np.repeat(np.arange(30), 5)
    m = audio_to_text_metrics(np.zeros((30, 150)), caption_clip)
    assert m["R@10"] == 0.0 and m["mAP@10"] == 0.0


def test_scores_and_statistics_agree_and_group_by_clip():
    rng = np.random.default_rng(2)
    relevant = np.repeat(np.arange(25), 5)
    sim = rng.standard_normal((125, 25)) + 2 * (relevant[:, None] == np.arange(25)[None, :])
    scores = retrieval_scores(sim, relevant, first_hit=True)
    assert {k for k in scores if k.startswith("a2t_first/")} == {f"a2t_first/{m}" for m in ("R@1", "R@5", "R@10", "MRR@10")}
    assert set(retrieval_scores(sim, relevant)) == {f"{d}/{m}" for d in ("t2a", "a2t") for m in ("R@1", "R@5", "R@10", "mAP@10")}
    stats = retrieval_statistics(sim, relevant, [f"clip{i}" for i in range(25)], first_hit=True)
    assert set(stats) == set(scores)
    for name, stat in stats.items():
        assert stat.value() == pytest.approx(scores[name], abs=1e-12)
        assert stat.rows.shape[0] == 25  # one row per clip: a clip's five caption queries move together
    assert stats["t2a/R@1"].rows[:, 1].tolist() == [5.0] * 25
    assert scores["t2a/mAP@10"] == retrieval_metrics(sim, relevant)["mAP@10"]
    assert "DCASE" in retrieval_provenance()["implementation"][0]


@pytest.mark.parametrize(("sim", "caption_clip"), [
    (np.zeros((2, 3)), np.array([0, 1])),
    (np.zeros((2, 3)), np.array([0, 1, 2])),
    (np.zeros((3, 3)), np.array([0, 1, 1])),  # clip 2 has no caption
    (np.array([[np.inf, 0.0]]), np.array([0, 0])),
])
def test_bad_a2t_inputs(sim, caption_clip):
    with pytest.raises(ValueError):
        audio_to_text_metrics(sim, caption_clip)
