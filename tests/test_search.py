"""Search your own audio: index → search round trip on SynthCaps, captions, ensembles,
incremental and interrupted re-indexing, the web page (Flask client and a real headless
Chromium) and bad input.

One module-wide workspace: SynthCaps ingested and featurized, a CLAP run with a locked text
encoder (trained until it ranks exact captions well above chance), a one-epoch CLAP run
with a fine-tuned text encoder (the other text path, and an ensemble partner) and a small
captioner, and the whole SynthCaps folder indexed with captions.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from aacbatch.cli import cli
from aacbatch.config import Settings
from aacbatch.errors import InputError
from aacbatch.featurize.job import featurize
from aacbatch.registry.queries import named_query, run_sql
from aacbatch.registry.schema import System, SystemMember
from aacbatch.registry.store import Registry
from aacbatch.search.index import build_index
from aacbatch.search.query import Searcher, load_index
from aacbatch.train.run import train_task

from conftest import write_wav
from test_bad_input import digest

QUIET = lambda _: None  # noqa: E731
# Few epochs over every caption at a high learning rate, kept by its score on the training
# split: enough for the exact-caption round trip, in seconds.
LOCKED = ("epochs=5", "batch_size=16", "lr=5e-3", "warmup_epochs=0", "text='locked'", "captions_per_clip=0",
          "val_split='train'", "eval_splits=['eval']")
FINETUNED = ("epochs=1", "batch_size=16", "lr=1e-4", "text='finetune'", "captions_per_clip=1", "eval_splits=['eval']")
CAPTIONER = ("epochs=8", "lr=5e-3", "batch_size=16", "eval_splits=[]",  # readable captions in seconds
             "model={gru_hidden=64, gru_layers=1, d_model=64, n_heads=4, ff_dim=128, decoder_layers=2}")


@dataclass
class Workspace:
    settings: Settings
    registry: Registry
    synth: Path
    locked: str
    finetuned: str
    captioner: str
    index: object  # IndexResult of the whole SynthCaps folder, name "sc-audio"
    captions: dict  # relative file name → its reference captions


@pytest.fixture(scope="module")
def ws(tmp_path_factory, synth_dir, single_thread) -> Workspace:
    from aacbatch.data.ingest import ingest
    from aacbatch.data.splits import resplit

    settings = Settings.resolve(home=tmp_path_factory.mktemp("search") / "home", db_timeout=5.0)
    registry = Registry(settings)
    ingest(registry, "clotho", synth_dir, name="sc")
    resplit(registry, "sc", ratio=0.8)
    for spec in ("mel", "text_emb", "tokens"):
        featurize(registry, spec, "sc")
    locked = train_task(registry, "clap", dataset="sc", sets=LOCKED, log=QUIET).run_id
    finetuned = train_task(registry, "clap", dataset="sc", sets=FINETUNED, log=QUIET).run_id
    encoded = featurize(registry, "encoded", "sc", overrides={"run": locked})
    captioner = train_task(registry, "caption", dataset="sc", sets=(f"features='{encoded.name}'",) + CAPTIONER,
                           log=QUIET).run_id
    index = build_index(registry, synth_dir, run=locked, name="sc-audio", caption_runs=[captioner])
    _, rows = run_sql(registry, "SELECT c.path, p.text FROM captions p JOIN clips c ON c.id = p.clip_id "
                                "ORDER BY c.idx, p.caption_index")
    captions: dict[str, list[str]] = {}
    for path, text in rows:
        captions.setdefault(Path(path).relative_to(synth_dir).as_posix(), []).append(text)
    return Workspace(settings, registry, synth_dir, locked, finetuned, captioner, index, captions)


@pytest.fixture(scope="module")
def first_hits(ws) -> dict[str, str]:
    """Each clip's first reference caption as a query → the file ranked first."""
    searcher = Searcher.open(ws.registry, "sc-audio")
    return {file: searcher.search(caps[0], 1).hits[0].file for file, caps in ws.captions.items()}


def cli_run(ws, *args):
    return CliRunner().invoke(cli, ["--home", str(ws.settings.home), *map(str, args)])


def add_system(registry, name: str, runs: list[tuple[str, float]]) -> None:
    with registry.transaction() as session:
        system = System(name=name, kind="retrieval", query_text="-- inserted by the test", fingerprint=name)
        session.add(system)
        session.flush()
        session.add_all(SystemMember(system_id=system.id, run_id=r, rank=k, weight=w) for k, (r, w) in enumerate(runs, 1))


# --- index → search round trip ------------------------------------------------------------

def test_index_counts_files_and_reproduces_the_runs_own_similarities(ws):
    non_audio = [p for p in ws.synth.rglob("*") if p.is_file() and p.suffix != ".wav"]
    assert (ws.index.status, ws.index.n_files, ws.index.embedded) == ("created", 60, 60)
    assert ws.index.non_audio == len(non_audio) == 6 and ws.index.unreadable == []
    index = load_index(ws.registry, "sc-audio")
    assert index.embeddings[0].shape == (60, 1024) and index.embeddings[0].dtype == np.float16
    assert np.allclose(np.linalg.norm(index.embeddings[0].astype(np.float32), axis=1), 1, atol=2e-3)
    # The run's eval similarity matrix (captions x clips, computed from cached log-mels and
    # cached CLS embeddings in training) is what the index and the query encoder give.
    searcher = Searcher.open(ws.registry, "sc-audio")
    assert_matches_training(ws, searcher, member=0)


def assert_matches_training(ws, searcher: Searcher, member: int) -> None:
    encoder = searcher.encoders[member]
    _, art = run_sql(ws.registry, "SELECT artifact_path FROM predictions WHERE run_id = :r AND kind = 'similarity' "
                                  "AND split = 'eval'", {"r": encoder.run_id})
    saved = np.load(ws.registry.real_path(art[0][0]))  # stored relative to the home
    _, clips = run_sql(ws.registry, "SELECT idx, path FROM clips")
    _, caps = run_sql(ws.registry, "SELECT idx, text FROM captions")
    path_of, text_of = dict(clips), dict(caps)
    row_of = {str(n): r for r, n in enumerate(searcher.index.names)}
    audio = searcher.index.embeddings[member][[row_of[Path(path_of[c]).relative_to(ws.synth).as_posix()]
                                               for c in saved["clip_idx"]]].astype(np.float32)
    text = encoder.embed_text([text_of[c] for c in saved["caption_idx"]])
    np.testing.assert_allclose(text @ audio.T, saved["similarity"], atol=2e-3)


def test_exact_captions_find_their_clip_well_above_chance(ws, first_hits):
    rate = np.mean([hit == file for file, hit in first_hits.items()])
    chance = 1 / len(first_hits)
    print(f"\nexact-caption queries ranking their clip first: {rate:.3f} ({rate / chance:.1f}x chance 1/{len(first_hits)})")
    assert rate >= 3 * chance


def test_search_cli_table_and_json_agree_with_the_library(ws, first_hits):
    file = next(f for f, hit in first_hits.items() if hit == f)
    query = ws.captions[file][0]
    out = cli_run(ws, "search", query, "--index", "sc-audio", "-k", 5, "--format", "json")
    assert out.exit_code == 0, out.output
    hits = json.loads(out.output)
    expected = Searcher.open(ws.registry, "sc-audio").search(query, 5).hits
    assert [h["file"] for h in hits] == [h.file for h in expected] and hits[0]["file"] == file
    assert [h["score"] for h in hits] == pytest.approx([h.score for h in expected], abs=1e-6)
    assert hits == sorted(hits, key=lambda h: -h["score"]) and Path(hits[0]["path"]) == ws.synth / file
    assert hits[0]["caption"] and hits[0]["duration"] == pytest.approx(sf.info(str(ws.synth / file)).duration, abs=1e-3)
    table = cli_run(ws, "search", query, "--index", "sc-audio", "-k", 3)
    lines = [line for line in table.output.splitlines() if not line.startswith("note: ")]  # "note: model: …" on stderr
    assert lines[0].split() == ["rank", "score", "file", "caption"] and len(lines) == 5 and file in lines[2]
    listed = cli_run(ws, "sql", "--query", "indexes", "--format", "json")
    row = json.loads(listed.output)[0]
    assert (row["index"], row["files"], row["model"], row["captions"]) == ("sc-audio", 60, ws.locked, "yes")


def test_captions_are_the_captioners_for_each_file(ws):
    from aacbatch.captioning import caption_files

    index = load_index(ws.registry, "sc-audio")
    names = [str(n) for n in index.names[:3]]
    assert [str(c) for c in index.captions[:3]] == caption_files(ws.registry, [ws.captioner], [ws.synth / n for n in names])


def test_long_query_is_cut_with_a_note_and_empty_query_refused(ws):
    searcher = Searcher.open(ws.registry, "sc-audio")
    long = " ".join(["a dog barks loudly while cars pass by on a wet road"] * 6)
    results = searcher.search(long, 3)
    assert len(results.hits) == 3
    assert len(results.notes) == 1 and "reads only the first 30" in results.notes[0]
    # what is searched is the first 30 tokens: the same ranking as the cut query
    cut = searcher.encoders[0].tokenizer.decode(searcher.encoders[0].tokenizer(long)["input_ids"][1:29])
    assert [h.id for h in searcher.search(cut, 3).hits] == [h.id for h in results.hits]
    assert searcher.search("a dog barks", 3).notes == []
    for empty in ("", "   \n"):
        with pytest.raises(InputError, match="empty query"):
            searcher.search(empty)


# --- ensembles ----------------------------------------------------------------------------

def test_system_index_scores_are_the_weighted_mean_of_its_members(ws):
    add_system(ws.registry, "pair", [(ws.locked, 1.0), (ws.finetuned, 3.0)])
    result = build_index(ws.registry, ws.synth, system="pair", name="sc-pair")
    assert result.n_files == 60
    pair = Searcher.open(ws.registry, "sc-pair")
    single = load_index(ws.registry, "sc-audio")
    assert np.array_equal(pair.index.embeddings[0], single.embeddings[0])  # member 1 = the single-run index
    assert_matches_training(ws, pair, member=1)  # the fine-tuned text path reproduces its training too
    query = ws.captions[str(single.names[7])][0]
    members = [pair.index.embeddings[m].astype(np.float32) @ pair.encoders[m].embed_text([query])[0] for m in (0, 1)]
    expected = (1.0 * members[0] + 3.0 * members[1]) / 4.0
    hits = pair.search(query, 10).hits
    rows = [int(np.flatnonzero(pair.index.ids == h.id)[0]) for h in hits]
    assert rows == list(np.argsort(-expected, kind="stable")[:10])
    assert [h.score for h in hits] == pytest.approx(expected[rows], abs=1e-5)
    with pytest.raises(InputError, match=r"was built with system pair .* not run"):
        Searcher.open(ws.registry, "sc-pair", run=ws.locked)
    with pytest.raises(InputError, match=rf"was built with run {ws.locked}, not system pair"):
        Searcher.open(ws.registry, "sc-audio", system="pair")


# --- incremental and interrupted re-indexing ----------------------------------------------

def copy_clips(ws, folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(ws.synth / name, folder / Path(name).name)


def test_reindex_keeps_unchanged_files_adds_new_drops_removed(ws, tmp_path):
    files = sorted(ws.captions)
    folder = tmp_path / "mine"
    copy_clips(ws, folder, files[:5])
    (folder / "notes.txt").write_text("not audio")
    first = build_index(ws.registry, folder, run=ws.locked, name="mine", caption_runs=[ws.captioner])
    assert (first.status, first.n_files, first.embedded, first.non_audio) == ("created", 5, 5, 1)
    before = load_index(ws.registry, "mine")
    again = build_index(ws.registry, folder, run=ws.locked, name="mine", caption_runs=[ws.captioner])
    assert (again.status, again.embedded, again.url) == ("unchanged", 0, first.url)

    names = [str(n) for n in before.names]
    (folder / names[0]).unlink()  # removed
    shutil.copy(ws.synth / files[10], folder / names[1])  # changed content, same name
    os.utime(folder / names[1], ns=(1, 1))
    shutil.copy(ws.synth / files[11], folder / "zz-new.wav")  # added
    result = build_index(ws.registry, folder, run=ws.locked, name="mine", caption_runs=[ws.captioner])
    assert (result.status, result.n_files, result.kept, result.added, result.changed, result.removed, result.embedded) \
        == ("updated", 5, 3, 1, 1, 1, 2)
    after = load_index(ws.registry, "mine")
    id_of = {str(n): int(i) for n, i in zip(after.names, after.ids)}
    for row, name in enumerate(names[2:], start=2):  # unchanged: same id, identical embedding and caption
        new_row = int(np.flatnonzero(after.ids == before.ids[row])[0])
        assert str(after.names[new_row]) == name
        assert np.array_equal(after.embeddings[0][new_row], before.embeddings[0][row])
        assert after.captions[new_row] == before.captions[row]
    assert id_of[names[1]] == int(before.ids[1]) and id_of["zz-new.wav"] == 5  # a file keeps its id; new ids go up
    reference = load_index(ws.registry, "sc-audio")
    for name, source in ((names[1], files[10]), ("zz-new.wav", files[11])):
        ref_row = int(np.flatnonzero(reference.names == source)[0])
        np.testing.assert_allclose(after.embeddings[0][list(after.names).index(name)].astype(np.float32),
                                   reference.embeddings[0][ref_row].astype(np.float32), atol=2e-3)
    versions = sorted(p.name for p in Path(result.url).parent.glob("index-*.zarr"))
    assert versions == [Path(result.url).name] and Path(first.url).name not in versions  # old version deleted


class Killed(Exception):
    pass


def test_interrupted_index_keeps_the_registered_version_and_resumes(ws, tmp_path, monkeypatch):
    from aacbatch.search.encoders import RunEncoder

    files = sorted(ws.captions)
    folder = tmp_path / "resume"
    copy_clips(ws, folder, files[:4])
    build_index(ws.registry, folder, run=ws.locked, name="resume", block_size=2)
    copy_clips(ws, folder, files[20:26])
    registry_file = ws.settings.home / "registry.duckdb"
    before = registry_file.read_bytes()

    real, calls = RunEncoder.embed_audio, []

    def dies_on_the_third_batch(self, logmels):
        calls.append(len(logmels))
        if len(calls) == 3:
            raise Killed
        return real(self, logmels)

    monkeypatch.setattr(RunEncoder, "embed_audio", dies_on_the_third_batch)
    with pytest.raises(Killed):
        build_index(ws.registry, folder, run=ws.locked, name="resume", block_size=2)
    monkeypatch.undo()
    assert registry_file.read_bytes() == before  # (the cache holds the partial new version)
    assert len(Searcher.open(ws.registry, "resume").index) == 4  # still the old version, intact
    resumed = build_index(ws.registry, folder, run=ws.locked, name="resume", block_size=2)
    assert resumed.n_files == 10 and resumed.embedded == 6 - sum(calls[:2])  # the blocks written before are kept
    index = load_index(ws.registry, "resume")
    reference = load_index(ws.registry, "sc-audio")
    for name, emb in zip(index.names, index.embeddings[0]):
        source = next(f for f in files if Path(f).name == str(name))
        ref_row = int(np.flatnonzero(reference.names == source)[0])
        np.testing.assert_allclose(emb.astype(np.float32), reference.embeddings[0][ref_row].astype(np.float32), atol=2e-3)


@pytest.mark.backends("duckdb", "postgresql")
def test_versions_switch_in_the_registry_and_a_concurrent_switch_is_refused(registry, tmp_path):
    """The registry side alone, on both backends: a hand-written version is registered, listed
    and loaded; a run planned from an outdated version cannot switch the index."""
    from aacbatch.cache import FeatureStore
    from aacbatch.hashing import fingerprint
    from aacbatch.search.index import INDEX_LAYOUT, index_arrays, register_version, window_arrays

    def version(tag: str, n: int) -> FeatureStore:
        spec = {"runs": ["r1"], "weights": [1.0], "system": None, "caption_runs": [], "max_seconds": 60.0,
                "window": None, "hop": None}
        meta = {"kind": "index", "name": "hand", "folder": str(tmp_path), "spec": spec, "fingerprint": fingerprint(tag),
                "model_identity": {"members": [{"run_id": "r1"}], "captions": []}, "index_layout": INDEX_LAYOUT}
        arrays = index_arrays([4], False)
        store = FeatureStore.create_or_resume(str(tmp_path / f"{tag}.zarr"), meta=meta, item_index=np.arange(n),
                                              arrays=arrays, block_size=2, time_chunk=2,
                                              lengths={a: np.ones(n) for a in window_arrays(1)})
        emb = np.eye(4, dtype=np.float32)[:n]
        for block in range(store.n_blocks):
            lo, hi = store.block_range(block)
            store.write_block(block, {"name": [f"f{i}.wav" for i in range(lo, hi)], "size": np.ones(hi - lo),
                                      "mtime_ns": np.ones(hi - lo), "duration": np.ones(hi - lo),
                                      "window_start": [np.zeros(1)] * (hi - lo), "window_end": [np.ones(1)] * (hi - lo),
                                      "embedding.0": list(emb[lo:hi, None])}, bad=[0] if block == 0 else [])
        return store

    register_version(registry, version("v1", 3), replaces=None, random_weights=False)
    index = load_index(registry, "hand")
    assert [str(n) for n in index.names] == ["f1.wav", "f2.wav"] and index.ids.tolist() == [1, 2]  # bad row left out
    assert index.embeddings[0].tolist() == np.eye(4)[1:3].tolist()
    _, rows = run_sql(registry, named_query("indexes").read_text())
    assert [(r[0], r[2], r[3], r[4]) for r in rows] == [("hand", 2, "r1", "no")]
    with pytest.raises(InputError, match="changed by another process"):
        register_version(registry, version("v2", 4), replaces=None, random_weights=False)
    register_version(registry, version("v2", 4), replaces=fingerprint("v1"), random_weights=False)
    assert len(load_index(registry, "hand")) == 3


# --- unreadable files and bad input ---------------------------------------------------------

def test_unreadable_files_are_listed_skipped_and_counted(ws, tmp_path):
    folder = tmp_path / "mixed ü"
    write_wav(folder / "good.wav", seconds=1.0, sr=44100, channels=2)
    write_wav(folder / "sub" / "good2.wav", seconds=0.5, sr=8000)
    (folder / "garbage.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    (folder / "empty.ogg").write_bytes(b"")
    sf.write(str(folder / "cut.flac"), np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1, 16000)
    data = (folder / "cut.flac").read_bytes()
    (folder / "cut.flac").write_bytes(data[: len(data) // 2])  # header fine, frames missing: fails while decoding
    (folder / "readme.md").write_text("hello")
    out = cli_run(ws, "index", folder, "--run", ws.locked, "--name", "mixed")
    assert out.exit_code == 0, out.output
    skipped = sorted(line.split(": ")[1] for line in out.output.splitlines() if line.startswith("skipped"))
    assert skipped == ["cut.flac", "empty.ogg", "garbage.wav"]
    assert "index mixed: created, 2 files" in out.output and "skipped 3 unreadable and 1 non-audio files" in out.output
    index = load_index(ws.registry, "mixed")
    assert sorted(str(n) for n in index.names) == ["good.wav", "sub/good2.wav"]  # cut.flac is left out of searches
    assert Searcher.open(ws.registry, "mixed").search("noise", 10).hits[-1].rank == 2


def test_bad_input_is_one_line_and_changes_nothing(ws, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "text only").mkdir()
    (tmp_path / "text only" / "a.txt").write_text("x")
    cases = [
        (["index", empty, "--run", ws.locked], "no readable audio in"),
        (["index", tmp_path / "text only", "--run", ws.locked], "0 unreadable audio file(s) and 1 other file(s)"),
        (["index", tmp_path / "nope", "--run", ws.locked], "does not exist"),
        (["index", ws.synth, "--run", "nope"], "unknown run id 'nope'"),
        (["index", ws.synth], "give exactly one of --run RUN_ID or --system NAME"),
        (["index", ws.synth, "--run", ws.locked, "--name", "../x"], "index name '../x'"),
        (["index", ws.synth, "--run", ws.finetuned, "--name", "sc-audio"], "pass --replace"),
        (["index", ws.synth, "--run", ws.locked, "--name", "sc"], "is a clotho dataset, not an index"),
        (["index", ws.synth, "--run", ws.captioner], "is a caption run; expected clap"),
        (["index", ws.synth, "--system", "nope"], "unknown system 'nope'"),
        (["search", "a dog", "--index", "nope"], "unknown index 'nope' (known: "),
        (["search", "", "--index", "sc-audio"], "empty query"),
        (["search", "a dog", "--index", "sc-audio", "-k", 0], "-k must be at least 1"),
        (["search", "a dog", "--index", "sc-audio", "--run", ws.finetuned], "was built with run"),
        (["serve", "--index", "nope"], "unknown index 'nope'"),
    ]
    before = digest(ws.settings)
    for args, expected in cases:
        out = cli_run(ws, *args)
        lines = out.output.strip().splitlines()
        assert out.exit_code != 0 and len(lines) == 1 and lines[0].startswith("aacbatch: error: "), (args, out.output)
        assert expected in lines[0], (args, lines[0])
    assert digest(ws.settings) == before


# --- the web page ---------------------------------------------------------------------------

def test_page_lists_results_and_serves_only_indexed_audio(ws, first_hits):
    from aacbatch.search.web import create_app

    searcher = Searcher.open(ws.registry, "sc-audio")
    client = create_app(searcher).test_client()
    file = next(f for f, hit in first_hits.items() if hit == f)
    page = client.get("/", query_string={"q": ws.captions[file][0], "k": 4}).get_data(as_text=True)
    assert page.count('class="hit"') == 4 and f'data-file="{file}"' in page.split('class="hit"')[1]
    hit = searcher.search(ws.captions[file][0], 1).hits[0]
    assert f'src="/audio/{hit.id}"' in page and hit.caption in page
    assert "empty query" in client.get("/", query_string={"q": "  "}).get_data(as_text=True)
    assert "<script" not in client.get("/", query_string={"q": "<script>alert(1)</script>"}).get_data(as_text=True)
    audio = client.get(f"/audio/{hit.id}")
    assert audio.status_code == 200 and audio.mimetype == "audio/wav"
    assert audio.get_data() == (ws.synth / file).read_bytes()
    part = client.get(f"/audio/{hit.id}", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.get_data()) == 100
    for url in ("/audio/999999", "/audio/-1", "/audio/abc", "/audio/..%2F..%2Fregistry.duckdb",
                f"/audio/{hit.id}/../../etc/passwd", "/static/search.html", "/etc/passwd"):
        assert client.get(url).status_code == 404, url


def chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
    return (browser, driver) if browser and driver else None


@contextmanager
def page_in_chromium(searcher: Searcher):
    """(headless Chromium driver, the page's URL) over ``searcher``; skips without a browser."""
    pytest.importorskip("selenium", reason="needs selenium (pip install '.[test]')")
    if chromium() is None:
        pytest.skip("needs Debian chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from aacbatch.search.web import make_server

    browser, driver_path = chromium()
    server = make_server(searcher, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=860,620"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)  # explicit driver: no Selenium Manager
    try:
        yield driver, f"http://127.0.0.1:{server.server_port}/"
    finally:
        driver.quit()
        server.shutdown()


def test_search_page_in_a_headless_browser(ws, first_hits, tmp_path):
    """Types a caption into the page, checks the captioned clip comes first and is playable,
    follows its "more like this" link, and saves a screenshot (set
    AACBATCH_SCREENSHOT=docs/search.png to refresh the README's)."""
    from aacbatch.search.query import check_example

    searcher = Searcher.open(ws.registry, "sc-audio")
    with page_in_chromium(searcher) as (driver, url):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        file = next(f for f, hit in first_hits.items() if hit == f)
        driver.get(url)
        box = driver.find_element(By.ID, "q")
        box.send_keys(ws.captions[file][0])
        box.submit()
        hits = WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "li.hit"))
        assert hits[0].get_attribute("data-file") == file and len(hits) == 10
        player = hits[0].find_element(By.TAG_NAME, "audio")
        duration = driver.execute_async_script(
            "const [a, done] = arguments; a.onloadedmetadata = () => done(a.duration); a.onerror = () => done(-1); a.load();",
            player)
        assert duration == pytest.approx(sf.info(str(ws.synth / file)).duration, abs=0.05)  # the browser can play it
        with urllib.request.urlopen(player.get_attribute("src")) as response:
            assert response.read() == (ws.synth / file).read_bytes()
        shot = Path(os.environ.get("AACBATCH_SCREENSHOT") or tmp_path / "search.png")
        driver.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        # "more like this" on the first hit: the page searches by that file's audio, without it
        hits[0].find_element(By.CSS_SELECTOR, "a.like").click()
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "like"))
        listed = [h.get_attribute("data-file") for h in driver.find_elements(By.CSS_SELECTOR, "li.hit")]
        by_example = searcher.search(k=10, like=check_example(file_id=searcher.search(ws.captions[file][0], 1).hits[0].id))
        assert listed == [h.file for h in by_example.hits] and file not in listed


def test_windowed_hit_plays_from_its_span_in_a_headless_browser(ws, long_recording):
    searcher = Searcher.open(ws.registry, "long")
    with page_in_chromium(searcher) as (driver, url):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        driver.get(f"{url}?q={urllib.parse.quote(long_recording.query)}&k=3")
        hits = WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "li.hit"))
        best = searcher.search(long_recording.query, 3).hits[0]
        assert hits[0].get_attribute("data-file") == "long.wav" and abs(best.at - long_recording.at) <= 1.0
        position = driver.execute_async_script(
            "const [a, done] = arguments; a.onloadedmetadata = () => done(a.currentTime); a.onerror = () => done(-1); "
            "a.load();", hits[0].find_element(By.TAG_NAME, "audio"))
        assert position == pytest.approx(best.start, abs=0.05)  # the player starts at the hit's span


def test_batch_search_equals_single_searches_and_ranks_expected_files(ws, first_hits, tmp_path):
    files = sorted(ws.captions)[:4]
    listing = tmp_path / "queries.txt"
    listing.write_text("# my folder, my queries\n" + "".join(f"{ws.captions[f][0]}\t{f}\n" for f in files) + "\n")
    out = cli_run(ws, "search", "--queries", listing, "--index", "sc-audio", "-k", 3, "--format", "json")
    assert out.exit_code == 0, out.output
    batch = json.loads(out.output)
    searcher = Searcher.open(ws.registry, "sc-audio")
    for item, file in zip(batch, files):
        single = searcher.search(ws.captions[file][0], 3)
        assert [h["file"] for h in item["hits"]] == [h.file for h in single.hits]
        assert [h["score"] for h in item["hits"]] == pytest.approx([h.score for h in single.hits], abs=1e-6)
        assert item["expected"] == file and item["expected_rank"] >= 1
        if single.hits[0].file == file:
            assert item["expected_rank"] == 1
    table = cli_run(ws, "search", "--queries", listing, "--index", "sc-audio", "-k", 3)
    assert "4 queries with an expected file: R@1" in table.output
    as_json = tmp_path / "queries.json"
    as_json.write_text(json.dumps([ws.captions[files[0]][0], {"query": "a dog", "expected": files[1]}]))
    assert cli_run(ws, "search", "--queries", as_json, "--index", "sc-audio").exit_code == 0


def test_search_arguments_are_checked_before_any_model_loads(ws, tmp_path, monkeypatch):
    def no_load(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(Searcher, "open", no_load)
    bad = tmp_path / "bad.txt"
    bad.write_text("a dog\n   \n\t\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    for args, expected in ((["", "--index", "sc-audio"], "empty query"),
                           (["a dog", "--index", "sc-audio", "-k", 0], "-k must be at least 1"),
                           (["--queries", empty, "--index", "sc-audio"], "holds no queries"),
                           (["--queries", bad, "--index", "sc-audio", "-k", 0], "query 1: -k must be at least 1")):
        out = cli_run(ws, "search", *args)
        assert out.exit_code != 0 and expected in out.output, out.output


def test_index_probes_content_not_extensions(ws, tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    data, rate = sf.read(str(ws.synth / sorted(ws.captions)[0]))
    sf.write(str(folder / "vorbis.oga"), data, rate, format="OGG", subtype="VORBIS")
    sf.write(str(folder / "no_extension"), data, rate, format="WAV")
    (folder / "notes.txt").write_text("not audio")
    (folder / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    out = cli_run(ws, "index", folder, "--run", ws.locked, "--name", "odd", "-v")
    assert out.exit_code == 0, out.output
    assert "index odd: created, 2 files" in out.output and "2 non-audio files" in out.output
    assert "skipped (not audio): cover.jpg" in out.output and "skipped (not audio): notes.txt" in out.output
    assert sorted(str(n) for n in load_index(ws.registry, "odd").names) == ["no_extension", "vorbis.oga"]


# --- windows of long recordings -------------------------------------------------------------

def test_windows_cover_each_file_whole_and_bad_windowing_is_refused():
    from aacbatch.search.windows import Windowing

    w = Windowing.checked(10, 5, 60)
    for duration, starts, ends in ((25.0, [0, 5, 10, 15], [10, 15, 20, 25]), (26.0, [0, 5, 10, 15, 20], [10, 15, 20, 25, 26]),
                                   (3.0, [0], [3]), (10.0, [0], [10])):
        got = w.spans(duration)
        assert (got[0].tolist(), got[1].tolist(), w.count(duration)) == (starts, ends, len(starts)), duration
    assert Windowing.checked(4, None, 60).hop == 2  # default hop: half a window
    first = Windowing.checked(None, None, 30)
    assert [a.tolist() for a in first.spans(100.0)] == [[0], [30]] and first.count(100.0) == 1
    wave = np.arange(int(26 * 32000), dtype=np.float32)
    pieces = w.cut(wave, 26.0)
    assert [len(p) for p in pieces] == [320000] * 4 + [192000] and pieces[1][0] == 5 * 32000 and pieces[-1][-1] == wave[-1]
    for args, message in (((0, None, 60), "--window must be positive"), ((-2, None, 60), "--window must be positive"),
                          ((90, None, 60), "longer than --max-seconds 60"), ((None, 5, 60), "--hop needs --window"),
                          ((10, 11, 60), "--hop must be positive and at most --window 10"),
                          ((10, 0, 60), "--hop must be positive"), ((None, None, 0), "--max-seconds must be positive")):
        with pytest.raises(InputError, match=message):
            Windowing.checked(*args)


def test_overlapping_candidate_windows_of_a_file_merge_into_one_hit():
    from aacbatch.search.windows import merge_windows

    # file 0: windows [0,4] [2,6] [4,8] [8,12] [14,18]; file 1: [0,4] [2,6]
    window_file = np.array([0, 0, 0, 0, 0, 1, 1])
    starts = np.array([0, 2, 4, 8, 14, 0, 2], np.float32)
    ends = np.array([4, 6, 8, 12, 18, 4, 6], np.float32)
    rows = np.array([2, 0, 4, 1, 3, 6, 5])
    scores = np.array([0.9, 0.5, 0.8, 0.7, 0.2, 0.6, 0.6])
    spans = merge_windows(rows, scores, window_file, starts, ends)
    # [4,8] takes its overlapping neighbour [2,6]; [0,4] overlaps that span: used up; [8,12] only
    # touches it: a hit of its own; file 1's two windows merge, the tie taken in row order
    assert [(s.file_row, s.start, s.end, s.best, s.score) for s in spans] == [
        (0, 2.0, 8.0, 2, 0.9), (0, 14.0, 18.0, 4, 0.8), (1, 0.0, 6.0, 5, 0.6), (0, 8.0, 12.0, 3, 0.2)]
    alone = merge_windows(np.array([0, 4]), np.array([0.1, 0.3]), window_file, starts, ends)
    assert [(s.start, s.end) for s in alone] == [(14.0, 18.0), (0.0, 4.0)]


@dataclass
class LongRecording:
    folder: Path
    event: str  # the clip placed in it
    at: float  # seconds: where it starts
    query: str
    index: object


@pytest.fixture(scope="module")
def long_recording(ws, first_hits, tmp_path_factory) -> LongRecording:
    """12 s made of six clips, each padded to 2 s: the clip the model finds best by its caption
    starts at 6 s, among the five clips least like that caption; indexed in 2 s windows every 1 s."""
    searcher = Searcher.open(ws.registry, "sc-audio")
    margins = {}
    for file in (f for f, hit in first_hits.items() if hit == f):
        top = searcher.search(ws.captions[file][0], 2).hits
        margins[file] = top[0].score - top[1].score
    event = max(margins, key=margins.get)
    query = ws.captions[event][0]
    fillers = [h.file for h in searcher.search(query, 60).hits[-5:]]
    rate = sf.info(str(ws.synth / event)).samplerate
    pieces = []
    for name in fillers[:3] + [event] + fillers[3:]:
        data, sr = sf.read(str(ws.synth / name), dtype="float32", always_2d=False)
        assert sr == rate and data.ndim == 1 and len(data) <= 2 * rate
        pieces.append(np.pad(data, (0, 2 * rate - len(data))))
    folder = tmp_path_factory.mktemp("long") / "recordings"
    folder.mkdir()
    sf.write(str(folder / "long.wav"), np.concatenate(pieces), rate, subtype="PCM_16")
    index = build_index(ws.registry, folder, run=ws.locked, name="long", window=2.0, hop=1.0)
    return LongRecording(folder, event, 6.0, query, index)


def test_a_long_recording_is_indexed_in_windows_and_search_finds_the_event_in_time(ws, long_recording):
    assert (long_recording.index.n_files, long_recording.index.cut) == (1, 0)
    index = load_index(ws.registry, "long")
    assert index.embeddings[0].shape == (11, 1024) and index.window_file.tolist() == [0] * 11
    assert index.starts.tolist() == list(range(11)) and index.ends.tolist() == list(range(2, 13))
    searcher = Searcher.open(ws.registry, "long")
    hits = searcher.search(long_recording.query, 5).hits
    best = hits[0]
    assert best.file == "long.wav" and abs(best.at - long_recording.at) <= 1.0  # within one window of the event
    assert best.start <= long_recording.at + 1.0 <= best.end
    # hits of one file never overlap; each is a window with its overlapping neighbours, scored
    # as the best window inside its span
    spans = sorted((h.start, h.end) for h in hits)
    assert len(hits) >= 3 and all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    assert all(h.end - h.start <= 4.0 and h.start <= h.at < h.end for h in hits)
    exact = index.embeddings[0].astype(np.float32) @ searcher.encoders[0].embed_text([long_recording.query])[0]
    for h in hits:
        inside = (index.starts >= h.start) & (index.ends <= h.end)
        assert h.score == pytest.approx(exact[inside].max(), abs=1e-5)
        assert exact[index.starts == h.at][0] == pytest.approx(h.score, abs=1e-5)
    out = cli_run(ws, "search", long_recording.query, "--index", "long", "-k", 2)
    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if not line.startswith("note: ")]
    assert lines[0].split() == ["rank", "score", "file", "start", "end"] and "long.wav" in lines[2]
    # one window of the long file equals the event clip cut out and indexed alone (same decode and cut)
    alone = tmp_path_of(long_recording) / "alone"
    alone.mkdir(exist_ok=True)
    data, rate = sf.read(str(long_recording.folder / "long.wav"), dtype="int16")
    sf.write(str(alone / "event.wav"), data[6 * rate:8 * rate], rate, subtype="PCM_16")
    build_index(ws.registry, alone, run=ws.locked, name="long-alone")
    np.testing.assert_allclose(load_index(ws.registry, "long-alone").embeddings[0][0].astype(np.float32),
                               index.embeddings[0][6].astype(np.float32), atol=3e-3)


def tmp_path_of(recording: LongRecording) -> Path:
    return recording.folder.parent


def test_reindexing_a_windowed_index_keeps_its_windows_and_other_windowing_needs_replace(ws, long_recording):
    before = load_index(ws.registry, "long")
    again = build_index(ws.registry, long_recording.folder, run=ws.locked, name="long", window=2.0, hop=1.0)
    assert (again.status, again.embedded) == ("unchanged", 0)
    extra = long_recording.folder.parent / "grown"
    shutil.copytree(long_recording.folder, extra)
    shutil.copy(ws.synth / long_recording.event, extra / "short.wav")
    build_index(ws.registry, extra, run=ws.locked, name="grown", window=2.0, hop=1.0)
    shutil.copy(ws.synth / sorted(ws.captions)[0], extra / "another.wav")
    result = build_index(ws.registry, extra, run=ws.locked, name="grown", window=2.0, hop=1.0)
    assert (result.kept, result.added, result.embedded) == (2, 1, 1)
    grown = load_index(ws.registry, "grown")
    row = int(np.flatnonzero(grown.names == "long.wav")[0])
    mine = grown.window_file == row
    assert np.array_equal(grown.embeddings[0][mine], before.embeddings[0]) and grown.starts[mine].tolist() == list(range(11))
    assert sorted(np.bincount(grown.window_file).tolist()) == [1, 1, 11]  # 1.5–2 s clips: one window each
    with pytest.raises(InputError, match="pass --replace"):
        build_index(ws.registry, extra, run=ws.locked, name="grown", window=4.0, hop=2.0)


# --- query by example and mixed queries ---------------------------------------------------------

def test_search_like_a_file_embeds_it_as_the_index_did(ws):
    index = load_index(ws.registry, "sc-audio")
    file = str(index.names[11])
    out = cli_run(ws, "search", "--like", ws.synth / file, "--index", "sc-audio", "-k", 5, "--format", "json")
    assert out.exit_code == 0, out.output
    hits = json.loads(out.output)
    assert hits[0]["file"] == file and hits[0]["score"] == pytest.approx(1.0, abs=3e-3)
    emb = index.embeddings[0].astype(np.float32)
    exact = emb @ emb[11]
    for h in hits:
        assert h["score"] == pytest.approx(exact[int(np.flatnonzero(index.names == h["file"])[0])], abs=3e-3)


def test_more_like_an_indexed_file_leaves_it_out_and_ranks_by_its_stored_embedding(ws):
    from aacbatch.search.query import check_example

    searcher = Searcher.open(ws.registry, "sc-audio")
    index = searcher.index
    results = searcher.search(k=5, like=check_example(file_id=int(index.ids[11])))
    emb = index.embeddings[0].astype(np.float32)
    exact = emb @ emb[11]
    exact[11] = -np.inf
    assert [h.file for h in results.hits] == [str(index.names[r]) for r in np.argsort(-exact, kind="stable")[:5]]
    assert [h.score for h in results.hits] == pytest.approx(np.sort(exact)[::-1][:5], abs=1e-5)
    assert results.query == f"like file {int(index.ids[11])}"
    out = cli_run(ws, "search", "--like-id", int(index.ids[11]), "--index", "sc-audio", "-k", 5, "--format", "json")
    assert [h["file"] for h in json.loads(out.output)] == [h.file for h in results.hits]


def test_a_text_and_an_example_mix_by_weight(ws):
    searcher = Searcher.open(ws.registry, "sc-audio")
    index = searcher.index
    file, text = str(index.names[3]), ws.captions[str(index.names[20])][0]
    out = cli_run(ws, "search", "--text", text, "--like", ws.synth / file, "--weight", 0.25, "--index", "sc-audio",
                  "-k", 8, "--format", "json")
    assert out.exit_code == 0, out.output
    hits = json.loads(out.output)
    emb = index.embeddings[0].astype(np.float32)
    by_text = emb @ searcher.encoders[0].embed_text([text])[0]
    by_audio = emb @ emb[3]
    mixed = 0.25 * by_text + 0.75 * by_audio
    rows = [int(np.flatnonzero(index.names == h["file"])[0]) for h in hits]
    assert [h["score"] for h in hits] == pytest.approx(mixed[rows], abs=3e-3)
    assert rows[:3] == list(np.argsort(-mixed, kind="stable")[:3])
    for weight, expected in ((1.0, by_text), (0.0, by_audio)):  # the ends of the scale: text alone, example alone
        out = cli_run(ws, "search", text, "--like", ws.synth / file, "--weight", weight, "--index", "sc-audio", "-k", 3,
                      "--format", "json")
        got = json.loads(out.output)
        assert [h["score"] for h in got] == pytest.approx(np.sort(expected)[::-1][:3], abs=3e-3), weight


# --- old indexes and bad input ------------------------------------------------------------------

def test_an_index_of_the_old_layout_is_refused_until_replaced(ws, tmp_path):
    from aacbatch.cache import ArraySpec, FeatureStore
    from aacbatch.hashing import fingerprint
    from aacbatch.search.index import register_version

    folder = tmp_path / "old"
    copy_clips(ws, folder, sorted(ws.captions)[:2])
    spec = {"runs": [ws.locked], "weights": [1.0], "system": None, "caption_runs": [], "max_seconds": 60.0}
    meta = {"kind": "index", "name": "old", "folder": str(folder), "spec": spec, "fingerprint": fingerprint("old"),
            "model_identity": {"members": [{"run_id": ws.locked}], "captions": []}}  # no index_layout: written before windows
    arrays = {"name": ArraySpec((), "str"), "size": ArraySpec((), "int64"), "mtime_ns": ArraySpec((), "int64"),
              "duration": ArraySpec((), "float32"), "embedding.0": ArraySpec((1024,), "float16", compress=False)}
    store = FeatureStore.create_or_resume(str(ws.settings.cache_dir) + "/old/index-0.zarr", meta=meta,
                                          item_index=np.arange(2), arrays=arrays, block_size=2)
    store.write_block(0, {"name": ["a.wav", "b.wav"], "size": np.ones(2), "mtime_ns": np.ones(2), "duration": np.ones(2),
                          "embedding.0": np.ones((2, 1024)) / 32})
    register_version(ws.registry, store, replaces=None, random_weights=False)
    before = digest(ws.settings)
    for args in (["search", "a dog", "--index", "old"], ["index", folder, "--run", ws.locked, "--name", "old"]):
        out = cli_run(ws, *args)
        lines = out.output.strip().splitlines()
        assert out.exit_code != 0 and len(lines) == 1, out.output
        assert lines[0] == (f"aacbatch: error: index 'old' was built by an older aacbatch (one embedding per file, no "
                            f"windows): rebuild it with `aacbatch index {folder} --name old --replace`")
    assert digest(ws.settings) == before
    out = cli_run(ws, "index", folder, "--run", ws.locked, "--name", "old", "--replace")
    assert out.exit_code == 0 and "index old: created, 2 files" not in out.output and "2 files" in out.output, out.output
    assert len(Searcher.open(ws.registry, "old").search("a dog", 5).hits) == 2


def test_bad_windows_examples_and_outputs_are_one_line_and_change_nothing(ws, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not audio")
    clip = ws.synth / sorted(ws.captions)[0]
    cases = [
        (["index", ws.synth, "--run", ws.locked, "--name", "w", "--window", 0], "--window must be positive"),
        (["index", ws.synth, "--run", ws.locked, "--name", "w", "--window", -1], "--window must be positive"),
        (["index", ws.synth, "--run", ws.locked, "--name", "w", "--window", 90], "longer than --max-seconds 60"),
        (["index", ws.synth, "--run", ws.locked, "--name", "w", "--window", 5, "--max-seconds", 4], "longer than"),
        (["index", ws.synth, "--run", ws.locked, "--name", "w", "--hop", 1], "--hop needs --window"),
        (["index", ws.synth, "--run", ws.locked, "--name", "w", "--window", 2, "--hop", 3], "--hop must be positive"),
        (["index", ws.synth, "--run", ws.locked, "--name", "sc-audio", "--window", 2], "pass --replace"),
        (["search", "--like", notes, "--index", "sc-audio"], "notes.txt (--like query) is unreadable"),
        (["search", "--like", tmp_path / "missing.wav", "--index", "sc-audio"], "is missing"),
        (["search", "--like-id", 999999, "--index", "sc-audio"], "file id 999999 is not in index 'sc-audio'"),
        (["search", "--like-id", 0, "--at", 3.3, "--index", "sc-audio"], "has no window starting at 3.3 s"),
        (["search", "--like", clip, "--at", 1, "--index", "sc-audio"], "--at names a window"),
        (["search", "a dog", "--like", clip, "--weight", 2, "--index", "sc-audio"], "--weight is the text's share"),
        (["search", "--like", clip, "--index", "sc-audio", "-k", 0], "-k must be at least 1"),
        (["embed", "--run", ws.locked, "--text", "a dog", "--out", tmp_path / "x.csv"], "name a .parquet or .npy"),
        (["embed", "--run", ws.locked, "--text", "a dog", "--out", tmp_path / "no" / "x.npy"], "does not exist"),
        (["embed", "--run", ws.locked, "--out", tmp_path / "x.npy"], "give exactly one of --dataset"),
        (["embed", "--run", ws.locked, "--text", " ", "--out", tmp_path / "x.npy"], "empty --text"),
        (["embed", "--run", ws.locked, notes, "--out", tmp_path / "x.npy"], "notes.txt is unreadable"),
        (["embed", "--run", ws.locked, "--dataset", "nope", "--out", tmp_path / "x.npy"], "nope"),
        (["embed", "--run", ws.locked, "--dataset", "sc", "--split", "nope", "--out", tmp_path / "x.npy"], "no split"),
        (["embed", "--run", ws.captioner, "--text", "a dog", "--out", tmp_path / "x.npy"], "is a caption run"),
    ]
    before = digest(ws.settings)
    for args, expected in cases:
        out = cli_run(ws, *args)
        lines = out.output.strip().splitlines()
        assert out.exit_code != 0 and len(lines) == 1 and lines[0].startswith("aacbatch: error: "), (args, out.output)
        assert expected in lines[0], (args, lines[0])
    assert digest(ws.settings) == before and not list(tmp_path.glob("x.*")) and not list(tmp_path.glob(".x*"))


# --- embeddings out -----------------------------------------------------------------------------

def test_embed_a_dataset_split_to_parquet_that_sql_reads(ws, tmp_path):
    import duckdb

    out = cli_run(ws, "embed", "--run", ws.locked, "--dataset", "sc", "--split", "eval", "--out", tmp_path / "e.parquet")
    assert out.exit_code == 0, out.output
    _, clips = run_sql(ws.registry, "SELECT c.idx, c.path FROM clips c JOIN splits s ON s.clip_id = c.id "
                                    "WHERE s.name = 'eval' ORDER BY c.idx")
    assert f"{len(clips)} audio embeddings (1024-d)" in out.output
    rows = duckdb.sql(f"SELECT idx, path, captions, embedding FROM '{tmp_path / 'e.parquet'}' ORDER BY idx").fetchall()
    assert [(r[0], r[1]) for r in rows] == [(i, p) for i, p in clips]
    index = load_index(ws.registry, "sc-audio")
    for idx, path, captions, embedding in rows:
        name = Path(path).relative_to(ws.synth).as_posix()
        assert captions == ws.captions[name]
        np.testing.assert_allclose(np.array(embedding), index.embeddings[0][list(index.names).index(name)].astype(np.float32),
                                   atol=2e-3)  # the index stores float16
    listed = cli_run(ws, "sql", f"SELECT count(*) AS n, max(len(embedding)) AS d FROM '{tmp_path / 'e.parquet'}'",
                     "--format", "json")
    assert json.loads(listed.output) == [{"n": len(clips), "d": 1024}]


def test_embed_texts_and_files_with_a_run_and_a_system(ws, tmp_path):
    texts = ["a dog barks while cars pass", "rain on a tin roof"]
    files = [ws.synth / f for f in sorted(ws.captions)[:3]]
    vectors = {}
    for model in (["--run", ws.locked], ["--run", ws.finetuned]):
        for kind, args in (("text", [a for t in texts for a in ("--text", t)]), ("audio", files)):
            out = cli_run(ws, "embed", *model, *args, "--out", tmp_path / f"{kind}.npy")
            assert out.exit_code == 0, out.output
            vectors[model[1], kind] = np.load(tmp_path / f"{kind}.npy")
    searcher = Searcher.open(ws.registry, "sc-audio")
    np.testing.assert_allclose(vectors[ws.locked, "text"], searcher.encoders[0].embed_text(texts), atol=1e-5)
    assert vectors[ws.locked, "audio"].shape == (3, 1024) and vectors[ws.locked, "audio"].dtype == np.float32
    add_system(ws.registry, "embed-pair", [(ws.locked, 1.0), (ws.finetuned, 3.0)])
    for kind, args in (("text", [a for t in texts for a in ("--text", t)]), ("audio", files)):
        assert cli_run(ws, "embed", "--system", "embed-pair", *args, "--out", tmp_path / f"sys-{kind}.parquet").exit_code == 0
    import duckdb

    system = {kind: np.array([r[0] for r in duckdb.sql(f"SELECT embedding FROM '{tmp_path / f'sys-{kind}.parquet'}'").fetchall()])
              for kind in ("text", "audio")}
    assert system["text"].shape == (2, 2048)
    np.testing.assert_allclose(np.linalg.norm(system["audio"], axis=1), 1, atol=1e-5)
    expected = (1.0 * vectors[ws.locked, "audio"] @ vectors[ws.locked, "text"].T
                + 3.0 * vectors[ws.finetuned, "audio"] @ vectors[ws.finetuned, "text"].T) / 4.0
    np.testing.assert_allclose(system["audio"] @ system["text"].T, expected, atol=1e-5)  # the system's score


# --- the page: windowed hits and "more like this" -------------------------------------------------

def test_page_shows_a_windowed_hit_with_its_span_and_links_more_like_this(ws, long_recording):
    from aacbatch.search.web import create_app

    searcher = Searcher.open(ws.registry, "long")
    client = create_app(searcher).test_client()
    page = client.get("/", query_string={"q": long_recording.query, "k": 3}).get_data(as_text=True)
    hit = searcher.search(long_recording.query, 3).hits[0]
    assert f'src="/audio/{hit.id}#t={hit.start:g},{hit.end:g}"' in page
    assert f"{hit.start:.1f}–{hit.end:.1f} s</span> of 12.0 s" in page
    link = f'href="/?like={hit.id}&amp;at={hit.at:g}&amp;k=3"'
    assert link in page and page.count("more like this") == 3
    like = client.get(f"/?like={hit.id}&at={hit.at:g}&k=3").get_data(as_text=True)
    assert 'class="hit"' in like and f"searching like file {hit.id} at {hit.at:g} s" in like
    mixed = client.get(f"/?like={hit.id}&at={hit.at:g}&q=a+dog&w=0.5").get_data(as_text=True)
    assert "a dog + like file" in mixed and 'name="like"' in mixed
    assert "has no window starting at 0.5 s" in client.get(f"/?like={hit.id}&at=0.5").get_data(as_text=True)


# --- large indexes: ANN candidates ----------------------------------------------------------------

def test_ann_candidates_hold_the_exact_neighbours_of_clustered_vectors():
    from aacbatch.search import ann

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((50, 32))
    x = centres[rng.integers(0, 50, 4000)] + 0.3 * rng.standard_normal((4000, 32))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)
    (index,) = ann.build([x])
    assert index.nlist == ann.n_cells(4000) == 63 and index.ntotal == 4000
    found = ann.AnnIndex([index], {}).candidates([x[7].astype(np.float32)], 100)
    exact = np.argsort(-(x.astype(np.float32) @ x[7].astype(np.float32)), kind="stable")[:10]
    assert set(exact) <= set(found.tolist()) and len(found) <= 100


def test_an_ann_index_is_built_past_its_size_used_and_refused_for_another_model(ws, tmp_path):
    folder = tmp_path / "big"
    copy_clips(ws, folder, sorted(ws.captions)[:45])
    build_index(ws.registry, folder, run=ws.locked, name="big", ann_above=46)
    assert load_index(ws.registry, "big").ann is None  # 45 windows: exact search only
    built = build_index(ws.registry, folder, run=ws.locked, name="big", ann_above=45)
    assert built.status == "unchanged" and (Path(built.url) / "ann.json").is_file()
    searcher = Searcher.open(ws.registry, "big")
    assert searcher.index.ann is not None and searcher.index.ann.members[0].ntotal == 45
    query = ws.captions[sorted(ws.captions)[3]][0]
    fast, exact = searcher.search(query, 5), searcher.search(query, 5, exact=True)
    assert [(h.file, h.score) for h in fast.hits] == [(h.file, h.score) for h in exact.hits]  # re-scored exactly
    record = Path(built.url) / "ann.json"
    tampered = json.loads(record.read_text()) | {"members": ["another checkpoint"]}
    record.write_text(json.dumps(tampered))
    before = digest(ws.settings)
    out = cli_run(ws, "search", query, "--index", "big")
    lines = out.output.strip().splitlines()
    assert out.exit_code != 0 and lines == [
        f"aacbatch: error: the ANN index of index 'big' was built with another model: rebuild it with "
        f"`aacbatch index {folder} --name big --replace`"]
    assert digest(ws.settings) == before
