"""Every final score with its uncertainty and its provenance, and runs grouped by seed.

* ``scores.ci_low``, ``ci_high``, ``ci_level``: the bootstrap interval over clips of a final
  score (NULL where none was computed, e.g. per-epoch rows or rows written before);
  ``scores.provenance_id`` → ``provenance``: which implementation computed it (versions, git
  revision, SHA-256 of every jar/model folder used, tokenisation), one row per distinct record.
* ``runs.seed_group``: equal for runs that differ only in their seed (same task, dataset,
  config but seed, inputs and parent group), filled here for existing runs.
* Views: ``final_scores`` carries the interval and provenance id; ``run_best_scores`` and
  ``system_scores`` pivot the caption metrics BLEU-1/4, ROUGE-L, FENSE, Vocab and SPIDEr-max
  too, and every metric's interval as ``<metric>_low``/``<metric>_high``; ``seed_groups`` gives
  mean, standard deviation and count per group, split and metric.

Revision ID: 0005
Revises: 0004
"""

import importlib.util
import json
from pathlib import Path

from alembic import op
import sqlalchemy as sa

from aacbatch.registry.runs import seed_group_of

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

CHANGED = ("final_scores", "run_best_scores", "system_scores")
METRIC_COLUMNS = (
    ("t2a_r1", "t2a/R@1"), ("t2a_r5", "t2a/R@5"), ("t2a_r10", "t2a/R@10"), ("t2a_map10", "t2a/mAP@10"),
    ("a2t_r1", "a2t/R@1"), ("a2t_r5", "a2t/R@5"), ("a2t_r10", "a2t/R@10"), ("a2t_map10", "a2t/mAP@10"),
    ("meteor", "meteor"), ("cider_d", "cider_d"), ("spice", "spice"), ("spider", "spider"), ("spider_fl", "spider_fl"),
    ("bleu_1", "bleu_1"), ("bleu_4", "bleu_4"), ("rouge_l", "rouge_l"), ("fense", "fense"), ("vocab", "vocab"),
    ("spider_max", "spider_max"),
)
PIVOT = ",\n       ".join(
    f"MAX(CASE WHEN s.metric = '{metric}' THEN s.{field} END) AS {column}{suffix}"
    for column, metric in METRIC_COLUMNS for field, suffix in (("value", ""), ("ci_low", "_low"), ("ci_high", "_high")))


def _revision(name: str):
    spec = importlib.util.spec_from_file_location(f"aacbatch_revision_{name[:4]}", Path(__file__).with_name(name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_BEFORE = _revision("0004_scores_by_dataset.py")

FINAL_SCORES = """
CREATE VIEW final_scores AS
SELECT i.run_id, i.task, i.family, i.dataset, i.parent_run_id, i.encoder_run, i.encoder_task, i.tag_loss,
       i.status, i.random_inputs, i.started_at AS run_started_at, COALESCE(sd.name, i.dataset) AS eval_dataset,
       s.split, s.metric, s.value, s.reason, s.ci_low, s.ci_high, s.ci_level, s.provenance_id
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


def _seed_groups() -> str:
    sd = "NULL" if op.get_bind().dialect.name == "sqlite" else "STDDEV_SAMP(f.value)"  # SQLite has no STDDEV
    return f"""
CREATE VIEW seed_groups AS
SELECT r.seed_group, f.task, f.family, f.dataset, f.tag_loss, f.eval_dataset, f.split, f.metric,
       COUNT(f.value) AS n, AVG(f.value) AS mean, {sd} AS sd, MIN(f.value) AS min, MAX(f.value) AS max
FROM final_scores f
JOIN runs r ON r.id = f.run_id
WHERE f.status = 'finished' AND r.seed_group IS NOT NULL
GROUP BY r.seed_group, f.task, f.family, f.dataset, f.tag_loss, f.eval_dataset, f.split, f.metric
"""


def upgrade() -> None:
    for view in reversed(CHANGED):
        op.execute(f"DROP VIEW {view}")
    for column, kind in (("ci_low", sa.Double()), ("ci_high", sa.Double()), ("ci_level", sa.Double()),
                         ("provenance_id", sa.String(length=64))):
        if not _BEFORE._has_column("scores", column):
            op.add_column("scores", sa.Column(column, kind, nullable=True))
    if not _BEFORE._has_column("runs", "seed_group"):
        op.add_column("runs", sa.Column("seed_group", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_runs_seed_group"), "runs", ["seed_group"], unique=False)
    op.create_table("provenance",
                    sa.Column("id", sa.String(length=64), nullable=False),
                    sa.Column("record_json", sa.Text(), nullable=False),
                    sa.Column("created_at", sa.DateTime(), nullable=False),
                    sa.PrimaryKeyConstraint("id", name=op.f("pk_provenance")))
    _fill_seed_groups()
    for statement in (FINAL_SCORES, RUN_BEST_SCORES, SYSTEM_SCORES, _seed_groups()):
        op.execute(statement)


def _fill_seed_groups() -> None:
    """Existing runs, parents before children (a run's group includes its parent's)."""
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, task, dataset_id, parent_run_id, config_json, feature_sets_json FROM runs "
                                "ORDER BY started_at, id")).all()
    groups: dict[str, str] = {}
    for run_id, task, dataset_id, parent, config, feature_sets in rows:
        groups[run_id] = seed_group_of(task, dataset_id, json.loads(config), json.loads(feature_sets),
                                       groups.get(parent) if parent else None)
        bind.execute(sa.text("UPDATE runs SET seed_group = :g WHERE id = :i"), {"g": groups[run_id], "i": run_id})


def downgrade() -> None:
    op.execute("DROP VIEW seed_groups")
    for view in reversed(CHANGED):
        op.execute(f"DROP VIEW {view}")
    op.drop_table("provenance")
    op.drop_index(op.f("ix_runs_seed_group"), table_name="runs")
    if op.get_bind().dialect.name != "duckdb":  # as in 0004: DuckDB keeps the (unused) columns
        op.drop_column("runs", "seed_group")
        for column in ("provenance_id", "ci_level", "ci_high", "ci_low"):
            op.drop_column("scores", column)
    for statement in (_BEFORE.FINAL_SCORES, _BEFORE.RUN_BEST_SCORES, _BEFORE.SYSTEM_SCORES):
        op.execute(statement)
