"""Report views: runs with their lineage, final scores long and wide, system scores, and
the dataset systems are built on by default — so hand-written SQL stays short.

* ``run_info``: one row per run — task, family (``retrieval`` for clap / clap_tag / claip /
  claip_tag, else the task), dataset name, parent, ``encoder_run`` / ``encoder_task`` of a
  captioner, ``tag_loss`` (a CLAP-TAG run's own, or a captioner's encoder's), the selection
  metric, ``random_weights`` (the run's own inputs) and ``random_inputs`` (its own or those
  of any run it descends from through parents and encoders).
* ``final_scores``: ``run_info`` × the final scores (epoch NULL, the best checkpoint), long.
* ``run_best_scores``: one row per run and split, the final metrics as columns.
* ``system_scores``: one row per system and split, the same metric columns.
* ``target_datasets``: per family, the dataset of the latest finished fine-tuned run (any
  finished run when none was fine-tuned) — the default ``:dataset`` of ``sql/systems``.

Config fields are JSON text; the only dialect difference is how a key is read, so it is
spelled once here (DuckDB and PostgreSQL: ``CAST(x AS JSON) ->> 'key'``; SQLite:
``json_extract``).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

VIEWS = ("run_info", "final_scores", "run_best_scores", "system_scores", "target_datasets")

# (column name, metric) of the wide views, in display order.
METRIC_COLUMNS = (
    ("t2a_r1", "t2a/R@1"), ("t2a_r5", "t2a/R@5"), ("t2a_r10", "t2a/R@10"), ("t2a_map10", "t2a/mAP@10"),
    ("a2t_r1", "a2t/R@1"), ("a2t_r5", "a2t/R@5"), ("a2t_r10", "a2t/R@10"), ("a2t_map10", "a2t/mAP@10"),
    ("meteor", "meteor"), ("cider_d", "cider_d"), ("spice", "spice"), ("spider", "spider"), ("spider_fl", "spider_fl"),
)
PIVOT = ",\n       ".join(f"MAX(CASE WHEN s.metric = '{metric}' THEN s.value END) AS {column}"
                        for column, metric in METRIC_COLUMNS)


def _json(column: str, key: str) -> str:
    if op.get_bind().dialect.name == "sqlite":
        return f"json_extract({column}, '$.{key}')"
    return f"CAST({column} AS JSON) ->> '{key}'"


def _run_info() -> str:
    encoder = _json("r.config_json", "encoder_run")
    return f"""
CREATE VIEW run_info AS
WITH RECURSIVE links(run_id, input_id) AS (
    SELECT id, parent_run_id FROM runs WHERE parent_run_id IS NOT NULL
    UNION ALL
    SELECT r.id, {encoder} FROM runs r WHERE {encoder} IS NOT NULL
),
ancestry(run_id, input_id) AS (
    SELECT run_id, input_id FROM links
    UNION
    SELECT a.run_id, l.input_id FROM ancestry a JOIN links l ON l.run_id = a.input_id
),
random_ancestry AS (
    SELECT DISTINCT a.run_id FROM ancestry a JOIN runs x ON x.id = a.input_id WHERE x.random_weights
)
SELECT r.id AS run_id,
       r.task,
       CASE WHEN r.task IN ('clap', 'clap_tag', 'claip', 'claip_tag') THEN 'retrieval' ELSE r.task END AS family,
       d.name AS dataset,
       r.parent_run_id,
       {encoder} AS encoder_run,
       e.task AS encoder_task,
       CASE WHEN r.task IN ('clap_tag', 'claip_tag') THEN {_json("r.config_json", "tag_loss")}
            WHEN e.task IN ('clap_tag', 'claip_tag') THEN {_json("e.config_json", "tag_loss")} END AS tag_loss,
       COALESCE({_json("r.config_json", "select_metric")},
                CASE WHEN r.task = 'tagger' THEN 'mAP' WHEN r.task LIKE '%caption' THEN 'cider_d'
                     ELSE 't2a/mAP@10' END) AS select_metric,
       r.seed,
       r.status,
       r.random_weights,
       r.random_weights OR ra.run_id IS NOT NULL AS random_inputs,
       r.started_at,
       r.finished_at
FROM runs r
LEFT JOIN datasets d ON d.id = r.dataset_id
LEFT JOIN runs e ON e.id = {encoder}
LEFT JOIN random_ancestry ra ON ra.run_id = r.id
"""


FINAL_SCORES = """
CREATE VIEW final_scores AS
SELECT i.run_id, i.task, i.family, i.dataset, i.parent_run_id, i.encoder_run, i.encoder_task, i.tag_loss,
       i.status, i.random_inputs, s.split, s.metric, s.value, s.reason
FROM run_info i
JOIN scores s ON s.run_id = i.run_id AND s.epoch IS NULL
"""

RUN_BEST_SCORES = f"""
CREATE VIEW run_best_scores AS
SELECT i.run_id, i.task, i.family, i.dataset, i.parent_run_id, i.encoder_run, i.encoder_task, i.tag_loss,
       i.status, i.seed, i.random_weights, i.random_inputs, s.split,
       {PIVOT}
FROM run_info i
JOIN scores s ON s.run_id = i.run_id AND s.epoch IS NULL
GROUP BY i.run_id, i.task, i.family, i.dataset, i.parent_run_id, i.encoder_run, i.encoder_task, i.tag_loss,
         i.status, i.seed, i.random_weights, i.random_inputs, s.split
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
SELECT y.id AS system_id, y.name, y.kind, mb.n_members, mb.random_inputs, y.warnings, s.split,
       {PIVOT}
FROM systems y
JOIN scores s ON s.system_id = y.id AND s.epoch IS NULL
LEFT JOIN members mb ON mb.system_id = y.id
GROUP BY y.id, y.name, y.kind, mb.n_members, mb.random_inputs, y.warnings, s.split
"""

TARGET_DATASETS = """
CREATE VIEW target_datasets AS
WITH ranked AS (
    SELECT family, dataset,
           ROW_NUMBER() OVER (PARTITION BY family
                              ORDER BY CASE WHEN parent_run_id IS NULL THEN 1 ELSE 0 END, finished_at DESC, run_id) AS n
    FROM run_info
    WHERE status = 'finished' AND dataset IS NOT NULL
)
SELECT family, dataset FROM ranked WHERE n = 1
"""


def upgrade() -> None:
    for statement in (_run_info(), FINAL_SCORES, RUN_BEST_SCORES, SYSTEM_SCORES, TARGET_DATASETS):
        op.execute(statement)


def downgrade() -> None:
    for view in reversed(VIEWS):
        op.execute(f"DROP VIEW {view}")
