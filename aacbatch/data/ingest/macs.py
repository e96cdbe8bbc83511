"""MACS: ``MACS.yaml`` (``files: [{filename, annotations: [{sentence, tags, …}]}]``) and its
audio folder (default: ``PATH/audio``, searched recursively). All clips go to split ``train``;
annotators' tags are merged per clip.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from aacbatch.data.ingest.tables import index_audio
from aacbatch.data.manifest import ClipEntry, Manifest
from aacbatch.errors import InputError


def parse(path: Path, *, audio_dir: Path | None = None, limit: int | None = None) -> Manifest:
    listing = path / "MACS.yaml" if path.is_dir() else path
    folder = listing.parent
    if not listing.is_file():
        raise InputError(f"{listing} is missing: the MACS layout needs MACS.yaml")
    try:
        doc = yaml.safe_load(listing.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{listing} is not valid YAML ({str(exc).splitlines()[0]})") from exc
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, list):
        raise InputError(f"{listing}: expected a top-level 'files' list")
    audio = index_audio(audio_dir or folder / "audio")
    clips = []
    for i, item in enumerate(files):
        origin = f"{listing.name} files[{i}]"
        name = str(item.get("filename", "")).strip() if isinstance(item, dict) else ""
        if not name:
            raise InputError(f"{origin}: entry has no 'filename'")
        annotations = item.get("annotations") or []
        captions = [str(a.get("sentence", "")).strip() for a in annotations]
        tags = sorted({str(t) for a in annotations for t in (a.get("tags") or [])}) or None
        clips.append(ClipEntry(name=name, source_split="train", path=audio.get(name, (audio_dir or folder / "audio") / name),
                               captions=captions, origin=origin, tags=tags))
    return Manifest("macs", folder, clips[:limit] if limit else clips)
