"""Nothing lost, nothing changed by accident: read-only SQL that is really read-only, names
that cannot become paths outside their roots, damaged registries, read-only folders and busy
ports as one line, and `db check` finding every kind of break."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy.exc import DBAPIError

from aacbatch.cli import cli
from aacbatch.config import Settings
from aacbatch.data.ingest import ingest
from aacbatch.errors import InputError
from aacbatch.registry.queries import run_sql
from aacbatch.registry.schema import Caption, Dataset, Score
from aacbatch.registry.store import Registry
from aacbatch.systems import build_system

from conftest import make_clotho, write_csv


def run(settings, *args):
    return CliRunner().invoke(cli, ["--home", str(settings.home), "--db", settings.db_url, *map(str, args)])


def one_line_error(result, expected: str) -> None:
    lines = result.output.strip().splitlines()
    assert result.exit_code != 0, result.output
    assert len(lines) == 1 and lines[0].startswith("aacbatch: error: ") and "Traceback" not in result.output, result.output
    assert expected in lines[0], lines[0]


# --- read-only SQL ---------------------------------------------------------------------------

SPLITTING = ["COMMIT; DROP TABLE clips", "ROLLBACK; DROP TABLE clips", "END; DROP TABLE clips",
             "ABORT; DROP TABLE clips", "BEGIN; DROP TABLE clips; COMMIT", "START TRANSACTION; DROP TABLE clips",
             "SELECT 1; commit; drop table clips", "/* hi */ COMMIT -- bye\n; DROP TABLE clips"]
WRITING = ["DROP TABLE clips", "DELETE FROM clips", "UPDATE clips SET name = 'x'", "CREATE TABLE t (a INT)",
           "INSERT INTO datasets SELECT * FROM datasets", "SELECT 1; DELETE FROM clips",
           "EXPLAIN ANALYZE DELETE FROM clips", "SET search_path = public"]


@pytest.fixture
def filled(registry, clotho_dir):
    ingest(registry, "clotho", clotho_dir, name="c")
    return registry


@pytest.mark.backends("duckdb", "postgresql")
def test_sql_without_write_changes_nothing(filled, settings):
    for sql in SPLITTING + WRITING:
        result = run(settings, "sql", sql)
        one_line_error(result, "controls the transaction" if sql in SPLITTING else "is not a query")
    assert run_sql(filled, "SELECT COUNT(*) FROM clips")[1] == [(12,)]
    assert len(SPLITTING + WRITING) == 16


def test_duckdb_file_writes_need_write(filled, settings, tmp_path):
    out = tmp_path / "leak"
    for sql in ("COPY (SELECT * FROM clips) TO '{out}'", "COPY clips TO '{out}'", "EXPORT DATABASE '{out}'",
                "ATTACH '{out}' AS other", "PRAGMA enable_profiling", "SET threads = 1"):
        one_line_error(run(settings, "sql", sql.format(out=out)), "is not a query")
    assert not out.exists()


@pytest.mark.backends("duckdb", "postgresql", "sqlite")
def test_the_database_itself_refuses_writes_on_a_read_only_connection(filled):
    """Past the statement check (called directly), the connection is read-only too."""
    for statement in ("DELETE FROM clips", "DROP TABLE captions"):
        with pytest.raises(DBAPIError), filled.read_only_connection() as conn:
            conn.exec_driver_sql(statement)
    assert run_sql(filled, "SELECT COUNT(*) FROM clips")[1] == [(12,)]


@pytest.mark.backends("duckdb", "postgresql")
def test_with_write_statements_run_in_one_transaction_they_cannot_split(filled, settings):
    one_line_error(run(settings, "sql", "DELETE FROM splits; COMMIT; DELETE FROM clips", "--write"),
                   "controls the transaction")
    assert run_sql(filled, "SELECT COUNT(*) FROM clips")[1] == [(12,)]
    ok = run(settings, "sql", "DELETE FROM splits WHERE name = 'evaluation'; DELETE FROM splits WHERE name = 'x'",
             "--write")
    assert ok.exit_code == 0, ok.output
    assert run_sql(filled, "SELECT COUNT(*) FROM splits")[1] == [(9,)]  # committed


def test_queries_of_systems_and_reports_are_guarded_too(filled, tmp_path):
    bad = tmp_path / "bad.sql"
    bad.write_text("DELETE FROM clips; SELECT id AS run_id FROM runs")
    with pytest.raises(InputError, match="is not a query"):
        build_system(filled, "s", query_file=bad)
    result = run(filled.settings, "report", str(bad))
    one_line_error(result, "is not a query")
    assert run_sql(filled, "SELECT COUNT(*) FROM clips")[1] == [(12,)]


def test_typed_parameters(filled):
    _, rows = run_sql(filled, "SELECT CAST(:y AS VARCHAR) || '-' AS y, :n + 1 AS n",
                      {"y": "2024", "n": 1})
    assert rows == [("2024-", 2)]
    from aacbatch.typed import parse_params

    assert parse_params(["y:str=2024", "n:int=7", "x:float=1", "b:bool=true", "k=4"]) == {
        "y": "2024", "n": 7, "x": 1.0, "b": True, "k": 4}
    for bad in ("y:date=1", "n:int=x", "b:bool=maybe", "y:=1"):
        with pytest.raises(InputError):
            parse_params([bad])


# --- names are names -------------------------------------------------------------------------

BAD_NAMES = ["../../escaped", "a/b", ".hidden", "", "x" * 201, "a b", "-flag", "tab\tname", "new\nline", "..",
             "a..b", "ü"]


def test_dataset_names_cannot_be_paths(settings, clotho_dir):
    for name in BAD_NAMES:
        one_line_error(run(settings, "ingest", "clotho", clotho_dir, "--name", name), "is not a valid name")
    assert not (settings.home.parent / "escaped").exists()
    assert run(settings, "sql", "SELECT COUNT(*) FROM datasets", "--format", "csv").output.split() == ["count_star()", "0"]


def test_every_name_that_becomes_a_path_is_checked(filled, settings, tmp_path):
    one_line_error(run(settings, "split", "c", "--into", "../t,val"), "split name '../t'")
    one_line_error(run(settings, "system", "build", "../x"), "system name '../x'")
    one_line_error(run(settings, "featurize", "mel", "--dataset", "c", "--name", "../x"), "feature set name '../x'")
    listing = write_csv(tmp_path / "f" / "list.csv", ["file_name", "caption", "split"],
                        [["a.wav", "a sound.", "../../evil"]])
    shutil.copy(next(Path(filled.settings.home).parent.rglob("dev_000.wav")), tmp_path / "f" / "a.wav")
    one_line_error(run(settings, "ingest", "folder", listing, "--name", "f"), "split name")


def test_a_name_registered_before_the_check_cannot_write_outside_the_cache(filled, settings):
    with filled.transaction() as session:
        session.get(Dataset, session.query(Dataset).one().id).name = "../../escaped"
    one_line_error(run(settings, "featurize", "mel", "--dataset", "../../escaped"), "would be outside")
    assert not (Path(settings.cache_dir).parent.parent / "escaped").exists()


# --- damaged registries, read-only folders, busy ports, odd file names ----------------------

def test_a_damaged_registry_is_one_line_for_reads_and_writes(filled, settings, clotho_dir):
    path = settings.home / "registry.duckdb"
    size = path.stat().st_size
    with path.open("r+b") as handle:  # everything past the first third: reads may still work
        start = size // 3 // 4096 * 4096
        handle.seek(start)
        handle.write(np.random.default_rng(0).integers(0, 256, size - start, dtype=np.uint8).tobytes())
    outcomes = [run(settings, "sql", "SELECT COUNT(*) FROM clips"),
                run(settings, "ingest", "clotho", clotho_dir, "--name", "d"),
                run(settings, "split", "c")]
    assert any(r.exit_code != 0 for r in outcomes)
    for result in outcomes:
        if result.exit_code != 0:
            one_line_error(result, "damaged: restore it from a backup")


def _read_only_bind(source: Path, target: Path) -> bool:
    source.mkdir(parents=True, exist_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", "--bind", str(source), str(target)], check=True, capture_output=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True, capture_output=True)
        return True
    except (OSError, subprocess.CalledProcessError):
        subprocess.run(["umount", str(target)], capture_output=True)
        return False


@pytest.fixture
def read_only_dir(tmp_path):
    """A really read-only folder (a read-only bind mount; root ignores permission bits)."""
    source, target = tmp_path / "src", tmp_path / "ro"
    if not _read_only_bind(source, target):
        pytest.skip("cannot make a read-only bind mount here (needs root and mount)")
    yield target
    subprocess.run(["umount", str(target)], capture_output=True)


def test_a_read_only_home_is_one_line(read_only_dir, clotho_dir):
    result = CliRunner().invoke(cli, ["--home", str(read_only_dir / "home"), "ingest", "clotho", str(clotho_dir),
                                      "--name", "c"])
    one_line_error(result, "Read-only file system")


def test_a_read_only_output_folder_is_one_line(filled, settings, read_only_dir):
    one_line_error(run(settings, "report", "runs", "--out", read_only_dir / "runs.md"), "Read-only file system")


def test_a_refused_write_anywhere_is_one_line(filled, settings, monkeypatch):
    """Whatever folder the environment refuses (simulated here, as root ignores modes)."""
    def refuse(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "write_text", refuse)
    one_line_error(run(settings, "report", "runs", "--out", settings.home / "x" / "runs.md"),
                   "Read-only file system")


def test_a_busy_port_is_one_line_before_anything_loads(filled, settings):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        one_line_error(run(settings, "serve", "--index", "nope", "--port", port), "another program is listening")


@pytest.mark.parametrize("name", ["new\nline.json", "carriage\rreturn.json", "tab\t.json"])
def test_file_names_with_control_characters_stay_on_one_line(settings, tmp_path, name):
    refs = tmp_path / "refs.json"
    refs.write_text('{"a": ["a dog."]}')
    result = run(settings, "metrics", "caption", "--predictions", tmp_path / name, "--references", refs)
    assert result.exit_code != 0 and len(result.output.strip().splitlines()) == 1, result.output


# --- db check ---------------------------------------------------------------------------------

def test_db_check_finds_every_kind_of_break(filled, settings, clotho_dir):
    assert run(settings, "featurize", "mel", "--dataset", "c").exit_code == 0
    clean = run(settings, "db", "check")
    assert clean.exit_code == 0 and clean.output.startswith("registry ok"), clean.output
    with filled.transaction() as session:
        session.add(Caption(dataset_id="gone", clip_id="gone", idx=99, caption_index=0, text="orphan"))
        session.add(Score(run_id="no-such-run", split="val", metric="m", value=None, reason=None))
    (clotho_dir / "development" / "dev_001.wav").unlink()
    store = Path(settings.cache_dir) / "c" / "mel.zarr"
    next(p for p in (store / "mel" / "c").rglob("*") if p.is_file()).unlink()
    result = run(settings, "db", "check")
    assert result.exit_code == 1
    out = result.output
    assert "captions" in out and "clip gone does not exist" in out
    assert "is NULL without a reason (m)" in out and "belongs to no existing run or system" in out
    assert "dataset c: 1 of 12 audio files are missing" in out
    assert "feature set mel" in out and "damaged" in out and "--repair" in out
    deep = run(settings, "db", "check", "--deep")
    assert deep.exit_code == 1


def test_db_check_reads_and_never_writes(filled, settings):
    before = (settings.home / "registry.duckdb").read_bytes() if settings.db_url.startswith("duckdb") else None
    assert run(settings, "db", "check").exit_code == 0
    if before is not None:
        assert (settings.home / "registry.duckdb").read_bytes() == before


def test_sqlite_registry_also_works_read_only(tmp_path, clotho_dir):
    registry = Registry(Settings.resolve(home=tmp_path, db_url=f"sqlite:///{tmp_path / 'r.sqlite'}"))
    ingest(registry, "clotho", clotho_dir, name="c")
    with pytest.raises(InputError, match="is not a query"):
        run_sql(registry, "DELETE FROM clips")
    assert run_sql(registry, "SELECT COUNT(*) FROM clips")[1] == [(12,)]
    assert os.path.getsize(tmp_path / "r.sqlite") > 0


def test_long_jobs_report_progress_in_logs():
    import io

    from aacbatch.progress import LogProgress

    log = io.StringIO()
    bar = LogProgress(10, "featurize mel [c]", "clip", interval=0.0, stream=log)
    for _ in range(10):
        bar.update(1)
    bar.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 11 and lines[0].startswith("featurize mel [c]: 1/10 clips") and lines[-1].endswith("done")
    quiet = io.StringIO()
    short = LogProgress(10, "x", "clip", interval=3600, stream=quiet)
    short.update(10)
    short.close()
    assert quiet.getvalue() == ""  # a short job prints nothing: its command's own output stays clean


def test_config_values_out_of_range_are_refused_before_a_run_exists(synth_registry):
    from aacbatch.train.run import train_task

    for setting, message in (("epochs=0", "epochs = 0 is out of range"), ("lr=0.0", "allow_zero_lr"),
                             ("batch_size=-4", "batch_size = -4"), ("warmup_epochs=-1", "warmup_epochs"),
                             ("grad_clip=0.0", "grad_clip"), ("captions_per_clip=-1", "captions_per_clip")):
        with pytest.raises(InputError, match=message):
            train_task(synth_registry, "clap", dataset="sc", sets=("text='locked'", setting), log=lambda _: None)
    assert run_sql(synth_registry, "SELECT COUNT(*) FROM runs")[1] == [(0,)]


def test_set_values_are_read_for_the_field_they_set():
    """A run-id prefix made of digits stays text for a text field (it used to become a number)."""
    from dataclasses import dataclass

    from aacbatch.typed import build, parse_pairs

    @dataclass(frozen=True)
    class Fields:
        teacher: str = ""
        epochs: int = 1
        lr: float = 1.0
        splits: tuple[str, ...] = ()
        clip: float | None = None

    got = build(Fields, [("--set", parse_pairs(["teacher=13760041", "epochs=3", "lr=1e-4", "splits=['a']",
                                                 "clip=2"]))])
    assert got == Fields("13760041", 3, 1e-4, ("a",), 2.0)
    assert build(Fields, [("--set", parse_pairs(["teacher='quoted'"]))]).teacher == "quoted"
    with pytest.raises(InputError, match="epochs = 'x' is not a"):
        build(Fields, [("--set", parse_pairs(["epochs=x"]))])
