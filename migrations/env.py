"""Alembic environment for the aacbatch registry.

Runs on the connection that :mod:`aacbatch.registry.store` hands over (so upgrades share its
lock handling and retry), or, for ``alembic`` command-line use, on ``sqlalchemy.url``.
"""

from alembic import context
from sqlalchemy import create_engine

import aacbatch.registry.migrate  # noqa: F401  (registers the DuckDB Alembic impl)
from aacbatch.registry.schema import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    with create_engine(config.get_main_option("sqlalchemy.url")).connect() as conn:
        _run(conn)
        conn.commit()
