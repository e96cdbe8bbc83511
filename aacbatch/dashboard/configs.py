"""A run's config as flat ``key = value`` rows, and the difference between two configs.

Configs are nested JSON (a task's dataclass fields plus what the task records). Flattening
nested objects to dotted keys (``audio.n_mels``) lets two configs be compared line by line;
lists stay whole values, since their order is part of the setting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

SAME, CHANGED, ONLY_HERE, ONLY_THERE = "same", "changed", "only here", "only there"


def flatten(config: dict, prefix: str = "") -> dict[str, object]:
    """``{"a": {"b": 1}, "c": [1, 2]}`` → ``{"a.b": 1, "c": [1, 2]}`` (keys sorted)."""
    out: dict[str, object] = {}
    for key in sorted(config):
        value = config[key]
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def shown(value: object) -> str:
    """A config value as text: strings bare, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class ConfigLine:
    key: str
    here: str | None  # None: the key is not in this config
    there: str | None  # None: not in the other config (or no other config)
    state: str  # SAME, CHANGED, ONLY_HERE or ONLY_THERE


def diff(here: dict, there: dict | None) -> list[ConfigLine]:
    """Every key of either config, in key order, with both values and how they differ.
    Without ``there`` every line is SAME with no second value."""
    mine = flatten(here)
    if there is None:
        return [ConfigLine(k, shown(v), None, SAME) for k, v in mine.items()]
    theirs = flatten(there)
    lines = []
    for key in sorted(mine.keys() | theirs.keys()):
        a = shown(mine[key]) if key in mine else None
        b = shown(theirs[key]) if key in theirs else None
        state = ONLY_THERE if a is None else ONLY_HERE if b is None else SAME if mine[key] == theirs[key] else CHANGED
        lines.append(ConfigLine(key, a, b, state))
    return lines
