"""WavCaps: a JSON file ``{"data": [{"id", "caption", "audio"|"wav_path", …}]}`` (one per
source: FreeSound, BBC, SoundBible, AudioSet_SL) and its audio folder (default: the JSON's
folder, searched recursively). The audio file is ``audio``/``wav_path`` when given, else
``<id>`` with any audio suffix. ``--limit`` takes the first N entries (the paper used 40k
FreeSound clips). All clips go to split ``train``. ``id`` is a string or an integer,
``caption`` and ``audio``/``wav_path`` are strings (a null caption would become "None").

The subset is read from the listing's name as the release spells it (``fsd_final.json`` or a
``FreeSound`` folder, ``as_final.json``/``AudioSet_SL``, ``bbc_final.json``/``BBC…``,
``sb_final.json``/``SoundBible``), and each entry's ``id`` is kept with it as the clip's
source: a FreeSound id, or for AudioSet_SL (``Y<youtube id>.wav``) the YouTube id, which is
how Clotho and AudioCaps name the same recordings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from aacbatch.data.ingest.tables import index_audio
from aacbatch.data.manifest import ClipEntry, Manifest, Source
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
    subset = subset_of(listing)
    clips = []
    for i, item in enumerate(data[:limit] if limit else data):
        origin = f"{shown(listing.name)} data[{i}]"
        if not isinstance(item, dict) or "id" not in item or "caption" not in item:
            raise InputError(f"{origin}: entry needs 'id' and 'caption'")
        _check_types(item, origin)
        ref = str(item.get("audio") or item.get("wav_path") or item["id"])
        found = audio.get(Path(ref).name) or audio.get(Path(ref).stem) or audio.get(str(item["id"]))
        key = str(item["id"]).strip()
        clips.append(ClipEntry(name=found.name if found else Path(ref).name, source_split="train",
                               path=found or folder / ref, captions=[str(item["caption"]).strip()], origin=origin,
                               source=_source(subset, key), key=key))
    return Manifest("wavcaps", listing.parent, clips, {"wavcaps_subset": subset} if subset else {})


SUBSETS = {"freesound": ("freesound", "fsd_"), "audioset_sl": ("audioset", "as_"), "bbc": ("bbc",),
           "soundbible": ("soundbible", "sb_")}
_AUDIOSET_ID = re.compile(r"Y([A-Za-z0-9_-]{11})(\.wav|\.flac)?")


def subset_of(listing: Path) -> str | None:
    """The WavCaps subset a listing holds, from its file or folder names (None: unknown)."""
    for part in (listing.name.lower(), *(p.lower() for p in reversed(listing.parent.parts[-2:]))):
        for subset, prefixes in SUBSETS.items():
            if part.startswith(prefixes):
                return subset
    return None


def _source(subset: str | None, key: str) -> Source | None:
    if subset == "audioset_sl":
        youtube = _AUDIOSET_ID.fullmatch(key)
        return Source("youtube", youtube.group(1) if youtube else key)
    return Source(subset, key) if subset else None


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
