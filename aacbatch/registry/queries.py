"""Run user and packaged SQL against the registry with bound parameters.

Values from the command line are always bound (``:name`` placeholders), never spliced
into the text. Numeric-looking values are bound as numbers so ``LIMIT :k`` works, and
``--param year:str=2024`` binds a string where a database needs one (:mod:`aacbatch.typed`).
Without ``write`` only queries run, on a connection the database holds read-only; with it,
the statements run in one transaction they cannot end themselves
(:mod:`aacbatch.registry.sql_guard`).
"""

from __future__ import annotations

import re
from contextlib import nullcontext
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, StatementError

from aacbatch.errors import InputError
from aacbatch.registry.sql_guard import check
from aacbatch.registry.store import Registry, is_damage
from aacbatch.resources import resource_dir
from aacbatch.typed import typed_value

_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_DECLARED = re.compile(r"^--\s*param:\s*([A-Za-z_]\w*)(?::(\w+))?\s*=\s*(.*?)\s*$", re.MULTILINE)
_ERROR_LINE = re.compile(r"^LINE (\d+):", re.MULTILINE)
_STRING_OR_COMMENT = re.compile(r"'(?:[^']|'')*'|--[^\n]*")


def declared_params(sql: str) -> dict[str, object]:
    """Parameter defaults a query file declares in comment lines, ``-- param: split = val``
    (typed like ``--param``: ``-- param: year:str = 2024``).

    They make packaged queries runnable without flags; ``NULL`` declares a None default (the
    query then needs a typed placeholder such as ``CAST(:dataset AS VARCHAR)`` for PostgreSQL).
    """
    return {name: None if value == "NULL" else typed_value(name, type_name or None, value, "-- param:")
            for name, type_name, value in _DECLARED.findall(sql)}


_FAMILY = re.compile(r"^--\s*family:\s*(\w+)\s*$", re.MULTILINE)


def declared_family(sql: str) -> str | None:
    """The family whose dataset a query defaults to (``-- family: retrieval``), if it declares one."""
    found = _FAMILY.search(sql)
    return found.group(1) if found else None


def default_dataset(registry: Registry, family: str) -> str:
    """The dataset a ``family`` query uses when none is named: the one its finished runs were
    fine-tuned on (or, with none fine-tuned, the one they were trained on). Several candidates
    are refused, naming them — a run trained for another purpose never moves a default."""
    _, rows = run_sql(registry, named_query("tuned_datasets").read_text(encoding="utf-8"), {"family": family},
                      source="sql/queries/tuned_datasets.sql")
    if len(rows) == 1:
        return rows[0][0]
    if not rows:
        raise InputError(f"no finished {family} runs yet to take a dataset from: train some, or pass --param dataset=NAME")
    listed = ", ".join(f"{name} ({n} run{'s' if n != 1 else ''})" for name, n in rows)
    raise InputError(f"{family} runs were fine-tuned on several datasets ({listed}): pass --param dataset=NAME")


def with_dataset(registry: Registry, sql: str, params: dict[str, object]) -> dict[str, object]:
    """``params`` with a NULL ``dataset`` replaced by the declared family's default dataset."""
    family = declared_family(sql)
    if family is None or "dataset" not in params or params["dataset"] is not None:
        return params
    return {**params, "dataset": default_dataset(registry, family)}


def describe_model(registry: Registry, run_ids: list[str], system: str | None = None) -> str:
    """One line saying what a model is: each run's task, training dataset and whether it
    depends on random-weight stand-ins — what search, serve and caption print with results."""
    _, rows = run_sql(registry, named_query("model_info").read_text(encoding="utf-8"), {"runs": ",".join(run_ids)},
                      source="sql/queries/model_info.sql")
    info = {r[0]: r[1:] for r in rows}
    parts = []
    for run_id in run_ids:
        task, dataset, random_inputs = info.get(run_id, ("?", "?", False))
        parts.append(f"{task} run {run_id[:8]} trained on {dataset}{' (random-weight inputs)' if random_inputs else ''}")
    return (f"system {system}: " if system else "") + "; ".join(parts)


def placeholders(sql: str) -> list[str]:
    """Names of the ``:name`` placeholders in ``sql`` (ignoring ``::casts``, string literals and
    ``--`` comments, whose apostrophes must not start a literal)."""
    code = _STRING_OR_COMMENT.sub(lambda m: "''" if m.group(0).startswith("'") else "", sql)
    return sorted(set(_PLACEHOLDER.findall(code)))


def named_query(name: str, folder: str = "queries") -> Path:
    """The packaged query ``sql/<folder>/<name>.sql``."""
    path = resource_dir("sql") / folder / f"{name}.sql"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in path.parent.glob("*.sql")))
        raise InputError(f"unknown query {name!r} in sql/{folder}/ (known: {known})")
    return path


def run_sql(registry: Registry, sql: str, params: dict[str, object] | None = None, *,
            write: bool = False, source: str = "query", connection: Connection | None = None) -> tuple[list[str], list[tuple]]:
    """Execute ``sql``; return column names and rows. ``source`` names it in error messages.
    ``connection``: an open read-only connection to run a query on (the queries of one
    dashboard page share one: opening a DuckDB file costs tens of milliseconds); by default
    each call opens its own."""
    params = params or {}
    needed = placeholders(sql)
    missing = [n for n in needed if n not in params]
    if missing:
        raise InputError(f"{source} needs parameter(s) {', '.join(missing)}: pass --param {missing[0]}=VALUE")
    unused = [n for n in params if n not in needed]
    if unused:
        raise InputError(f"{source} has no placeholder :{unused[0]} (it uses {', '.join(needed) or 'none'})")
    check(sql, registry.dialect, write=write, source=source)
    opened = (nullcontext(connection) if connection is not None else
              registry.connection() if write else registry.read_only_connection())
    with opened as conn:
        try:
            result = conn.execute(text(sql), params)
        except (DBAPIError, StatementError) as exc:
            if is_damage(exc):
                raise
            raise InputError(f"{source}: {_sql_error(exc)}") from exc
        columns = list(result.keys()) if result.returns_rows else []
        rows = [tuple(r) for r in result] if result.returns_rows else []
    return columns, rows


def _sql_error(exc: BaseException) -> str:
    """The database's message, led by the line of the query it points at (DuckDB and
    PostgreSQL both report it as ``LINE n:``) so an error in a query file names its line."""
    message = str(getattr(exc, "orig", exc)).strip()
    line = _ERROR_LINE.search(message)
    first = message.split("\n")[0]
    return f"line {line.group(1)}: {first}" if line else " ".join(message.split("\n")[:3])
