"""How the dashboard reads the registry: packaged queries on read-only connections, never a
page that fails because a training job holds DuckDB's lock.

Every read runs one file of ``sql/dashboard/`` through :func:`aacbatch.registry.queries.run_sql`
on a connection the database holds read-only (DuckDB ``read_only``, PostgreSQL ``READ
ONLY``). The reads of one page share one connection (:class:`Snapshot`, a context manager),
opened on the first read and closed before the page is rendered: opening a DuckDB file
costs tens of milliseconds, and while it is open a writer in another process waits. Opening
retries while another process holds DuckDB's one-writer lock, for at most ``read_timeout``
seconds (not the minute a command waits); if the lock stays taken, each query of the page
is answered with its last answer and the page says how old that is
(:attr:`Snapshot.stale_note`); a query never answered before raises :class:`Busy`, which
the pages turn into a page that retries by itself.

A registry whose schema is newer than this aacbatch (written by a later version) is refused
up front with one line (:func:`check_schema`), instead of the traceback an upgrade attempt
would end in.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from contextlib import ExitStack
from datetime import date, datetime

from aacbatch.errors import InputError, RegistryBusy
from aacbatch.registry.migrate import known_revision
from aacbatch.registry.queries import Connection, declared_params, named_query, run_sql
from aacbatch.registry.store import Registry

FOLDER = "dashboard"
READ_TIMEOUT_S = 2.0
CACHE_ENTRIES = 512


class Busy(Exception):
    """The registry stayed locked and this query has no earlier answer to show."""


def check_schema(registry: Registry) -> None:
    """Refuse (one line) a registry at a schema revision this aacbatch does not know; a
    registry at an older revision is upgraded on first use, as by every command."""
    status = registry.status()
    if status["current"] is not None and not known_revision(status["current"]):
        raise InputError(f"registry {registry.url} is at schema revision {status['current']!r}, newer than this aacbatch "
                         f"knows (its newest is {status['head']!r}): upgrade aacbatch to serve it")


def plain(value):
    """A value as a page or JSON shows it: timestamps as 'YYYY-MM-DD HH:MM:SS'."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


class Reader:
    """Runs the dashboard's queries for one registry and remembers each query's last answer.

    ``read_timeout`` bounds how long a page waits for a lock another process holds. The
    registry is re-opened with that timeout (a copy: the caller's registry keeps its own).
    """

    def __init__(self, registry: Registry, read_timeout: float = READ_TIMEOUT_S):
        timeout = min(registry.settings.db_timeout, read_timeout)
        self.registry = Registry(dataclasses.replace(registry.settings, db_timeout=timeout))
        self._texts: dict[str, tuple[str, dict]] = {}
        self._last: OrderedDict[tuple, tuple[list[dict], datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def snapshot(self) -> "Snapshot":
        """The reads of one page (use it as a context manager: it holds one connection)."""
        return Snapshot(self)

    def _query(self, name: str) -> tuple[str, dict]:
        if name not in self._texts:
            sql = named_query(name, FOLDER).read_text(encoding="utf-8")
            self._texts[name] = sql, declared_params(sql)
        return self._texts[name]

    def rows(self, name: str, params: dict, connection: Connection | None) -> tuple[list[dict], datetime | None]:
        """Rows of ``sql/dashboard/<name>.sql`` as dicts, read on ``connection``, and None; or,
        without a connection (the registry stayed locked), the last answer and when it was read."""
        sql, defaults = self._query(name)
        bound = {**defaults, **params}
        key = (name, tuple(sorted(bound.items())))
        if connection is None:
            with self._lock:
                kept = self._last.get(key)
            if kept is None:
                raise Busy("the registry is locked by another process (a training job writing?); "
                           "this page retries in a moment")
            return kept
        columns, rows = run_sql(self.registry, sql, bound, source=f"sql/{FOLDER}/{name}.sql", connection=connection)
        out = [{c: plain(v) for c, v in zip(columns, row)} for row in rows]
        with self._lock:
            self._last[key] = out, datetime.now()
            self._last.move_to_end(key)
            while len(self._last) > CACHE_ENTRIES:
                self._last.popitem(last=False)
        return out, None


class Snapshot:
    """The reads of one page, on one read-only connection opened at the first read.
    :attr:`stale_since` is the oldest time of an earlier answer it had to show (None when
    every answer was fresh)."""

    def __init__(self, reader: Reader):
        self.reader = reader
        self.registry = reader.registry
        self.stale_since: datetime | None = None
        self._stack = ExitStack()
        self._connection: Connection | None = None
        self._locked = False

    def __enter__(self) -> "Snapshot":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()
        self._connection = None

    def _open(self) -> Connection | None:
        if self._connection is None and not self._locked:
            try:
                self._connection = self._stack.enter_context(self.registry.read_only_connection())
            except RegistryBusy:
                self._locked = True
        return self._connection

    def rows(self, name: str, **params) -> list[dict]:
        rows, read_at = self.reader.rows(name, params, self._open())
        if read_at is not None and (self.stale_since is None or read_at < self.stale_since):
            self.stale_since = read_at
        return rows

    def row(self, name: str, **params) -> dict | None:
        found = self.rows(name, **params)
        return found[0] if found else None

    @property
    def stale_note(self) -> str | None:
        if self.stale_since is None:
            return None
        return (f"the registry is busy (another process is writing): some of this page is as it was at "
                f"{self.stale_since:%H:%M:%S}; reload in a moment for fresh data")
