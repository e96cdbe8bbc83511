"""Landmark-triplet fingerprints of cached CNN14 log-mels.

A fingerprint is a set of hashes, each anchored at a frame: three spectral peaks — an anchor
and two later peaks near it in time and frequency — hashed by their three mel bins and the
two time gaps to the anchor. A copy of a clip, cropped anywhere, resampled or re-encoded
lossy, keeps a good share of its peaks in place, so a share of its hashes recur in the
original at the same distance in frames; two clips that share no audio share hashes only by
chance, at scattered distances. :mod:`aacbatch.audit.overlap` turns that into matches.

Why triplets and not the classic anchor/target pairs (Shazam, audfprint): a pair of peaks
in 64 mel bins with gaps of ≤ 63 frames takes at most 64·64·63 ≈ 2.6·10⁵ values, so among
10,000 clips (≈ 10⁷ pair hashes) every hash value recurs in hundreds of unrelated clips and
the number of chance collisions — the work of the matcher — grows with the square of the
collection. A third peak makes 64³·63² ≈ 10⁹ values: chance collisions stay a small share
of the work at 10⁴ clips, and the cost grows near-linearly. The price is robustness: a
triplet survives only when all three of its peaks do. Measured on SynthCaps crops resampled
44.1 → 32 kHz and re-encoded (Vorbis/MP3, 40–80 kbit/s), about 60 % of peaks survive — half
a hop of misalignment between the crop's frame grid and the original's, and the codec's
quantisation noise, each move about a third of them — so roughly one triplet in five does;
with ≈ 180 triplets per second that still leaves tens of consistent votes per second of
shared audio. Where it fails is sparse pure tones whose amplitude modulation beats against
the 10 ms frame rate (SynthCaps' crickets): their one peak per chirp lands anywhere on the
chirp's plateau.

Peaks are picked on the log-mel smoothed over 3 frames (30 ms), with each band's 0.5 s
moving average removed (so a steady bed or hum yields no peaks, and onsets and modulation
do), and only above a floor under the loudest bin within ±1 s: quiet detail is what lossy
codecs discard first. Everything is in dB differences and bin positions, so a gain change
does not move a single hash.

Shapes: a log-mel is ``(T, 64)`` float16/float32 dB at 100 frames per second.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy.ndimage import maximum_filter, maximum_filter1d, uniform_filter1d

N_MELS = 64
_BIN_BITS = 6   # 64 mel bins
_GAP_BITS = 6   # time gaps 1..63 frames


@dataclass(frozen=True)
class FingerprintParams:
    """How peaks are picked and grouped into hashes (defaults measured on SynthCaps copies).

    ``smooth_frames``: moving average over time before peak picking (3 = 30 ms).
    ``whiten_frames``: each band's moving average over this many frames (51 ≈ 0.5 s) is
    subtracted before peak picking, so peaks mark where a band rises above its own recent
    level — onsets, grains, modulation — rather than where a steady tone or bed sits.
    ``peak_frames``/``peak_bins``: a peak is the maximum of its ±frames × ±bins neighbourhood
    (±7 frames × ±3 bins ≈ 30 peaks per second on busy clips).
    ``floor_db``/``floor_frames``: peaks must lie within ``floor_db`` of the loudest
    (smoothed) bin within ``floor_frames`` around them (201 = ±1 s). Local rather than
    clip-wide, so a quiet stretch of a loud recording keeps the same peaks when it is cut
    out on its own.
    ``silence_db``: and above this absolute level (the log-mel floor is −100 dB).
    ``zone_frames``/``zone_bins``: targets follow their anchor by 1..zone_frames frames and
    lie within ±zone_bins mel bins of it.
    ``fan_out``: each anchor pairs up with its first ``fan_out`` targets in time, giving
    C(fan_out, 2) triplet hashes per anchor.
    """

    smooth_frames: int = 3
    whiten_frames: int = 51
    peak_frames: int = 7
    peak_bins: int = 3
    floor_db: float = 50.0
    floor_frames: int = 201
    silence_db: float = -90.0
    zone_frames: int = 63
    zone_bins: int = 20
    fan_out: int = 4

    def __post_init__(self):
        if not 1 <= self.zone_frames < 2 ** _GAP_BITS:
            raise ValueError(f"zone_frames must be in 1..{2 ** _GAP_BITS - 1}, got {self.zone_frames}")
        if self.fan_out < 2:
            raise ValueError(f"fan_out must be at least 2 (a triplet needs two targets), got {self.fan_out}")
        sizes = (self.smooth_frames, self.whiten_frames, self.floor_frames, self.peak_frames, self.peak_bins,
                 self.zone_bins)
        if min(sizes) < 0:
            raise ValueError("smooth_frames, whiten_frames, floor_frames, peak_frames, peak_bins and zone_bins "
                             "must be non-negative")


def as_mel(mel: np.ndarray) -> np.ndarray:
    """A log-mel as float32 ``(T, 64)``; ValueError naming the shape otherwise."""
    x = np.asarray(mel)
    if x.ndim != 2 or x.shape[1] != N_MELS:
        raise ValueError(f"a log-mel must have shape (T, {N_MELS}), got {x.shape}")
    return x.astype(np.float32, copy=False)


def peaks(mel: np.ndarray, params: FingerprintParams = FingerprintParams()) -> tuple[np.ndarray, np.ndarray]:
    """Spectral peaks of one log-mel: frame ``t`` and mel bin ``f`` (int32 ``(P,)`` each),
    sorted by time, then bin."""
    x = as_mel(mel)
    if len(x) == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    if params.smooth_frames > 1:
        x = uniform_filter1d(x, params.smooth_frames, axis=0, mode="nearest")
    y = x - uniform_filter1d(x, params.whiten_frames, axis=0, mode="nearest") if params.whiten_frames > 1 else x
    local_max = maximum_filter(y, size=(2 * params.peak_frames + 1, 2 * params.peak_bins + 1),
                               mode="constant", cval=-np.inf)
    loudest = maximum_filter1d(x.max(axis=1), max(params.floor_frames, 1), mode="nearest")
    floor = np.maximum(loudest - params.floor_db, params.silence_db)[:, None]
    # On a plateau (a steady synthetic tone, float16 steps) every cell equals the local
    # maximum; only its first cell in time and in frequency is a peak.
    rises = np.empty(y.shape, dtype=bool)
    rises[0] = True
    np.greater(y[1:], y[:-1], out=rises[1:])
    rises[:, 1:] &= y[:, 1:] > y[:, :-1]
    t, f = np.nonzero((y == local_max) & rises & (x > floor))
    return t.astype(np.int32), f.astype(np.int32)


_PAIRS_CACHE: dict[int, np.ndarray] = {}


def _target_pairs(fan_out: int) -> np.ndarray:
    """Column pairs (u, v), u < v, of an anchor's ``fan_out`` targets: ``(C(fan_out, 2), 2)``."""
    if fan_out not in _PAIRS_CACHE:
        _PAIRS_CACHE[fan_out] = np.array(list(combinations(range(fan_out), 2)), dtype=np.intp)
    return _PAIRS_CACHE[fan_out]


def triplets(t: np.ndarray, f: np.ndarray, params: FingerprintParams = FingerprintParams()) -> tuple[np.ndarray, np.ndarray]:
    """Triplet hashes of peaks sorted by time: ``(hashes int64 (H,), anchor frames int32 (H,))``.

    A hash packs the anchor bin, both target bins and both gaps (6 bits each, 30 bits).
    Targets are looked for among the next ``(zone_bins·2 + 1)·fan_out`` peaks, which holds
    every peak of the zone unless more than that many peaks crowd into 0.63 s.
    """
    n = len(t)
    if n < 3:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    look = min(n - 1, 4 * params.fan_out + 2 * params.zone_bins)
    cand = np.arange(n)[:, None] + np.arange(1, look + 1)[None, :]  # (n, look)
    inside = cand < n
    cand = np.minimum(cand, n - 1)
    gap = t[cand] - t[:, None]
    in_zone = inside & (gap >= 1) & (gap <= params.zone_frames) & (np.abs(f[cand] - f[:, None]) <= params.zone_bins)
    rank = np.cumsum(in_zone, axis=1)
    keep = in_zone & (rank <= params.fan_out)
    targets = np.full((n, params.fan_out), -1, dtype=np.intp)
    rows, cols = np.nonzero(keep)
    targets[rows, rank[rows, cols] - 1] = cand[rows, cols]
    pairs = _target_pairs(params.fan_out)
    b, c = targets[:, pairs[:, 0]], targets[:, pairs[:, 1]]  # (n, n_pairs)
    ok = (b >= 0) & (c >= 0)
    anchor = np.broadcast_to(np.arange(n)[:, None], b.shape)[ok]
    b, c = b[ok], c[ok]
    h = f[anchor].astype(np.int64)
    h |= f[b].astype(np.int64) << _BIN_BITS
    h |= f[c].astype(np.int64) << (2 * _BIN_BITS)
    h |= (t[b] - t[anchor]).astype(np.int64) << (3 * _BIN_BITS)
    h |= (t[c] - t[anchor]).astype(np.int64) << (3 * _BIN_BITS + _GAP_BITS)
    return h, t[anchor].astype(np.int32)


def fingerprint(mel: np.ndarray, params: FingerprintParams = FingerprintParams()) -> tuple[np.ndarray, np.ndarray]:
    """Fingerprint of one log-mel ``(T, 64)``: ``(hashes int64 (H,), anchor frames int32 (H,))``.

    Empty for a clip too short or too quiet to hold three peaks.
    """
    return triplets(*peaks(mel, params), params)
