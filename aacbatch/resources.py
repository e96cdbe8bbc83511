"""Locate the project's non-Python resources (migrations, SQL files, feature specs).

They live at the top of the repository (``migrations/``, ``sql/``, ``features/``) because
that is where people look for them; the wheel ships them as the packages
``aacbatch._migrations``, ``aacbatch._sql`` and ``aacbatch._features`` (see pyproject's
``package-dir``), so the same lookup works from a checkout, an editable install or a wheel.
"""

from __future__ import annotations

from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent
_PACKAGED = {"migrations": "aacbatch._migrations", "sql": "aacbatch._sql", "features": "aacbatch._features"}


def resource_dir(name: str) -> Path:
    """Directory of the resource tree ``name`` (``migrations``, ``sql`` or ``features``)."""
    local = _REPO_ROOT / name
    if (_REPO_ROOT / "pyproject.toml").is_file() and local.is_dir():
        return local
    from importlib.resources import files

    return Path(str(files(_PACKAGED[name])))
