"""Feature-set specs: ``features/<name>.toml`` files, checked against each kind's parameters.

A spec names its ``kind`` and that kind's parameters; anything else is a typo and is refused
with the closest valid key, and a value of the wrong type is refused too (the same loader
as training configs, :mod:`aacbatch.typed`), so a misspelt or mistyped parameter never
silently falls back to a default or enters the fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aacbatch.errors import InputError, shown
from aacbatch.featurize.kinds import kind_class
from aacbatch.resources import resource_dir
from aacbatch.typed import build, find_file, plain, read_toml

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
    return find_file(name_or_path, resource_dir("features"), "feature spec")


def load_spec(name_or_path: str, overrides: dict | None = None) -> Spec:
    """Read a spec; ``overrides`` (from ``--set key=value``) replace or add keys, and are
    checked like the file's own keys (:func:`aacbatch.typed.build`)."""
    path = find_spec(name_or_path)
    raw = read_toml(path, "feature spec")
    kind = plain((overrides or {}).get("kind", raw.get("kind")))
    cls = kind_class(kind, source=shown(path))
    label = f"key for kind {kind!r}"
    typed = build(cls.Params, [(f"feature spec {shown(path)}", raw), ("--set", overrides or {})], ignore=COMMON_KEYS,
                  label=label)
    block_size = plain({**raw, **(overrides or {})}.get("block_size", 256))
    if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size <= 0:
        raise InputError(f"feature spec {shown(path)}: block_size must be a positive integer, got {block_size!r}")
    return Spec(name=path.stem, kind=kind, params=vars(typed), block_size=block_size, path=path)
