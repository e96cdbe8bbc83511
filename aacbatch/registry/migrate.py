"""Alembic glue: the schema is created and changed only by revisions in ``migrations/``.

Alembic has no built-in implementation for the ``duckdb`` dialect (it fails with
``KeyError: 'duckdb'``); :class:`DuckDBImpl` registers one. DuckDB runs DDL inside
transactions, so revisions apply atomically there as on PostgreSQL.
"""

from __future__ import annotations

from alembic.config import Config
from alembic.ddl.impl import DefaultImpl
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

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


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, target: str = "head") -> None:
    """Apply all revisions up to ``target`` on ``connection`` (caller commits)."""
    from alembic import command

    command.upgrade(alembic_config(connection), target)
