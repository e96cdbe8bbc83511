"""Audio file checks and loading, shared by ingest and featurization.

Ingest only reads headers (fast, catches missing/corrupt/empty files before anything is
written); featurization decodes and resamples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aacbatch.errors import InputError, first_line, shown

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


@dataclass(frozen=True)
class AudioInfo:
    duration: float
    sample_rate: int
    channels: int
    frames: int


def probe(path: Path, context: str = "") -> AudioInfo:
    """Header facts of ``path``; :class:`InputError` for missing, unreadable or empty audio."""
    import soundfile as sf

    where = f" ({context})" if context else ""
    if not path.is_file():
        raise InputError(f"audio file {shown(path)}{where} is missing: restore it or remove its entry")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError/TypeError variants
        raise InputError(f"audio file {shown(path)}{where} is unreadable ({shown(first_line(exc))}): "
                         "re-export or remove it") from exc
    if info.frames <= 0 or info.samplerate <= 0:
        raise InputError(f"audio file {shown(path)}{where} has no samples: replace it or remove its entry")
    return AudioInfo(info.frames / info.samplerate, int(info.samplerate), int(info.channels), int(info.frames))


def load_mono(path: Path) -> tuple[np.ndarray, int]:
    """Decode ``path`` to float32 mono (channel mean) with its native sample rate."""
    import soundfile as sf

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise InputError(f"audio file {shown(path)} cannot be decoded ({shown(first_line(exc))}): "
                         "re-export or remove it") from exc
    if data.shape[0] == 0:
        raise InputError(f"audio file {shown(path)} has no samples: replace it or remove its entry")
    wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(wave).all():
        raise InputError(f"audio file {shown(path)} contains NaN or infinite samples: re-export it")
    return np.ascontiguousarray(wave, dtype=np.float32), int(sr)
