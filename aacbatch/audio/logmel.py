"""The PANNs CNN14 log-mel front end, in numpy, for batch featurization.

CNN14 computes its log-mels inside the model (torchlibrosa ``Spectrogram`` +
``LogmelFilterBank``): a centred STFT with reflect padding, power spectrum, a Slaney mel
filterbank and ``10·log10(max(·, 1e-10))``. Featurization computes the same thing once per
clip and caches it, so training never pays for the STFT again; this module is that
computation without torch, fast enough to featurize on plain CPU workers (a batched float32
real FFT over strided frame views), and the single definition of the filterbank that the
model's in-graph front end (:mod:`aacbatch.models.cnn14`) reuses.

Shapes: a waveform is ``(n,)`` or batched ``(..., n)`` float32 at 32 kHz; its log-mel is
``(T, 64)`` (``(..., T, 64)``) with ``T = 1 + n // 320``.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

SAMPLE_RATE = 32000
N_FFT = 1024  # also the window length: PANNs uses win = n_fft
HOP = 320  # 10 ms
N_MELS = 64
FMIN = 50.0
FMAX = 14000.0
AMIN = 1e-10  # power floor before log, i.e. a -100 dB floor (ref 1.0, no top_db)


def n_frames(n_samples: int | np.ndarray) -> int | np.ndarray:
    """Number of STFT frames of a centred STFT (``center=True``) over ``n_samples``.

    Element-wise for numpy arrays and torch tensors alike (the model uses it on lengths).
    """
    return 1 + n_samples // HOP


def hann_window(length: int = N_FFT) -> np.ndarray:
    """Periodic ("fftbins") Hann window as librosa/torchlibrosa build it, float64 ``(length,)``.

    Periodic, not symmetric: ``0.5 - 0.5·cos(2πn/length)``, i.e. scipy's
    ``get_window("hann", length, fftbins=True)``.
    """
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's Auditory Toolbox mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * (200.0 / 3)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, linear)


def mel_filterbank(
    sr: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    n_mels: int = N_MELS,
    fmin: float = FMIN,
    fmax: float = FMAX,
) -> np.ndarray:
    """Slaney-normalised triangular mel filterbank, float32 ``(1 + n_fft // 2, n_mels)``.

    Equal to ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
    fmax=fmax).T`` (librosa defaults ``htk=False, norm="slaney"``), which is the
    ``logmel_extractor.melW`` matrix of the PANNs checkpoints. Built in float64 and rounded
    once, so it is the float32 nearest to the exact filterbank.
    """
    fft_freqs = np.linspace(0.0, sr / 2, 1 + n_fft // 2)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]  # (n_mels + 2, n_bins)
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # Slaney: equal area per filter
    return np.ascontiguousarray(weights.T, dtype=np.float32)


_WINDOW = hann_window().astype(np.float32)
_MEL = mel_filterbank()
# Only FFT bins that some filter touches (fmin..fmax) enter the mel product: ~13 % fewer FLOPs.
_USED = np.flatnonzero(_MEL.any(axis=1))
_BINS = slice(int(_USED[0]), int(_USED[-1]) + 1)
_MEL_USED = np.ascontiguousarray(_MEL[_BINS])


def power_spectrogram(waveform: np.ndarray) -> np.ndarray:
    """|STFT|² with a centred (reflect-padded) periodic-Hann window, ``(..., T, 513)`` float32.

    Frames are strided views of the padded signal, so the only copies are the windowed frames
    and the FFT output. ``scipy.fft`` rather than ``numpy.fft``: both are pocketfft, but
    scipy's runs the float32 transform natively and batched, ~5x faster here (2 ms vs 10 ms
    for the 1001 frames of a 10 s clip, one core). Reflect padding mirrors without repeating the edge sample
    (``numpy.pad(mode="reflect")`` = ``torch.nn.functional.pad(mode="reflect")``).
    """
    x = np.asarray(waveform, dtype=np.float32)
    pad = [(0, 0)] * (x.ndim - 1) + [(N_FFT // 2, N_FFT // 2)]
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, pad, mode="reflect"), N_FFT, axis=-1)
    spec = scipy.fft.rfft(frames[..., ::HOP, :] * _WINDOW, axis=-1, workers=1)  # complex64
    power = np.square(spec.real)
    power += np.square(spec.imag)
    return power


def log_mel(waveform: np.ndarray) -> np.ndarray:
    """CNN14 log-mel of a 32 kHz waveform: ``(n,)`` → ``(1 + n // 320, 64)`` float32 dB.

    Also accepts a batch ``(..., n)`` of equal-length clips → ``(..., T, 64)``. Equals the
    PANNs in-model front end (``Spectrogram`` → ``LogmelFilterBank(ref=1, amin=1e-10,
    top_db=None)``) up to float32 rounding of the two DFT algorithms.
    """
    x = np.asarray(waveform, dtype=np.float32)
    if x.shape[-1] <= N_FFT // 2:
        raise ValueError(f"log_mel needs more than {N_FFT // 2} samples for reflect padding, got {x.shape[-1]}")
    power = power_spectrogram(x)[..., _BINS]
    mel = power @ _MEL_USED
    np.maximum(mel, AMIN, out=mel)
    np.log10(mel, out=mel)
    mel *= 10.0
    return mel


def resample(waveform: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling with libsoxr (``HQ``: 20-bit precision, linear phase), float32.

    A real resampler rather than interpolation, because CNN14 was trained on properly
    resampled AudioSet and aliasing shows up in the top mel bands.
    """
    x = np.asarray(waveform, dtype=np.float32)
    if orig_sr == target_sr:
        return x
    import soxr

    return np.asarray(soxr.resample(x, orig_sr, target_sr, quality="HQ"), dtype=np.float32)
