"""`aacbatch sql`: bound parameters only, read-only by default, every output format."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from aacbatch.data.ingest import ingest
from aacbatch.errors import InputError
from aacbatch.formatting import render
from aacbatch.registry.queries import named_query, placeholders, run_sql
from aacbatch.typed import parse_params
from aacbatch.registry.schema import Dataset, FeatureSet

pytestmark = pytest.mark.backends("duckdb", "postgresql")


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


def test_writes_are_refused_unless_write(registry):
    with pytest.raises(InputError, match="is not a query; without --write only queries run"):
        run_sql(registry, "DELETE FROM datasets")
    sql = "INSERT INTO datasets VALUES ('i', 'n', 'folder', '/', 'f', 0, 0, '{}', CURRENT_TIMESTAMP)"
    with pytest.raises(InputError, match="pass --write"):
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
    assert isinstance(record["hours"], float) and record["hours"] == 0.002  # 12 clips x 0.5 s, 3 places


def test_feature_sets_query_lists_all_datasets_or_one(registry, clotho_dir):
    """``:dataset`` may be NULL (all datasets): the placeholder needs a type on PostgreSQL."""
    for name in ("a", "b"):
        ingest(registry, "clotho", clotho_dir, name=name)
    with registry.transaction() as session:
        ids = dict(session.execute(select(Dataset.name, Dataset.id)).all())
        for name, random in (("a", True), ("b", False)):
            session.add(FeatureSet(name="mel", kind="mel", dataset_id=ids[name], fingerprint="f" * 64,
                                   spec_json="{}", random_weights=random, path=f"/cache/{name}", status="complete"))
    sql = named_query("feature_sets").read_text()
    columns, rows = run_sql(registry, sql, {"dataset": None})
    assert [(r[0], r[columns.index("model")]) for r in rows] == [("a", "random weights"), ("b", "")]
    _, rows = run_sql(registry, sql, {"dataset": "b"})
    assert [r[0] for r in rows] == ["b"]


def test_render_formats():
    columns, rows = ["a", "b"], [(1, 0.123456), ("x,y", None)]
    assert render(columns, rows, "csv") == 'a,b\n1,0.123456\n"x,y",'
    assert json.loads(render(columns, rows, "json")) == [{"a": 1, "b": 0.123456}, {"a": "x,y", "b": None}]
    assert render(columns, rows, "md").splitlines()[2] == "| 1   | 0.1235 |"
    assert render(columns, rows, "table").splitlines()[3] == "x,y  NULL"


def test_scores_keep_double_precision(registry):
    from aacbatch.registry.runs import RunRecorder

    recorder = RunRecorder.start(registry, task="tagger", config={}, dataset_id=None, parent_run_id=None,
                                 feature_sets=[], seed=0, random_weights=False)
    recorder.scores("val", {"mAP": 0.123456789012345}, epoch=1)
    assert run_sql(registry, "SELECT value FROM scores")[1] == [(0.123456789012345,)]
