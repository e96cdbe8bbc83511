"""Clean training data: source ids at ingest, WavCaps exclusion, the audit over registered
datasets, leakage per run and the split warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from aacbatch import catalog
from aacbatch.audit.datasets import audit_datasets
from aacbatch.audit.leakage import run_leakage
from aacbatch.audit.planted import plant_into_corpus
from aacbatch.cli import cli
from aacbatch.data.ingest import ingest
from aacbatch.data.ingest.exclusion import published_list
from aacbatch.data.splits import resplit
from aacbatch.data.synthcaps import generate
from aacbatch.featurize.job import featurize
from aacbatch.registry.audits import stored_matches
from aacbatch.registry.datasets import split_rows
from aacbatch.registry.runs import RunRecorder
from aacbatch.registry.schema import Clip, Dataset

from conftest import write_csv, write_wav

METADATA = "file_name,keywords,sound_id,sound_link,start_end_samples,manufacturer,license\n"
LISTED = "117790"  # first id of the published Clotho v2 list


def make_clotho_with_metadata(root: Path) -> Path:
    """Clotho layout whose metadata names FreeSound 555 (dev) and 777 (eval), one row 'Not found'."""
    rows = {"development": [("d0.wav", "555"), ("d1.wav", "Not found")], "evaluation": [("e0.wav", "777")]}
    for split, clips in rows.items():
        for k, (name, _) in enumerate(clips):
            write_wav(root / split / name, seed=k + 3 * len(split))
        write_csv(root / f"clotho_captions_{split}.csv", ["file_name", "caption_1"],
                  [[name, f"Sound {name}."] for name, _ in clips])
        text = METADATA + "".join(f'{n},bird;café,{i},https://x,"[0, 1]",José,CC BY 3.0\n' for n, i in clips)
        (root / f"clotho_metadata_{split}.csv").write_bytes(text.encode("latin-1"))  # as the official release
    return root


def make_wavcaps(root: Path, ids: list[str], name: str = "fsd_final.json") -> Path:
    for k, ident in enumerate(ids):
        write_wav(root / f"{ident}.flac", seed=20 + k)
    data = {"data": [{"id": ident, "caption": f"Entry {ident}.", "audio": f"{ident}.flac"} for ident in ids]}
    (root / name).write_text(json.dumps(data))
    return root


def sources(registry, dataset: str) -> dict[str, tuple]:
    with registry.transaction() as session:
        ds = session.scalar(select(Dataset).where(Dataset.name == dataset))
        return {c.name: (c.source, c.source_id, c.source_start, c.licence, c.overlap_lists)
                for c in session.scalars(select(Clip).where(Clip.dataset_id == ds.id))}


def test_published_lists_are_shipped_as_released():
    clotho, audiocaps = published_list("clotho_v2"), published_list("audiocaps")
    assert len(clotho.ids) == 7941 and LISTED in clotho.ids and "Not found" not in clotho.ids  # 7,942 rows
    assert len(audiocaps.ids) == 51308 and "Yr1nicOVtvkQ" in audiocaps.ids


def test_clotho_metadata_in_latin1_gives_freesound_ids_and_licences(registry, tmp_path):
    ingest(registry, "clotho", make_clotho_with_metadata(tmp_path / "c"), name="clotho")
    assert sources(registry, "clotho") == {"d0.wav": ("freesound", "555", None, "CC BY 3.0", None),
                                           "d1.wav": (None, None, None, None, None),  # "Not found"
                                           "e0.wav": ("freesound", "777", None, "CC BY 3.0", None)}


def test_audiocaps_keeps_youtube_id_and_start(registry, tmp_path):
    root = tmp_path / "ac"
    write_wav(root / "audio" / "Yabc.wav")
    write_csv(root / "train.csv", ["audiocap_id", "youtube_id", "start_time", "caption"], [["1", "abc", "30", "A dog."]])
    ingest(registry, "audiocaps", root, name="ac")
    assert sources(registry, "ac") == {"Yabc.wav": ("youtube", "abc", 30.0, None, None)}


def test_wavcaps_drops_listed_and_registered_recordings_and_keep_overlap_marks_them(registry, tmp_path):
    ingest(registry, "clotho", make_clotho_with_metadata(tmp_path / "c"), name="clotho")
    wc = make_wavcaps(tmp_path / "wc", [LISTED, "777", "555", "42", "43"])
    result = ingest(registry, "wavcaps", wc, name="wc", limit=1)
    assert result.dropped == {"clotho_v2 list (aac-datasets 0.7.0: WavCaps overlapping Clotho v2)": 1,
                              "same freesound recording as a clip of 'clotho'": 2}
    assert sources(registry, "wc") == {"42.flac": ("freesound", "42", None, None, None)}  # --limit after exclusion
    kept = ingest(registry, "wavcaps", wc, name="wc-all", keep_overlap=True)
    assert kept.n_clips == 5 and sum(kept.kept.values()) == 3 and not kept.dropped
    assert sources(registry, "wc-all")[f"{LISTED}.flac"][4] == "clotho_v2"
    with registry.transaction() as session:
        meta = json.loads(session.scalar(select(Dataset.meta_json).where(Dataset.name == "wc-all")))
    assert meta["overlap"]["keep_overlap"] is True and meta["wavcaps_subset"] == "freesound"


def test_audioset_entries_on_the_audiocaps_list_are_dropped(registry, tmp_path):
    wc = make_wavcaps(tmp_path / "as", ["Yr1nicOVtvkQ", "Yzzzzzzzzzzz"], name="as_final.json")
    assert ingest(registry, "wavcaps", wc, name="as").dropped == {
        "audiocaps list (aac-datasets 0.7.0: WavCaps overlapping AudioCaps)": 1}
    assert sources(registry, "as") == {"Yzzzzzzzzzzz.flac": ("youtube", "zzzzzzzzzzz", None, None, None)}


def test_exclude_lists_csv_and_text_and_a_warning_for_ids_that_match_nothing(registry, tmp_path):
    wc = make_wavcaps(tmp_path / "wc", ["10", "11", "12"])
    (tmp_path / "ids.csv").write_text("index,id\n0,10\n1,99\n")
    (tmp_path / "ids.txt").write_text("11.flac\n")
    result = ingest(registry, "wavcaps", wc, name="wc", exclude=[tmp_path / "ids.csv", tmp_path / "ids.txt"])
    assert result.n_clips == 1 and result.dropped == {"list ids.csv": 1, "list ids.txt": 1}
    assert result.warnings == ["list ids.csv: 1 of 2 ids match no entry"]


@pytest.mark.parametrize("content, message", [
    ('{"ids": [1]}', "unknown format"),
    ("name,other\na,b\n", "missing column(s) id"),
    ("\n\n", "is empty"),
])
def test_a_bad_exclusion_list_is_one_line_and_writes_nothing(tmp_path, content, message):
    wc = make_wavcaps(tmp_path / "wc", ["10"])
    (tmp_path / "bad.json").write_text(content)
    result = CliRunner().invoke(cli, ["--home", str(tmp_path / "h"), "ingest", "wavcaps", str(wc), "--name", "wc",
                                      "--exclude", str(tmp_path / "bad.json")])
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output
    assert result.output.count("\n") == 1 and result.output.startswith("aacbatch: error: ")
    listed = CliRunner().invoke(cli, ["--home", str(tmp_path / "h"), "sql", "SELECT COUNT(*) AS n FROM datasets"])
    assert listed.output.split()[-1] == "0"


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """A 24-clip target and a 16-clip 'scraped' corpus holding 3 planted copies of target eval clips."""
    root = tmp_path_factory.mktemp("corpora")
    generate(root / "target", 24, seed=0, profile="target", duration=(2.5, 3.0))
    generate(root / "scraped", 16, seed=1, profile="pretrain", duration=(2.5, 3.0))
    return root / "target", root / "scraped", plant_into_corpus(root / "target", root / "scraped", 3)


def test_audit_finds_planted_copies_and_a_run_and_its_descendant_report_the_leak(registry, tmp_path, corpora):
    target, scraped, planted = corpora
    for name, folder in (("target", target), ("scraped", scraped)):
        ingest(registry, "clotho", folder, name=name)
        resplit(registry, name, sources=("development", "validation"), ratio=0.5, seed=0)
    missing = CliRunner().invoke(cli, ["--db", registry.url, "--home", str(tmp_path), "audit", "overlap", "target"])
    assert missing.output.strip() == ("aacbatch: error: dataset 'target' has no feature set 'mel': run "
                                      "`aacbatch featurize mel --dataset target`")
    for name in ("target", "scraped"):
        featurize(registry, "mel", name)
    result = audit_datasets(registry, ["target", "scraped"], pairs="across")
    eval_names = {c.name for c in split_rows(registry, "target", "eval").clips}
    assert sorted((m.dataset_b, m.clip_b) for m in result.matches) == [("scraped", p) for p in planted]
    assert all(m.dataset_a == "target" and m.clip_a in eval_names and abs(m.start_a - 0.3) < 0.02
               for m in result.matches)
    assert len(stored_matches(registry, ["scraped"])) == 3

    trained = {c.id for c in split_rows(registry, "scraped", "train").clips}
    in_train = [c for c in split_rows(registry, "scraped").clips if c.name in planted and c.id in trained]
    assert 0 < len(in_train) < 3  # the 50:50 re-split (seed 0) puts some copies in val: those are no leak
    teacher = catalog.tasks_where(teacher=True)[0]
    ds = {n: split_rows(registry, n).dataset.id for n in ("target", "scraped")}
    pre = RunRecorder.start(registry, task=teacher, config={}, dataset_id=ds["scraped"], parent_run_id=None,
                            feature_sets=[], seed=0, random_weights=False).run_id
    fine = RunRecorder.start(registry, task=teacher, config={"train_split": "train"}, dataset_id=ds["target"],
                             parent_run_id=pre, feature_sets=[], seed=0, random_weights=False).run_id
    for run_id in (pre, fine):
        leak = run_leakage(registry, run_id, "target", "eval")
        assert leak.count == len(in_train) and set(leak.leaked.values()) == {"audit"} and leak.runs == [pre]
    assert run_leakage(registry, fine, "target", "train").leaked.values() and all(
        r == "same clip" for r in run_leakage(registry, fine, "target", "train").leaked.values())
    note = run_leakage(registry, fine, "target", "eval").note()
    assert note == f"leak: {len(in_train)} of {len(eval_names)} target eval clips were trained on ({len(in_train)} by audit) by run {pre[:8]}"
    from aacbatch.reports import with_leak_notes

    clean = RunRecorder.start(registry, task=teacher, config={}, dataset_id=ds["target"], parent_run_id=None,
                              feature_sets=[], seed=0, random_weights=False).run_id
    columns = ["system", "dataset", "source", "note"]
    rows = with_leak_notes(registry, columns, [("best single run", "target", f"run {fine[:8]}", "random-weight inputs"),
                                               ("baseline", "target", f"run {clean[:8]}", "")], "eval")
    assert rows == [("best single run", "target", f"run {fine[:8]}", f"random-weight inputs; eval {note}"),
                    ("baseline", "target", f"run {clean[:8]}", "")]  # table1/table2 rows carry the note
