"""Scores, predictions and systems say which dataset they are on, so a run can be evaluated
on any dataset and no report mixes datasets silently.

* ``scores.dataset_id``, ``predictions.dataset_id``: the dataset a number (or caption, or
  similarity matrix) was computed on — the run's own dataset for everything written before,
  a system's members' dataset for system rows. ``systems.dataset_id``: the dataset a system's
  members were selected on.
* ``final_scores``, ``run_best_scores`` and ``system_scores`` gain ``eval_dataset`` (the
  dataset of the score; ``dataset`` stays the dataset the run was trained on; ``final_scores``
  also ``run_started_at``, the creation order that breaks ties in system queries), and
  ``run_best_scores``/``system_scores`` have one row per (run or system, eval_dataset, split).
* ``target_datasets``: per family, the dataset of its finished fine-tuned runs *when there
  is exactly one* (none when runs were fine-tuned on several: then a query must name it).

Revision ID: 0004
Revises: 0003
"""

import importlib.util
from pathlib import Path

from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

CHANGED = ("final_scores", "run_best_scores", "system_scores", "target_datasets")


def _revision(number: str, name: str):
    spec = importlib.util.spec_from_file_location(f"aacbatch_revision_{number}", Path(__file__).with_name(name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_VIEWS = _revision("0002", "0002_report_views.py")  # the pivot of metric columns, spelled once
PIVOT = _VIEWS.PIVOT

FINAL_SCORES = """
CREATE VIEW final_scores AS
SELECT i.run_id, i.task, i.family, i.dataset, i.parent_run_id, i.encoder_run, i.encoder_task, i.tag_loss,
       i.status, i.random_inputs, i.started_at AS run_started_at, COALESCE(sd.name, i.dataset) AS eval_dataset,
       s.split, s.metric, s.value, s.reason
FROM run_info i
JOIN scores s ON s.run_id = i.run_id AND s.epoch IS NULL
LEFT JOIN datasets sd ON sd.id = s.dataset_id
"""

RUN_BEST_SCORES = f"""
CREATE VIEW run_best_scores AS
SELECT i.run_id, i.task, i.family, i.dataset, i.parent_run_id, i.encoder_run, i.encoder_task, i.tag_loss,
       i.status, i.seed, i.random_weights, i.random_inputs, COALESCE(sd.name, i.dataset) AS eval_dataset, s.split,
       {PIVOT}
FROM run_info i
JOIN scores s ON s.run_id = i.run_id AND s.epoch IS NULL
LEFT JOIN datasets sd ON sd.id = s.dataset_id
GROUP BY i.run_id, i.task, i.family, i.dataset, i.parent_run_id, i.encoder_run, i.encoder_task, i.tag_loss,
         i.status, i.seed, i.random_weights, i.random_inputs, COALESCE(sd.name, i.dataset), s.split
"""

SYSTEM_SCORES = f"""
CREATE VIEW system_scores AS
WITH members AS (
    SELECT m.system_id,
           COUNT(*) AS n_members,
           MAX(CASE WHEN i.random_inputs THEN 1 ELSE 0 END) = 1 AS random_inputs
    FROM system_members m
    LEFT JOIN run_info i ON i.run_id = m.run_id
    GROUP BY m.system_id
)
SELECT y.id AS system_id, y.name, y.kind, yd.name AS dataset, mb.n_members, mb.random_inputs, y.warnings,
       sd.name AS eval_dataset, s.split,
       {PIVOT}
FROM systems y
JOIN scores s ON s.system_id = y.id AND s.epoch IS NULL
LEFT JOIN datasets yd ON yd.id = y.dataset_id
LEFT JOIN datasets sd ON sd.id = s.dataset_id
LEFT JOIN members mb ON mb.system_id = y.id
GROUP BY y.id, y.name, y.kind, yd.name, mb.n_members, mb.random_inputs, y.warnings, sd.name, s.split
"""

TARGET_DATASETS = """
CREATE VIEW target_datasets AS
WITH tuned AS (
    SELECT family, dataset, COUNT(*) AS n_runs
    FROM run_info
    WHERE status = 'finished' AND dataset IS NOT NULL AND parent_run_id IS NOT NULL
    GROUP BY family, dataset
)
SELECT family, MIN(dataset) AS dataset FROM tuned GROUP BY family HAVING COUNT(*) = 1
"""


def _has_column(table: str, column: str) -> bool:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        return any(row[1] == column for row in bind.exec_driver_sql(f"PRAGMA table_info({table})"))
    found = bind.execute(sa.text("SELECT COUNT(*) FROM information_schema.columns WHERE table_name = :t "
                                 "AND column_name = :c"), {"t": table, "c": column}).scalar()
    return bool(found)


def upgrade() -> None:
    for view in reversed(CHANGED):
        op.execute(f"DROP VIEW {view}")
    for table in ("scores", "predictions", "systems"):
        if not _has_column(table, "dataset_id"):  # a DuckDB downgrade leaves it in place
            op.add_column(table, sa.Column('dataset_id', sa.String(length=36), nullable=True))
        op.create_index(op.f(f'ix_{table}_dataset_id'), table, ['dataset_id'], unique=False)
    op.execute("UPDATE scores SET dataset_id = (SELECT r.dataset_id FROM runs r WHERE r.id = scores.run_id) "
               "WHERE run_id IS NOT NULL")
    op.execute("UPDATE predictions SET dataset_id = (SELECT r.dataset_id FROM runs r WHERE r.id = predictions.run_id) "
               "WHERE run_id IS NOT NULL")
    first_member = ("(SELECT r.dataset_id FROM system_members m JOIN runs r ON r.id = m.run_id "
                    "WHERE m.system_id = {table}.{column} ORDER BY m.rank LIMIT 1)")
    op.execute(f"UPDATE systems SET dataset_id = {first_member.format(table='systems', column='id')}")
    for table in ("scores", "predictions"):
        op.execute(f"UPDATE {table} SET dataset_id = {first_member.format(table=table, column='system_id')} "
                   "WHERE system_id IS NOT NULL")
    for statement in (FINAL_SCORES, RUN_BEST_SCORES, SYSTEM_SCORES, TARGET_DATASETS):
        op.execute(statement)


def downgrade() -> None:
    for view in reversed(CHANGED):
        op.execute(f"DROP VIEW {view}")
    for table in ("systems", "predictions", "scores"):
        op.drop_index(op.f(f'ix_{table}_dataset_id'), table_name=table)
        if op.get_bind().dialect.name != "duckdb":  # DuckDB cannot drop an indexed column in the
            op.drop_column(table, 'dataset_id')     # transaction that drops its index: it stays, unused
    for statement in (_VIEWS.FINAL_SCORES, _VIEWS.RUN_BEST_SCORES, _VIEWS.SYSTEM_SCORES, _VIEWS.TARGET_DATASETS):
        op.execute(statement)
