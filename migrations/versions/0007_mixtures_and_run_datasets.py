"""Runs that train on several datasets: mixtures, and every dataset a run read.

* ``mixtures`` and ``mixture_members``: a named list of datasets with sampling weights
  (``aacbatch mixture create``); ``runs.mixture_id``: the mixture a run trained on, when it
  was named by one.
* ``run_datasets``: each dataset a run trained on (``role`` train, in member order, with its
  weight, split, content fingerprint, examples given and clips left out as copies of an
  earlier member's) and the dataset it was validated on (``role`` val). Existing runs get
  their one dataset, as train and val, filled here.
* Views: ``run_info`` gains ``mixture`` and ``n_train_datasets``, ``final_scores`` and
  ``run_best_scores`` gain ``mixture`` (the other views built on them are re-created
  unchanged); ``run_corpus`` lists every run's datasets with their format, so
  "every CLAP-TAG run that trained on WavCaps" is one ``WHERE``.

Revision ID: 0007
Revises: 0006
"""

import json
import runpy
import uuid
from pathlib import Path

from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def _revision(name: str) -> dict:
    """An earlier revision's globals (revisions are files, not modules)."""
    return runpy.run_path(str(Path(__file__).with_name(name)))


_R3, _R4, _R5 = (_revision(n) for n in ("0003_task_catalog.py", "0004_scores_by_dataset.py",
                                        "0005_intervals_provenance_seeds.py"))
DEPENDENTS = ("seed_groups", "target_datasets", "system_scores", "run_best_scores", "final_scores")  # drop order


def _run_info() -> str:
    """0003's ``run_info`` with the two new columns appended."""
    before = _R3["_run_info"]()
    columns = ("       r.finished_at,\n       mx.name AS mixture,\n"
               "       (SELECT COUNT(*) FROM run_datasets rd WHERE rd.run_id = r.id AND rd.role = 'train')"
               " AS n_train_datasets\nFROM runs r\nLEFT JOIN mixtures mx ON mx.id = r.mixture_id\n")
    after = before.replace("       r.finished_at\nFROM runs r\n", columns)
    assert after != before, "0003's run_info changed shape"
    return after


RUN_CORPUS = """
CREATE VIEW run_corpus AS
SELECT r.id AS run_id, r.task, COALESCE(t.family, r.task) AS family, r.status, mx.name AS mixture,
       rd.role, rd.position, d.name AS dataset, d.format, rd.split, rd.weight, rd.n_examples, rd.n_duplicates,
       rd.fingerprint, rd.fingerprint = d.fingerprint AS same_content
FROM run_datasets rd
JOIN runs r ON r.id = rd.run_id
LEFT JOIN tasks t ON t.name = r.task
LEFT JOIN datasets d ON d.id = rd.dataset_id
LEFT JOIN mixtures mx ON mx.id = r.mixture_id
"""


def _appended(statement: str, edits: tuple[tuple[str, str], ...]) -> str:
    """An earlier revision's view with the mixture column added (each edit must apply)."""
    for before, after in edits:
        assert statement.count(before) == 1, f"an earlier view changed shape near {before!r}"
        statement = statement.replace(before, after)
    return statement


def _final_scores() -> str:
    return _appended(_R5["FINAL_SCORES"], (("s.ci_level, s.provenance_id\nFROM run_info i",
                                            "s.ci_level, s.provenance_id, i.mixture\nFROM run_info i"),))


def _run_best_scores() -> str:
    return _appended(_R5["RUN_BEST_SCORES"], (("AS eval_dataset, s.split,\n", "AS eval_dataset, s.split, i.mixture,\n"),
                                              ("COALESCE(sd.name, i.dataset), s.split\n",
                                               "COALESCE(sd.name, i.dataset), s.split, i.mixture\n")))


def _views(run_info: str, final_scores: str, run_best_scores: str) -> tuple[str, ...]:
    return (run_info, final_scores, run_best_scores, _R5["SYSTEM_SCORES"], _R4["TARGET_DATASETS"],
            _R5["_seed_groups"]())


def upgrade() -> None:
    for view in (*DEPENDENTS, "run_info"):
        op.execute(f"DROP VIEW {view}")
    if not _R4["_has_column"]("runs", "mixture_id"):  # a DuckDB downgrade leaves it in place
        op.add_column("runs", sa.Column("mixture_id", sa.String(length=36), nullable=True))
    op.create_index(op.f("ix_runs_mixture_id"), "runs", ["mixture_id"], unique=False)
    op.create_table("mixtures",
                    sa.Column("id", sa.String(length=36), nullable=False),
                    sa.Column("name", sa.String(length=200), nullable=False),
                    sa.Column("created_at", sa.DateTime(), nullable=False),
                    sa.PrimaryKeyConstraint("id", name=op.f("pk_mixtures")),
                    sa.UniqueConstraint("name", name=op.f("uq_mixtures_name")))
    op.create_table("mixture_members",
                    sa.Column("id", sa.String(length=36), nullable=False),
                    sa.Column("mixture_id", sa.String(length=36), nullable=False),
                    sa.Column("dataset_id", sa.String(length=36), nullable=False),
                    sa.Column("position", sa.Integer(), nullable=False),
                    sa.Column("weight", sa.Double(), nullable=False),
                    sa.PrimaryKeyConstraint("id", name=op.f("pk_mixture_members")),
                    sa.UniqueConstraint("mixture_id", "position", name=op.f("uq_mixture_members_mixture_id_position")))
    op.create_table("run_datasets",
                    sa.Column("id", sa.String(length=36), nullable=False),
                    sa.Column("run_id", sa.String(length=36), nullable=False),
                    sa.Column("dataset_id", sa.String(length=36), nullable=False),
                    sa.Column("role", sa.String(length=8), nullable=False),
                    sa.Column("position", sa.Integer(), nullable=False),
                    sa.Column("split", sa.String(length=64), nullable=False),
                    sa.Column("fingerprint", sa.String(length=64), nullable=False),
                    sa.Column("weight", sa.Double(), nullable=True),
                    sa.Column("n_examples", sa.Integer(), nullable=True),
                    sa.Column("n_duplicates", sa.Integer(), nullable=True),
                    sa.PrimaryKeyConstraint("id", name=op.f("pk_run_datasets")))
    for table, column in (("mixture_members", "mixture_id"), ("mixture_members", "dataset_id"),
                          ("run_datasets", "run_id"), ("run_datasets", "dataset_id")):
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)
    _fill_run_datasets()
    for statement in (*_views(_run_info(), _final_scores(), _run_best_scores()), RUN_CORPUS):
        op.execute(statement)


def _fill_run_datasets() -> None:
    """Each existing run's one dataset, as what it trained on and was validated on."""
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT r.id, r.dataset_id, r.config_json, d.fingerprint FROM runs r "
                                "JOIN datasets d ON d.id = r.dataset_id")).all()
    for run_id, dataset_id, config, fingerprint in rows:
        config = json.loads(config)
        for role, split in (("train", config.get("train_split") or "train"), ("val", config.get("val_split") or "val")):
            bind.execute(sa.text("INSERT INTO run_datasets (id, run_id, dataset_id, role, position, split, fingerprint, "
                                 "weight) VALUES (:id, :run, :dataset, :role, 0, :split, :fp, :weight)"),
                         {"id": str(uuid.uuid4()), "run": run_id, "dataset": dataset_id, "role": role, "split": split,
                          "fp": fingerprint, "weight": 1.0 if role == "train" else None})


def downgrade() -> None:
    op.execute("DROP VIEW run_corpus")
    for view in (*DEPENDENTS, "run_info"):
        op.execute(f"DROP VIEW {view}")
    for table, column in (("run_datasets", "dataset_id"), ("run_datasets", "run_id"),
                          ("mixture_members", "dataset_id"), ("mixture_members", "mixture_id")):
        op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)
    for table in ("run_datasets", "mixture_members", "mixtures"):
        op.drop_table(table)
    op.drop_index(op.f("ix_runs_mixture_id"), table_name="runs")
    if op.get_bind().dialect.name != "duckdb":  # as in 0004: DuckDB keeps the (unused) column
        op.drop_column("runs", "mixture_id")
    for statement in _views(_R3["_run_info"](), _R5["FINAL_SCORES"], _R5["RUN_BEST_SCORES"]):
        op.execute(statement)
