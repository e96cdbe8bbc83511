"""The task catalog as a table: views read a run's family, tag loss and selection metric
from ``tasks`` (filled from ``aacbatch.catalog`` on every upgrade) instead of ``CASE``
expressions that named tasks.

* ``tasks``: one row per catalog task — family (retrieval / caption / tagger / baseline),
  output, selection metric, whether it trains with a tag loss or an image loss, whether its
  runs can be encoders or system members.
* ``run_info`` joins it: ``family`` is the catalog's (the bag-of-words and most-frequent-
  caption baselines are now family ``baseline``), a new ``output`` column says what the
  run's scores are (retrieval, caption, tagging), ``tag_loss`` is read from the config of
  runs whose task has a tag loss (or of a captioner's encoder), ``select_metric`` falls back
  to the catalog's. The views built on it are recreated unchanged (from revision 0002's
  definitions).

Revision ID: 0003
Revises: 0002
"""

import importlib.util
from pathlib import Path

from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _revision_0002():
    """Revision 0002's module: the views that do not change are created from its definitions
    (and a downgrade recreates all of its views)."""
    spec = importlib.util.spec_from_file_location("aacbatch_revision_0002", Path(__file__).with_name("0002_report_views.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_BEFORE = _revision_0002()
_json = _BEFORE._json  # a JSON key read, spelled per dialect


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
       COALESCE(t.family, r.task) AS family,
       t.output,
       d.name AS dataset,
       r.parent_run_id,
       {encoder} AS encoder_run,
       e.task AS encoder_task,
       CASE WHEN t.tag_loss THEN {_json("r.config_json", "tag_loss")}
            WHEN et.tag_loss THEN {_json("e.config_json", "tag_loss")} END AS tag_loss,
       COALESCE({_json("r.config_json", "select_metric")}, t.select_metric) AS select_metric,
       r.seed,
       r.status,
       r.random_weights,
       r.random_weights OR ra.run_id IS NOT NULL AS random_inputs,
       r.started_at,
       r.finished_at
FROM runs r
LEFT JOIN tasks t ON t.name = r.task
LEFT JOIN datasets d ON d.id = r.dataset_id
LEFT JOIN runs e ON e.id = {encoder}
LEFT JOIN tasks et ON et.name = e.task
LEFT JOIN random_ancestry ra ON ra.run_id = r.id
"""


def upgrade() -> None:
    before = _BEFORE
    for view in reversed(before.VIEWS):
        op.execute(f"DROP VIEW {view}")
    op.create_table('tasks',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('family', sa.String(length=32), nullable=False),
    sa.Column('output', sa.String(length=32), nullable=False),
    sa.Column('select_metric', sa.String(length=64), nullable=False),
    sa.Column('tag_loss', sa.Boolean(), nullable=False),
    sa.Column('image_loss', sa.Boolean(), nullable=False),
    sa.Column('encoder', sa.Boolean(), nullable=False),
    sa.Column('ensemble', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_tasks'))
    )
    for statement in (_run_info(), before.FINAL_SCORES, before.RUN_BEST_SCORES, before.SYSTEM_SCORES,
                      before.TARGET_DATASETS):
        op.execute(statement)


def downgrade() -> None:
    before = _BEFORE
    for view in reversed(before.VIEWS):
        op.execute(f"DROP VIEW {view}")
    op.drop_table('tasks')
    before.upgrade()
