"""The registry dashboard: every page and its JSON twin on a registry of real-looking runs,
bad input (unknown and ambiguous ids, hostile query strings, a newer schema), a registry
locked by another process, PostgreSQL, and one pass through the pages in headless Chromium.

One module-wide registry: tests/registry_fakes.py's runs (retrieval runs with similarity
matrices, captioners on their encoders, baselines, a failed run) plus per-epoch curves, a
running run, a teacher tagger feeding a tags feature set, a hostile config value, captions
with references for one captioner, and two systems.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import text, update

from aacbatch.cli import cli
from aacbatch.config import Settings
from aacbatch.dashboard.reader import check_schema
from aacbatch.dashboard.recent import Recent
from aacbatch.dashboard.views import dashboard
from aacbatch.errors import InputError
from aacbatch.evaluate.captions import caption_metrics
from aacbatch.evaluate.retrieval import retrieval_metrics
from aacbatch.registry.runs import put_provenance
from aacbatch.registry.schema import Caption, Clip, FeatureSet, Prediction, Run, Score, System, SystemMember
from aacbatch.registry.store import Registry
from aacbatch.search.web import create_app, make_server

import registry_fakes
from registry_fakes import RELEVANT, TARGET, add_run, score
from test_search import chromium

HOSTILE = "<script>alert('x')</script>"
EPOCHS = 6
CLIPS = 6


def fill(registry: Registry, root: Path) -> registry_fakes.Fakes:
    """registry_fakes' runs plus what the dashboard shows beyond final scores."""
    fakes = registry_fakes.fill(registry, root)
    rng = np.random.default_rng(1)
    with registry.transaction() as session:
        teacher = add_run(session, fakes, "teacher", "tagger", TARGET)
        tags = FeatureSet(name="tags", kind="tags", dataset_id=fakes.datasets[TARGET], fingerprint="t" * 16,
                          spec_json=json.dumps({"kind": "tags", "block_size": 64, "params": {"teacher": teacher}}),
                          path="@cache/target/tags.zarr", status="complete", n_items=4)
        session.add(tags)
        session.flush()
        session.execute(update(Run).where(Run.id == fakes.ids["mae"]).values(
            feature_sets_json=json.dumps([{"id": tags.id, "name": "tags", "fingerprint": "t" * 16, "random_weights": False}]),
            seed=3))
        session.execute(update(Run).where(Run.id == fakes.ids["claip"]).values(
            config_json=json.dumps({"dataset": TARGET, "tag_loss": "mae", "note": HOSTILE})))
        for name in ("clap", "mae", "msle", "claip", "cap_mae1", "cap_mae2"):
            for epoch in range(1, EPOCHS + 1):
                metric = "cider_d" if name.startswith("cap") else "t2a/mAP@10"
                score(session, fakes.ids[name], "val", {metric: 0.1 * epoch + rng.random() * 0.05, "loss": 3.0 / epoch},
                      epoch=epoch)
        live = add_run(session, fakes, "live", "clap", TARGET, status="running", parent=fakes.ids["pre_clap"])
        for epoch in (1, 2):
            score(session, live, "val", {"t2a/mAP@10": 0.2 * epoch, "loss": 2.0 / epoch}, epoch=epoch)
        provenance = put_provenance(session, {"cider_d": {"implementation": "aacbatch cider", "tokenizer": "ptb"}})
        session.execute(update(Score).where(Score.run_id == fakes.ids["cap_mae1"], Score.split == "eval",
                                            Score.metric == "cider_d", Score.epoch.is_(None)).values(
            ci_low=0.31, ci_high=0.49, ci_level=0.95, provenance_id=provenance["cider_d"]))
        fakes.provenance = provenance["cider_d"]  # not a run: kept out of ids
        for i in range(CLIPS):
            clip = Clip(dataset_id=fakes.datasets[TARGET], idx=100 + i, name=f"clip_{i}.wav", source_split="evaluation",
                        path=f"/data/clip_{i}.wav", duration=10.0, n_frames=320000, sample_rate=32000, channels=1)
            session.add(clip)
            session.flush()
            for j in range(3):
                session.add(Caption(dataset_id=fakes.datasets[TARGET], clip_id=clip.id, idx=10 * i + j, caption_index=j,
                                    text=f"a dog barks {'loudly' if j else 'twice'} near {['water', 'cars', 'birds'][i % 3]}"))
            session.add(Prediction(run_id=fakes.ids["cap_mae1"], dataset_id=fakes.datasets[TARGET], split="eval",
                                   kind="caption", clip_id=clip.id,
                                   text="a dog barks near water" if i % 2 else f"rain falls on a roof {HOSTILE}"))
        for name, kind, members in (("retrieval_s1", "retrieval", ("mae", "msle")), ("caption_s1", "caption", ("cap_mae1",))):
            system = System(name=name, kind=kind, dataset_id=fakes.datasets[TARGET], fingerprint=name,
                            query_text="SELECT run_id FROM final_scores WHERE split = 'val' LIMIT :k",
                            params_json=json.dumps({"k": len(members)}))
            session.add(system)
            session.flush()
            fakes.ids[name] = system.id
            for rank, member in enumerate(members, start=1):
                session.add(SystemMember(system_id=system.id, run_id=fakes.ids[member], rank=rank, weight=1.0))
            metric = "t2a/mAP@10" if kind == "retrieval" else "cider_d"
            for split, value in (("val", 0.61), ("eval", 0.53)):
                session.add(Score(system_id=system.id, dataset_id=fakes.datasets[TARGET], split=split, metric=metric,
                                  value=value))
    return fakes


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("dashboard")
    registry = Registry(Settings.resolve(home=root / "home", db_timeout=5.0))
    fakes = fill(registry, root / "home")
    return registry, fakes


@pytest.fixture(scope="module")
def client(ws):
    return create_app(None, ws[0]).test_client()


def get_json(client, url, status=200):
    response = client.get(url)
    assert response.status_code == status, (url, response.data[:400])
    return response.get_json()


# --- runs -------------------------------------------------------------------------------------

def test_runs_table_lists_filters_sorts_and_pages(client, ws):
    _, fakes = ws
    every = get_json(client, "/api/runs?per=200")
    assert every["total"] == len([k for k in fakes.ids if not k.endswith("_s1")]) == len(every["runs"])
    clap_tag = get_json(client, "/api/runs?task=clap_tag")
    assert {r["run_id"] for r in clap_tag["runs"]} == set(fakes.of("mae", "msle"))
    by_eval = get_json(client, "/api/runs?task=clap_tag&sort=eval&desc=1")["runs"]
    assert [r["eval"] for r in by_eval] == [0.52, 0.47]  # msle, mae (registry_fakes' eval mAP@10)
    assert [r["val"] for r in get_json(client, "/api/runs?task=claip")["runs"]] == [0.55]
    failed = get_json(client, "/api/runs?status=failed")["runs"]
    assert [r["run_id"] for r in failed] == fakes.of("failed")
    pages = [get_json(client, f"/api/runs?per=10&sort=run&desc=0&page={p}") for p in (1, 2, 3, 4)]
    ids = [r["run_id"] for p in pages for r in p["runs"]]
    assert pages[0]["pages"] == 3 and ids == sorted(r["run_id"] for r in every["runs"])  # every run once, in id order
    assert pages[3]["runs"] == [] and pages[3]["total"] == every["total"]  # past the last page
    assert get_json(client, f"/api/runs?q={fakes.ids['pre_clap'][:8].upper()}")["total"] >= 1  # case-blind id search
    found = get_json(client, "/api/runs?q=alert('x')")["runs"]  # config text is searched too
    assert [r["run_id"] for r in found] == fakes.of("claip")
    assert {f["value"] for f in every["facets"]["status"]} == {"finished", "failed", "running"}
    html = client.get("/runs?task=clap_tag").get_data(as_text=True)
    assert fakes.ids["mae"][:8] in html and fakes.ids["clap"][:8] not in html
    assert ">None<" not in client.get("/runs").get_data(as_text=True)  # a missing value is blank, not Python's None


@pytest.mark.parametrize("query, needle", [
    ("sort=bogus", "sort=bogus"), ("page=abc", "page=abc"), ("page=0", "page=0"), ("per=7", "per=7"),
    ("desc=2", "desc=2"), ("q=a%0Ab", "q="), ("q=" + "x" * 300, "at most 200"),
])
def test_bad_runs_arguments_are_one_line_400s(client, query, needle):
    body = get_json(client, f"/api/runs?{query}", 400)
    assert needle in body["error"] and "\n" not in body["error"]
    assert client.get(f"/runs?{query}").status_code == 400


def test_hostile_strings_are_escaped_everywhere(client, ws):
    _, fakes = ws
    for url in ("/runs?q=%3Cscript%3Ealert('x')%3C/script%3E", f"/runs/{fakes.ids['claip']}",
                f"/runs/{fakes.ids['cap_mae1']}/captions", "/runs/%3Cscript%3Ealert('x')%3C%2Fscript%3E",
                "/runs?task=%3Cscript%3E", "/systems/%3Cscript%3E", "/nope/%3Cscript%3E"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in html, url
    assert "&lt;script&gt;alert(&#39;x&#39;)" in client.get(f"/runs/{fakes.ids['claip']}").get_data(as_text=True)
    injected = "x'; DROP TABLE runs; --"
    assert "unknown run id" in get_json(client, f"/api/runs/{injected}", 404)["error"]
    assert get_json(client, "/api/runs?q=%25")["total"] == 0  # LIKE wildcards are plain characters
    assert get_json(client, "/api/runs?per=200")["total"] > 20  # still all there


# --- one run ----------------------------------------------------------------------------------

def test_unknown_and_ambiguous_run_ids(client, ws):
    _, fakes = ws
    missing = get_json(client, "/api/runs/ffffffff-dead", 404)
    assert "ffffffff-dead" in missing["error"]
    assert "ffffffff-dead" in client.get("/runs/ffffffff-dead").get_data(as_text=True)
    both = get_json(client, "/api/runs/0000000", 300)  # registry_fakes' ids 00000001…00000019 share it
    assert len(both["matches"]) == 5 and "ambiguous" in both["error"]
    html = client.get("/runs/0000000").get_data(as_text=True)
    assert all(f'href="/runs/{m["run_id"]}"' in html for m in both["matches"])
    assert get_json(client, f"/api/runs/{fakes.ids['mae'][:8]}")["run"]["run_id"] == fakes.ids["mae"]
    assert get_json(client, "/api/runs/abc", 404)["error"].endswith("(a prefix needs at least 4 characters)")


def test_run_page_config_lineage_files_scores_and_curves(client, ws):
    registry, fakes = ws
    page = get_json(client, f"/api/runs/{fakes.ids['cap_mae1']}")
    assert page["run"]["encoder_run"] == fakes.ids["mae"] and page["against"]["run_id"] == fakes.ids["pre_clap"]
    lines = {c["key"]: c for c in page["config"]}
    assert lines["encoder_run"]["state"] == "only here" and lines["dataset"]["state"] == "changed"
    assert (lines["dataset"]["here"], lines["dataset"]["there"]) == (TARGET, registry_fakes.PRETRAIN)
    edges = {(e["from"], e["to"], e["role"]) for e in page["lineage"]["edges"]}
    assert {(fakes.ids["mae"], fakes.ids["cap_mae1"], "encoder"), (fakes.ids["pre_clap"], fakes.ids["cap_mae1"], "init-from"),
            (fakes.ids["pre_clap"], fakes.ids["mae"], "init-from"), (fakes.ids["teacher"], fakes.ids["mae"], "teacher (tags)"),
            (fakes.ids["cap_mae1"], f"system:{fakes.ids['caption_s1']}", "member")} <= edges
    columns = {n["key"]: n["column"] for n in page["lineage"]["nodes"]}
    assert columns[fakes.ids["pre_clap"]] < columns[fakes.ids["mae"]] < columns[fakes.ids["cap_mae1"]] == 0
    assert [s["name"] for s in page["systems"]] == ["caption_s1"]
    scores = page["scores"]
    eval_at = scores["columns"].index({"dataset": TARGET, "split": "eval"})
    cider = next(r for r in scores["rows"] if r["metric"] == "cider_d")["cells"][eval_at]
    assert cider == {"value": 0.40, "reason": None, "low": 0.31, "high": 0.49, "level": 0.95,
                     "provenance": fakes.provenance}
    assert page["provenance"] == [{"id": fakes.provenance, "scores": [f"{TARGET}/eval cider_d"],
                                   "record": {"implementation": "aacbatch cider", "tokenizer": "ptb"}}]
    spice = next(r for r in scores["rows"] if r["metric"] == "spice")["cells"][eval_at]
    assert spice["value"] is None and spice["reason"] == "asset missing"
    curves = {(c["metric"], c["split"]): c for c in page["curves"]}
    assert curves[("cider_d", "val")]["epochs"] == list(range(1, EPOCHS + 1))
    assert curves[("loss", "val")]["values"] == pytest.approx([3.0 / e for e in range(1, EPOCHS + 1)])
    best = next(f for f in page["files"] if f["what"] == "checkpoint")
    download = client.get(f"/runs/{fakes.ids['cap_mae1']}/files/{best['id']}")
    assert download.status_code == 200 and download.data == b"fake checkpoint"
    other = next(f for f in get_json(client, f"/api/runs/{fakes.ids['mae']}")["files"] if f["what"] == "checkpoint")
    assert client.get(f"/runs/{fakes.ids['cap_mae1']}/files/{other['id']}").status_code == 404  # another run's file
    diffed = get_json(client, f"/api/runs/{fakes.ids['cap_mae1']}?diff={fakes.ids['cap_mae2'][:8]}")
    assert diffed["against"] == {"run_id": fakes.ids["cap_mae2"], "task": "caption", "how": "chosen"}
    assert {c["state"] for c in diffed["config"]} == {"same"}  # same config, different seeds elsewhere
    html = client.get(f"/runs/{fakes.ids['cap_mae1']}").get_data(as_text=True)
    assert "0.4000<span class=\"interval\"" in html and "[0.3100, 0.4900]" in html and 'id="provenance"' in html
    assert 'id="lineage"' in html and "uPlot.iife.min.js" in html and 'id="run-data"' in html


def test_a_running_run_serves_its_curves_for_the_live_page(client, ws):
    registry, fakes = ws
    first = get_json(client, f"/api/runs/{fakes.ids['live']}/curves")
    assert first["status"] == "running" and max(max(c["epochs"]) for c in first["curves"]) == 2
    assert "refreshing every" in client.get(f"/runs/{fakes.ids['live']}").get_data(as_text=True)
    with registry.transaction() as session:  # an epoch lands
        score(session, fakes.ids["live"], "val", {"t2a/mAP@10": 0.6, "loss": 0.6}, epoch=3)
    again = get_json(client, f"/api/runs/{fakes.ids['live']}/curves")
    assert max(max(c["epochs"]) for c in again["curves"]) == 3


def test_captions_beside_references_with_per_clip_scores(client, ws, tmp_path):
    if shutil.which("java") is None:
        pytest.skip("per-clip caption scores need Java (the PTB tokenizer)")
    _, fakes = ws
    url = f"/api/runs/{fakes.ids['cap_mae1']}/captions"
    page = get_json(client, url)
    assert page["n_clips"] == CLIPS and all(len(c["references"]) == 3 for c in page["clips"])
    for _ in range(120):  # the first visit starts the scoring in the background
        page = get_json(client, url)
        if page["state"] != "pending":
            break
        time.sleep(0.5)
    assert page["state"] == "ready", page["reason"]
    expected = caption_metrics({c["clip_id"]: c["prediction"] for c in page["clips"]},
                               {c["clip_id"]: c["references"] for c in page["clips"]},
                               assets_dir=tmp_path, metrics=("cider_d",)).per_item["cider_d"]
    shown = [c["scores"]["cider_d"] for c in page["clips"]]
    assert shown == sorted(shown) and page["sort"] == "cider_d"  # worst first by default
    assert shown == pytest.approx(sorted(expected.values()))
    assert page["means"]["cider_d"] == pytest.approx(np.mean(list(expected.values())))
    best_first = get_json(client, url + "?sort=cider_d&desc=1")["clips"]
    assert [c["scores"]["cider_d"] for c in best_first] == sorted(shown, reverse=True)
    assert "no captions for" in get_json(client, url + "?split=val", 404)["error"]
    assert "has no generated captions" in get_json(client, f"/api/runs/{fakes.ids['mae']}/captions", 404)["error"]


# --- systems, tables, compare ----------------------------------------------------------------

def test_systems_list_system_page_and_tables(client, ws):
    _, fakes = ws
    systems = {s["name"]: s for s in get_json(client, "/api/systems")["systems"]}
    assert systems["retrieval_s1"]["n_members"] == 2 and systems["retrieval_s1"]["eval"] == 0.53
    page = get_json(client, "/api/systems/retrieval_s1")
    assert [m["run_id"] for m in page["members"]] == fakes.of("mae", "msle")
    columns = [(c["split"], c["metric"]) for c in page["member_columns"]]
    eval_map = columns.index(("eval", "t2a/mAP@10"))
    assert [m["scores"][eval_map] for m in page["members"]] == [0.47, 0.52]  # the members' own eval mAP@10
    assert page["system"]["params"] == {"k": 2} and ":k" in page["system"]["query_text"]
    assert get_json(client, f"/api/systems/{fakes.ids['retrieval_s1'][:8]}")["system"]["name"] == "retrieval_s1"
    assert "unknown system" in get_json(client, "/api/systems/nope", 404)["error"]
    table = get_json(client, "/api/tables/table1")
    assert table["computed_at"] is not None and table["refreshing"] is False  # a small registry: the first visit waits
    assert "retrieval_s1" in [r[0] for r in table["rows"]] and table["paper"]["label"].startswith("Paper's published")
    assert all("paper" not in str(r[0]) for r in table["rows"])  # the paper's numbers stay in their own block
    html = client.get("/tables/table2").get_data(as_text=True)
    assert 'id="paper-table"' in html and 'id="registry-table"' in html
    assert get_json(client, "/api/tables/table9", 404)["error"].startswith("unknown table")


def test_compare_runs_and_systems_with_paired_test(client, ws):
    _, fakes = ws
    a, b = fakes.of("clap", "mae")
    page = get_json(client, f"/api/compare?run={a}&run={b[:8]}&system=retrieval_s1")
    assert [i["id"] for i in page["items"]] == [a, b, fakes.ids["retrieval_s1"]]
    row = next(r for r in page["rows"] if (r["dataset"], r["split"], r["metric"]) == (TARGET, "eval", "t2a/mAP@10"))
    assert [c["value"] for c in row["cells"]] == [0.41, 0.47, 0.53]
    assert {c["run_id"] for c in page["curves"]} == {a, b}
    pair = next(p for p in page["pairs"] if p["b"] == 1 and p["split"] == "eval")
    paired = get_json(client, f"/api/paired?a=run:{a}&b=run:{b}&dataset={pair['dataset']}&split=eval")
    assert paired["state"] == "ready" and paired["resamples"] == 1000
    by_metric = {c["metric"]: c for c in paired["comparisons"]}
    mine = retrieval_metrics(registry_fakes.A, RELEVANT)["mAP@10"]
    theirs = retrieval_metrics(registry_fakes.B, RELEVANT)["mAP@10"]
    assert by_metric["t2a/mAP@10"]["a"] == pytest.approx(mine) and by_metric["t2a/mAP@10"]["b"] == pytest.approx(theirs)
    assert by_metric["t2a/mAP@10"]["difference"] == pytest.approx(mine - theirs)
    assert by_metric["t2a/mAP@10"]["low"] <= mine - theirs <= by_metric["t2a/mAP@10"]["high"]
    assert "2–6" in get_json(client, f"/api/compare?run={a}", 400)["error"]
    assert "2–6" in get_json(client, "/api/compare?" + "&".join(f"run={r}" for r in fakes.of(*list(registry_fakes.CAPTION)[:7])), 400)["error"]
    assert "twice" in get_json(client, f"/api/compare?run={a}&run={a[:8]}", 400)["error"]
    html = client.get(f"/compare?run={a}&run={b}").get_data(as_text=True)
    assert 'id="compare-scores"' in html and "data-paired" in html


def test_a_slow_table_is_the_last_one_computed_and_says_when():
    recent, release, calls = Recent(max_age_s=0.0, first_wait_s=0.05), threading.Event(), []

    def compute():
        calls.append(1)
        release.wait(5)
        return len(calls)

    pending = recent.get("t", compute)  # not ready within first_wait_s
    assert (pending.value, pending.computed_at, pending.refreshing) == (None, None, True)
    release.set()
    recent._pool.submit(lambda: None).result()  # the one worker has finished the first job
    first = recent.get("t", compute)  # older than max_age_s (0): shown, and a newer one started
    assert first.value == 1 and first.computed_at is not None
    recent._pool.submit(lambda: None).result()
    second = recent.get("t", compute)
    assert second.value == 2 and second.computed_at >= first.computed_at


# --- the registry busy, newer, on PostgreSQL ---------------------------------------------------

def test_a_locked_registry_serves_stale_pages_and_says_so(ws):
    registry, fakes = ws
    app = Flask(__name__)
    app.register_blueprint(dashboard(registry, read_timeout=0.3))
    client = app.test_client()
    fresh = get_json(client, "/api/runs")
    assert fresh["stale"] is None
    db = registry.url.split("///", 1)[1]
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
                               "print('locked', flush=True); sys.stdin.read()", db],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        stale = get_json(client, "/api/runs")
        assert stale["runs"] == fresh["runs"] and "registry is busy" in stale["stale"]
        assert "registry is busy" in client.get("/runs").get_data(as_text=True)
        never = client.get(f"/runs/{fakes.ids['bow']}")
        assert never.status_code == 503 and never.headers["Retry-After"] == "2"
        assert 'http-equiv="refresh"' in never.get_data(as_text=True)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert get_json(client, "/api/runs")["stale"] is None


def test_a_registry_at_a_newer_schema_is_refused_in_one_line(tmp_path):
    home = tmp_path / "home"
    registry = Registry(Settings.resolve(home=home))
    registry.upgrade()
    with registry.connection(upgrade=False) as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(InputError, match="schema revision '9999', newer than this aacbatch"):
        check_schema(Registry(Settings.resolve(home=home)))
    out = CliRunner().invoke(cli, ["--home", str(home), "serve", "--registry-only", "--port", "0"])
    assert out.exit_code == 2 and out.output.count("\n") == 1 and "upgrade aacbatch" in out.output
    neither = CliRunner().invoke(cli, ["--home", str(home), "serve"])
    assert neither.exit_code == 2 and "--registry-only" in neither.output


@pytest.mark.backends("duckdb", "postgresql")
def test_every_page_on_both_backends(registry, tmp_path):
    fakes = fill(registry, tmp_path / "home")
    client = create_app(None, registry).test_client()
    runs = get_json(client, "/api/runs?sort=eval&desc=1&task=clap_tag")["runs"]
    assert [r["run_id"] for r in runs] == fakes.of("msle", "mae")
    for url in ("/runs?q=node&status=finished&dataset=target", f"/runs/{fakes.ids['cap_mae1']}", "/systems",
                "/systems/retrieval_s1", "/tables/table1", "/tables/table2", f"/runs/{fakes.ids['cap_mae1']}/captions",
                f"/compare?run={fakes.ids['mae']}&run={fakes.ids['msle']}"):
        response = client.get(url)
        assert response.status_code == 200, (url, response.data[:300])
    page = get_json(client, f"/api/runs/{fakes.ids['cap_mae1']}")
    assert (fakes.ids["teacher"], fakes.ids["mae"], "teacher (tags)") in {(e["from"], e["to"], e["role"])
                                                                          for e in page["lineage"]["edges"]}
    assert get_json(client, "/api/runs/0000000", 300)["matches"]


# --- in a browser -----------------------------------------------------------------------------

def test_dashboard_in_a_headless_browser(ws, tmp_path):
    """Filters the runs table, opens a run and sees its curves, opens a system and the compare
    page, with the network closed (every resource from the local server). Saves screenshots
    (set AACBATCH_SCREENSHOT_DIR=docs to refresh the README's)."""
    pytest.importorskip("selenium", reason="needs selenium (pip install '.[test]')")
    if chromium() is None:
        pytest.skip("needs Debian chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import Select, WebDriverWait

    registry, fakes = ws
    browser, driver_path = chromium()
    server = make_server(None, "127.0.0.1", 0, registry=registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_port}"
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,860",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):  # no other host resolves
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    shots = Path(os.environ.get("AACBATCH_SCREENSHOT_DIR") or tmp_path)
    wait = WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,))  # a table re-rendered

    def local_only():
        names = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert names and all(n.startswith(origin + "/") for n in names), names

    try:
        driver.get(f"{origin}/")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#runs tr.run"))
        Select(driver.find_element(By.ID, "filter-task")).select_by_value("clap_tag")
        driver.find_element(By.ID, "apply").click()
        wait.until(lambda d: {r.get_attribute("data-run") for r in d.find_elements(By.CSS_SELECTOR, "#runs tr.run")}
                   == set(fakes.of("mae", "msle")))
        driver.get(f"{origin}/runs")
        driver.save_screenshot(str(shots / "dashboard-runs.png"))
        driver.get(f"{origin}/runs?task=clap_tag")
        driver.find_element(By.CSS_SELECTOR, f'#runs tr[data-run="{fakes.ids["mae"]}"] a').click()
        charts = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#curves .chart canvas"))
        metrics = {c.get_attribute("data-metric"): int(c.get_attribute("data-points"))
                   for c in driver.find_elements(By.CSS_SELECTOR, "#curves .chart")}
        assert charts and metrics == {"t2a/mAP@10": EPOCHS, "loss": EPOCHS}
        assert driver.find_elements(By.CSS_SELECTOR, "#lineage g.node.current")
        local_only()
        driver.set_window_size(1280, 1500)
        driver.save_screenshot(str(shots / "dashboard-run.png"))
        driver.set_window_size(1280, 860)
        driver.find_element(By.LINK_TEXT, "Systems").click()
        driver.find_element(By.LINK_TEXT, "retrieval_s1").click()
        members = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#members tr td a"))
        assert [m.text for m in members] == [fakes.ids["mae"][:8], fakes.ids["msle"][:8]]
        driver.get(f"{origin}/runs?task=clap_tag")
        for box in driver.find_elements(By.CSS_SELECTOR, "#runs input[type=checkbox]"):
            box.click()
        driver.find_element(By.CSS_SELECTOR, "form.pick button[type=submit]").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#compare-scores") and
                   d.find_elements(By.CSS_SELECTOR, "#curves .chart canvas"))
        wait.until(lambda d: all("resamples" in r.text for r in d.find_elements(By.CSS_SELECTOR, "#paired .result")))
        local_only()
        for shot in ("dashboard-runs.png", "dashboard-run.png"):
            assert (shots / shot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        driver.quit()
        server.shutdown()
