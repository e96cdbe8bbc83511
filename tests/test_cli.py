"""The command line: thin over the library, one-line errors, fast help."""

from __future__ import annotations

from pathlib import Path

import json
import subprocess
import sys

from click.testing import CliRunner

from aacbatch.cli import cli

from conftest import make_clotho

# the newest revision in migrations/versions/ (every test of the head follows it)
LATEST = max(p.name[:4] for p in (Path(__file__).resolve().parent.parent / "migrations" / "versions").glob("0*.py"))


def run(home, *args):
    return CliRunner().invoke(cli, ["--home", str(home), *map(str, args)], catch_exceptions=False)


def test_help_imports_no_heavy_modules():
    code = ("import sys; from aacbatch.cli import cli\n"
            "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'sqlalchemy', 'numpy', 'transformers', 'zarr') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_ingest_split_sql_round_trip(tmp_path):
    root = make_clotho(tmp_path / "c")
    home = tmp_path / "home"
    result = run(home, "ingest", "clotho", root, "--name", "c")
    assert result.exit_code == 0 and "c: created (12 clips, 60 captions)" in result.output
    assert "c: unchanged" in run(home, "ingest", "clotho", root, "--name", "c").output
    assert "splits created (eval=3 train=8 val=1)" in run(home, "split", "c").output
    out = run(home, "sql", "SELECT name, n_clips FROM datasets WHERE name = :n", "--param", "n=c", "--format", "json")
    assert json.loads(out.output) == [{"name": "c", "n_clips": 12}]
    assert "development=6" in run(home, "sql", "--query", "datasets").output
    status = run(home, "db", "status").output
    assert f"revision {LATEST}, head {LATEST}" in status and "up to date" in status


def test_errors_are_one_line_with_nonzero_exit(tmp_path):
    root = make_clotho(tmp_path / "c")
    (root / "evaluation" / "eva_000.wav").unlink()
    result = CliRunner().invoke(cli, ["--home", str(tmp_path / "h"), "ingest", "clotho", str(root), "--name", "c"])
    assert result.exit_code == 2
    lines = [l for l in result.stderr.splitlines() if l.startswith("aacbatch:")]
    assert len(lines) == 1 and "eva_000.wav" in lines[0] and "is missing" in lines[0]
    result = CliRunner().invoke(cli, ["--home", str(tmp_path / "h"), "sql", "SELECT * FROM nope"])
    assert result.exit_code == 2 and result.stderr.startswith("aacbatch: error: query:")


def test_db_url_flag_selects_another_registry(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    result = CliRunner().invoke(cli, ["--db", url, "db", "upgrade"])
    assert result.exit_code == 0 and f"{url}: schema at revision {LATEST}" in result.output
    assert (tmp_path / "r.sqlite").is_file()
