"""Training on several datasets at once: the union, weights, lineage, duplicates, bad input."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from aacbatch.audit.leakage import run_leakage
from aacbatch.batches import epoch_batches
from aacbatch.cli import cli
from aacbatch.data.corpus import define_mixture, resolve_corpus
from aacbatch.data.ingest import ingest
from aacbatch.data.splits import resplit
from aacbatch.data.synthcaps import generate
from aacbatch.errors import InputError, NotFoundError
from aacbatch.featurize.job import featurize
from aacbatch.featurize.sets import cached_set
from aacbatch.models.checkpoints import read_checkpoint
from aacbatch.registry.datasets import split_rows, store_dataset
from aacbatch.registry.mixtures import UsedDataset, mixture_id
from aacbatch.registry.queries import run_sql
from aacbatch.registry.runs import RunRecorder
from aacbatch.train import distributed
from aacbatch.train.config import load_config
from aacbatch.train.retrieval import RetrievalConfig
from aacbatch.train.run import build_task, train_task
from aacbatch import catalog

QUIET = lambda _: None  # noqa: E731
FAST = ("epochs=2", "batch_size=16", "lr=1e-3", "text='locked'", "eval_splits=['eval']")
SHARED = 4  # clips of the second dataset cut from recordings the first one's training split holds


def _sound_ids(folder, ids: dict[str, str]) -> None:
    """Clotho metadata naming each development clip's FreeSound recording."""
    with (folder / "clotho_metadata_development.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "keywords", "sound_id", "sound_link", "start_end_samples", "manufacturer",
                         "license"])
        writer.writerows([name, "", sid, "", "", "", ""] for name, sid in ids.items())


@pytest.fixture
def mixed(registry, tmp_path):
    """``a`` (SynthCaps, 30 clips) and ``b`` (another SynthCaps, 16 clips), each with log-mels
    and caption embeddings; SHARED of b's development clips name recordings of a's train split."""
    first = tmp_path / "a"
    generate(first, 30, seed=3, duration=(1.5, 2.0))
    names = sorted(p.name for p in (first / "development").glob("*.wav"))
    _sound_ids(first, {n: str(1000 + k) for k, n in enumerate(names)})
    ingest(registry, "clotho", first, name="a")
    resplit(registry, "a", ratio=0.8)
    trained = [c.source_id for c in split_rows(registry, "a", "train").clips]
    second = tmp_path / "b"
    generate(second, 16, seed=5, duration=(1.5, 2.0))
    names_b = sorted(p.name for p in (second / "development").glob("*.wav"))
    _sound_ids(second, {n: (trained[k] if k < SHARED else str(5000 + k)) for k, n in enumerate(names_b)})
    ingest(registry, "clotho", second, name="b")
    resplit(registry, "b", ratio=0.8)
    for name in ("a", "b"):
        featurize(registry, "mel", name)
        featurize(registry, "text_emb", name)
    return registry


def _member_of(examples, e: int) -> int:
    return int(examples.groups[e])


def _config(*sets):
    return load_config(RetrievalConfig, None, list(FAST) + list(sets))


def test_weights_draw_each_member_by_its_share_deterministically():
    groups = np.repeat([0, 1, 2], [40, 100, 60])
    clips = np.arange(200)
    counts = Counter()
    epochs = 30
    for epoch in range(epochs):
        order = np.concatenate(epoch_batches(clips, 7, epoch, 16, groups=groups, weights=(1.0, 2.5, 0.25)))
        assert [list(b) for b in epoch_batches(clips, 7, epoch, 16, groups=groups, weights=(1.0, 2.5, 0.25))] == \
               [list(b) for b in epoch_batches(clips, 7, epoch, 16, groups=groups, weights=(1.0, 2.5, 0.25))]
        per = Counter(order.tolist())
        assert all(per[e] == 1 for e in range(40))  # weight 1: each once
        assert all(per[e] in (2, 3) for e in range(40, 140)) and sum(per[e] for e in range(40, 140)) == 250
        assert all(per[e] in (0, 1) for e in range(140, 200)) and sum(per[e] for e in range(140, 200)) == 15
        counts.update(order.tolist())
    share = np.array([sum(counts[e] for e in range(a, b)) for a, b in ((0, 40), (40, 140), (140, 200))]) / epochs
    assert np.allclose(share, [40, 250, 15])
    extra = np.array([counts[e] - 2 * epochs for e in range(40, 140)]) / epochs  # the random half of weight 2.5
    assert abs(extra.mean() - 0.5) < 1e-9 and 0.2 < extra.min() and extra.max() < 0.8  # spread over examples
    unweighted = epoch_batches(clips, 7, 3, 16)
    same = epoch_batches(clips, 7, 3, 16, groups=groups, weights=(1.0, 1.0, 1.0))
    assert [list(b) for b in unweighted] == [list(b) for b in same]  # weights of 1 change nothing


def _check_union(mixed):
    corpus = resolve_corpus(mixed, "a,b")
    task = build_task(mixed, catalog.task("clap"), corpus, _config())
    examples = task.splits["train"]
    recordings = {name: {(c.source, c.source_id) for c in split_rows(mixed, name, "train").clips if c.source}
                  for name in "ab"}
    left_out = recordings["a"] & recordings["b"]
    assert task.member_counts["b"][1] == len(left_out) > 0  # b's copies of a's recordings are not trained on
    batches = task.train_batches(0)
    seen = np.concatenate(batches)
    assert sorted(seen) == list(range(len(examples)))  # each example of the union exactly once
    assert len(set(examples.clips[examples.groups == 0]) & set(examples.clips[examples.groups == 1])) == 0
    own = {}
    for name in "ab":
        mel, text = cached_set(mixed, name, "mel").store, cached_set(mixed, name, "text_emb").store
        own[name] = (mel, mel.reader("mel", 1 << 26), text, text.reader("cls", 1 << 26))
    for batch in batches:
        read = task.fetch(batch, 0)
        for k, e in enumerate(batch):  # example by example, against the member's own caches
            m = _member_of(examples, e)
            name = "ab"[m]
            mel_store, mel_reader, text_store, text_reader = own[name]
            clip = int(read["clip_idx"][k] - examples.shifts["clip_idx"][m])
            caption = int(read["caption_idx"][k] - examples.shifts["caption_idx"][m])
            mel = mel_reader[mel_store.rows(np.array([clip]))][0]
            assert np.array_equal(read["mel"][k, :read["mel_lengths"][k]], mel.astype(np.float32))
            cls = text_reader[text_store.rows(np.array([caption]))][0]
            assert np.array_equal(read["cls"][k], cls)


def test_a_mixture_sees_each_example_once_with_its_own_features_records_members_and_resumes(mixed, monkeypatch):
    _check_union(mixed)
    status, _ = define_mixture(mixed, "ab", "a,b", (1.0, 2.0))
    assert status == "created" and define_mixture(mixed, "ab", "a,b", (1.0, 2.0))[0] == "unchanged"
    straight = train_task(mixed, "clap", dataset="ab", val_dataset="b", sets=FAST, log=QUIET)

    def interrupted():  # the loop's end-of-epoch barrier, after the epoch's checkpoints
        raise KeyboardInterrupt

    monkeypatch.setattr(distributed, "barrier", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_task(mixed, "clap", dataset="ab", val_dataset="b", sets=FAST, log=QUIET)
    monkeypatch.undo()
    _, rows = run_sql(mixed, "SELECT id FROM runs WHERE id <> :r", {"r": straight.run_id})
    resumed = train_task(mixed, None, resume=rows[0][0], log=QUIET)
    assert resumed.final == straight.final
    a, b = read_checkpoint(straight.run_dir / "last.pt"), read_checkpoint(resumed.run_dir / "last.pt")
    assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)
    assert a.config["corpus"] == {"mixture": "ab", "members": [["a", 1.0], ["b", 2.0]]} and a.dataset == "b"
    _, used = run_sql(mixed, "SELECT role, dataset, weight, n_examples, n_duplicates, mixture, same_content "
                      "FROM run_corpus WHERE run_id = :r ORDER BY role, position", {"r": straight.run_id})
    n_b = len(split_rows(mixed, "b", "train").captions)
    assert [u[:3] for u in used] == [("train", "a", 1.0), ("train", "b", 2.0), ("val", "b", None)]
    assert used[1][3] < n_b and used[1][4] > 0 and {u[5] for u in used} == {"ab"} and all(u[6] for u in used)
    _, info = run_sql(mixed, "SELECT mixture, n_train_datasets, dataset FROM run_info WHERE run_id = :r",
                      {"r": straight.run_id})
    assert info == [("ab", 2, "b")]
    _, scored = run_sql(mixed, "SELECT DISTINCT eval_dataset FROM final_scores WHERE run_id = :r", {"r": straight.run_id})
    assert scored == [("b",)]  # validated and scored on the val dataset's splits
    _, best = run_sql(mixed, "SELECT DISTINCT mixture FROM run_best_scores WHERE run_id = :r", {"r": straight.run_id})
    assert best == [("ab",)]
    trained_a = {(c.source, c.source_id) for c in split_rows(mixed, "a", "train").clips if c.source}
    expected = {c.id for c in split_rows(mixed, "b", "val").clips if (c.source, c.source_id) in trained_a}
    leak = run_leakage(mixed, straight.run_id, "b", "val")  # b's val clips cut from recordings member a trained on
    assert expected and set(leak.leaked) == expected and leak.runs == [straight.run_id]


@pytest.mark.backends("duckdb", "postgresql")
def test_runs_trained_on_a_mixture_holding_a_format_are_one_query(registry, backend):
    for name, fmt in (("clotho", "clotho"), ("wavcaps-fsd", "wavcaps"), ("audiocaps", "audiocaps")):
        store_dataset(registry, name, fmt=fmt, source_path=f"/data/{name}", fingerprint=name * 2, meta={},
                      clips=[], captions=[], replace=False)
    define_mixture(registry, "paper", "clotho,audiocaps,wavcaps-fsd")
    define_mixture(registry, "small", "clotho,audiocaps")
    def run(task, mixture, members):
        used = [UsedDataset(d, "train", k, "train", d * 2, 1.0) for k, d in enumerate(members)]
        return RunRecorder.start(registry, task=task, config={"dataset": "clotho"}, dataset_id=None, parent_run_id=None,
                                 feature_sets=[], seed=0, random_weights=False, mixture_id=mixture_id(registry, mixture),
                                 datasets=used + [UsedDataset("clotho", "val", 0, "val", "clotho" * 2)]).run_id
    wanted = run("clap_tag", "paper", ["clotho", "audiocaps", "wavcaps-fsd"])
    run("clap", "paper", ["clotho", "audiocaps", "wavcaps-fsd"])
    run("clap_tag", "small", ["clotho", "audiocaps"])
    _, rows = run_sql(registry, "SELECT DISTINCT run_id, mixture FROM run_corpus WHERE task = 'clap_tag' "
                      "AND role = 'train' AND format = 'wavcaps'")
    assert rows == [(wanted, "paper")]


def test_mixture_cli_and_bad_mixtures_get_one_line_each(mixed, settings):
    def run(*args):
        return CliRunner().invoke(cli, ["--home", str(settings.home), *args])

    made = run("mixture", "create", "ab2", "--dataset", "a,b", "--weight", "1", "--weight", "0.5")
    assert made.exit_code == 0 and "mixture ab2: created (a×1, b×0.5)" in made.output
    listed = json.loads(run("mixture", "list", "--format", "json").output)
    assert [(r["mixture"], r["dataset"], r["weight"]) for r in listed] == [("ab2", "a", 1.0), ("ab2", "b", 0.5)]
    bad = run("train", "--task", "clap", "--dataset", "a,b", "--weight", "1")
    assert bad.exit_code != 0 and bad.output.startswith("aacbatch: error: 1 weight(s) for 2 dataset(s)")
    assert "Traceback" not in bad.output

    cases = [("a,nope", (), NotFoundError, "unknown dataset 'nope'"),
             ("a,,b", (), InputError, "empty name"),
             ("a,b,a", (), InputError, "more than once"),
             ("a,b", (1.0,), InputError, "1 weight\\(s\\) for 2 dataset"),
             ("a,b", (1.0, -2.0), InputError, "weight -2.0 is out of range"),
             ("a,b", (1.0, float("nan")), InputError, "out of range")]
    for spec, weights, error, message in cases:
        with pytest.raises(error, match=message):
            resolve_corpus(mixed, spec, weights=weights)
    with pytest.raises(InputError, match="already a dataset's name"):
        define_mixture(mixed, "a", "a,b")
    define_mixture(mixed, "ab", "a,b")
    with pytest.raises(InputError, match="is the name of a mixture"):
        ingest(mixed, "clotho", Path(split_rows(mixed, "b").dataset.source_path), name="ab")
    with pytest.raises(InputError, match="exists with other members"):
        define_mixture(mixed, "ab", "b,a")
    with pytest.raises(InputError, match="is a mixture: list its datasets"):
        resolve_corpus(mixed, "ab,a")
    with pytest.raises(InputError, match="task 'tagger' trains on one dataset"):
        train_task(mixed, "tagger", dataset="a,b", sets=("epochs=1",), log=QUIET)
    with pytest.raises(InputError, match="has no split 'nosuch'"):
        train_task(mixed, "clap", dataset="a,b", sets=FAST + ("train_split='nosuch'",), log=QUIET)
    featurize(mixed, "mel", "b", overrides={"dtype": "float32"}, rebuild=True)  # b's log-mels now unlike a's
    with pytest.raises(InputError, match=r"feature set 'mel' of dataset 'b' was made unlike that of 'a' "
                                         r"\(spec.params.dtype: 'float16' vs 'float32'\): rebuild it alike with `aacbatch featurize mel --dataset b"):
        train_task(mixed, "clap", dataset="a,b", sets=FAST, log=QUIET)
    _, runs = run_sql(mixed, "SELECT COUNT(*) FROM runs")
    assert runs == [(0,)]  # refused before a run row exists


def test_one_caption_per_clip_is_drawn_per_clip_without_loops():
    from aacbatch.batches import per_clip_sample

    clips = np.repeat(np.arange(50), np.arange(50) % 6 + 1)  # 1 to 6 captions per clip
    picked = Counter()
    for epoch in range(200):
        chosen = per_clip_sample(clips, 2, np.random.default_rng(epoch))
        per = Counter(clips[chosen].tolist())
        assert all(per[c] == min(2, c % 6 + 1) for c in range(50)) and len(set(chosen)) == len(chosen)
        picked.update(chosen.tolist())
    six = np.flatnonzero(clips == 5)  # a clip with 6 captions: each drawn about 2/6 of the epochs
    assert all(abs(picked[int(e)] / 200 - 1 / 3) < 0.12 for e in six)


def test_sets_made_alike_differ_only_in_their_dataset_and_locations():
    from aacbatch.featurize.sets import recipe

    def meta(sha, mel, where, block=128):
        return {"spec": {"kind": "tags", "block_size": block, "params": {"teacher": "r1", "mel": "mel"}},
                "model_identity": {"teacher_run": "r1", "checkpoint_path": where, "checkpoint_sha256": sha,
                                   "mel_fingerprint": mel}}
    assert recipe(meta("s1", "fp-a", "/x/best.pt")) == recipe(meta("s1", "fp-b", "/y/best.pt", 256))
    assert recipe(meta("s1", "fp-a", "/x/best.pt")) != recipe(meta("s2", "fp-a", "/x/best.pt"))  # another teacher
