"""Where aacbatch keeps things, resolved once from flags and environment variables.

Precedence: command-line flag > environment variable > default. ``AACBATCH_HOME`` holds the
registry and the default cache so one directory is a whole, movable workspace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = "aacbatch-home"
DEFAULT_DB_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Settings:
    """Resolved locations and limits for one invocation."""

    home: Path
    db_url: str
    cache_dir: Path | str  # a local folder, or an fsspec URL such as s3://bucket/aacbatch-cache
    db_timeout: float = DEFAULT_DB_TIMEOUT_S

    @classmethod
    def resolve(
        cls,
        home: str | os.PathLike | None = None,
        db_url: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        db_timeout: float | None = None,
    ) -> "Settings":
        env = os.environ
        home_path = Path(home or env.get("AACBATCH_HOME") or DEFAULT_HOME).expanduser().absolute()
        url = db_url or env.get("AACBATCH_DB") or f"duckdb:///{home_path / 'registry.duckdb'}"
        cache = cache_dir or env.get("AACBATCH_CACHE") or home_path / "cache"
        cache = str(cache).rstrip("/") if "://" in str(cache) else Path(cache).expanduser().absolute()
        timeout = db_timeout if db_timeout is not None else float(env.get("AACBATCH_DB_TIMEOUT", DEFAULT_DB_TIMEOUT_S))
        return cls(home=home_path, db_url=url, cache_dir=cache, db_timeout=timeout)
