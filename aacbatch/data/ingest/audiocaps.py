"""AudioCaps: ``{train,val,test}.csv`` (``audiocap_id,youtube_id,start_time,caption``) and an
audio folder of ``<youtube_id>.wav`` or ``Y<youtube_id>.wav`` files (default: ``PATH/audio``,
searched recursively). Rows of the same YouTube id in a split are one clip's captions; the
YouTube id and ``start_time`` (seconds) are kept as the clip's source.
"""

from __future__ import annotations

from pathlib import Path

from aacbatch.data.ingest.tables import index_audio, read_csv
from aacbatch.data.manifest import ClipEntry, Manifest, Source
from aacbatch.errors import InputError, shown

SPLITS = ("train", "val", "test")


def parse(path: Path, *, audio_dir: Path | None = None, limit: int | None = None) -> Manifest:
    listed = [s for s in SPLITS if (path / f"{s}.csv").is_file()]
    if not listed:
        raise InputError(f"{shown(path)}: no train.csv/val.csv/test.csv found: is this an AudioCaps folder?")
    audio = index_audio(audio_dir or path / "audio")
    clips: dict[tuple[str, str], ClipEntry] = {}
    for split in listed:
        csv_path = path / f"{split}.csv"
        for line, row in read_csv(csv_path, ("audiocap_id", "youtube_id", "start_time", "caption")).rows:
            yid = row["youtube_id"].strip()
            if not yid:
                raise InputError(f"{shown(csv_path)} line {line}: empty youtube_id")
            key = (split, yid)
            if key not in clips:
                found = audio.get(yid) or audio.get(f"Y{yid}")
                clips[key] = ClipEntry(
                    name=found.name if found else f"{yid}.wav", source_split=split,
                    path=found or (audio_dir or path / "audio") / f"{yid}.wav",
                    captions=[], origin=f"{shown(csv_path.name)} line {line}",
                    source=Source("youtube", yid, _start(row["start_time"], csv_path, line)),
                )
            clips[key].captions.append(row["caption"].strip())
    entries = list(clips.values())
    return Manifest("audiocaps", path, entries[:limit] if limit else entries)


def _start(text: str, csv_path: Path, line: int) -> float:
    try:
        start = float(text)
    except ValueError:
        start = -1.0
    if not 0 <= start < float("inf"):
        raise InputError(f"{shown(csv_path)} line {line}: start_time {text!r} is not a number of seconds >= 0")
    return start
