"""WavCaps: a JSON file ``{"data": [{"id", "caption", "audio"|"wav_path", …}]}`` (one per
source: FreeSound, BBC, SoundBible, AudioSet_SL) and its audio folder (default: the JSON's
folder, searched recursively). The audio file is ``audio``/``wav_path`` when given, else
``<id>`` with any audio suffix. ``--limit`` takes the first N entries (the paper used 40k
FreeSound clips). All clips go to split ``train``. ``id`` is a string or an integer,
``caption`` and ``audio``/``wav_path`` are strings (a null caption would become "None").
"""

from __future__ import annotations

import json
from pathlib import Path

from aacbatch.data.ingest.tables import index_audio
from aacbatch.data.manifest import ClipEntry, Manifest
from aacbatch.errors import InputError, shown
from aacbatch.textfiles import read_utf8


def parse(path: Path, *, audio_dir: Path | None = None, limit: int | None = None) -> Manifest:
    listing = path if path.is_file() else _single_json(path)
    text = read_utf8(listing)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{shown(listing)} is not valid JSON ({exc})") from None
    except RecursionError:
        raise InputError(f"{shown(listing)} is nested too deeply to be a WavCaps listing") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise InputError(f"{shown(listing)}: expected {{\"data\": [...]}} as in the WavCaps release")
    folder = audio_dir or listing.parent
    audio = index_audio(folder)
    clips = []
    for i, item in enumerate(data[:limit] if limit else data):
        origin = f"{shown(listing.name)} data[{i}]"
        if not isinstance(item, dict) or "id" not in item or "caption" not in item:
            raise InputError(f"{origin}: entry needs 'id' and 'caption'")
        _check_types(item, origin)
        ref = str(item.get("audio") or item.get("wav_path") or item["id"])
        found = audio.get(Path(ref).name) or audio.get(Path(ref).stem) or audio.get(str(item["id"]))
        clips.append(ClipEntry(name=found.name if found else Path(ref).name, source_split="train",
                               path=found or folder / ref, captions=[str(item["caption"]).strip()], origin=origin))
    return Manifest("wavcaps", listing.parent, clips)


def _single_json(folder: Path) -> Path:
    candidates = sorted(folder.glob("*.json"))
    if len(candidates) != 1:
        raise InputError(f"{shown(folder)}: expected exactly one WavCaps .json file, found {len(candidates)}; pass the JSON file itself")
    return candidates[0]


def _check_types(item: dict, origin: str) -> None:
    """``id`` a non-empty string or an integer, ``caption`` a string, ``audio``/``wav_path``
    strings when given: anything else would be stored as its Python spelling."""
    ident = item["id"]
    if isinstance(ident, bool) or not isinstance(ident, (str, int)) or not str(ident).strip():
        raise InputError(f"{origin}: 'id' must be a non-empty string or an integer, got {json.dumps(ident)[:40]}")
    if not isinstance(item["caption"], str):
        raise InputError(f"{origin}: 'caption' must be a string, got {json.dumps(item['caption'])[:40]}")
    for key in ("audio", "wav_path"):
        if item.get(key) is not None and not isinstance(item[key], str):
            raise InputError(f"{origin}: {key!r} must be a string, got {json.dumps(item[key])[:40]}")
