"""CLAP family: losses by hand, audio→text metric, and training runs with lineage."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aacbatch.errors import InputError
from aacbatch.evaluate.retrieval import audio_to_text_first_hit_metrics
from aacbatch.featurize.job import featurize
from aacbatch.losses import info_nce, tag_regression
from aacbatch.registry.queries import run_sql
from aacbatch.train.run import train_task

QUIET = lambda _: None  # noqa: E731
FAST = ("epochs=2", "batch_size=16", "lr=1e-3", "text='locked'", "captions_per_clip=1", "eval_splits=['eval']")


def test_info_nce_masks_same_clip_pairs():
    torch.manual_seed(0)
    a, b = F.normalize(torch.randn(4, 8), dim=-1), F.normalize(torch.randn(4, 8), dim=-1)
    clips = torch.tensor([0, 0, 1, 2])  # rows 0 and 1 are two captions of one clip
    scale = torch.tensor(10.0)
    logits = scale * a @ b.T
    masked = logits.clone()
    masked[0, 1] = masked[1, 0] = -math.inf
    target = torch.arange(4)
    expected = 0.5 * (F.cross_entropy(masked, target) + F.cross_entropy(masked.T, target))
    assert info_nce(a, b, scale, clips).item() == pytest.approx(expected.item(), rel=1e-6)
    unmasked = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    assert info_nce(a, b, scale, torch.arange(4)).item() == pytest.approx(unmasked.item(), rel=1e-6)
    assert info_nce(a, b, scale, clips, symmetric=False).item() == pytest.approx(F.cross_entropy(masked, target).item(), rel=1e-6)


def test_tag_regression_by_hand():
    s, t = torch.tensor([[0.5, 0.0]]), torch.tensor([[0.25, 1.0]])
    assert tag_regression(s, t, "mae").item() == pytest.approx((0.25 + 1.0) / 2)
    msle = ((math.log(1.5) - math.log(1.25)) ** 2 + (0 - math.log(2.0)) ** 2) / 2
    assert tag_regression(s, t, "mse_log").item() == pytest.approx(msle)
    with pytest.raises(ValueError):
        tag_regression(s, t, "mse")


def test_audio_to_text_uses_the_best_relevant_caption():
    caption_clip = np.array([0, 0, 1, 1])
    sim = np.array([[0.1, 0.9, 0.8, 0.2],    # clip 0: best own caption 0.9 → rank 0
                    [0.7, 0.7, 0.6, 0.5]])   # clip 1: best own 0.6; two others ≥ → rank 2
    m = audio_to_text_first_hit_metrics(sim, caption_clip)  # a2t_first/; a2t/ is DCASE's definition
    assert m["R@1"] == 0.5 and m["R@5"] == 1.0
    assert m["MRR@10"] == pytest.approx((1 + 1 / 3) / 2)


@pytest.fixture
def retrieval_registry(synth_registry):
    featurize(synth_registry, "text_emb", "sc")
    return synth_registry


def test_clap_run_scores_both_directions_and_finetune_records_lineage(retrieval_registry):
    pre = train_task(retrieval_registry, "clap", dataset="sc", sets=FAST, log=QUIET)
    assert {"t2a/mAP@10", "a2t/R@10"} <= set(pre.final["eval"])
    fine = train_task(retrieval_registry, "clap", dataset="sc", sets=FAST + ("lr=2e-5",), init_from=pre.run_id, log=QUIET)
    _, rows = run_sql(retrieval_registry, "SELECT parent_run_id FROM runs WHERE id = :r", {"r": fine.run_id})
    assert rows == [(pre.run_id,)]
    pre_state = torch.load(pre.run_dir / "best.pt", weights_only=False)["model"]
    first = torch.load(fine.run_dir / "last.pt", weights_only=False)
    assert first["parent_run_id"] == pre.run_id and set(first["model"]) == set(pre_state)


def test_clap_tag_needs_a_teacher_with_the_encoders_classes(retrieval_registry):
    tagger = train_task(retrieval_registry, "tagger", dataset="sc", sets=("epochs=1",), log=QUIET)
    featurize(retrieval_registry, "tags", "sc", overrides={"teacher": tagger.run_id})
    with pytest.raises(InputError, match=r"tags 527 classes but the teacher scores have"):
        train_task(retrieval_registry, "clap_tag", dataset="sc", sets=FAST, log=QUIET)
    run = train_task(retrieval_registry, "clap_tag", dataset="sc",
                     sets=FAST + (f"audio_init='{tagger.run_id}'", "tag_loss='mae'", "amp=bf16"), log=QUIET)
    assert 0 <= run.final["eval"]["t2a/mAP@10"] <= 1  # trained under bfloat16 autocast


def test_images_kind_and_claip_tag_marks_random_weights(retrieval_registry):
    fast = {"thumbnails": True, "steps": 1, "size": 32, "batch_size": 60}  # the wiring, not the images, is tested here
    result = featurize(retrieval_registry, "images", "sc", overrides=fast)
    assert result.random_weights and result.n_items == 300
    from aacbatch.cache import FeatureStore

    store = FeatureStore.open(result.url)
    emb = store.group["embedding"][:].astype(np.float32)
    assert emb.shape[0] == 300 and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-2)
    assert store.group["thumbnail"].shape == (300, 32, 32, 3)
    again = featurize(retrieval_registry, "images", "sc", overrides=fast)
    assert again.computed_blocks == 0
    tagger = train_task(retrieval_registry, "tagger", dataset="sc", sets=("epochs=1",), log=QUIET)
    featurize(retrieval_registry, "tags", "sc", overrides={"teacher": tagger.run_id})
    run = train_task(retrieval_registry, "claip_tag", dataset="sc",
                     sets=FAST + (f"audio_init='{tagger.run_id}'", "images='images'"), log=QUIET)
    _, rows = run_sql(retrieval_registry, "SELECT random_weights FROM runs WHERE id = :r", {"r": run.run_id})
    assert rows == [(True,)]  # depends on the random-weight SD/CLIP stand-ins, and says so


def test_similarity_artifact_and_reevaluation(retrieval_registry):
    run = train_task(retrieval_registry, "clap", dataset="sc", sets=FAST, log=QUIET)
    _, rows = run_sql(retrieval_registry, "SELECT artifact_path FROM predictions WHERE run_id = :r AND kind = 'similarity'",
                      {"r": run.run_id})
    saved = np.load(retrieval_registry.real_path(rows[0][0]))  # stored relative to the home
    from aacbatch.evaluate.retrieval import retrieval_metrics

    assert retrieval_metrics(saved["similarity"], saved["relevant"])["mAP@10"] == pytest.approx(run.final["eval"]["t2a/mAP@10"])
    from aacbatch.train.run import evaluate_run

    again = evaluate_run(retrieval_registry, run.run_id, ("eval",))
    assert again["eval"] == pytest.approx(run.final["eval"])
    _, n = run_sql(retrieval_registry, "SELECT COUNT(*) FROM scores WHERE run_id = :r AND epoch IS NULL AND split = 'eval'",
                   {"r": run.run_id})
    assert n == [(8,)]  # re-scoring replaces the final rows, it does not duplicate them


def test_tokens_from_another_model_are_refused(retrieval_registry, tmp_path):
    import shutil

    from aacbatch.models.text import default_text_model_dir

    featurize(retrieval_registry, "tokens", "sc")
    other = tmp_path / "other-bert"
    shutil.copytree(default_text_model_dir(), other)
    (other / "vocab.txt").write_text((other / "vocab.txt").read_text() + "extra\n")
    with pytest.raises(InputError, match=r"was tokenised with another model than text_model"):
        train_task(retrieval_registry, "clap", dataset="sc", sets=("epochs=1", f"text_model='{other}'"), log=QUIET)
    _, rows = run_sql(retrieval_registry, "SELECT COUNT(*) FROM runs")
    assert rows == [(0,)]  # refused before anything was registered
