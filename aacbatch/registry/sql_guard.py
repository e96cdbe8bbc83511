"""What user SQL may do: queries only without ``--write``, and never its own transaction control.

A rollback at the end cannot protect the registry from a statement list that ends the
transaction itself (``COMMIT; DROP TABLE clips``), nor from statements that write files
(DuckDB's ``COPY … TO``). So ``aacbatch sql`` — and every packaged query — is checked
statement by statement before it runs, and then runs on a connection the database itself
holds read-only (see :meth:`aacbatch.registry.store.Registry.read_only_connection`):

* without ``write``: only queries (``SELECT``/``WITH``/``VALUES``/``TABLE``/``SHOW``/
  ``DESCRIBE``/``SUMMARIZE``/``FROM``, and ``EXPLAIN`` of one) — no DDL, DML, ``COPY``,
  ``ATTACH``, ``SET``, ``PRAGMA`` or transaction statements;
* with ``write``: anything but transaction control (``BEGIN``, ``COMMIT``, ``ROLLBACK``,
  ``END``, ``ABORT``, ``SAVEPOINT``, ``RELEASE``, ``START``, ``PREPARE TRANSACTION``), so the
  statements run in the one transaction aacbatch commits or rolls back as a whole.

DuckDB's own parser classifies its statements; for other databases (PostgreSQL, SQLite) a
lexer splits the text (quotes, ``"identifiers"``, ``$tag$`` strings and comments respected)
and reads each statement's first word.
"""

from __future__ import annotations

import re

import duckdb

from aacbatch.errors import InputError

QUERY_WORDS = {"SELECT", "WITH", "VALUES", "TABLE", "SHOW", "DESCRIBE", "DESC", "SUMMARIZE", "FROM"}
TRANSACTION_WORDS = {"BEGIN", "COMMIT", "ROLLBACK", "END", "ABORT", "SAVEPOINT", "RELEASE", "START", "PREPARE"}
_TOKEN = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|(\$\w*\$).*?\1|;|[^'"$;/-]+|.""", re.DOTALL)
_WORD = re.compile(r"[A-Za-z_]+")
_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_EXPLAIN = re.compile(r"^\s*EXPLAIN(\s+ANALY[SZ]E)?\b", re.IGNORECASE)


def split_statements(sql: str) -> list[str]:
    """The statements of ``sql`` (comments dropped), split at ``;`` outside quotes."""
    out, current = [], []
    for match in _TOKEN.finditer(sql):
        token = match.group(0)
        if token == ";":
            out.append("".join(current))
            current = []
        elif not (token.startswith("--") or token.startswith("/*")):
            current.append(token)
    out.append("".join(current))
    return [s.strip() for s in out if s.strip()]


def _first_word(statement: str) -> str:
    found = _WORD.search(statement.lstrip("( \n\t"))
    return found.group(0).upper() if found else ""


def _kinds(sql: str, dialect: str) -> list[tuple[str, str]]:
    """(kind, statement) per statement; kinds are DuckDB statement types or first words."""
    if dialect == "duckdb":
        try:  # DuckDB names parameters $name; aacbatch's :name would not parse
            return [(s.type.name, s.query.strip()) for s in duckdb.extract_statements(_PLACEHOLDER.sub(r"$\1", sql))]
        except duckdb.Error:
            pass  # not DuckDB syntax: the database reports the error when it runs
    return [(_first_word(s), s) for s in split_statements(sql)]


def _is_query(kind: str, statement: str, dialect: str) -> bool:
    if kind == "EXPLAIN":  # EXPLAIN ANALYZE runs its statement: allowed only for a query
        inner = _EXPLAIN.sub("", statement, count=1)
        return all(_is_query(k, s, dialect) for k, s in _kinds(inner, dialect)) and bool(inner.strip())
    return kind in QUERY_WORDS


def check(sql: str, dialect: str, *, write: bool, source: str) -> None:
    """Refuse ``sql`` (one line naming the statement) if it may not run as asked."""
    for kind, statement in _kinds(sql, dialect):
        shown = " ".join(statement.split())[:60]
        if kind in ("TRANSACTION", *TRANSACTION_WORDS):
            raise InputError(f"{source}: {shown!r} controls the transaction; aacbatch runs your statements in one "
                             "transaction (committed with --write, rolled back without): leave BEGIN/COMMIT/ROLLBACK out")
        if not write and not _is_query(kind, statement, dialect):
            raise InputError(f"{source}: {shown!r} is not a query; without --write only queries run (SELECT, WITH, "
                             "EXPLAIN, …): pass --write to change the registry")
