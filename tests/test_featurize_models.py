"""Model-backed feature kinds: teacher tag scores and caption tokens, plus the BoW baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aacbatch.batches import pad_ragged
from aacbatch.cache import FeatureStore
from aacbatch.errors import InputError
from aacbatch.featurize.job import featurize
from aacbatch.featurize.sets import cached_set
from aacbatch.models.checkpoints import load_tagger
from aacbatch.registry.queries import run_sql
from aacbatch.train.run import train_task

QUIET = lambda _: None  # noqa: E731


@pytest.fixture
def tagger_run(synth_registry) -> str:
    return train_task(synth_registry, "tagger", dataset="sc", sets=("epochs=1", "batch_size=16"), log=QUIET).run_id


def test_tags_are_the_teachers_scores_on_cached_mels(synth_registry, tagger_run):
    result = featurize(synth_registry, "tags", "sc", overrides={"teacher": tagger_run})
    store = FeatureStore.open(result.url)
    scores = store.group["scores"][:]
    assert scores.shape == (60, store.meta["model_identity"]["n_classes"])
    _, rows = run_sql(synth_registry, "SELECT path FROM checkpoints WHERE run_id = :r AND is_best", {"r": tagger_run})
    teacher = load_tagger(synth_registry.real_path(rows[0][0])).eval()  # stored relative to the home
    mel = cached_set(synth_registry, "sc", "mel").store
    x, lengths = pad_ragged(mel.reader("mel")[mel.rows([5, 17])])
    with torch.no_grad():
        expected = teacher(torch.from_numpy(x), torch.from_numpy(lengths), is_logmel=True).tag_scores.numpy()
    np.testing.assert_allclose(scores[store.rows([5, 17])], expected, atol=1e-5)
    assert store.meta["model_identity"]["teacher_run"] == tagger_run


def test_tags_need_a_valid_teacher(synth_registry):
    with pytest.raises(InputError, match="teacher is required"):
        featurize(synth_registry, "tags", "sc")
    with pytest.raises(InputError, match="neither a checkpoint file nor a registered run id"):
        featurize(synth_registry, "tags", "sc", overrides={"teacher": "not-a-run"})


def test_tokens_are_fixed_width_per_caption(synth_registry):
    result = featurize(synth_registry, "tokens", "sc")
    store = FeatureStore.open(result.url)
    ids, mask = store.group["input_ids"][:], store.group["attention_mask"][:]
    assert ids.shape == mask.shape == (300, 30) and store.meta["item"] == "caption"
    assert (ids[:, 0] == 101).all() and mask.sum(1).min() > 3  # [CLS] first, real words after
    assert not store.meta["model_identity"]["random_weights"]


def test_missing_tokenizer_directory(synth_registry, tmp_path):
    with pytest.raises(InputError, match=str(tmp_path / "nope")):
        featurize(synth_registry, "tokens", "sc", overrides={"model": str(tmp_path / "nope")})


def test_bow_baseline_beats_chance_and_is_registered(synth_registry):
    result = train_task(synth_registry, "bow", dataset="sc", log=QUIET)
    n_eval = run_sql(synth_registry, "SELECT COUNT(*) FROM splits WHERE name = 'eval'")[1][0][0]
    chance = np.mean([1 / (r + 1) for r in range(min(10, n_eval))]) * min(10, n_eval) / n_eval
    assert result.final["eval"]["t2a/mAP@10"] > 2 * chance
    _, rows = run_sql(synth_registry, "SELECT metric, ci_low, value, ci_high FROM scores WHERE epoch IS NULL "
                      "AND split = 'eval' ORDER BY metric")
    assert [m for (m, *_) in rows] == [f"{d}/{m}" for d in ("a2t", "t2a") for m in ("R@1", "R@10", "R@5", "mAP@10")]
    assert all(lo <= v <= hi and lo < hi for (_, lo, v, hi) in rows)  # intervals, as every retrieval run's
