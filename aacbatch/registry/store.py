"""Connections and transactions for the registry.

DuckDB allows one process per database file; a second process fails at once with
"Could not set lock on file". So connections are never pooled or held: each
:meth:`Registry.transaction` opens one (retrying with backoff while another process holds
the lock, up to ``Settings.db_timeout``), runs one short transaction and closes it. The
schema is brought to the Alembic head on first use in a process.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from aacbatch.config import Settings
from aacbatch.errors import AacbatchError, RegistryBusy, RegistryDamaged, first_line
from aacbatch.registry import migrate

_LOCK_MARKERS = ("could not set lock", "conflicting lock", "database is locked")
# How DuckDB, SQLite and PostgreSQL report a damaged database file or page.
_DAMAGE_MARKERS = ("corrupt", "checksum", "malformed", "not a valid duckdb database", "file is not a database",
                   "serialization error", "internal error", "invalid page", "could not read block")
_READ_ONLY_MARKERS = ("read-only file system", "permission denied", "readonly database", "attempt to write a readonly")


def _is_lock_error(exc: BaseException) -> bool:
    return any(marker in str(exc).lower() for marker in _LOCK_MARKERS)


def is_damage(exc: BaseException) -> bool:
    """Whether a database error says the registry file is damaged."""
    return any(marker in str(getattr(exc, "orig", exc)).lower() for marker in _DAMAGE_MARKERS)


def _advice(exc: BaseException) -> str:
    """What to do about a database error that is not a busy lock."""
    text = str(getattr(exc, "orig", exc)).lower()
    if any(marker in text for marker in _DAMAGE_MARKERS):
        return "the registry file is damaged: restore it from a backup (`aacbatch db check` lists what is broken)"
    if any(marker in text for marker in _READ_ONLY_MARKERS):
        return "its folder is not writable: fix the permissions or choose another --home / --db"
    return "check the URL and that the database is reachable (`aacbatch db status`)"


def _duckdb_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "duckdb" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _create_duckdb_file(path: Path) -> None:
    """Create an empty DuckDB database at ``path`` without a moment where it is half-written.

    DuckDB creates a new file before locking it and writing its header, so a process opening
    the same fresh path at that moment fails with "exists, but it is not a valid DuckDB
    database file" (seen with four writers starting on a new registry). Building the file
    under a private name and hard-linking it into place is atomic; whoever links first wins.
    Where that is impossible (no hard links, read-only directory) DuckDB creates it as before.
    """
    import duckdb

    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.new")
    try:
        duckdb.connect(str(tmp)).close()
        os.link(tmp, path)
    except (OSError, duckdb.Error):
        pass  # FileExistsError: another process won; anything else: leave it to DuckDB
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)


class Registry:
    """Entry point to the registry at one SQLAlchemy URL."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.url = settings.db_url
        db_file = self._db_file = _duckdb_file(self.url)
        if db_file is not None:
            db_file.parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(self.url, poolclass=NullPool)
        self._read_only_engine: Engine | None = None
        self._schema_checked = False

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # --- paths: stored relative to the workspace, so a copied or moved home keeps working ----

    def stored_path(self, path: str | Path) -> str:
        """How a file the registry names is stored: ``@cache/…`` under the cache folder,
        ``@home/…`` under the home, else as given (source audio, an fsspec URL, a file
        elsewhere). :meth:`real_path` turns it back, wherever the workspace is now."""
        text = str(path)
        if "://" in text:
            return text
        absolute = Path(text).absolute()
        for prefix, root in self._roots():
            if absolute.is_relative_to(root):
                return f"{prefix}/{absolute.relative_to(root).as_posix()}"
        return text

    def real_path(self, stored: str) -> str:
        for prefix, root in self._roots():
            if stored == prefix or stored.startswith(prefix + "/"):
                return str(root / stored[len(prefix) + 1:]) if stored != prefix else str(root)
        return stored

    def resolved(self, row, attribute: str = "path"):
        """A row read from the registry (detached) with its stored path made real again."""
        if row is not None and getattr(row, attribute) is not None:
            setattr(row, attribute, self.real_path(getattr(row, attribute)))
        return row

    def _roots(self) -> list[tuple[str, Path]]:
        """Most specific first: the cache usually lies inside the home."""
        roots = [("@home", Path(self.settings.home).absolute())]
        if not isinstance(self.settings.cache_dir, str):
            roots.insert(0, ("@cache", Path(self.settings.cache_dir).absolute()))
        return roots

    def _connect(self, engine: Engine | None = None) -> Connection:
        """Open a connection, waiting while another process holds the database lock."""
        deadline = time.monotonic() + self.settings.db_timeout
        delay = 0.05
        if self._db_file is not None and not self._db_file.exists():
            _create_duckdb_file(self._db_file)
        while True:
            try:
                return (engine or self.engine).connect()
            except (OperationalError, DBAPIError) as exc:
                if not _is_lock_error(exc):
                    raise AacbatchError(f"cannot open registry {self.url}: {first_line(exc)}; {_advice(exc)}") from exc
                if time.monotonic() >= deadline:
                    raise RegistryBusy(
                        f"registry busy: {self.url} stayed locked by another process for "
                        f"{self.settings.db_timeout:g} s; retry when it finishes or raise "
                        "--db-timeout / AACBATCH_DB_TIMEOUT"
                    ) from exc
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.0)

    @contextmanager
    def connection(self, *, upgrade: bool = True) -> Iterator[Connection]:
        """One connection for one transaction: committed on success, rolled back on error."""
        conn = self._connect()
        try:
            if upgrade and not self._schema_checked:
                self._ensure_schema(conn)
            with conn.begin():
                yield conn
        except DBAPIError as exc:
            if is_damage(exc):  # reads may work on a damaged file while the first write fails
                raise RegistryDamaged(f"registry {self.url}: {first_line(exc)}; {_advice(exc)}") from exc
            raise
        finally:
            conn.close()

    @contextmanager
    def read_only_connection(self) -> Iterator[Connection]:
        """A connection the database itself holds read-only, for user and packaged queries:
        DuckDB opened with ``read_only``, PostgreSQL in a ``READ ONLY`` transaction, SQLite with
        ``query_only``. Its transaction is always rolled back."""
        if not self._schema_checked:
            with self.connection():
                pass  # bring the schema to head first: a read-only connection cannot
        if self.dialect == "duckdb":
            if self._read_only_engine is None:
                self._read_only_engine = create_engine(self.url, poolclass=NullPool, connect_args={"read_only": True})
            conn = self._connect(self._read_only_engine)
        else:
            conn = self._connect()
        try:
            with conn.begin() as transaction:
                if self.dialect == "postgresql":
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                elif self.dialect == "sqlite":
                    conn.exec_driver_sql("PRAGMA query_only = ON")
                yield conn
                transaction.rollback()
        except DBAPIError as exc:
            if is_damage(exc):
                raise RegistryDamaged(f"registry {self.url}: {first_line(exc)}; {_advice(exc)}") from exc
            raise
        finally:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """An ORM session bound to one short transaction."""
        with self.connection() as conn, Session(bind=conn, expire_on_commit=False) as session:
            yield session
            session.flush()

    def _ensure_schema(self, conn: Connection) -> None:
        head = migrate.head_revision()
        for attempt in range(3):
            current = migrate.current_revision(conn)
            synced = current == head and migrate.catalog_in_sync(conn)
            conn.rollback()  # end the read's implicit transaction before the upgrade's own
            if synced:
                break
            try:
                with conn.begin():
                    if current != head:
                        migrate.upgrade(conn)
                    migrate.sync_catalog(conn)
                break
            except DBAPIError:
                # On a database server several processes can upgrade a fresh registry (or fill
                # its tasks table) at once; all but the first then fail on unique keys (e.g.
                # PostgreSQL's "duplicate key ... pg_type_typname_nsp_index"). Look again: the
                # winner's schema is the one wanted. A genuine failure repeats and is raised.
                if attempt == 2:
                    raise
        self._schema_checked = True

    def status(self) -> dict:
        """Current and head revision without upgrading anything."""
        with self.connection(upgrade=False) as conn:
            current = migrate.current_revision(conn)
        head = migrate.head_revision()
        return {"url": self.url, "current": current, "head": head, "up_to_date": current == head}

    def upgrade(self) -> dict:
        """Bring the schema to head (what ``aacbatch db upgrade`` runs)."""
        with self.connection():
            pass
        return self.status()
