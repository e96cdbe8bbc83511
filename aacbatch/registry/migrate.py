"""Alembic glue: the schema is created and changed only by revisions in ``migrations/``.

Alembic has no built-in implementation for the ``duckdb`` dialect (it fails with
``KeyError: 'duckdb'``); :class:`DuckDBImpl` registers one. DuckDB runs DDL inside
transactions, so revisions apply atomically there as on PostgreSQL.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.ddl.impl import DefaultImpl
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from aacbatch import catalog
from aacbatch.registry.schema import TaskRow
from aacbatch.resources import resource_dir


class DuckDBImpl(DefaultImpl):
    """Registers DuckDB with Alembic (defining the subclass is the registration)."""

    __dialect__ = "duckdb"
    transactional_ddl = True


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged ``migrations/`` directory."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resource_dir("migrations")))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of this aacbatch's revisions (a registry written by a later
    version is at one it does not know, and cannot be upgraded or read safely)."""
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, target: str = "head") -> None:
    """Apply all revisions up to ``target`` on ``connection`` (caller commits)."""
    command.upgrade(alembic_config(connection), target)


def catalog_rows() -> set[tuple]:
    """The ``tasks`` table as the catalog says it should be."""
    return {(t.name, t.family, t.output, t.select_metric, t.uses_tags, t.uses_images, t.encoder, t.ensemble)
            for t in catalog.TASKS.values()}


_TASK_COLUMNS = ("name", "family", "output", "select_metric", "tag_loss", "image_loss", "encoder", "ensemble")


def catalog_in_sync(connection: Connection) -> bool:
    rows = connection.execute(select(*(getattr(TaskRow, c) for c in _TASK_COLUMNS))).all()
    return {tuple(r) for r in rows} == catalog_rows()


def sync_catalog(connection: Connection) -> None:
    """Make the ``tasks`` table equal the catalog (caller commits): what ``db upgrade`` and the
    first use of a registry do, so adding a task to the catalog reaches the SQL views."""
    connection.execute(delete(TaskRow))
    connection.execute(insert(TaskRow), [dict(zip(_TASK_COLUMNS, row)) for row in sorted(catalog_rows())])
