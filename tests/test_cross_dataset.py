"""Any run or system on any dataset: scores keyed by dataset, defaults that never move
silently, deterministic systems, and a workspace that keeps working when copied."""

from __future__ import annotations

import json
import shutil
import uuid

import numpy as np
import pytest
from click.testing import CliRunner

from aacbatch.cli import cli
from aacbatch.config import Settings
from aacbatch.data.ingest import ingest
from aacbatch.data.splits import resplit
from aacbatch.errors import InputError
from aacbatch.evaluate.retrieval import retrieval_scores
from aacbatch.featurize.job import featurize
from aacbatch.registry.queries import run_sql
from aacbatch.registry.schema import Checkpoint, Dataset, Prediction, Run, Score, utcnow
from aacbatch.registry.store import Registry
from aacbatch.reports import run_report
from aacbatch.systems import build_system
from aacbatch.train.run import train_task

from conftest import write_csv

QUIET = lambda _: None  # noqa: E731
CLAP = ("epochs=1", "batch_size=16", "text='locked'", "captions_per_clip=1", "eval_splits=['eval']")
SMALL = "model={gru_hidden=16, gru_layers=1, d_model=16, n_heads=2, ff_dim=32, decoder_layers=1}"


@pytest.fixture(scope="module")
def two(tmp_path_factory, synth_dir, single_thread):
    """SynthCaps ingested twice (``sc`` and ``sc2``: the same clips, full overlap), a CLAP run
    and a captioner trained on ``sc``."""
    registry = Registry(Settings.resolve(home=tmp_path_factory.mktemp("cross") / "home", db_timeout=2.0))
    for name in ("sc", "sc2"):
        ingest(registry, "clotho", synth_dir, name=name)
        resplit(registry, name, ratio=0.8)
        featurize(registry, "mel", name)
    featurize(registry, "text_emb", "sc")
    clap = train_task(registry, "clap", dataset="sc", sets=CLAP, log=QUIET)
    for name in ("sc", "sc2"):
        featurize(registry, "encoded", name, overrides={"run": clap.run_id})
    caption = train_task(registry, "caption", dataset="sc", log=QUIET,
                         sets=(f"features='encoded-{clap.run_id[:8]}'", "epochs=1", "batch_size=16", SMALL,
                               "eval_splits=['eval']"))
    return registry, clap, caption


def cli_run(registry, *args):
    return CliRunner().invoke(cli, ["--home", str(registry.settings.home), *map(str, args)], catch_exceptions=False)


def test_a_run_scores_the_same_on_a_copy_of_its_dataset(two):
    registry, clap, _ = two
    out = cli_run(registry, "evaluate", "retrieval", "--run", clap.run_id[:8], "--dataset", "sc2", "--split", "eval")
    assert out.exit_code == 0 and out.output.startswith("sc2 eval: t2a/R@1="), out.output
    _, rows = run_sql(registry, "SELECT eval_dataset, t2a_map10, t2a_r10, a2t_map10 FROM run_best_scores "
                                "WHERE run_id = :r AND split = 'eval' ORDER BY eval_dataset", {"r": clap.run_id})
    (own, *own_scores), (other, *other_scores) = rows
    assert (own, other) == ("sc", "sc2")
    np.testing.assert_allclose(other_scores, own_scores, atol=1e-6)  # the same clips and captions: the same numbers
    assert own_scores == pytest.approx([clap.final["eval"]["t2a/mAP@10"], clap.final["eval"]["t2a/R@10"],
                                        clap.final["eval"]["a2t/mAP@10"]], abs=1e-12)  # the run's own rows untouched


def test_partial_overlap_scores_are_the_submatrix_of_the_runs_own(two, tmp_path, synth_dir):
    """A dataset holding 6 of sc's eval clips (with their captions) is scored like the run's own
    similarity matrix cut to those clips and captions."""
    registry, clap, _ = two
    _, clips = run_sql(registry, "SELECT c.idx, c.name, c.path FROM clips c JOIN splits s ON s.clip_id = c.id "
                                 "JOIN datasets d ON d.id = c.dataset_id WHERE d.name = 'sc' AND s.name = 'eval' "
                                 "ORDER BY c.idx LIMIT 6")
    _, caps = run_sql(registry, "SELECT c.idx, x.text FROM captions x JOIN clips c ON c.id = x.clip_id "
                                "JOIN datasets d ON d.id = x.dataset_id WHERE d.name = 'sc' ORDER BY x.idx")
    keep = {idx for idx, _, _ in clips}
    rows = [[name, text, "eval"] for idx, name, path in clips for i, text in caps if i == idx]
    listing = write_csv(tmp_path / "part" / "list.csv", ["file_name", "caption", "split"], rows)
    ingest(registry, "folder", listing, name="part", audio_dir=synth_dir / "evaluation")
    featurize(registry, "mel", "part")
    ours = cli_run(registry, "evaluate", "retrieval", "--run", clap.run_id, "--dataset", "part", "--split", "eval")
    assert ours.exit_code == 0, ours.output
    _, art = run_sql(registry, "SELECT artifact_path FROM predictions WHERE run_id = :r AND split = 'eval' "
                               "AND kind = 'similarity' AND dataset_id = (SELECT id FROM datasets WHERE name = 'sc')",
                     {"r": clap.run_id})
    with np.load(registry.real_path(art[0][0])) as saved:
        sim, cap_clip, clip_idx = saved["similarity"], saved["clip_idx"][saved["relevant"]], saved["clip_idx"]
    columns = [k for k, idx in enumerate(clip_idx) if idx in keep]
    queries = [q for q, idx in enumerate(cap_clip) if idx in keep]
    sub = sim[np.ix_(queries, columns)]
    expected = retrieval_scores(sub, np.searchsorted(clip_idx[columns], cap_clip[queries]))
    _, got = run_sql(registry, "SELECT metric, value FROM final_scores WHERE run_id = :r AND eval_dataset = 'part'",
                     {"r": clap.run_id})
    assert dict(got) == pytest.approx(expected, abs=1e-5)


def test_captioners_and_systems_on_another_dataset(two):
    registry, clap, caption = two
    out = cli_run(registry, "evaluate", "caption", "--run", caption.run_id, "--dataset", "sc2")
    assert out.exit_code == 0, out.output
    _, rows = run_sql(registry, "SELECT eval_dataset, value FROM final_scores WHERE run_id = :r AND split = 'eval' "
                                "AND metric = 'cider_d' ORDER BY eval_dataset", {"r": caption.run_id})
    assert rows[0][0] == "sc" and rows[1][0] == "sc2" and rows[1][1] == pytest.approx(rows[0][1], abs=1e-9)
    _, captions = run_sql(registry, "SELECT COUNT(*) FROM predictions WHERE run_id = :r AND kind = 'caption' "
                                    "AND dataset_id = (SELECT id FROM datasets WHERE name = 'sc2')", {"r": caption.run_id})
    assert captions[0][0] > 0
    built = build_system(registry, "retrieval_s4", params={"split": "eval"}, splits=("eval",))
    assert built.dataset == "sc" and built.params["dataset"] == "sc"
    out = cli_run(registry, "evaluate", "retrieval", "--system", "retrieval_s4", "--dataset", "sc2")
    assert out.exit_code == 0, out.output
    _, scores = run_sql(registry, "SELECT eval_dataset, t2a_map10 FROM system_scores WHERE name = 'retrieval_s4' "
                                  "ORDER BY eval_dataset")
    assert [d for d, _ in scores] == ["sc", "sc2"] and scores[1][1] == pytest.approx(scores[0][1], abs=1e-6)
    out = cli_run(registry, "caption", "--run", caption.run_id, "--split", "eval", "--dataset", "sc2", "--format", "json")
    assert out.exit_code == 0 and len(json.loads(out.output)) > 0


def test_missing_features_are_named_with_the_command(two, synth_dir):
    registry, clap, caption = two
    ingest(registry, "clotho", synth_dir, name="bare")
    resplit(registry, "bare", ratio=0.8)
    out = cli_run(registry, "evaluate", "retrieval", "--run", clap.run_id, "--dataset", "bare")
    assert out.exit_code != 0 and "run `aacbatch featurize mel --dataset bare`" in out.output
    featurize(registry, "mel", "bare")
    out = cli_run(registry, "evaluate", "caption", "--run", caption.run_id, "--dataset", "bare")
    assert out.exit_code != 0 and "aacbatch featurize encoded --dataset bare --from-run RUN_ID" in out.output
    out = cli_run(registry, "evaluate", "retrieval", "--run", clap.run_id, "--dataset", "nope")
    assert out.exit_code != 0 and "unknown dataset 'nope'" in out.output
    out = cli_run(registry, "evaluate", "caption", "--run", clap.run_id, "--dataset", "sc2")
    assert out.exit_code != 0 and "is a clap run" in out.output


def test_a_throwaway_run_never_moves_a_default(two):
    registry, clap, _ = two
    assert run_report(registry, "table1").params["dataset"] == "sc"
    featurize(registry, "text_emb", "sc2")
    pre = train_task(registry, "clap", dataset="sc2", sets=CLAP, log=QUIET)  # pretraining elsewhere
    with pytest.raises(InputError, match=r"several datasets \(sc \(1 run\), sc2 \(1 run\)\)"):
        run_report(registry, "table1")  # no fine-tuned run yet, and runs on two datasets: named, not guessed
    fine = train_task(registry, "clap", dataset="sc", sets=CLAP, init_from=pre.run_id, log=QUIET)
    assert run_report(registry, "table1").params["dataset"] == "sc"  # the fine-tuned dataset decides
    train_task(registry, "clap", dataset="sc2", sets=CLAP, init_from=fine.run_id, log=QUIET)
    with pytest.raises(InputError, match=r"fine-tuned on several datasets \(sc \(1 run\), sc2 \(1 run\)\): pass "
                                         r"--param dataset=NAME"):
        run_report(registry, "table1")
    assert run_report(registry, "table1", {"dataset": "sc"}).params["dataset"] == "sc"
    rows = run_report(registry, "table1", {"dataset": "sc"}).table
    assert all(r[rows.columns.index("dataset")] == "sc" for r in rows.rows)


def _fill(registry, ids: list[str]) -> None:
    """Four finished retrieval runs on one dataset, all tied on val R@10, created in order."""
    with registry.transaction() as session:
        session.add(Dataset(id="d", name="target", format="folder", source_path="/", fingerprint="f", n_clips=1,
                            n_captions=1))
        session.add(Run(id="parent", task="clap", dataset_id="d", config_json="{}", status="finished"))
        for k, run_id in enumerate(ids):
            session.add(Run(id=run_id, task="clap", dataset_id="d", parent_run_id="parent", config_json="{}",
                            status="finished", started_at=utcnow(), finished_at=utcnow()))
            session.add(Checkpoint(run_id=run_id, path="/x", is_best=True))
            for split in ("val", "eval"):
                session.add(Score(run_id=run_id, dataset_id="d", split=split, metric="t2a/R@10", value=0.5))
                session.add(Score(run_id=run_id, dataset_id="d", split=split, metric="t2a/mAP@10",
                                  value=0.3 if k in (1, 3) else 0.2))
                session.add(Prediction(run_id=run_id, dataset_id="d", split=split, kind="similarity",
                                       artifact_path=str(registry.settings.home / "sim.npz")))


def test_the_same_runs_give_the_same_system_whatever_their_ids(tmp_path):
    """Ties on the metric go to the tie metric, then to creation order — never to random ids."""
    chosen = []
    for attempt in range(2):
        registry = Registry(Settings.resolve(home=tmp_path / f"h{attempt}", db_timeout=2.0))
        ids = [str(uuid.uuid4()) for _ in range(4)]
        _fill(registry, ids)
        np.savez(registry.settings.home / "sim.npz", similarity=np.eye(2, dtype=np.float32), caption_idx=np.arange(2),
                 clip_idx=np.arange(2), relevant=np.arange(2))
        built = build_system(registry, "retrieval_s2", params={"k": 2})
        chosen.append([ids.index(m.run_id) for m in built.members])
    assert chosen[0] == chosen[1] == [1, 3]  # equal R@10; the better mAP@10, then the first created


def test_a_copied_home_keeps_working_after_the_original_is_gone(tmp_path, synth_dir):
    home = tmp_path / "home"
    data = home / "data" / "sc"
    shutil.copytree(synth_dir, data)  # the corpus inside the workspace, like the demo's
    registry = Registry(Settings.resolve(home=home, db_timeout=2.0))
    ingest(registry, "clotho", data, name="sc")
    resplit(registry, "sc", ratio=0.8)
    featurize(registry, "mel", "sc")
    tagger = train_task(registry, "tagger", dataset="sc", sets=("epochs=1", "batch_size=16"), log=QUIET)
    moved = tmp_path / "moved"
    shutil.copytree(home, moved, symlinks=True)
    shutil.rmtree(home)
    runner = lambda *args: CliRunner().invoke(cli, ["--home", str(moved), *map(str, args)])  # noqa: E731
    assert runner("db", "check").exit_code == 0
    again = runner("featurize", "mel", "--dataset", "sc")
    assert again.exit_code == 0 and "0 blocks computed" in again.output
    assert runner("featurize", "tags", "--dataset", "sc", "--set", f"teacher={tagger.run_id[:8]}").exit_code == 0
    scored = runner("evaluate", "retrieval", "--run", tagger.run_id, "--split", "val")
    assert scored.exit_code == 0 and "mAP=" in scored.output, scored.output
    shown = json.loads(runner("features", "show", "mel", "--dataset", "sc").output)
    assert shown["path"].startswith(str(moved))
    assert runner("train", "--task", "tagger", "--dataset", "sc", "--set", "epochs=1", "--set", "batch_size=16",
                  "--reuse").output.startswith(f"reusing finished run {tagger.run_id}")


# --- uncertainty, comparisons, provenance, seeds ----------------------------------------------

def test_final_scores_carry_intervals_and_provenance(two):
    registry, clap, caption = two
    _, rows = run_sql(registry, "SELECT metric, value, ci_low, ci_high, ci_level, provenance_id FROM final_scores "
                                "WHERE run_id = :r AND split = 'eval' AND eval_dataset = 'sc'", {"r": clap.run_id})
    by_metric = {r[0]: r[1:] for r in rows}
    value, low, high, level, provenance = by_metric["t2a/mAP@10"]
    assert low <= value <= high and level == 0.95 and low < high and provenance
    _, record = run_sql(registry, "SELECT record_json FROM provenance WHERE id = :p", {"p": provenance})
    assert "aacbatch.evaluate.retrieval" in json.loads(record[0][0])["implementation"][0]
    _, caption_rows = run_sql(registry, "SELECT metric, value, ci_low, ci_high, reason FROM final_scores "
                                        "WHERE run_id = :r AND split = 'eval' AND eval_dataset = 'sc'",
                              {"r": caption.run_id})
    found = {r[0]: r[1:] for r in caption_rows}
    assert {"bleu_1", "bleu_4", "rouge_l", "meteor", "cider_d", "vocab"} <= set(found)
    cider, cider_low, cider_high, _ = found["cider_d"]
    assert cider_low <= cider <= cider_high
    assert found["vocab"][1] is None and found["spice"][0] is None and found["spice"][3]  # no interval / n/a + reason


def test_compare_a_system_with_its_own_member_and_two_captioners(two):
    registry, clap, caption = two
    member = build_system(registry, "retrieval_s4", params={"split": "eval", "dataset": "sc"},
                          splits=("eval",)).members[0].run_id
    out = cli_run(registry, "report", "compare", "retrieval_s4", member[:8], "--format", "json")
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output.split("\n", 1)[1])
    by_metric = {r["metric"]: r for r in rows}
    same = by_metric["t2a/mAP@10"]
    assert same["A-B"] == 0 and same["low"] == 0 and same["high"] == 0 and same["p"] == 1.0  # the same model
    baseline = train_task(registry, "frequent_caption", dataset="sc", log=QUIET)
    out = cli_run(registry, "report", "compare", caption.run_id, baseline.run_id)
    assert out.exit_code == 0 and "cider_d" in out.output and "meteor" in out.output, out.output
    wrong = cli_run(registry, "report", "compare", caption.run_id, clap.run_id)
    assert wrong.exit_code != 0 and "compare models of one kind" in wrong.output


def test_tables_show_intervals_on_request(two):
    registry, clap, _ = two
    plain = cli_run(registry, "report", "table1", "--param", "split=eval", "--param", "dataset=sc")
    with_ci = cli_run(registry, "report", "table1", "--param", "split=eval", "--param", "dataset=sc", "--ci", 95)
    assert plain.exit_code == 0 and with_ci.exit_code == 0, with_ci.output
    assert "[" not in plain.output.split("\n")[2] and "_low" not in plain.output
    assert "] " in with_ci.output or "]  " in with_ci.output
    assert cli_run(registry, "report", "table1", "--param", "dataset=sc", "--ci", 90).exit_code != 0


def test_runs_that_differ_only_in_seed_form_one_group(registry):
    from aacbatch.registry.runs import RunRecorder, SplitResult

    values = {0: 0.40, 1: 0.50, 2: 0.60}
    for seed, value in values.items():
        recorder = RunRecorder.start(registry, task="clap", config={"seed": seed, "lr": 1e-3}, dataset_id=None,
                                     parent_run_id=None, feature_sets=[], seed=seed, random_weights=False)
        recorder.final({"eval": SplitResult({"t2a/mAP@10": value})})
        recorder.status("finished")
    other = RunRecorder.start(registry, task="clap", config={"seed": 0, "lr": 1e-4}, dataset_id=None,
                              parent_run_id=None, feature_sets=[], seed=0, random_weights=False)
    other.final({"eval": SplitResult({"t2a/mAP@10": 0.1})})
    other.status("finished")
    _, rows = run_sql(registry, "SELECT n, mean, sd FROM seed_groups WHERE metric = 't2a/mAP@10' ORDER BY n DESC")
    assert rows[0][0] == 3 and rows[0][1] == pytest.approx(0.5) and rows[0][2] == pytest.approx(0.1)
    assert rows[1][0] == 1  # another learning rate: another group
