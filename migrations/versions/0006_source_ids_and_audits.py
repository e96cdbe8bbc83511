"""Where each clip's audio came from, and acoustic overlap audits.

* ``clips.source``, ``source_id``, ``source_start``, ``licence``: the recording a clip was cut
  from (FreeSound id, YouTube id + start, WavCaps entry id) as ingest reads it, indexed on
  ``(source, source_id)`` so that the same recording in two datasets is a join;
  ``clips.overlap_lists``: the published overlap lists that name a clip kept with
  ``--keep-overlap``. Existing clips get NULL (re-ingest with ``--replace`` to fill them).
* ``audits`` and ``audit_matches``: each ``aacbatch audit overlap`` and the clip pairs it
  found sharing audio, with where the shared audio starts in each, how long it is, and scores.

Revision ID: 0006
Revises: 0005
"""

import runpy
from pathlib import Path

from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

CLIP_COLUMNS = (("source", sa.String(length=32)), ("source_id", sa.Text()), ("source_start", sa.Double()),
                ("licence", sa.Text()), ("overlap_lists", sa.Text()))


# revisions are files, not modules: 0004's column check, read from its file
_has_column = runpy.run_path(str(Path(__file__).with_name("0004_scores_by_dataset.py")))["_has_column"]


def upgrade() -> None:
    for column, kind in CLIP_COLUMNS:
        if not _has_column("clips", column):  # a DuckDB downgrade leaves them in place
            op.add_column("clips", sa.Column(column, kind, nullable=True))
    op.create_index(op.f("ix_clips_source_source_id"), "clips", ["source", "source_id"], unique=False)
    op.create_table("audits",
                    sa.Column("id", sa.String(length=36), nullable=False),
                    sa.Column("datasets_json", sa.Text(), nullable=False),
                    sa.Column("pairs", sa.String(length=16), nullable=False),
                    sa.Column("params_json", sa.Text(), nullable=False),
                    sa.Column("n_clips", sa.Integer(), nullable=False),
                    sa.Column("n_matches", sa.Integer(), nullable=False),
                    sa.Column("created_at", sa.DateTime(), nullable=False),
                    sa.PrimaryKeyConstraint("id", name=op.f("pk_audits")))
    op.create_table("audit_matches",
                    sa.Column("id", sa.String(length=36), nullable=False),
                    sa.Column("audit_id", sa.String(length=36), nullable=False),
                    sa.Column("clip_a_id", sa.String(length=36), nullable=False),
                    sa.Column("clip_b_id", sa.String(length=36), nullable=False),
                    *(sa.Column(name, sa.Double(), nullable=False)
                      for name in ("start_a", "start_b", "duration", "score", "specificity")),
                    sa.Column("votes", sa.Integer(), nullable=False),
                    sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_matches")))
    for column in ("audit_id", "clip_a_id", "clip_b_id"):
        op.create_index(op.f(f"ix_audit_matches_{column}"), "audit_matches", [column], unique=False)


def downgrade() -> None:
    for column in ("clip_b_id", "clip_a_id", "audit_id"):
        op.drop_index(op.f(f"ix_audit_matches_{column}"), table_name="audit_matches")
    op.drop_table("audit_matches")
    op.drop_table("audits")
    op.drop_index(op.f("ix_clips_source_source_id"), table_name="clips")
    if op.get_bind().dialect.name != "duckdb":  # as in 0004: DuckDB keeps the (unused) columns
        for column, _ in reversed(CLIP_COLUMNS):
            op.drop_column("clips", column)
