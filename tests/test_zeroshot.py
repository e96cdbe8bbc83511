"""Zero-shot classification: ESC-50 / UrbanSound8K / labelled-folder ingest on layouts built
from SynthCaps clips, the top-k and chance definitions, and `evaluate zeroshot` with a run and
a system (scores, folds, intervals, what it leaves alone, bad input)."""

from __future__ import annotations

import csv
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from aacbatch.cli import cli
from aacbatch.config import Settings
from aacbatch.data.ingest import ingest
from aacbatch.data.splits import resplit
from aacbatch.errors import InputError
from aacbatch.evaluate.zeroshot import (best_label_ranks, chance_accuracy, check_prompts, classify, confusion,
                                        label_embeddings, score_zeroshot)
from aacbatch.evaluation import run_encoder
from aacbatch.featurize.job import featurize
from aacbatch.registry.datasets import split_rows
from aacbatch.registry.schema import Score, System, SystemMember
from aacbatch.registry.store import Registry
from aacbatch.train.run import train_task
from aacbatch.zeroshot import evaluate_zeroshot

from conftest import write_csv

QUIET = lambda _: None  # noqa: E731
CLAP = ("epochs=5", "batch_size=16", "lr=5e-3", "warmup_epochs=0", "text='locked'", "captions_per_clip=0",
        "val_split='train'", "eval_splits=['eval']")
ESC_HEADER = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
US8K_HEADER = ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"]


def synth_clips(synth: Path) -> list[tuple[Path, str]]:
    """(wav, its first tag) of every SynthCaps clip, in file-name order."""
    with (synth / "tags.csv").open(encoding="utf-8") as handle:
        first = {row["file_name"]: row["tags"].split(";")[0] for row in csv.DictReader(handle)}
    return sorted(((p, first[p.name]) for p in synth.rglob("synth_*.wav")), key=lambda item: item[0].name)


def make_esc50(root: Path, synth: Path, folds: int = 5) -> Path:
    """An ESC-50-layout folder of SynthCaps clips: class = the clip's first event."""
    clips = synth_clips(synth)
    classes = sorted({label for _, label in clips})
    rows = []
    for k, (wav, label) in enumerate(clips):
        name = f"{k % folds + 1}-{1000 + k}-A-{classes.index(label)}.wav"
        (root / "audio").mkdir(parents=True, exist_ok=True)
        shutil.copy(wav, root / "audio" / name)
        rows.append([name, str(k % folds + 1), str(classes.index(label)), label, "False", str(1000 + k), "A"])
    write_csv(root / "meta" / "esc50.csv", ESC_HEADER, rows)
    return root


def make_us8k(root: Path, synth: Path, n: int = 12) -> Path:
    clips = synth_clips(synth)[:n]
    classes = sorted({label for _, label in clips})
    rows = []
    for k, (wav, label) in enumerate(clips):
        fold, name = k % 3 + 1, f"{2000 + k}-{classes.index(label)}-0-{k}.wav"
        (root / "audio" / f"fold{fold}").mkdir(parents=True, exist_ok=True)
        shutil.copy(wav, root / "audio" / f"fold{fold}" / name)
        rows.append([name, str(2000 + k), f"{0.5 * k}", f"{0.5 * k + 1.5}", "1", str(fold), str(classes.index(label)),
                     label])
    write_csv(root / "metadata" / "UrbanSound8K.csv", US8K_HEADER, rows)
    return root


def cli_run(registry: Registry, *args):
    return CliRunner().invoke(cli, ["--home", str(registry.settings.home), *map(str, args)])


def n_scores(registry: Registry) -> int:
    with registry.transaction() as session:
        return session.scalar(select(func.count()).select_from(Score))


def zeroshot_rows(registry: Registry, **owner) -> dict[tuple[str, str], tuple]:
    with registry.transaction() as session:
        rows = session.execute(select(Score.split, Score.metric, Score.value, Score.ci_low, Score.ci_high)
                               .filter_by(**owner).where(Score.metric.startswith("zeroshot/"))).all()
    return {(split, metric): (value, low, high) for split, metric, value, low, high in rows}


# --- definitions -----------------------------------------------------------------------------

def test_top_k_is_the_usual_accuracy_for_one_label_and_any_label_for_several():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((40, 12))
    truth = rng.integers(0, 12, 40)
    single = np.eye(12, dtype=bool)[truth]
    ranks = best_label_ranks(scores, single)
    for k in (1, 3, 5):
        top = np.argsort(-scores, axis=1)[:, :k]
        assert np.array_equal(ranks < k, (top == truth[:, None]).any(axis=1))
    several = single | np.eye(12, dtype=bool)[rng.integers(0, 12, 40)]
    top5 = np.argsort(-scores, axis=1)[:, :5]
    assert np.array_equal(best_label_ranks(scores, several) < 5, several[np.arange(40)[:, None], top5].any(axis=1))


def test_ties_are_pessimistic_and_a_constant_scorer_is_at_chance_or_below():
    targets = np.eye(4, dtype=bool)[[0, 1, 2, 3]]
    assert best_label_ranks(np.zeros((4, 4)), targets).tolist() == [3, 3, 3, 3]
    # the clip's own other label tied with its best one does not push it down; other labels do
    scores = np.array([[1.0, 1.0, 1.0, 0.0]])
    assert best_label_ranks(scores, np.array([[True, True, False, False]])).tolist() == [1]


def test_chance_is_the_exact_mean_over_every_ranking():
    n_labels, k = 6, 2
    for m in (1, 2, 3):
        hits = [bool(set(order[:k]) & set(range(m))) for order in itertools.permutations(range(n_labels))]
        assert chance_accuracy(np.array([m]), n_labels, k)[0] == pytest.approx(np.mean(hits))
    assert chance_accuracy(np.array([1]), 50, 5)[0] == pytest.approx(0.1)


def test_prompts_are_averaged_per_label_and_checked():
    text = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [3.0, 0.0]])  # label 0: two prompts, label 1: two
    assert np.allclose(label_embeddings(text, 2), [[np.sqrt(0.5), np.sqrt(0.5)], [1.0, 0.0]])
    assert check_prompts([]) == ("this is the sound of {label}",)
    for bad, said in (("a dog barking", "must hold {label} exactly once"), ("{label} and {label}", "exactly once"),
                      ("{label} in {place}", "no other {field}"), ("{label", "is not a template")):
        with pytest.raises(InputError, match=said.replace("{", r"\{").replace("}", r"\}")):
            check_prompts([bad])


def test_scores_have_intervals_and_the_confusion_counts_each_clip_once():
    scores = np.array([[0.9, 0.1, 0.0], [0.1, 0.8, 0.3], [0.7, 0.2, 0.1], [0.1, 0.2, 0.9]])
    targets = np.eye(3, dtype=bool)[[0, 2, 0, 2]]
    result = classify(list("abcd"), ["x", "y", "z"], scores, targets)
    scored = score_zeroshot(result, ("{label}",))
    assert scored.metrics["zeroshot/top1"] == pytest.approx(0.75)
    assert scored.metrics["zeroshot/chance_top1"] == pytest.approx(1 / 3)
    low, high, level = scored.intervals["zeroshot/top1"]
    assert low <= 0.75 <= high and level == 0.95
    assert confusion(result).tolist() == [[2, 0, 0], [0, 0, 0], [0, 1, 1]]


# --- ingest -----------------------------------------------------------------------------------

def test_esc50_keeps_folds_classes_and_freesound_sources(registry, synth_dir, tmp_path):
    root = make_esc50(tmp_path / "ESC-50", synth_dir)
    result = ingest(registry, "esc50", root, name="esc")
    assert (result.n_clips, result.n_captions) == (60, 0)
    rows = split_rows(registry, "esc")
    classes = sorted({label for _, label in synth_clips(synth_dir)})
    assert json.loads(rows.dataset.meta_json)["tag_labels"] == classes
    first = rows.clips[0]
    assert (first.source_split, first.tags, first.source, first.source_id) == ("fold1", synth_clips(synth_dir)[0][1],
                                                                             "freesound", "1000")
    assert len(split_rows(registry, "esc", "fold3").clips) == 12
    featurize(registry, "mel", "esc")  # a caption-less dataset featurizes


def test_urbansound8k_reads_fold_folders_and_slice_offsets(registry, synth_dir, tmp_path):
    root = make_us8k(tmp_path / "UrbanSound8K", synth_dir)
    assert ingest(registry, "urbansound8k", root, name="us").n_clips == 12
    clip = split_rows(registry, "us", "fold2").clips[0]
    assert (clip.source, clip.source_id, clip.source_start) == ("freesound", "2001", 0.5)
    assert clip.path.endswith(f"fold2/{clip.name}")


def test_folder_label_column_with_or_without_captions(registry, tmp_path):
    from conftest import write_wav

    for name in ("a.wav", "b.wav"):
        write_wav(tmp_path / "f" / name)
    write_csv(tmp_path / "f" / "list.csv", ["file_name", "label", "split"], [["a.wav", "dog", "test"], ["b.wav", "cat", "test"]])
    assert ingest(registry, "folder", tmp_path / "f", name="labelled").n_captions == 0
    assert [c.tags for c in split_rows(registry, "labelled").clips] == ["dog", "cat"]
    write_csv(tmp_path / "f" / "list.csv", ["file_name", "caption", "label"], [["a.wav", "a dog.", "dog"], ["a.wav", "barks.", "cat"]])
    with pytest.raises(InputError, match="has label 'cat' here but 'dog'"):
        ingest(registry, "folder", tmp_path / "f", name="captioned")


def test_bad_input_is_one_line_and_leaves_the_registry_alone(registry, synth_dir, tmp_path):
    root = make_esc50(tmp_path / "ESC-50", synth_dir)
    listing = root / "meta" / "esc50.csv"
    text = listing.read_text(encoding="utf-8").splitlines()
    listing.write_text("\n".join(",".join(c for c in line.split(",")[:5] + line.split(",")[6:]) for line in text) + "\n",
                       encoding="utf-8")
    result = cli_run(registry, "ingest", "esc50", root, "--name", "esc")
    assert result.exit_code != 0 and result.output.count("\n") == 1
    assert result.output.startswith("aacbatch: error: ") and "missing column(s) src_file" in result.output
    assert cli_run(registry, "sql", "SELECT count(*) AS n FROM datasets").output.split()[-1] == "0"


# --- evaluate zeroshot with a trained run -------------------------------------------------------

@pytest.fixture(scope="module")
def ws(tmp_path_factory, synth_dir, single_thread):
    """SynthCaps (``sc``) with a CLAP run trained on it, and the same clips as ESC-50 (``esc``)."""
    registry = Registry(Settings.resolve(home=tmp_path_factory.mktemp("zeroshot") / "home", db_timeout=5.0))
    ingest(registry, "clotho", synth_dir, name="sc")
    resplit(registry, "sc", ratio=0.8)
    ingest(registry, "esc50", make_esc50(tmp_path_factory.mktemp("esc") / "ESC-50", synth_dir), name="esc")
    for spec, dataset in (("mel", "sc"), ("text_emb", "sc"), ("mel", "esc")):
        featurize(registry, spec, dataset)
    run_id = train_task(registry, "clap", dataset="sc", sets=CLAP, log=QUIET).run_id
    return registry, run_id


def test_scores_equal_one_clip_and_one_prompt_at_a_time(ws):
    registry, run_id = ws
    prompts = ("this is the sound of {label}", "a recording of {label}")
    result = evaluate_zeroshot(registry, dataset="esc", run=run_id, prompts=prompts)
    classified = result.classified["all"]
    encoder = run_encoder(registry, run_id)
    from aacbatch.featurize.sets import cached_set

    mel = cached_set(registry, "esc", "mel")
    clips = split_rows(registry, "esc").clips
    audio = np.concatenate([encoder.embed_audio([mel.store.reader("mel")[mel.store.rows([c.idx])][0].astype(np.float32)])
                            for c in clips])
    text = np.stack([np.mean([encoder.embed_text([p.format(label=label)])[0] for p in prompts], axis=0)
                     for label in result.labels])
    expected = audio @ (text / np.linalg.norm(text, axis=1, keepdims=True)).T
    assert np.allclose(classified.scores, expected, atol=1e-4)
    truth = np.array([result.labels.index(c.tags) for c in clips])
    assert result.scores["all"].metrics["zeroshot/top1"] == pytest.approx(np.mean(expected.argmax(axis=1) == truth))
    rows = zeroshot_rows(registry, run_id=run_id)
    assert {split for split, _ in rows} == {"all", "fold1", "fold2", "fold3", "fold4", "fold5"}
    fold = [k for k, c in enumerate(clips) if c.source_split == "fold2"]
    assert rows["fold2", "zeroshot/top1"][0] == pytest.approx(np.mean(expected[fold].argmax(axis=1) == truth[fold]))
    value, low, high = rows["all", "zeroshot/top5"]
    assert low <= value <= high and rows["all", "zeroshot/chance_top1"][0] == pytest.approx(1 / len(result.labels))


def test_a_trained_run_beats_chance_on_synthcaps_tags(ws):
    registry, run_id = ws
    scores = evaluate_zeroshot(registry, dataset="sc", run=run_id, splits=["train"]).scores["train"].metrics
    assert scores["zeroshot/top1"] > scores["zeroshot/chance_top1"] + 0.1


def test_retrieval_and_zeroshot_scores_of_a_split_leave_each_other_alone(ws):
    registry, run_id = ws
    evaluate_zeroshot(registry, dataset="sc", run=run_id, splits=["eval"])
    before = zeroshot_rows(registry, run_id=run_id)
    assert cli_run(registry, "evaluate", "retrieval", "--run", run_id, "--split", "eval").exit_code == 0
    assert zeroshot_rows(registry, run_id=run_id) == before
    with registry.transaction() as session:
        retrieval = session.scalar(select(func.count()).select_from(Score).where(
            Score.run_id == run_id, Score.split == "eval", Score.metric == "t2a/R@1", Score.epoch.is_(None)))
    evaluate_zeroshot(registry, dataset="sc", run=run_id, splits=["eval"], prompts=["{label}"])
    with registry.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Score).where(
            Score.run_id == run_id, Score.split == "eval", Score.metric == "t2a/R@1", Score.epoch.is_(None))) == retrieval == 1


def test_a_system_averages_its_members_label_scores(ws):
    registry, run_id = ws
    with registry.transaction() as session:
        system = System(name="zs-pair", kind="retrieval", query_text="-- test", fingerprint="zs-pair")
        session.add(system)
        session.flush()
        session.add_all([SystemMember(system_id=system.id, run_id=run_id, rank=1, weight=1.0),
                         SystemMember(system_id=system.id, run_id=run_id, rank=2, weight=3.0)])
        system_id = system.id
    alone = evaluate_zeroshot(registry, dataset="esc", run=run_id, splits=["fold1"])
    pair = evaluate_zeroshot(registry, dataset="esc", system="zs-pair", splits=["fold1"])
    assert np.allclose(pair.classified["fold1"].scores, alone.classified["fold1"].scores, atol=1e-6)
    assert set(zeroshot_rows(registry, system_id=system_id)) == {("fold1", m) for m in pair.scores["fold1"].metrics}


def test_cli_prints_scores_and_draws_the_confusion_matrix(ws, tmp_path):
    registry, run_id = ws
    result = cli_run(registry, "evaluate", "zeroshot", "--run", run_id[:8], "--dataset", "esc", "--split", "fold1",
                     "--split", "fold2", "--plot", tmp_path / "confusion.png")
    assert result.exit_code == 0, result.output
    assert "esc fold1: top1=" in result.output and "esc fold2: top1=" in result.output
    assert (tmp_path / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_prompt_or_dataset_changes_nothing(ws):
    registry, run_id = ws
    before = n_scores(registry)
    for args, said in ((("--prompt", "the sound of a dog"), "must hold {label}"),
                       (("--dataset", "nope"), "unknown dataset 'nope'"),
                       (("--split", "fold9"), "has no split 'fold9'")):
        options = ["--run", run_id, *(["--dataset", "esc"] if "--dataset" not in args else []), *args]
        result = cli_run(registry, "evaluate", "zeroshot", *options)
        assert result.exit_code != 0 and result.output.count("\n") == 1, result.output
        assert result.output.startswith("aacbatch: error: ") and said in result.output
    assert n_scores(registry) == before
