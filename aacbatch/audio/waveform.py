"""32 kHz mono waveforms for the CNN14 front end, from registered clips and new files.

A registered clip is resampled with libsoxr and padded/trimmed to ``round(n · 32000 / sr)``
samples, so its frame count is known from the registry before decoding (the ``mel`` cache
layout is fixed up front and shards never overlap). New audio (captioning or indexing a
file) goes through the same steps, so it is encoded exactly like a cached clip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aacbatch.audio import logmel
from aacbatch.audio.files import load_mono
from aacbatch.errors import InputError

MIN_SAMPLES = logmel.N_FFT // 2 + 1  # reflect padding needs more than n_fft/2 samples


def resampled_length(n_frames: int | np.ndarray, sample_rate: int | np.ndarray) -> np.ndarray:
    n = np.rint(np.asarray(n_frames, dtype=np.float64) * logmel.SAMPLE_RATE / np.asarray(sample_rate)).astype(np.int64)
    return np.maximum(n, MIN_SAMPLES)


def load_32k(path: str | Path, n_frames: int, sample_rate: int) -> np.ndarray:
    """Mono float32 waveform at 32 kHz with exactly :func:`resampled_length` samples."""
    wave, sr = load_mono(Path(path))
    if sr != sample_rate or len(wave) != n_frames:
        raise InputError(f"audio file {path} changed since ingest ({len(wave)} samples at {sr} Hz, "
                         f"registered {n_frames} at {sample_rate} Hz): re-ingest with --replace")
    wave = logmel.resample(wave, sr)
    target = int(resampled_length(n_frames, sample_rate))
    if len(wave) < target:
        wave = np.pad(wave, (0, target - len(wave)))
    return wave[:target]


def file_logmel(path: str | Path, max_samples: int | None = None) -> np.ndarray:
    """(T, 64) log-mel of any audio file (any rate, any channels), padded like a cached clip;
    ``max_samples`` keeps only the start of long files."""
    wave, rate = load_mono(Path(path))
    wave = logmel.resample(wave, rate)[:max_samples]
    return logmel.log_mel(np.pad(wave, (0, max(0, MIN_SAMPLES - len(wave)))))
