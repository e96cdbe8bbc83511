"""Locate the project's non-Python resources (migrations, SQL files, feature specs, recipes).

``migrations/``, ``sql/`` and ``features/`` live at the top of the repository because that is
where people look for them. A checkout or editable install reads them there; a wheel installs
copies under ``<prefix>/share/aacbatch/`` (pyproject's ``data-files``). Training recipes ship
inside the package (``aacbatch/recipes``, package data).
"""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path

from aacbatch.errors import AacbatchError

_PACKAGE = Path(__file__).resolve().parent
_REPO_ROOT = _PACKAGE.parent
NAMES = ("migrations", "sql", "features", "recipes")


@cache
def code_revision() -> str | None:
    """aacbatch's git revision (12 hex digits) when it runs from a checkout, else None: what
    runs and scores record as the code that made them."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=_PACKAGE, capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def resource_dir(name: str) -> Path:
    """Directory of the resource tree ``name`` (one of :data:`NAMES`)."""
    if name not in NAMES:
        raise ValueError(name)
    if name == "recipes":
        return _PACKAGE / "recipes"
    candidates = [_REPO_ROOT / name] if (_REPO_ROOT / "pyproject.toml").is_file() else []
    candidates.append(Path(sys.prefix) / "share" / "aacbatch" / name)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise AacbatchError(f"aacbatch resource folder {name!r} not found (looked in {', '.join(map(str, candidates))}): reinstall aacbatch")
