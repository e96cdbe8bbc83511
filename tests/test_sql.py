"""`aacbatch sql`: bound parameters only, read-only by default, every output format."""

from __future__ import annotations

import json

import pytest

from aacbatch.data.ingest import ingest
from aacbatch.errors import InputError
from aacbatch.formatting import render
from aacbatch.registry.queries import named_query, parse_params, placeholders, run_sql


def test_params_are_bound_never_interpolated(registry, clotho_dir):
    ingest(registry, "clotho", clotho_dir, name="c")
    evil = "c' OR '1'='1"
    _, rows = run_sql(registry, "SELECT name FROM datasets WHERE name = :n", {"n": evil})
    assert rows == []
    _, rows = run_sql(registry, "SELECT name FROM datasets WHERE name = :n", parse_params(["n=c"]))
    assert rows == [("c",)]
    with pytest.raises(InputError, match="expected NAME=VALUE"):
        parse_params(["n; DROP TABLE datasets=1"])


def test_numeric_params_work_in_limit_and_placeholders_skip_casts_and_strings():
    assert parse_params(["k=4", "x=0.5", "s=val"]) == {"k": 4, "x": 0.5, "s": "val"}
    assert placeholders("SELECT x::INTEGER, ':not' FROM t WHERE a = :a LIMIT :k") == ["a", "k"]


def test_missing_and_unused_params_are_named(registry):
    with pytest.raises(InputError, match="needs parameter.*split.*--param split=VALUE"):
        run_sql(registry, "SELECT * FROM scores WHERE split = :split")
    with pytest.raises(InputError, match="no placeholder :k"):
        run_sql(registry, "SELECT 1", {"k": 1})


def test_writes_roll_back_unless_write(registry):
    run_sql(registry, "DELETE FROM datasets")
    sql = "INSERT INTO datasets VALUES ('i', 'n', 'folder', '/', 'f', 0, 0, '{}', CURRENT_TIMESTAMP)"
    run_sql(registry, sql)
    assert run_sql(registry, "SELECT COUNT(*) FROM datasets")[1] == [(0,)]
    run_sql(registry, sql, write=True)
    assert run_sql(registry, "SELECT COUNT(*) FROM datasets")[1] == [(1,)]


def test_sql_errors_are_one_clear_line(registry):
    with pytest.raises(InputError, match=r"^my\.sql: .*nope"):
        run_sql(registry, "SELECT * FROM nope", source="my.sql")


def test_datasets_query_summarises_splits(registry, clotho_dir):
    ingest(registry, "clotho", clotho_dir, name="c")
    columns, rows = run_sql(registry, named_query("datasets").read_text())
    record = dict(zip(columns, rows[0]))
    assert record["dataset"] == "c" and record["n_clips"] == 12 and record["n_captions"] == 60
    assert record["splits"] == "development=6 evaluation=3 validation=3"


def test_render_formats():
    columns, rows = ["a", "b"], [(1, 0.123456), ("x,y", None)]
    assert render(columns, rows, "csv") == 'a,b\n1,0.123456\n"x,y",'
    assert json.loads(render(columns, rows, "json")) == [{"a": 1, "b": 0.123456}, {"a": "x,y", "b": None}]
    assert render(columns, rows, "md").splitlines()[2] == "| 1   | 0.1235 |"
    assert render(columns, rows, "table").splitlines()[3] == "x,y  NULL"
