"""``mel``: the CNN14 log-mel front end, cached once per clip as a ragged float16 array.

Audio is decoded, mixed to mono and resampled to 32 kHz by :func:`aacbatch.audio.waveform.load_32k`,
so every clip's frame count is known from the registry before decoding (the cache layout is
fixed up front and shards never overlap).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aacbatch.audio import logmel
from aacbatch.audio.waveform import load_32k, resampled_length
from aacbatch.cache import ArraySpec
from aacbatch.featurize.kinds import FeatureKind, OnBad

SILENCE_DB = 10.0 * np.log10(logmel.AMIN)


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
