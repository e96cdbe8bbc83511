"""``mel``: the CNN14 log-mel front end, cached once per clip as a ragged float16 array.

Audio is decoded, mixed to mono, resampled to 32 kHz with libsoxr and padded/trimmed to
``round(n · 32000 / sr)`` samples, so every clip's frame count is known from the registry
before decoding (the cache layout is fixed up front and shards never overlap).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aacbatch.cache import ArraySpec
from aacbatch.data.audio import load_mono
from aacbatch.featurize import logmel
from aacbatch.featurize.kinds import FeatureKind, OnBad

MIN_SAMPLES = logmel.N_FFT // 2 + 1  # reflect padding needs more than n_fft/2 samples
SILENCE_DB = 10.0 * np.log10(logmel.AMIN)


def resampled_length(n_frames: int | np.ndarray, sample_rate: int | np.ndarray) -> np.ndarray:
    n = np.rint(np.asarray(n_frames, dtype=np.float64) * logmel.SAMPLE_RATE / np.asarray(sample_rate)).astype(np.int64)
    return np.maximum(n, MIN_SAMPLES)


def load_32k(path: str | Path, n_frames: int, sample_rate: int) -> np.ndarray:
    """Mono float32 waveform at 32 kHz with exactly :func:`resampled_length` samples."""
    wave, sr = load_mono(Path(path))
    if sr != sample_rate or len(wave) != n_frames:
        from aacbatch.errors import InputError

        raise InputError(f"audio file {path} changed since ingest ({len(wave)} samples at {sr} Hz, "
                         f"registered {n_frames} at {sample_rate} Hz): re-ingest with --replace")
    wave = logmel.resample(wave, sr)
    target = int(resampled_length(n_frames, sample_rate))
    if len(wave) < target:
        wave = np.pad(wave, (0, target - len(wave)))
    return wave[:target]


class MelKind(FeatureKind):
    item = "clip"

    @dataclass(frozen=True)
    class Params:
        dtype: str = "float16"
        sample_rate: int = logmel.SAMPLE_RATE
        n_fft: int = logmel.N_FFT
        hop: int = logmel.HOP
        n_mels: int = logmel.N_MELS
        fmin: float = logmel.FMIN
        fmax: float = logmel.FMAX

        def __post_init__(self):
            fixed = (logmel.SAMPLE_RATE, logmel.N_FFT, logmel.HOP, logmel.N_MELS, logmel.FMIN, logmel.FMAX)
            if (self.sample_rate, self.n_fft, self.hop, self.n_mels, self.fmin, self.fmax) != fixed:
                raise ValueError("mel parameters must be CNN14's (32000 Hz, n_fft 1024, hop 320, 64 mels, 50-14000 Hz)")
            if self.dtype not in ("float16", "float32"):
                raise ValueError(f"dtype must be float16 or float32, got {self.dtype!r}")

    def arrays(self) -> dict[str, ArraySpec]:
        return {"mel": ArraySpec((logmel.N_MELS,), self.params.dtype, ragged=True)}

    def lengths(self, items: list) -> dict[str, np.ndarray]:
        n = resampled_length([c.n_frames for c in items], [c.sample_rate for c in items])
        return {"mel": logmel.n_frames(n)}

    def compute(self, items: list, on_bad: OnBad) -> dict[str, list[np.ndarray]]:
        out = []
        for k, clip in enumerate(items):
            try:
                mel = logmel.log_mel(load_32k(clip.path, clip.n_frames, clip.sample_rate))
            except Exception as exc:  # decoding/IO errors of one clip
                on_bad(k, exc)
                n = int(logmel.n_frames(resampled_length(clip.n_frames, clip.sample_rate)))
                mel = np.full((n, logmel.N_MELS), SILENCE_DB, dtype=np.float32)
            out.append(mel.astype(self.params.dtype))
        return {"mel": out}
