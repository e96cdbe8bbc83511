"""Feature-set specs: ``features/<name>.toml`` files, checked against each kind's parameters.

A spec names its ``kind`` and that kind's parameters; anything else is a typo and is refused
with the closest valid key, so a misspelt parameter never silently falls back to a default.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from aacbatch.errors import InputError
from aacbatch.resources import resource_dir

COMMON_KEYS = {"kind", "description", "block_size"}


@dataclass(frozen=True)
class Spec:
    name: str
    kind: str
    params: dict
    block_size: int
    path: Path

    def canonical(self) -> dict:
        """What goes into the fingerprint: kind, block size and every (defaulted) parameter."""
        return {"kind": self.kind, "block_size": self.block_size, "params": self.params}


def find_spec(name_or_path: str) -> Path:
    """``mel`` → ``features/mel.toml``; an existing path is used as it is."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise InputError(f"feature spec {path} does not exist")
        return path
    packaged = resource_dir("features") / f"{name_or_path}.toml"
    if not packaged.is_file():
        known = ", ".join(sorted(p.stem for p in packaged.parent.glob("*.toml")))
        raise InputError(f"unknown feature spec {name_or_path!r} (packaged: {known}); or pass a path to a .toml file")
    return packaged


def load_spec(name_or_path: str, overrides: dict | None = None) -> Spec:
    """Read a spec; ``overrides`` (from ``--set key=value``) replace or add keys, and are
    checked like the file's own keys."""
    from aacbatch.featurize.kinds import kind_class

    path = find_spec(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"feature spec {path} is not valid TOML ({exc})") from exc
    raw.update(overrides or {})
    kind = raw.get("kind")
    cls = kind_class(kind, source=str(path))
    allowed = {f.name for f in fields(cls.Params)}
    for key in raw:
        if key not in allowed | COMMON_KEYS:
            hint = difflib.get_close_matches(key, sorted(allowed | COMMON_KEYS), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else f" (valid: {', '.join(sorted(allowed | COMMON_KEYS))})"
            raise InputError(f"feature spec {path}: unknown key {key!r} for kind {kind!r}{suggestion}")
    params = {k: v for k, v in raw.items() if k not in COMMON_KEYS}
    try:
        typed = cls.Params(**params)
    except (TypeError, ValueError) as exc:
        raise InputError(f"feature spec {path}: {exc}") from exc
    block_size = raw.get("block_size", 256)
    if not isinstance(block_size, int) or block_size <= 0:
        raise InputError(f"feature spec {path}: block_size must be a positive integer, got {block_size!r}")
    return Spec(name=path.stem, kind=kind, params=vars(typed), block_size=block_size, path=path)
