"""Registry: the migrated schema equals the models, upgrades are automatic, locks are waited on."""

from __future__ import annotations

from pathlib import Path

import subprocess
import sys
import textwrap
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from aacbatch.config import Settings
from aacbatch.errors import RegistryBusy
from aacbatch.registry import migrate
from aacbatch.registry.schema import Base, Dataset
from aacbatch.registry.store import Registry

# the newest revision in migrations/versions/ (every test of the head follows it)
LATEST = max(p.name[:4] for p in (Path(__file__).resolve().parent.parent / "migrations" / "versions").glob("0*.py"))

pytestmark = pytest.mark.backends("duckdb", "postgresql")


def test_migrations_match_models_on_sqlite(tmp_path):
    """Alembic's own comparison: no difference between the migrated database and the models."""
    registry = Registry(Settings.resolve(home=tmp_path, db_url=f"sqlite:///{tmp_path / 'r.sqlite'}"))
    registry.upgrade()
    with create_engine(registry.url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def _duckdb_schema(conn) -> dict:
    columns = conn.execute(text(
        "SELECT c.table_name, c.column_name, c.is_nullable, c.data_type FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
        "WHERE c.table_schema = 'main' AND c.table_name <> 'alembic_version' "
        "AND t.table_type = 'BASE TABLE'")).all()  # views (migrations 0002, 0003) are not models
    indexes = conn.execute(text("SELECT table_name, index_name, is_unique FROM duckdb_indexes()")).all()
    uniques = conn.execute(text(
        "SELECT table_name, constraint_column_names FROM duckdb_constraints() WHERE constraint_type = 'UNIQUE'")).all()
    pks = conn.execute(text(
        "SELECT table_name, constraint_column_names FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'")).all()
    return {
        "columns": {(t, c, n == "YES", d.split("(")[0]) for t, c, n, d in columns},
        "indexes": {(t, i, bool(u)) for t, i, u in indexes},
        "uniques": {(t, tuple(cols)) for t, cols in uniques if t != "alembic_version"},
        "pks": {(t, tuple(cols)) for t, cols in pks if t != "alembic_version"},
    }


_DUCK_TYPES = {"STRING": "VARCHAR", "TEXT": "VARCHAR", "INTEGER": "INTEGER", "DOUBLE": "DOUBLE",
               "BOOLEAN": "BOOLEAN", "DATETIME": "TIMESTAMP"}


def _model_schema() -> dict:
    columns, indexes, uniques, pks = set(), set(), set(), set()
    for table in Base.metadata.sorted_tables:
        for col in table.columns:
            generic = type(col.type).__name__.upper()
            columns.add((table.name, col.name, bool(col.nullable), _DUCK_TYPES.get(generic, generic)))
        indexes |= {(table.name, ix.name, bool(ix.unique)) for ix in table.indexes}
        pks.add((table.name, tuple(c.name for c in table.primary_key.columns)))
        for constraint in table.constraints:
            if constraint.__class__.__name__ == "UniqueConstraint":
                uniques.add((table.name, tuple(c.name for c in constraint.columns)))
    return {"columns": columns, "indexes": indexes, "uniques": uniques, "pks": pks}


@pytest.mark.backends("duckdb")
def test_migrations_match_models_on_duckdb(registry):
    """DuckDB's reflection is not usable by Alembic, so compare through its own catalog."""
    registry.upgrade()
    with registry.connection() as conn:
        actual = _duckdb_schema(conn)
    expected = _model_schema()
    for key in expected:
        assert actual[key] == expected[key], key


@pytest.mark.backends("postgresql")
def test_migrations_match_models_on_postgresql(registry):
    """Alembic's own comparison works on PostgreSQL (types, nullability, indexes, uniques)."""
    registry.upgrade()
    with registry.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_first_use_upgrades_and_status_reports_head(registry):
    before = registry.status()
    assert before["current"] is None and not before["up_to_date"]
    with registry.transaction() as session:
        assert session.query(Dataset).count() == 0
    after = registry.status()
    assert after["current"] == migrate.head_revision() == LATEST and after["up_to_date"]


def _hold_lock(path, seconds: float) -> subprocess.Popen:
    script = textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(path)!r})
        print("locked", flush=True)
        time.sleep({seconds})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.backends("duckdb")
def test_busy_duckdb_fails_with_clear_message_after_timeout(registry, settings):
    registry.upgrade()
    holder = _hold_lock(settings.home / "registry.duckdb", 30)
    try:
        start = time.monotonic()
        with pytest.raises(RegistryBusy, match=r"registry busy: .*registry.duckdb stayed locked .* 2 s"):
            with registry.transaction():
                pass
        assert 1.9 <= time.monotonic() - start < 10
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.backends("duckdb")
def test_busy_duckdb_waits_until_the_lock_is_released(tmp_path, settings):
    registry = Registry(Settings.resolve(home=settings.home, db_timeout=30))
    registry.upgrade()
    holder = _hold_lock(settings.home / "registry.duckdb", 1.5)
    try:
        with registry.transaction() as session:
            session.add(Dataset(name="after-wait", format="folder", source_path="/x", fingerprint="f",
                                n_clips=0, n_captions=0))
    finally:
        holder.wait()
    with registry.transaction() as session:
        assert [d.name for d in session.query(Dataset)] == ["after-wait"]
