"""Names are names, not paths: one rule for every name aacbatch turns into a folder or file.

Dataset, index, system, feature-set and split names become parts of paths (the cache's
``<dataset>/<set>.zarr``, ``systems/<name>/``, ``runs/<id>/similarity-<split>.npz``), so a name
like ``../../escaped`` would write outside its root. Every such name passes :func:`check_name`
when it is created or used, and every derived local path passes :func:`inside` before
anything is written.
"""

from __future__ import annotations

import re
from pathlib import Path

from aacbatch.errors import InputError

MAX_LENGTH = 200
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")


def check_name(name: str, what: str) -> str:
    """``name`` if it is a plain name — letters, digits and ``_ . @ -``, not starting with a
    punctuation mark, no ``..``, at most 200 characters — else a one-line error naming it."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name or len(name) > MAX_LENGTH:
        raise InputError(f"{what} {name!r} is not a valid name: use letters, digits and _ . @ - (not first, "
                         f"no '..', at most {MAX_LENGTH} characters); names become folder and file names")
    return name


def inside(root: Path, path: Path, what: str) -> Path:
    """``path`` if it resolves inside ``root`` (symlinks followed), else a one-line error."""
    resolved, base = Path(path).resolve(), Path(root).resolve()
    if not resolved.is_relative_to(base):
        raise InputError(f"{what} {str(path)!r} would be outside {base}: refusing to write there")
    return path
