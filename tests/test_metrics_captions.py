"""The extended caption metric set: BLEU/ROUGE-L parity with pycocoevalcap, METEOR from per-segment
statistics, Vocab, SPIDEr-max, FENSE wiring, metric sets, provenance.

One ``caption_metrics(..., metrics="all")`` run (tokenizer + METEOR JVMs) is a module fixture;
the METEOR resample check reuses the same shared JVM.
"""

from __future__ import annotations

import hashlib
import math
import re
import subprocess

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu as CocoBleu
from pycocoevalcap.rouge.rouge import Rouge as CocoRouge
from test_caption_metrics import random_corpus

from aacbatch.errors import InputError
from aacbatch.evaluate import captions, fense, meteor, ptb, sbert, spice
from aacbatch.evaluate.bleu_rouge import bleu_from_sums
from aacbatch.hashing import path_sha256
from aacbatch.evaluate.captions import ALL_METRICS, METRIC_SETS, caption_metrics, resolve_metrics
from aacbatch.evaluate.cider import CiderD
from aacbatch.evaluate.meteor import meteor_from_sums, meteor_sum_rows, shared_meteor
from aacbatch.evaluate.uncertainty import NO_INTERVAL, bootstrap_intervals, clip_weights, compare

TIGHT = 1e-12


@pytest.fixture(scope="module")
def corpus() -> tuple[dict[str, str], dict[str, list[str]]]:
    return random_corpus(200, seed=3)


@pytest.fixture(scope="module")
def tokens(corpus) -> tuple[list[str], list[str], list[list[str]]]:
    predictions, references = corpus
    ids = list(predictions)
    cands, refs, _ = captions._tokenize(ids, predictions, references)
    return ids, cands, refs


@pytest.fixture(scope="module")
def scores(corpus, tmp_path_factory) -> captions.CaptionScores:
    return caption_metrics(*corpus, assets_dir=tmp_path_factory.mktemp("assets"), metrics="all")


def test_bleu_and_rouge_equal_pycocoevalcap_on_the_same_tokens(tokens, scores):
    ids, cands, refs = tokens
    gts = {i: r for i, r in zip(ids, refs)}
    res = {i: [c] for i, c in zip(ids, cands)}
    bleu, bleu_items = CocoBleu(4).compute_score(gts, res, verbose=0)
    rouge, rouge_items = CocoRouge().compute_score(gts, res)
    for n in range(1, 5):
        assert scores.corpus[f"bleu_{n}"] == bleu[n - 1]
        assert [scores.per_item[f"bleu_{n}"][i] for i in ids] == list(bleu_items[n - 1])
        # corpus BLEU is pycocoevalcap's n-gram-count aggregate, which is not the per-item mean
        assert abs(scores.corpus[f"bleu_{n}"] - np.mean(bleu_items[n - 1])) > 1e-3
    assert scores.corpus["rouge_l"] == pytest.approx(rouge, abs=TIGHT)
    assert [scores.per_item["rouge_l"][i] for i in ids] == list(rouge_items)


def test_bleu_statistics_reproduce_the_corpus_value_and_resample(tokens, scores):
    ids, cands, refs = tokens
    for n in range(1, 5):
        statistic = scores.statistics[f"bleu_{n}"]
        assert statistic.value() == pytest.approx(scores.corpus[f"bleu_{n}"], rel=TIGHT)
        # a resample's value is pycocoevalcap's corpus BLEU of the resampled (duplicated) segments
        weights = clip_weights(ids, resamples=1, seed=n)[0]
        picked = np.repeat(np.arange(len(ids)), weights)
        keys = [f"{k}" for k in range(picked.size)]
        coco, _ = CocoBleu(4).compute_score({k: refs[j] for k, j in zip(keys, picked)},
                                            {k: [cands[j]] for k, j in zip(keys, picked)}, verbose=0)
        assert statistic.resampled(weights[None, :].astype(float))[0] == pytest.approx(coco[n - 1], rel=TIGHT)
    # per-item BLEU from one segment's statistics is pycocoevalcap's per-item BLEU
    one = scores.statistics["bleu_4"].rows
    np.testing.assert_allclose(bleu_from_sums(one, 4), [scores.per_item["bleu_4"][i] for i in ids], rtol=1e-12)


def test_meteor_statistics_aggregate_to_the_jar_corpus_and_items(tokens, scores):
    ids, _, _ = tokens
    statistic = scores.statistics["meteor"]
    assert statistic.value() == pytest.approx(scores.corpus["meteor"], abs=TIGHT)
    per_segment = meteor_from_sums(statistic.rows)  # per-segment rows differ only in perfect matches' chunks
    raw_items = [scores.per_item["meteor"][i] for i in ids]
    perfect = statistic.rows[:, meteor.STATS.index("chunks")] == 0
    np.testing.assert_allclose(per_segment[~perfect], np.array(raw_items)[~perfect], atol=TIGHT)
    assert scores.corpus["meteor"] != pytest.approx(np.mean(raw_items), abs=1e-6)


def test_meteor_resample_equals_the_jar_on_duplicated_segments(tokens, scores):
    """A bootstrap resample scored from statistics == the jar's EVAL of those segments, duplicates included."""
    ids, cands, refs = tokens
    weights = clip_weights(ids, resamples=1, seed=7)[0]
    picked = np.repeat(np.arange(len(ids)), weights)
    with shared_meteor() as jar:
        corpus, items, stats = jar.compute_with_stats([cands[j] for j in picked], [refs[j] for j in picked])
    assert scores.statistics["meteor"].resampled(weights[None, :].astype(float))[0] == pytest.approx(corpus, abs=TIGHT)
    assert meteor_from_sums(meteor_sum_rows(stats).sum(axis=0)) == pytest.approx(corpus, abs=TIGHT)


def test_meteor_perfect_match_adds_no_chunks():
    """The jar's addStats skips a perfectly matched segment's chunk; a hand-made pair of rows shows the rule."""
    perfect = np.zeros(len(meteor.STATS))
    for name, value in {"test_length": 3, "ref_length": 3, "test_content_0": 3, "ref_content_0": 3, "chunks": 1,
                        "test_word_matches": 3, "ref_word_matches": 3}.items():
        perfect[meteor.STATS.index(name)] = value
    assert meteor_from_sums(perfect) == pytest.approx(1 / (0.15 / 1 + 0.85 / 1))  # fMean 1, no fragmentation
    partial = perfect.copy()
    partial[meteor.STATS.index("chunks")] = 2
    rows = meteor_sum_rows(np.stack([perfect, partial]))
    assert rows[:, meteor.STATS.index("chunks")].tolist() == [0.0, 2.0]
    frag = 2 / ((6 + 6) / 2)
    assert meteor_from_sums(rows.sum(axis=0)) == pytest.approx(1 - 0.6 * frag ** 0.2, rel=1e-12)


def test_vocab_is_aac_metrics_distinct_candidate_words(tokens, scores):
    _, cands, _ = tokens
    assert scores.corpus["vocab"] == len(set(word for cand in cands for word in cand.split()))
    assert "vocab" not in scores.per_item and "vocab" not in scores.statistics


def test_all_set_reports_every_metric_with_reasons_and_provenance(scores):
    assert list(scores.corpus) == list(ALL_METRICS)
    missing = {m for m, v in scores.corpus.items() if v is None}
    assert missing == {"spice", "spider", "spider_fl", "spider_max", "sbert_sim", "fense"}
    assert set(scores.reasons) == missing
    assert scores.reasons["spider_max"].startswith("SPICE needs")  # SPICE is the first missing piece
    assert "sentence-transformers folder" in scores.reasons["sbert_sim"] == scores.reasons["fense"]
    assert set(scores.provenance) == set(ALL_METRICS) - missing
    record = scores.provenance["meteor"]
    jar = meteor.pycocoevalcap_file(meteor.METEOR_JAR)
    assert record["sha256"]["meteor-1.5.jar"] == hashlib.sha256(jar.read_bytes()).hexdigest()
    assert record["versions"]["pycocoevalcap"] == "1.2" and record["versions"]["java"][0].isdigit()
    assert "stanford-corenlp-3.4.1.jar" in record["sha256"] and record["tokenization"].startswith("PTB")
    assert "pycocoevalcap/bleu/bleu_scorer.py" in scores.provenance["bleu_2"]["sha256"]


def test_metric_sets_resolve_in_order():
    assert resolve_metrics("dcase2023") == ("meteor", "cider_d", "spice", "spider", "spider_fl")
    assert resolve_metrics("dcase2024") == METRIC_SETS["dcase2023"] + ("fense", "vocab")
    assert resolve_metrics(["bleu_4", "dcase2023", "meteor"]) == ("bleu_4", *METRIC_SETS["dcase2023"])
    assert resolve_metrics("all") == ALL_METRICS
    with pytest.raises(InputError, match="unknown caption metric 'dcase2025'"):
        resolve_metrics(["dcase2025"])


def _fake_spice(monkeypatch, seen: list):
    """SPICE = (number of words) / 10 per pair, so the tests know every value."""
    monkeypatch.setattr(spice.Spice, "missing", lambda self: None)

    def compute(self, cands, refs):
        seen.append(len(cands))
        per_item = np.array([len(c.split()) / 10 for c in cands])
        return float(per_item.mean()), per_item

    monkeypatch.setattr(spice.Spice, "compute", compute)


def test_spider_max_takes_each_clips_best_beam(monkeypatch, tmp_path):
    seen: list[int] = []
    _fake_spice(monkeypatch, seen)
    predictions = {"x": "A dog barks.", "y": "Rain on a roof."}
    references = {"x": ["A dog is barking.", "Dog barks."], "y": ["Rain falls on a roof."]}
    beams = {"x": ["A dog barks.", "A dog is barking loudly."], "y": ["Rain.", "Rain falls on a roof."]}
    result = caption_metrics(predictions, references, assets_dir=tmp_path, metrics=("spider", "spider_max"),
                             candidates=beams)
    assert seen[0] == 2 + 4  # one SPICE run for the predictions and every beam
    refs = [["a dog is barking", "dog barks"], ["rain falls on a roof"]]
    ranks = [CiderD().compute([b[j] for b in (["a dog barks", "a dog is barking loudly"], ["rain", "rain falls on a roof"])],
                              refs)[1] for j in range(2)]
    spice_values = np.array([[3, 5], [1, 5]]) / 10
    expected = ((np.stack(ranks, axis=1) + spice_values) / 2).max(axis=1)
    np.testing.assert_allclose(list(result.per_item["spider_max"].values()), expected, rtol=1e-12)
    assert result.corpus["spider_max"] == pytest.approx(expected.mean())
    assert result.corpus["spider_max"] >= result.corpus["spider"]
    alone = caption_metrics(predictions, references, assets_dir=tmp_path, metrics=("spider_max",), candidates=beams)
    assert alone.per_item == {"spider_max": result.per_item["spider_max"]} and set(alone.statistics) == {"spider_max"}
    no_beams = caption_metrics(predictions, references, assets_dir=tmp_path, metrics=("spider_max",))
    assert no_beams.corpus["spider_max"] is None and no_beams.reasons["spider_max"] == captions.NO_CANDIDATES


@pytest.mark.parametrize(("beams", "message"), [
    ({"x": ["a"]}, "id 'y' has a prediction but no beam candidates"),
    ({"x": ["a"], "y": []}, "id 'y' needs a non-empty list of beam candidates"),
    ({"x": ["a"], "y": ["b", " "]}, "beam candidate 2 of id 'y' is empty"),
    ({"x": ["a"], "y": ["b", "c"]}, r"same number of beam candidates for every id \(found \[1, 2\]\)"),
    ({"x": ["a"], "y": ["b"], "z": ["c"]}, "id 'z' has beam candidates but no prediction"),
])
def test_beam_candidate_errors_name_the_id(beams, message, tmp_path):
    with pytest.raises(InputError, match=message):
        caption_metrics({"x": "a", "y": "b"}, {"x": ["a"], "y": ["b"]}, assets_dir=tmp_path,
                        metrics=("spider_max",), candidates=beams)


def test_fense_and_spider_fl_share_tokenised_fluency_flags(monkeypatch, tmp_path):
    """FENSE = sbert_sim x (1 - 0.9 error), SPIDEr-FL = SPIDEr x (1 - 0.9 error); the detector sees PTB tokens."""
    _fake_spice(monkeypatch, [])
    seen = {}
    monkeypatch.setattr(fense.FluencyErrors, "missing", lambda self: None)

    def errors(self, cands):
        seen.setdefault("fluency", []).append(list(cands))
        return np.array([False, True])

    monkeypatch.setattr(fense.FluencyErrors, "compute", errors)
    monkeypatch.setattr(sbert.SentenceSimilarity, "missing", lambda self: None)
    monkeypatch.setattr(sbert.SentenceSimilarity, "compute", lambda self, c, r: np.array([0.8, 0.6]))
    result = caption_metrics({"a": "A dog's bark!", "b": "Rain, falling."}, {"a": ["A dog barks."], "b": ["Rain."]},
                             assets_dir=tmp_path, metrics="dcase2024", sbert_model=tmp_path / "my-sbert")
    assert seen["fluency"] == [["a dog 's bark", "rain falling"]]  # once, on the tokens
    np.testing.assert_allclose(list(result.per_item["fense"].values()), [0.8, 0.6 * 0.1])
    spider = np.array(list(result.per_item["spider"].values()))
    np.testing.assert_allclose(list(result.per_item["spider_fl"].values()), spider * [1, 0.1])
    assert result.provenance["fense"]["model"] == "my-sbert"
    assert math.isclose(result.corpus["fense"], (0.8 + 0.06) / 2)


def test_install_assets_takes_the_sbert_folder(tmp_path):
    folder = tmp_path / "download" / sbert.FENSE_SBERT
    folder.mkdir(parents=True)
    (folder / "modules.json").write_text("[]")
    (folder / "config.json").write_text("{}")
    installed = captions.install_assets(tmp_path / "download", tmp_path / "assets")
    assert installed == [sbert.sbert_dir(tmp_path / "assets")]
    assert sbert.SentenceSimilarity(installed[0]).missing() is None
    before = path_sha256(installed[0])
    (installed[0] / "config.json").write_text('{"changed": 1}')
    assert path_sha256(installed[0]) != before


def test_two_systems_compare_on_every_metric(corpus, scores, tmp_path):
    """System B predicts each clip's first reference (scored against all five): better on every metric."""
    predictions, references = corpus
    oracle = caption_metrics({k: refs[0] for k, refs in references.items()}, references, assets_dir=tmp_path,
                             metrics=(*captions.BLEU, "rouge_l", "meteor", "cider_d"))
    result = compare(oracle.statistics, scores.statistics, resamples=300, seed=1)
    assert list(result) == [*captions.BLEU, "rouge_l", "meteor", "cider_d"]
    for name, comparison in result.items():
        assert comparison.difference == pytest.approx(oracle.corpus[name] - scores.corpus[name], abs=1e-9)
        assert 0 < comparison.low < comparison.difference < comparison.high and comparison.p_value < 0.01, name
    intervals = bootstrap_intervals(scores.statistics, resamples=300)
    assert set(intervals) == set(scores.statistics) and "vocab" in NO_INTERVAL
    for name, interval in intervals.items():
        assert interval.low < scores.corpus[name] < interval.high, name


def test_java_version_from_the_release_file_is_what_java_prints():
    printed = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    assert ptb.java_version() == re.search(r'version "([^"]+)"', printed).group(1)
