"""The numpy CNN14 front end against librosa / torchlibrosa (the PANNs reference).

librosa and torchlibrosa are test-only dependencies (pulled in by ``panns-inference``).
"""

from __future__ import annotations

import numpy as np
import pytest

from aacbatch.audio import logmel

librosa = pytest.importorskip("librosa")
torch = pytest.importorskip("torch")
tl_stft = pytest.importorskip("torchlibrosa.stft")

SR = logmel.SAMPLE_RATE


def _reference_log_mel(waveform: np.ndarray) -> np.ndarray:
    """torchlibrosa Spectrogram + LogmelFilterBank configured exactly as PANNs' Cnn14."""
    spectrogram = tl_stft.Spectrogram(
        n_fft=1024, hop_length=320, win_length=1024, window="hann", center=True, pad_mode="reflect"
    )
    to_mel = tl_stft.LogmelFilterBank(sr=SR, n_fft=1024, n_mels=64, fmin=50, fmax=14000, ref=1.0, amin=1e-10, top_db=None)
    with torch.no_grad():
        return to_mel(spectrogram(torch.from_numpy(waveform)))[:, 0].numpy()


def _float64_log_mel(waveform: np.ndarray) -> np.ndarray:
    """The same definition in float64 with numpy's FFT: ground truth for rounding errors."""
    padded = np.pad(waveform.astype(np.float64), [(0, 0), (512, 512)], mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, 1024, axis=-1)[:, ::320, :]
    power = np.abs(np.fft.rfft(frames * logmel.hann_window(), axis=-1)) ** 2
    return 10 * np.log10(np.maximum(power @ logmel.mel_filterbank().astype(np.float64), 1e-10))


def _noise(seconds: float, level: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * SR)) * level).astype(np.float32)


def _tone_in_noise(seconds: float) -> np.ndarray:
    """A loud 440 Hz tone over faint noise: ~90 dB between the tone and the weakest bins."""
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * 440 * t) + 1e-3 * _noise(seconds, 1.0, seed=3)).astype(np.float32)


@pytest.mark.parametrize(
    ("sr", "n_fft", "n_mels", "fmin", "fmax"),
    [(32000, 1024, 64, 50.0, 14000.0), (16000, 512, 40, 0.0, 8000.0), (44100, 2048, 128, 20.0, 20000.0)],
)
def test_mel_filterbank_equals_librosa(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> None:
    ours = logmel.mel_filterbank(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).T
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    # librosa rounds to float32 twice, we once: at most a few ulps of weights ≤ 0.02.
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-8)


def test_default_filterbank_shape() -> None:
    assert logmel.mel_filterbank().shape == (513, 64)


def test_window_is_periodic_hann() -> None:
    scipy_signal = pytest.importorskip("scipy.signal")
    np.testing.assert_allclose(logmel.hann_window(), scipy_signal.get_window("hann", 1024, fftbins=True), atol=1e-15)


@pytest.mark.parametrize("n", [513, 9920, 32000, 32319, 32320, 96017])
def test_log_mel_shape_and_dtype(n: int) -> None:
    out = logmel.log_mel(_noise(n / SR, 0.1, seed=n))
    assert out.shape == (1 + n // 320, 64) == (logmel.n_frames(n), 64)
    assert out.dtype == np.float32


@pytest.mark.parametrize(("level", "seed"), [(0.1, 0), (1e-3, 1), (0.9, 2)])
def test_log_mel_equals_panns_front_end_on_noise(level: float, seed: int) -> None:
    x = _noise(2.5, level, seed)[None, :]
    ours = logmel.log_mel(x)
    ref = _reference_log_mel(x)
    # Measured ≤ 1.5e-5 dB: float32 rounding of FFT vs. direct DFT sums.
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4)


def test_log_mel_on_high_dynamic_range_audio() -> None:
    """Weak bins next to a loud tone expose rounding: both float32 front ends stay within
    a few millidecibels of the float64 definition (measured: ours 8e-4, reference 2.7e-3)."""
    x = _tone_in_noise(3.0)[None, :]
    ours = logmel.log_mel(x)
    truth = _float64_log_mel(x)
    np.testing.assert_allclose(ours, truth, rtol=0, atol=2e-3)
    np.testing.assert_allclose(ours, _reference_log_mel(x), rtol=0, atol=5e-3)


def test_silence_hits_the_amin_floor() -> None:
    out = logmel.log_mel(np.zeros(SR, dtype=np.float32))
    np.testing.assert_array_equal(out, np.full_like(out, -100.0))


def test_batched_equals_per_clip() -> None:
    batch = np.stack([_noise(1.0, 0.1, seed) for seed in range(3)])
    out = logmel.log_mel(batch)
    assert out.shape == (3, 101, 64)
    for clip, mel in zip(batch, out):
        np.testing.assert_array_equal(logmel.log_mel(clip), mel)


def test_too_short_for_reflect_padding() -> None:
    with pytest.raises(ValueError, match="more than 512 samples"):
        logmel.log_mel(np.zeros(512, dtype=np.float32))


def test_resample_is_band_limited_and_exact_in_rate() -> None:
    sr_in = 44100
    t_in = np.arange(2 * sr_in) / sr_in
    tone = np.sin(2 * np.pi * 1000 * t_in).astype(np.float32)
    out = logmel.resample(tone, sr_in, SR)
    assert out.dtype == np.float32 and out.shape == (2 * SR,)
    t_out = np.arange(out.size) / SR
    inner = slice(SR // 10, -SR // 10)  # away from the edge transients
    np.testing.assert_allclose(out[inner], np.sin(2 * np.pi * 1000 * t_out)[inner], atol=1e-3)
    # A tone above the new Nyquist (16 kHz) is removed, not aliased to 32 - 20 = 12 kHz.
    alias = logmel.resample(np.sin(2 * np.pi * 20000 * t_in).astype(np.float32), sr_in, SR)
    assert np.sqrt(np.mean(alias[inner] ** 2)) < 1e-3


def test_resample_same_rate_is_identity() -> None:
    x = _noise(0.5, 0.1, seed=4)
    np.testing.assert_array_equal(logmel.resample(x, SR, SR), x)
