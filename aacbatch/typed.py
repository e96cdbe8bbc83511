"""One typed loader for every setting a user writes: recipes, feature specs, the demo plan,
``--set key=value`` and ``--param name[:type]=value``.

A settings file or flag is checked against a dataclass: an unknown key is refused with the
closest valid name, a value of the wrong type is refused with the field's type, and the
dataclass's own checks (``__post_init__``) become one-line errors naming the source. Packaged
files (``aacbatch/recipes/*.toml``, ``features/*.toml``) are found by :func:`find_file`.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import tomllib
import types
import typing
from collections.abc import Iterable
from pathlib import Path

from aacbatch.errors import InputError, first_line, shown
from aacbatch.textfiles import read_utf8

_NAME = re.compile(r"^[A-Za-z_]\w*$")
PARAM_TYPES = {"str": str, "int": int, "float": float, "bool": None}  # bool: true/false


def parse_value(text: str) -> object:
    """TOML literal if it parses (``3``, ``1e-4``, ``true``, ``["val", "eval"]``), else the string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


class FlagValue(str):
    """A ``--set`` value: the text as typed, and what it reads as (:func:`parse_value`).

    The field it sets decides which one it is: ``teacher=13760041`` (a run-id prefix of
    digits) stays the text for a ``str`` field instead of becoming the number 13760041."""

    parsed: object

    def __new__(cls, text: str):
        self = super().__new__(cls, text)
        self.parsed = parse_value(text)
        return self


def plain(value: object) -> object:
    """What a value reads as, for settings outside a dataclass (a spec's ``kind``, ``block_size``)."""
    return value.parsed if isinstance(value, FlagValue) else value


def parse_pairs(pairs: Iterable[str], flag: str = "--set") -> dict[str, object]:
    """``["lr=1e-4", "split=val"]`` → ``{"lr": FlagValue("1e-4"), …}``: each value read as a
    TOML literal where its field wants one (:func:`check_value`)."""
    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{flag} {pair!r}: expected KEY=VALUE")
        out[key.strip()] = FlagValue(raw.strip())
    return out


def typed_value(name: str, type_name: str | None, value: str, source: str) -> object:
    """A query parameter's value: ``type_name`` (str, int, float, bool) when given, else an
    int or a float when it reads as one, else the string (``LIMIT :k`` needs a number)."""
    if type_name is None:
        for cast in (int, float):
            try:
                return cast(value)
            except ValueError:
                pass
        return value
    if type_name not in PARAM_TYPES:
        raise InputError(f"{source} {name}:{type_name}: unknown type (use {', '.join(PARAM_TYPES)})")
    if type_name == "bool":
        if value.lower() not in ("true", "false"):
            raise InputError(f"{source} {name}:bool={value!r}: expected true or false")
        return value.lower() == "true"
    try:
        return PARAM_TYPES[type_name](value)
    except ValueError:
        raise InputError(f"{source} {name}:{type_name}={value!r} is not a {type_name}") from None


def parse_params(pairs: Iterable[str], source: str = "--param") -> dict[str, object]:
    """``["k=4", "year:str=2024", "split=val"]`` → ``{"k": 4, "year": "2024", "split": "val"}``."""
    params: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        name, _, type_name = key.partition(":")
        if not sep or not _NAME.match(name) or (":" in key and not type_name):
            raise InputError(f"{source} {pair!r}: expected NAME=VALUE or NAME:TYPE=VALUE with NAME a plain identifier")
        params[name] = typed_value(name, type_name or None, value, source)
    return params


def find_file(name_or_path: str | Path, folder: Path, what: str) -> Path:
    """``name`` → ``folder/name.toml`` (a packaged file); an existing path is used as it is."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise InputError(f"{what} {shown(path)} does not exist")
        return path
    packaged = folder / f"{name_or_path}.toml"
    if not packaged.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.toml")))
        raise InputError(f"unknown {what} {str(name_or_path)!r} (packaged: {known}); or pass a path to a .toml file")
    return packaged


def read_toml(path: Path, what: str) -> dict:
    """A settings file (UTF-8, a leading byte-order mark allowed) as a dict; ``what`` names it
    in errors (``"config"``, ``"feature spec"``)."""
    text = read_utf8(path, what)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{what} {shown(path)} is not valid TOML ({first_line(exc)})") from None


def unknown_key(key: str, valid: Iterable[str], source: str, label: str = "setting") -> InputError:
    """The error for a key that is not a setting, with the closest valid one; ``label`` may
    carry context, e.g. ``"key"`` → "unknown key 'dtyp' for kind 'mel'" via the caller."""
    valid = sorted(valid)
    hint = difflib.get_close_matches(key, valid, n=1)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else f" (valid: {', '.join(valid)})"
    noun, _, context = label.partition(" ")
    return InputError(f"{source}: unknown {noun} {key!r}{' ' + context if context else ''}{suggestion}")


def check_value(cls: type, name: str, value: object, source: str) -> object:
    """``value`` as field ``name`` of dataclass ``cls`` wants it (int → float, list → tuple; a
    :class:`FlagValue` as what it reads as, or as its text for a ``str`` field)."""
    hint = typing.get_type_hints(cls)[name]
    union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    allowed = typing.get_args(hint) if union else (hint,)
    if isinstance(value, FlagValue):
        parsed = value.parsed
        if isinstance(parsed, str) or str not in allowed:
            value = parsed
        else:  # a number-looking text for a field that takes text: the text, unless another type fits
            fits = [t for t in allowed if t is not str and isinstance(parsed, typing.get_origin(t) or t)]
            value = parsed if fits else str(value)
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


def build(cls: type, layers: Iterable[tuple[str, dict]], *, base: dict | None = None, ignore: Iterable[str] = (),
          label: str = "setting"):
    """Dataclass ``cls`` from ``base`` then each (source, values) layer, every key and value
    checked; keys in ``ignore`` are left to the caller (e.g. a spec's ``kind``); ``label``
    names a key in errors (see :func:`unknown_key`)."""
    names = {f.name for f in dataclasses.fields(cls)}
    ignore = set(ignore)
    values: dict[str, object] = {k: v for k, v in (base or {}).items() if k in names}
    source = cls.__name__
    for source, layer in layers:
        for key, value in layer.items():
            if key in ignore:
                continue
            if key not in names:
                raise unknown_key(key, names | ignore, source, label)
            values[key] = check_value(cls, key, value, source)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{source}: {exc}") from exc
