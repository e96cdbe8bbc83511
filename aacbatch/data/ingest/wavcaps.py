"""WavCaps: a JSON file ``{"data": [{"id", "caption", "audio"|"wav_path", …}]}`` (one per
source: FreeSound, BBC, SoundBible, AudioSet_SL) and its audio folder (default: the JSON's
folder, searched recursively). The audio file is ``audio``/``wav_path`` when given, else
``<id>`` with any audio suffix. ``--limit`` takes the first N entries (the paper used 40k
FreeSound clips). All clips go to split ``train``.
"""

from __future__ import annotations

import json
from pathlib import Path

from aacbatch.data.ingest.tables import index_audio
from aacbatch.data.manifest import ClipEntry, Manifest
from aacbatch.errors import InputError


def parse(path: Path, *, audio_dir: Path | None = None, limit: int | None = None) -> Manifest:
    listing = path if path.is_file() else _single_json(path)
    try:
        doc = json.loads(listing.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{listing} is not valid JSON ({exc})") from exc
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise InputError(f"{listing}: expected {{\"data\": [...]}} as in the WavCaps release")
    folder = audio_dir or listing.parent
    audio = index_audio(folder)
    clips = []
    for i, item in enumerate(data[:limit] if limit else data):
        origin = f"{listing.name} data[{i}]"
        if not isinstance(item, dict) or "id" not in item or "caption" not in item:
            raise InputError(f"{origin}: entry needs 'id' and 'caption'")
        ref = str(item.get("audio") or item.get("wav_path") or item["id"])
        found = audio.get(Path(ref).name) or audio.get(Path(ref).stem) or audio.get(str(item["id"]))
        clips.append(ClipEntry(name=found.name if found else Path(ref).name, source_split="train",
                               path=found or folder / ref, captions=[str(item["caption"]).strip()], origin=origin))
    return Manifest("wavcaps", listing.parent, clips)


def _single_json(folder: Path) -> Path:
    candidates = sorted(folder.glob("*.json"))
    if len(candidates) != 1:
        raise InputError(f"{folder}: expected exactly one WavCaps .json file, found {len(candidates)}; pass the JSON file itself")
    return candidates[0]
