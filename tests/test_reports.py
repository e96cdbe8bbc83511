"""Report views (DuckDB and PostgreSQL), the packaged reports, their formats and plots, the
paper's numbers kept apart, and the ``system``/``report`` commands."""

from __future__ import annotations

from pathlib import Path

import csv
import io
import json
import struct
import types

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import text

from aacbatch.cli import cli
from aacbatch.errors import InputError
from aacbatch.registry import migrate
from aacbatch.registry.queries import run_sql
from aacbatch.registry.store import Registry
from aacbatch.reports import plot_report, render_report, run_report
from aacbatch import systems
from aacbatch.systems import build_system
from registry_fakes import fill, score

# the newest revision in migrations/versions/ (every test of the head follows it)
LATEST = max(p.name[:4] for p in (Path(__file__).resolve().parent.parent / "migrations" / "versions").glob("0*.py"))

VIEWS = {"run_info", "final_scores", "run_best_scores", "system_scores", "target_datasets"}
SPICE_REASON = "SPICE needs stanford-corenlp-3.6.0.jar"


@pytest.fixture
def fakes(registry, tmp_path):
    return fill(registry, tmp_path / "home")


def fake_caption_ensembles(monkeypatch):
    def evaluate_ensemble(registry, run_ids, weights, split):
        metrics = {"meteor": 0.2 + len(run_ids) / 100, "cider_d": 0.4, "spice": None, "spider": None}
        reasons = {"spice": SPICE_REASON, "spider": "needs SPICE"}
        return types.SimpleNamespace(metrics=metrics, reasons=reasons, captions={"clip-1": "a dog barks"}, intervals={},
                                     provenance={})

    monkeypatch.setattr(systems, "evaluate_ensemble", evaluate_ensemble)


def records(columns, rows) -> list[dict]:
    return [dict(zip(columns, r)) for r in rows]


@pytest.mark.backends("duckdb", "postgresql")
def test_views_give_lineage_and_scores_as_columns(registry, fakes):
    rows = records(*run_sql(registry, "SELECT * FROM run_best_scores WHERE run_id = :r AND split = 'eval'",
                            {"r": fakes.ids["mae"]}))
    assert len(rows) == 1
    row = rows[0]
    assert (row["task"], row["family"], row["dataset"], row["tag_loss"], row["parent_run_id"]) == (
        "clap_tag", "retrieval", "target", "mae", fakes.ids["pre_clap"])
    assert (row["t2a_map10"], row["t2a_r1"], row["cider_d"], row["random_inputs"]) == (0.47, 0.235, None, False)
    info = {r["run_id"]: r for r in records(*run_sql(registry, "SELECT * FROM run_info"))}
    caption = info[fakes.ids["cap_msle1"]]
    assert (caption["encoder_run"], caption["encoder_task"], caption["tag_loss"], caption["select_metric"]) == (
        fakes.ids["msle"], "clap_tag", "mse_log", "cider_d")
    assert info[fakes.ids["claip"]]["random_inputs"] and info[fakes.ids["claip"]]["random_weights"]
    assert info[fakes.ids["cap_claip1"]]["random_inputs"]  # through its encoder
    assert not info[fakes.ids["cap_claip1"]]["random_weights"] and not info[fakes.ids["cap_clap1"]]["random_inputs"]
    assert sorted(run_sql(registry, "SELECT family, dataset FROM target_datasets")[1]) == [
        ("caption", "target"), ("retrieval", "target")]  # the datasets of fine-tuned runs (baselines have none)
    # the README's example: the best CLAP-TAG MSLE run by val mAP@10 fine-tuned from a CLAP pretrain
    _, best = run_sql(registry, "SELECT b.run_id FROM run_best_scores b JOIN runs p ON p.id = b.parent_run_id "
                                "WHERE b.task = 'clap_tag' AND b.tag_loss = 'mse_log' AND p.task = 'clap' "
                                "AND b.split = 'val' ORDER BY b.t2a_map10 DESC LIMIT 1")
    assert best == [(fakes.ids["msle"],)]


@pytest.mark.backends("duckdb", "postgresql")
def test_system_scores_view_and_table1(registry, fakes):
    s1 = build_system(registry, "retrieval_s1")
    build_system(registry, "retrieval_s4")
    view = records(*run_sql(registry, "SELECT * FROM system_scores WHERE name = 'retrieval_s1' AND split = 'eval'"))
    assert view[0]["n_members"] == 4 and view[0]["random_inputs"]  # claip is a member
    assert view[0]["t2a_map10"] == pytest.approx(s1.scores["eval"]["t2a/mAP@10"], abs=1e-12)
    report = run_report(registry, "table1")
    rows = records(*displayed_table(report))
    assert [r["system"] for r in rows] == ["bag-of-words baseline", "best single run (val mAP@10)",
                                           "retrieval_s1", "retrieval_s4"]
    baseline, single, system1, system4 = rows
    assert (baseline["R@1"], baseline["R@5"], baseline["R@10"], baseline["mAP@10"]) == (0.11, 0.33, 0.55, 0.22)
    assert (single["source"], single["mAP@10"]) == (f"run {fakes.ids['mae'][:8]}", 0.47)
    assert system1["members"] == 4 and system1["note"] == "random-weight inputs"
    assert system1["R@1"] == pytest.approx(s1.scores["eval"]["t2a/R@1"], abs=1e-12)
    assert system4["note"] == "" and system4["members"] == 1
    val = records(*displayed_table(run_report(registry, "table1", {"split": "val"})))
    assert (val[0]["mAP@10"], val[0]["R@1"], val[1]["mAP@10"]) == (0.99, None, 0.60)  # bow: only mAP@10 on val


def displayed_table(report):
    from aacbatch.reports import displayed

    table = displayed(report.table)
    return table.columns, table.rows


@pytest.mark.backends("duckdb", "postgresql")
def test_table2_shows_missing_metrics_as_na_with_reason(registry, fakes, monkeypatch):
    fake_caption_ensembles(monkeypatch)
    build_system(registry, "caption_s1")
    build_system(registry, "caption_s4")
    report = run_report(registry, "table2")
    out = json.loads(render_report(report, "json"))
    assert [r["system"] for r in out] == ["most-frequent-caption baseline", "caption_s1", "caption_s4"]
    baseline, s1, s4 = out
    assert (baseline["METEOR"], baseline["CIDEr-D"], baseline["members"]) == ("n/a (METEOR needs Java)", 0.05, 1)
    assert s1["METEOR"] == 0.22 and s4["METEOR"] == 0.26 and s1["CIDEr-D"] == 0.4 and s4["members"] == 6
    assert s1["SPICE"] == f"n/a ({SPICE_REASON})" and s1["SPIDEr"] == "n/a (needs SPICE)"
    assert s1["SPIDEr-FL"] is None  # never computed: no row, no reason
    assert not any(k.endswith("_reason") for k in s1)
    assert s1["note"] == "" and s4["note"].startswith("random-weight inputs")  # S4 has the CLAIP captioner
    md = render_report(report, "md")
    assert md.splitlines()[0].startswith("| system") and f"n/a ({SPICE_REASON})" in md
    table = render_report(report, "table").splitlines()  # the terminal table numbers its reasons
    notes = [line for line in table if line.startswith("[")]
    assert notes == ["[1] METEOR needs Java", f"[2] {SPICE_REASON}", "[3] needs SPICE"]
    assert "n/a [2]" in table[3] and SPICE_REASON not in "\n".join(table[:-3])


def test_formats_and_the_paper_block(registry, fakes):
    build_system(registry, "retrieval_s1")
    report = run_report(registry, "table1")
    parsed = list(csv.DictReader(io.StringIO(render_report(report, "csv"))))
    assert parsed[0]["system"] == "bag-of-words baseline" and float(parsed[0]["mAP@10"]) == 0.22
    md = render_report(report, "md")
    assert md.count("\n") == 4 and "| retrieval_s1" in md and "0.321" not in md
    with_paper = run_report(registry, "table1", with_paper=True)
    shown = render_report(with_paper, "table")
    registry_part, paper_part = shown.split("Paper's published numbers")
    assert "0.321" in paper_part and "S1 top-4 mAP@10" in paper_part and "retrieval_s1" not in paper_part
    assert "retrieval_s1" in registry_part and "0.321" not in registry_part
    as_json = json.loads(render_report(with_paper, "json"))
    assert as_json["paper"]["rows"][0] == {"system (paper)": "DCASE baseline", "R@1": 0.13, "R@5": 0.343,
                                           "R@10": 0.48, "mAP@10": 0.222}
    assert "not computed from this registry" in as_json["paper"]["label"] and len(as_json["registry"]) == 3
    with pytest.raises(InputError, match="CSV cannot hold"):
        render_report(with_paper, "csv")
    with pytest.raises(InputError, match="no reference numbers for report 'runs'"):
        run_report(registry, "runs", with_paper=True)


def test_runs_report_lists_every_run_with_lineage(registry, fakes):
    rows = records(*run_sql(registry, open_report("runs"), {"dataset": None}))
    by_run = {r["run"]: r for r in rows}
    assert len(rows) == len(fakes.ids)
    mae = by_run[fakes.ids["mae"][:8]]
    assert (mae["task"], mae["tag_loss"], mae["parent"], mae["metric"], mae["val"], mae["eval"]) == (
        "clap_tag", "mae", fakes.ids["pre_clap"][:8], "t2a/mAP@10", 0.60, 0.47)
    cap = by_run[fakes.ids["cap_claip1"][:8]]
    assert (cap["encoder"], cap["metric"], cap["val"], cap["note"]) == (
        fakes.ids["claip"][:8], "cider_d", 0.20, "random-weight inputs")
    assert by_run[fakes.ids["failed"][:8]]["status"] == "failed"


def open_report(name: str) -> str:
    from aacbatch.reports import report_query

    return report_query(name)[0]


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_plots_are_real_pngs(registry, fakes, tmp_path):
    with registry.transaction() as session:
        for epoch in (1, 2, 3):
            score(session, fakes.ids["mae"], "val", {"t2a/mAP@10": 0.2 * epoch, "loss": 3.0 / epoch}, epoch=epoch)
            score(session, fakes.ids["claip"], "val", {"t2a/mAP@10": 0.15 * epoch, "loss": 3.5 / epoch}, epoch=epoch)
    curves = run_report(registry, "curves")
    assert {r[curves.table.columns.index("metric")] for r in curves.table.rows} == {"t2a/mAP@10", "loss"}
    width, height = png_size(plot_report(curves, tmp_path / "curves.png"))
    assert width > 600 and height > 300 and (tmp_path / "curves.png").stat().st_size > 20_000
    build_system(registry, "retrieval_s1")
    bars = plot_report(run_report(registry, "table1"), tmp_path / "plots" / "table1.png")
    assert png_size(bars)[0] > 600 and bars.stat().st_size > 20_000
    with pytest.raises(InputError, match="report 'runs' has no plot"):
        plot_report(run_report(registry, "runs"), tmp_path / "runs.png")
    with pytest.raises(InputError, match="give a .png file name"):
        plot_report(curves, tmp_path / "curves.pdf")


def test_downgrade_drops_the_views_and_keeps_the_tables(registry, fakes, settings):
    with registry.connection() as conn:
        command.downgrade(migrate.alembic_config(conn), "0001")
    with registry.connection(upgrade=False) as conn:
        names = {r[0] for r in conn.execute(text("SELECT table_name FROM information_schema.tables"))}
    assert not names & VIEWS and "runs" in names and migrate.head_revision() == LATEST
    assert run_sql(Registry(settings), "SELECT COUNT(*) FROM run_best_scores")[1][0][0] > 0  # upgraded on first use


def test_cli_system_and_report_commands(registry, fakes, settings, tmp_path):
    def run(*args):
        return CliRunner().invoke(cli, ["--home", str(settings.home), *map(str, args)], catch_exceptions=False)

    built = run("system", "build", "retrieval_s3")
    assert built.exit_code == 0, built.output
    assert "system retrieval_s3 (retrieval, 5 members): created" in built.output
    assert "warning: sql/systems/retrieval_s3.sql asked for 10 members and found 5" in built.output
    assert f"1. {fakes.ids['mae']} weight 1" in built.output and "eval: t2a/R@1=" in built.output
    assert "unchanged" in run("system", "build", "retrieval_s3").output
    listed = json.loads(run("system", "list", "--format", "json").stdout)
    assert [s["name"] for s in listed] == ["retrieval_s3"]
    shown = run("system", "show", "retrieval_s3").output
    assert fakes.ids["claip"] in shown and "random-weight inputs" in shown and "-- Retrieval S3" in shown
    out = tmp_path / "t1.md"
    made = run("report", "table1", "--format", "md", "--out", out, "--plot", tmp_path / "t1.png", "--with-paper")
    assert made.exit_code == 0 and "| retrieval_s3" in out.read_text() and "Paper's published numbers" in out.read_text()
    assert png_size(tmp_path / "t1.png")[0] > 600
    bad = tmp_path / "bad.sql"
    bad.write_text("SELECT run_id\nFROM nowhere")
    failed = run("system", "build", "mine", "--query", bad)
    assert failed.exit_code != 0
    assert failed.output.strip().startswith(f"aacbatch: error: {bad}: line 2: ") and failed.output.count("\n") == 1
    missing = run("report", "nope")
    assert missing.exit_code != 0 and "unknown query 'nope' in sql/reports/" in missing.output
