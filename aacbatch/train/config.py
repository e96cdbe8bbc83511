"""Typed training configs: dataclass defaults ← recipe TOML ← ``--set key=value``.

Every hyper-parameter is a field of a task's config dataclass, so it has one default, one
type and one place; recipe files (``aacbatch/recipes/*.toml`` or any path) and ``--set``
only override. Unknown keys are refused with the closest valid name.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from pathlib import Path

from aacbatch.config import parse_pairs
from aacbatch.errors import InputError

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


@dataclasses.dataclass(frozen=True)
class TrainingFields:
    """Fields every epoch-trained task shares (the loop reads them); tasks add their own,
    including the defaults that differ between them (epochs, batch size, learning rate)."""

    warmup_epochs: float = 1.0
    weight_decay: float = 0.0
    grad_clip: float | None = None
    amp: bool = False  # bfloat16 autocast (mixed precision)
    seed: int = 0
    train_split: str = "train"
    val_split: str = "val"


def _check_type(cls, name: str, value: object, source: str) -> object:
    hint = typing.get_type_hints(cls)[name]
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else (hint,)
    for typ in allowed:
        origin = typing.get_origin(typ) or typ
        if typ is type(None) and value is None:
            return None
        if origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if origin in (tuple, list) and isinstance(value, (list, tuple)):
            return tuple(value)
        if isinstance(origin, type) and isinstance(value, origin) and not (origin is int and isinstance(value, bool)):
            return value
    raise InputError(f"{source}: {name} = {value!r} is not a {hint}")


def load_config(cls, recipe: str | Path | None = None, sets: tuple[str, ...] | list[str] = (), base: dict | None = None):
    """Build ``cls`` from ``base`` (e.g. a resumed run's config), a recipe file and ``--set`` pairs."""
    values: dict[str, object] = dict(base or {})
    layers: list[tuple[str, dict]] = []
    if recipe is not None:
        path = Path(recipe)
        if not path.is_file() and (RECIPES / f"{recipe}.toml").is_file():
            path = RECIPES / f"{recipe}.toml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in RECIPES.glob("*.toml")))
            raise InputError(f"config {recipe} does not exist (packaged recipes: {known})")
        try:
            layers.append((str(path), tomllib.loads(path.read_text(encoding="utf-8"))))
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"config {path} is not valid TOML ({exc})") from exc
    layers.append(("--set", parse_pairs(sets)))
    names = [f.name for f in dataclasses.fields(cls)]
    for source, layer in layers:
        for key, value in layer.items():
            if key not in names:
                hint = difflib.get_close_matches(key, names, n=1)
                raise InputError(f"{source}: unknown setting {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else f" (valid: {', '.join(names)})"))
            values[key] = _check_type(cls, key, value, source)
    try:
        return cls(**{k: v for k, v in values.items() if k in names})
    except (TypeError, ValueError) as exc:
        raise InputError(f"invalid {cls.__name__}: {exc}") from exc


def as_dict(config) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
