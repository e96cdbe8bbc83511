"""Systems: the packaged queries pick the expected members, ensembles are the (weighted) mean
of the members' similarity matrices scored like runs, caption ensembles are stored with
their reasons and captions, rebuilds are no-ops, and bad input leaves no system rows."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pytest
from sqlalchemy import func, select

from aacbatch.errors import InputError, NotFoundError
from aacbatch.evaluate.retrieval import audio_to_text_metrics, retrieval_metrics
from aacbatch.registry.schema import Prediction, Score, System, SystemMember
from aacbatch import systems
from aacbatch.systems import build_system, list_systems, show_system
from registry_fakes import RELEVANT, fill, write_similarity


@pytest.fixture
def fakes(registry, tmp_path):
    return fill(registry, tmp_path / "home")


def members(result) -> list[str]:
    return [m.run_id for m in result.members]


def system_rows(registry) -> dict[str, int]:
    with registry.transaction() as session:
        return {
            "systems": session.scalar(select(func.count()).select_from(System)),
            "members": session.scalar(select(func.count()).select_from(SystemMember)),
            "scores": session.scalar(select(func.count()).select_from(Score).where(Score.system_id.is_not(None))),
            "predictions": session.scalar(select(func.count()).select_from(Prediction)
                                          .where(Prediction.system_id.is_not(None))),
        }


def stored_scores(registry, system_id: str, split: str) -> dict[str, float | None]:
    with registry.transaction() as session:
        rows = session.execute(select(Score.metric, Score.value).where(Score.system_id == system_id,
                                                                       Score.split == split)).all()
    return dict(rows)


def system_similarity(registry, system_id: str, split: str) -> dict[str, np.ndarray]:
    with registry.transaction() as session:
        path = session.scalar(select(Prediction.artifact_path).where(Prediction.system_id == system_id,
                                                                     Prediction.split == split,
                                                                     Prediction.kind == "similarity"))
    with np.load(registry.real_path(path)) as data:  # stored relative to the workspace
        return {k: data[k] for k in data.files}


@pytest.mark.backends("duckdb", "postgresql")
def test_retrieval_systems_pick_the_expected_members(registry, fakes):
    """Top-k by a metric on val among finished retrieval runs of the target dataset; the bow,
    failed, NULL-scored and pretraining runs are skipped and the tie goes to the older id."""
    assert members(build_system(registry, "retrieval_s1")) == fakes.of("mae", "msle", "claip", "clap")
    assert members(build_system(registry, "retrieval_s2")) == fakes.of("msle", "claip", "clap", "mae")
    s3 = build_system(registry, "retrieval_s3")
    assert members(s3) == fakes.of("mae", "msle", "claip", "clap", "claip_tag")
    assert s3.warnings == [s3.warnings[0]] and "asked for 10 members and found 5" in s3.warnings[0]
    assert members(build_system(registry, "retrieval_s4")) == fakes.of("mae")
    # the paper's selection on the evaluation split, and a task filter
    paper = build_system(registry, "retrieval_s4", params={"split": "eval"})
    assert members(paper) == fakes.of("msle") and paper.status == "replaced"
    tagged = build_system(registry, "retrieval_s1", params={"task_filter": "clap_tag"})
    assert members(tagged) == fakes.of("mae", "msle")
    assert build_system(registry, "retrieval_s1", params={"dataset": "pretrain"}).members[0].run_id == fakes.ids["pre_clap"]
    with registry.transaction() as session:
        assert session.scalar(select(System.warnings).where(System.name == "retrieval_s3")).startswith("sql/")


@pytest.mark.backends("duckdb", "postgresql")
def test_caption_systems_pick_the_expected_members(registry, fakes, monkeypatch):
    calls = fake_ensembles(monkeypatch)
    assert members(build_system(registry, "caption_s1")) == fakes.of("cap_msle1", "cap_clap1")
    assert members(build_system(registry, "caption_s2")) == fakes.of("cap_msle1")
    s3 = build_system(registry, "caption_s3")
    assert members(s3) == fakes.of("cap_msle1", "cap_mae1", "cap_mae2", "cap_mae3", "cap_msle2")
    assert "asked for 6 members and found 5" in s3.warnings[0]
    s4 = build_system(registry, "caption_s4")
    assert members(s4) == fakes.of("cap_msle1", "cap_mae1", "cap_mae2", "cap_mae3", "cap_msle2", "cap_claip1")
    assert "asked for 7 members and found 6" in s4.warnings[0]
    assert members(build_system(registry, "caption_s3", params={"k": 1})) == fakes.of("cap_msle1", "cap_mae1")
    assert calls[-2:] == [(tuple(fakes.of("cap_msle1", "cap_mae1")), (1.0, 1.0), "val"),
                          (tuple(fakes.of("cap_msle1", "cap_mae1")), (1.0, 1.0), "eval")]


def test_ensemble_similarity_is_the_mean_of_the_members_and_scored_like_a_run(registry, fakes, tmp_path):
    """clap (A) and mae (B) each rank half of the captions first; their mean ranks all first."""
    query = tmp_path / "pair.sql"
    query.write_text("SELECT run_id FROM run_info WHERE run_id IN (:a, :b) ORDER BY run_id")
    result = build_system(registry, "pair", query_file=query, params=dict(zip("ab", fakes.of("mae", "clap"))))
    assert members(result) == fakes.of("clap", "mae") and result.kind == "retrieval"
    for split in ("val", "eval"):
        saved = system_similarity(registry, result.system_id, split)
        mean = (fakes.similarity[("clap", split)] + fakes.similarity[("mae", split)]) / 2
        np.testing.assert_allclose(saved["similarity"], mean, rtol=0, atol=1e-7)
        np.testing.assert_array_equal(saved["relevant"], RELEVANT)
        scores = stored_scores(registry, result.system_id, split)
        assert scores["t2a/R@1"] == 1.0 and scores["t2a/mAP@10"] == 1.0  # members: 0.5 each
        assert retrieval_metrics(fakes.similarity[("clap", split)], RELEVANT)["R@1"] == 0.5
        expected = {f"a2t/{k}": v for k, v in audio_to_text_metrics(mean.T, RELEVANT).items()}
        assert {k: v for k, v in scores.items() if k.startswith("a2t/")} == pytest.approx(expected, abs=1e-12)
    assert result.scores["val"] == stored_scores(registry, result.system_id, "val")


def test_weighted_ensemble_uses_the_query_weights(registry, fakes, tmp_path):
    query = tmp_path / "weighted.sql"
    query.write_text("SELECT run_id, CASE task WHEN 'clap' THEN 3 ELSE 1 END AS weight\n"
                     "FROM run_info WHERE run_id IN (:a, :b) ORDER BY run_id")
    result = build_system(registry, "weighted", query_file=query, params=dict(zip("ab", fakes.of("clap", "mae"))),
                          splits=["val"])
    assert [m.weight for m in result.members] == [3.0, 1.0]
    saved = system_similarity(registry, result.system_id, "val")["similarity"]
    expected = (3 * fakes.similarity[("clap", "val")] + fakes.similarity[("mae", "val")]) / 4
    np.testing.assert_allclose(saved, expected, rtol=0, atol=1e-7)
    assert stored_scores(registry, result.system_id, "val")["t2a/R@1"] == retrieval_metrics(expected, RELEVANT)["R@1"] == 0.5
    assert set(stored_scores(registry, result.system_id, "eval")) == set()  # only the splits asked for


def test_rebuilding_an_unchanged_system_is_a_no_op_and_a_change_replaces_its_rows(registry, fakes, settings):
    first = build_system(registry, "retrieval_s1")
    before = system_rows(registry)
    again = build_system(registry, "retrieval_s1")
    assert (again.status, again.system_id) == ("unchanged", first.system_id)
    assert system_rows(registry) == before and again.scores == first.scores
    folder = settings.home / "systems" / "retrieval_s1"
    old_files = sorted(folder.iterdir())
    assert len(old_files) == 2  # val and eval
    with registry.transaction() as session:  # a member is re-scored: new similarity rows and files
        for split in ("val", "eval"):
            session.query(Prediction).filter_by(run_id=fakes.ids["clap"], split=split).delete()
            write_similarity(session, fakes, fakes.ids["clap"], split, np.ones((4, 2), dtype=np.float32))
    replaced = build_system(registry, "retrieval_s1")
    assert (replaced.status, replaced.system_id) == ("replaced", first.system_id)
    assert system_rows(registry) == before
    assert not any(p.exists() for p in old_files) and len(list(folder.iterdir())) == 2
    fewer = build_system(registry, "retrieval_s1", params={"k": 2})
    assert members(fewer) == fakes.of("mae", "msle")
    assert system_rows(registry)["members"] == before["members"] - 2


@pytest.mark.backends("duckdb", "postgresql")
def test_caption_ensemble_scores_reasons_and_captions_are_stored(registry, fakes, monkeypatch):
    fake_ensembles(monkeypatch)
    result = build_system(registry, "caption_s1", splits=["eval"])
    assert result.kind == "caption"
    assert stored_scores(registry, result.system_id, "eval") == {"meteor": 0.25, "cider_d": 0.52, "spice": None}
    with registry.transaction() as session:
        reason = session.scalar(select(Score.reason).where(Score.system_id == result.system_id, Score.metric == "spice"))
        captions = session.execute(select(Prediction.clip_id, Prediction.text).where(
            Prediction.system_id == result.system_id, Prediction.kind == "caption").order_by(Prediction.clip_id)).all()
    assert reason == "SPICE needs stanford-corenlp-3.6.0.jar: aacbatch metrics install --from DIR"
    assert captions == [("clip-1", "2 models hear a dog"), ("clip-2", "2 models hear rain")]
    assert result.reasons["eval"] == {"spice": reason}


@dataclass(frozen=True)
class FakeEvaluation:
    metrics: dict
    reasons: dict
    captions: dict
    intervals: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)


def fake_ensembles(monkeypatch) -> list[tuple]:
    """Stand in for aacbatch.captioning (ensemble beam search is tested with the captioner):
    record each call and return values that depend on the member count."""
    calls = []

    def evaluate_ensemble(registry, run_ids, weights, split):
        calls.append((tuple(run_ids), tuple(weights), split))
        n = len(run_ids)
        return FakeEvaluation({"meteor": 0.25, "cider_d": 0.5 + n / 100, "spice": None},
                              {"spice": "SPICE needs stanford-corenlp-3.6.0.jar: aacbatch metrics install --from DIR"},
                              {"clip-1": f"{n} models hear a dog", "clip-2": f"{n} models hear rain"})

    monkeypatch.setattr(systems, "evaluate_ensemble", evaluate_ensemble)
    return calls


def test_list_and_show(registry, fakes):
    build_system(registry, "retrieval_s3")
    columns, rows = list_systems(registry)
    record = dict(zip(columns, rows[0]))
    assert (record["name"], record["kind"], record["members"], record["metric"]) == ("retrieval_s3", "retrieval", 5, "mAP@10")
    assert record["note"] == "random-weight inputs"  # claip's images come from random-weight stand-ins
    assert "found 5" in record["warnings"]
    info = show_system(registry, "retrieval_s3")
    cols, member_rows = info["members"]
    assert [r[cols.index("run_id")] for r in member_rows] == fakes.of("mae", "msle", "claip", "clap", "claip_tag")
    assert [r[cols.index("tag_loss")] for r in member_rows] == ["mae", "mse_log", "", "", "mse_log"]
    assert info["params"]["k"] == 10 and info["params"]["dataset"] == "target"  # the default, resolved and recorded
    assert info["query"].startswith("-- Retrieval S3")
    with pytest.raises(NotFoundError, match="unknown system 'nope' .*known: retrieval_s3"):
        show_system(registry, "nope")


# --- bad input: one clear error, no system rows, no files -----------------------------------

def assert_nothing_written(registry, settings):
    assert system_rows(registry) == {"systems": 0, "members": 0, "scores": 0, "predictions": 0}
    assert not (settings.home / "systems").exists() or not any((settings.home / "systems").rglob("*.npz"))


@pytest.mark.backends("duckdb", "postgresql")
def test_sql_error_in_a_query_file_names_the_file_and_line(registry, fakes, settings, tmp_path):
    query = tmp_path / "broken.sql"
    query.write_text("-- my system\nSELECT run_id\nFROM final_scores\nWHERE nosuchcolumn = 1\n")
    with pytest.raises(InputError, match=rf"^{query}: line 4: .*nosuchcolumn"):
        build_system(registry, "broken", query_file=query)
    assert_nothing_written(registry, settings)


@pytest.mark.parametrize("sql, message", [
    ("SELECT 'not-a-run' AS run_id", "returned 'not-a-run', which is not a run id"),
    ("SELECT id FROM runs", r"returned columns \(id\): a system query must return a run_id column"),
    ("SELECT run_id FROM run_info WHERE task = 'nothing'", "selected no runs"),
    ("SELECT run_id FROM run_info WHERE task IN ('clap', 'caption') AND status = 'finished'", "runs that cannot be ensembled together"),
    ("SELECT run_id FROM run_info WHERE status = 'failed'", "is failed, not finished"),
    ("SELECT run_id FROM run_info WHERE task = 'clap' AND status = 'finished'", "runs of different datasets"),
    ("SELECT run_id, -1 AS weight FROM run_info WHERE task = 'claip'", "weight -1: weights must be positive"),
    ("SELECT run_id FROM run_info WHERE task = 'bow'", "has no similarity matrix for split 'val'"),
])
def test_bad_queries_leave_no_rows(registry, fakes, settings, tmp_path, sql, message):
    query = tmp_path / "bad.sql"
    query.write_text(sql)
    with pytest.raises(InputError, match=message):
        build_system(registry, "bad", query_file=query)
    assert_nothing_written(registry, settings)


def test_missing_similarity_file_and_incompatible_members_leave_no_rows(registry, fakes, settings):
    with registry.transaction() as session:
        path = session.scalar(select(Prediction.artifact_path).where(Prediction.run_id == fakes.ids["claip"],
                                                                     Prediction.split == "eval"))
    moved = path + ".moved"
    os.rename(path, moved)
    with pytest.raises(InputError, match=rf"run {fakes.ids['claip']}'s similarity matrix for split 'eval' is missing"):
        build_system(registry, "retrieval_s1")
    assert_nothing_written(registry, settings)
    os.rename(moved, path)
    with registry.transaction() as session:  # msle re-scored on other clips
        session.query(Prediction).filter_by(run_id=fakes.ids["msle"], split="val").delete()
        write_similarity(session, fakes, fakes.ids["msle"], "val", np.zeros((4, 2)), clip_idx=np.array([7, 8]))
    with pytest.raises(InputError, match=rf"runs {fakes.ids['mae']} and {fakes.ids['msle']} were scored on different "
                                         r"captions or clips of split 'val'"):
        build_system(registry, "retrieval_s1")
    assert_nothing_written(registry, settings)
    assert members(build_system(registry, "retrieval_s1", splits=["eval"]))[1] == fakes.ids["msle"]


def test_caption_member_without_checkpoint_and_unknown_names(registry, fakes, settings, monkeypatch):
    fake_ensembles(monkeypatch)
    (settings.home / "runs" / fakes.ids["cap_clap1"] / "best.pt").unlink()
    with pytest.raises(InputError, match=rf"run {fakes.ids['cap_clap1']} has no best checkpoint on disk"):
        build_system(registry, "caption_s1")
    with pytest.raises(InputError, match="unknown query 'nope' in sql/systems/"):
        build_system(registry, "nope")
    with pytest.raises(InputError, match="system name '../x'"):
        build_system(registry, "../x")
    assert_nothing_written(registry, settings)
