"""MACS: ``MACS.yaml`` (``files: [{filename, annotations: [{sentence, tags, …}]}]``) and its
audio folder (default: ``PATH/audio``, searched recursively). All clips go to split ``train``;
annotators' tags are merged per clip. File names, sentences and tags must be YAML strings (a
bare ``yes`` or ``null`` would otherwise become the caption "True" or "None").
"""

from __future__ import annotations

from pathlib import Path

import yaml

from aacbatch.data.ingest.tables import index_audio
from aacbatch.data.manifest import ClipEntry, Manifest
from aacbatch.errors import InputError, first_line, shown
from aacbatch.textfiles import read_utf8


def parse(path: Path, *, audio_dir: Path | None = None, limit: int | None = None) -> Manifest:
    listing = path / "MACS.yaml" if path.is_dir() else path
    folder = listing.parent
    if not listing.is_file():
        raise InputError(f"{shown(listing)} is missing: the MACS layout needs MACS.yaml")
    files = _load(listing).get("files")
    if not isinstance(files, list):
        raise InputError(f"{shown(listing)}: expected a top-level 'files' list")
    audio = index_audio(audio_dir or folder / "audio")
    clips = []
    for i, item in enumerate(files):
        origin = f"{shown(listing.name)} files[{i}]"
        if not isinstance(item, dict):
            raise InputError(f"{origin}: expected a mapping with 'filename' and 'annotations', got {_kind(item)}")
        name = _text(item.get("filename", ""), f"{origin}.filename").strip()
        if not name:
            raise InputError(f"{origin}: entry has no 'filename'")
        annotations = item.get("annotations") or []
        if not isinstance(annotations, list) or not all(isinstance(a, dict) for a in annotations):
            raise InputError(f"{origin}.annotations: expected a list of mappings with 'sentence' and 'tags'")
        captions = [_text(a.get("sentence", ""), f"{origin}.annotations[{j}].sentence").strip()
                    for j, a in enumerate(annotations)]
        tags = set()
        for j, a in enumerate(annotations):
            listed = a.get("tags") or []
            if not isinstance(listed, list):
                raise InputError(f"{origin}.annotations[{j}].tags: expected a list of tags, got {_kind(listed)}")
            tags.update(_text(t, f"{origin}.annotations[{j}].tags").strip() for t in listed)
        clips.append(ClipEntry(name=name, source_split="train", path=audio.get(name, (audio_dir or folder / "audio") / name),
                               captions=captions, origin=origin, tags=sorted(t for t in tags if t) or None))
    return Manifest("macs", folder, clips[:limit] if limit else clips)


def _load(listing: Path) -> dict:
    try:
        doc = yaml.safe_load(read_utf8(listing))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(f"{shown(listing)} is not valid YAML ({shown(exc.problem or exc.context)}{where})") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{shown(listing)} is not valid YAML ({shown(first_line(exc))})") from None
    except RecursionError:
        raise InputError(f"{shown(listing)} is nested too deeply to be a MACS listing") from None
    if not isinstance(doc, dict):
        raise InputError(f"{shown(listing)}: expected a top-level 'files' list, got {_kind(doc)}")
    return doc


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{where}: expected text, got {_kind(value)}: quote it")
    return value


def _kind(value: object) -> str:
    """``"int 42"``, ``"null"``: a YAML value as an error shows it (repr keeps it on one line)."""
    return "null" if value is None else f"{type(value).__name__} {repr(value)[:40]}"
