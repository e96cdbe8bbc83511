"""Verification of one candidate alignment on the log-mels themselves.

Hash votes say *where* two clips might share audio; this module decides *whether* they do,
and over which stretch. Two renders of the same kind of sound (two sirens, two rain beds)
can share many spectral peaks, but not the fine time–frequency texture of one recording:
each mel band's fluctuation around its local mean — noise grains, partials beating,
onsets a few ms apart. So the aligned overlap is cut into blocks of ``block_frames``
(0.5 s); in each, every band's mean over the block is removed from both clips and the
Pearson correlation of what remains is the block's similarity. Copies score ≈ 0.9 (≥ 0.67
in 99 % of blocks after resampling and lossy re-encoding); blocks of clips that share no
audio score ≈ 0 (≤ 0.4 in 99 %). The mean removal makes it blind to gain and to the
spectral envelope, and a floor ``floor_db`` under each clip's loudest bin keeps codec
noise in near-silent bins from counting.

Texture alone is fooled by *twins*: two independent renders of one deterministic synthetic
sound — SynthCaps' sirens (a fixed 0.35 Hz sweep of harmonics) or its pure-tone beeps at a
fixed period — have nearly the same log-mel once the sweep phases are aligned, though
they share no sample. Two checks, each cheap on a verified stretch, separate them from
copies; both ask whether *everything* in the stretch agrees, not just its loudest sound:

* **Envelope**: a copy keeps the mix — beds, other events — so every bin's mean level
  differs from the original's by the same gain; twins agree only where the twin sound
  dominates.
* **Specificity**: a recording's own noise texture matches only at the exact offset, so in
  some band the correlation there beats every shift of 30–500 ms by a margin; a smooth
  sweep or a periodic pulse correlates almost as well a few frames (or one period) off.

A copy of a clip that holds nothing but such a sound fails them too: with nothing else
in the mix there is nothing that tells the copy from a twin.

Shapes: log-mels ``(T, 64)`` dB at 100 frames per second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VerifyParams:
    """When an aligned stretch counts as shared audio.

    ``search_frames``: the voted offset is refined within ± this many frames.
    ``block_frames``: block length (50 = 0.5 s).
    ``floor_db``: values more than this far under a clip's loudest bin are clamped.
    ``active_db``: a block is informative if both clips' texture (RMS of the mean-removed
    block) exceeds this; blocks of silence or of a steady tone are neutral.
    ``match_corr``: an informative block at or above this correlation matches.
    ``mismatch_corr``: one below this breaks a stretch; in between it is neutral.
    ``min_overlap_seconds``: a match must span at least this long ...
    ``min_matched_seconds``: ... and hold at least this much of matching blocks.
    ``envelope_db``: over the stretch, each mel bin's mean level in one clip, minus the
    other's, may stray from the median difference (the gain) by at most this much in 90 %
    of the bins that carry sound in both (:func:`envelope_spread`).
    ``min_specificity``: in at least one group of ``band_bins`` mel bins, the texture must
    correlate better at the matched offset than at every shift in ``shifts`` frames by this
    much (:func:`specificity`) ...
    ``exact_envelope_db``/``exact_min_score``/``exact_min_specificity``: ... or, when the
    envelopes agree this closely and the texture correlates this well — a mix identical in
    every bin, as when a sparse clip of pure tones is copied — by this much. Measured on
    SynthCaps: copies have envelope spreads of 0.0–1.0 dB (99 %), look-alike renders 0.4 dB
    and up; copies of tonal clips whose amplitude modulation beats against the 10 ms frame
    rate (crickets, alarms) reach specificities of only 0.13–0.25, and so do the most
    alike renders of SynthCaps' siren. Among 10,000 independent ten-second clips, the
    thresholds 0.2/0.12 let 16 look-alike pairs through as matches (15 of them sirens),
    0.25/0.15 five, 0.25/0.2 one, for 0.0, 0.0 and 1.2 points less recall on the planted
    copies of benchmarks/bench_audit.py (seed 7).
    """

    search_frames: int = 3
    block_frames: int = 50
    floor_db: float = 60.0
    active_db: float = 1.0
    match_corr: float = 0.6
    mismatch_corr: float = 0.3
    min_overlap_seconds: float = 2.0
    min_matched_seconds: float = 1.0
    envelope_db: float = 1.5
    min_specificity: float = 0.25
    exact_envelope_db: float = 0.3
    exact_min_score: float = 0.93
    exact_min_specificity: float = 0.15
    band_bins: int = 8
    shifts: tuple[int, ...] = (3, 4, 5, 6, 8, 10, 13, 16, 20, 25, 32, 40, 50)


@dataclass(frozen=True)
class Alignment:
    """A verified shared stretch: ``b[t] ≈ a[t + offset]`` for ``t`` in
    ``[start_b, start_b + length)`` (all in frames); ``score`` is the mean block correlation,
    ``specificity`` and ``envelope_db`` the two checks' values."""

    offset: int
    start_b: int
    length: int
    score: float
    specificity: float
    envelope_db: float


def clamp_floor(mel: np.ndarray, floor_db: float) -> np.ndarray:
    """float32 copy of ``mel`` with every value raised to at least ``max(mel) - floor_db``."""
    x = np.asarray(mel, dtype=np.float32)
    if x.size == 0:
        return x.copy()
    return np.maximum(x, np.float32(x.max() - floor_db))


def block_similarity(a: np.ndarray, b: np.ndarray, block: int, active_db: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-block texture correlation of two aligned, equally long log-mels ``(n, 64)``.

    Returns ``(corr, active)``, both ``(n // block,)``: the correlation of the band-mean-
    removed blocks, and whether both blocks have texture above ``active_db`` RMS.
    """
    n = (len(a) // block) * block
    x = a[:n].reshape(-1, block, a.shape[1])
    y = b[:n].reshape(-1, block, b.shape[1])
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    sxx = np.einsum("kij,kij->k", x, x)
    syy = np.einsum("kij,kij->k", y, y)
    sxy = np.einsum("kij,kij->k", x, y)
    corr = sxy / np.sqrt(np.maximum(sxx * syy, 1e-12))
    floor = active_db ** 2 * block * a.shape[1]
    return corr, (sxx > floor) & (syy > floor)


def plausible(a: np.ndarray, b: np.ndarray, offset: int, top_a: float, top_b: float, params: VerifyParams,
              max_blocks: int = 6) -> bool:
    """Cheap first look at a candidate, on raw (e.g. float16) log-mels: do up to
    ``max_blocks`` blocks spread over the overlap correlate at all (mean ≥ ``mismatch_corr``)
    at the voted offset or one frame off? Most chance candidates stop here, before the full
    :func:`verify` converts and floors both clips. ``top_a``/``top_b`` are the clips' maxima.
    """
    block = params.block_frames
    start, stop = max(0, 1 - offset), min(len(b), len(a) - offset - 1)  # room for ±1
    n_blocks = (stop - start) // block
    if n_blocks < 1:
        return False
    k = min(n_blocks, max_blocks)
    firsts = start + block * ((np.arange(k) * (n_blocks - 1)) // max(k - 1, 1))
    rows = (firsts[:, None] + np.arange(block)).ravel()
    x = np.maximum(a[(rows + offset)[None, :] + np.array([[0], [-1], [1]])].astype(np.float32),
                   np.float32(top_a - params.floor_db))  # (3, k·block, 64)
    y = np.maximum(b[rows].astype(np.float32), np.float32(top_b - params.floor_db))
    x = x.reshape(3, k, block, -1)
    y = y.reshape(1, k, block, -1)
    x = x - x.mean(axis=2, keepdims=True)
    y = y - y.mean(axis=2, keepdims=True)
    sxy = np.einsum("okij,okij->ok", x, np.broadcast_to(y, x.shape))
    sxx = np.einsum("okij,okij->ok", x, x)
    syy = np.einsum("kij,kij->k", y[0], y[0])
    floor = params.active_db ** 2 * block * a.shape[1]
    active = (sxx > floor) & (syy > floor)
    corr = np.where(active, sxy / np.sqrt(np.maximum(sxx * syy, 1e-12)), 0.0)
    counts = active.sum(axis=1)
    return bool(np.any((counts > 0) & (corr.sum(axis=1) >= params.mismatch_corr * np.maximum(counts, 1))))


def _longest_stretch(corr: np.ndarray, active: np.ndarray, params: VerifyParams) -> tuple[int, int, int]:
    """The longest stretch of blocks free of mismatching ones, as ``(lo, hi, matched)``.

    Blocks ``[lo, hi)`` run from its first to its last matching block, except that a stretch
    unbroken up to the first (last) block of the overlap extends to it: a crop's silent lead
    is still part of the crop. ``matched`` counts its matching blocks; ``(0, 0, 0)`` when
    no block matches.
    """
    match = active & (corr >= params.match_corr)
    breaks = np.flatnonzero(active & (corr < params.mismatch_corr))
    best = (0, 0, 0)
    for lo, hi in zip(np.r_[0, breaks + 1], np.r_[breaks, len(corr)]):
        hits = np.flatnonzero(match[lo:hi])
        if not len(hits):
            continue
        first = lo if lo == 0 else lo + int(hits[0])
        last = hi if hi == len(corr) else lo + int(hits[-1]) + 1
        if last - first > best[1] - best[0]:
            best = (first, last, len(hits))
    return best


def envelope_spread(a: np.ndarray, b: np.ndarray, floor_a: float, floor_b: float) -> float:
    """90th percentile of ``|d_j - median(d)|`` in dB, where ``d_j`` is the difference of bin
    ``j``'s mean power level between aligned stretches ``a`` and ``b`` ``(n, 64)``, over bins
    at least 6 dB above each clip's floor in both (0.0 when no bin is)."""
    level_a = 10.0 * np.log10(np.mean(10.0 ** (a / 10.0), axis=0))
    level_b = 10.0 * np.log10(np.mean(10.0 ** (b / 10.0), axis=0))
    live = (level_a > floor_a + 6.0) & (level_b > floor_b + 6.0)
    if not live.any():
        return 0.0
    diff = level_a[live] - level_b[live]
    return float(np.percentile(np.abs(diff - np.median(diff)), 90))


def specificity(a: np.ndarray, b: np.ndarray, offset: int, start: int, stop: int, params: VerifyParams) -> float:
    """How much better ``b[start:stop]`` matches ``a`` at ``offset`` than at any shift of it.

    Per band of ``band_bins`` mel bins with texture above ``active_db`` in both clips: the
    band's correlation at ``offset`` minus its best at ``offset ± k`` for ``k`` in
    ``shifts``; the largest over bands (-1.0 when no band has texture). Shifted frames
    beyond ``a``'s ends repeat its edge frames.
    """
    block, band = params.block_frames, params.band_bins
    n = ((stop - start) // block) * block
    frames = np.arange(start, start + n)
    lags = np.array([0] + [sign * k for k in params.shifts for sign in (-1, 1)])
    x = a[np.clip(frames[None, :] + offset + lags[:, None], 0, len(a) - 1)]  # (lags, n, 64)
    x = x.reshape(len(lags), n // block, block, -1, band)
    y = b[start:start + n].reshape(n // block, block, -1, band)
    x = x - x.mean(axis=2, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    sxy = np.einsum("lkibj,kibj->lb", x, y)
    sxx = np.einsum("lkibj,lkibj->lb", x, x)
    syy = np.einsum("kibj,kibj->b", y, y)
    texture = params.active_db ** 2 * n * band
    active = (sxx[0] > texture) & (syy > texture)
    if not active.any():
        return -1.0
    corr = sxy / np.sqrt(np.maximum(sxx * syy, 1e-12))
    return float((corr[0] - corr[1:].max(axis=0))[active].max())


def verify(a: np.ndarray, b: np.ndarray, offset: int, params: VerifyParams = VerifyParams(),
           frame_rate: float = 100.0) -> Alignment | None:
    """The shared stretch of clip-floored log-mels ``a`` and ``b`` near ``b[t] ≈ a[t + offset]``.

    ``a``/``b`` should come from :func:`clamp_floor`. Every offset within
    ``± search_frames`` is scored by its mean block correlation; the best one's longest
    stretch is kept if it is long enough, holds enough matching blocks and passes the
    envelope and specificity checks (module docstring). A stretch that
    reaches the last whole block of the overlap extends to the overlap's end (the frames left
    over after whole blocks), so a full crop reports its full length. ``None`` when nothing
    passes.
    """
    block = params.block_frames

    def scored(off: int) -> tuple[float, int, np.ndarray, np.ndarray, int, int] | None:
        start, stop = max(0, -off), min(len(b), len(a) - off)
        if stop - start < block:
            return None
        corr, active = block_similarity(a[start + off:stop + off], b[start:stop], block, params.active_db)
        return (float(corr[active].mean()), off, corr, active, start, stop) if active.any() else None

    # The voted offset and its neighbours first: most candidates are chance collisions that
    # fail there, and the rest of the window is only searched for ones that might pass.
    near = [off for off in (offset, offset - 1, offset + 1) if abs(off - offset) <= params.search_frames]
    tried = [r for r in map(scored, near) if r is not None]
    if not tried or max(r[0] for r in tried) < params.mismatch_corr:
        return None
    far = [off for off in range(offset - params.search_frames, offset + params.search_frames + 1) if off not in near]
    tried += [r for r in map(scored, far) if r is not None]
    best = max(tried, key=lambda r: r[0])
    _, off, corr, active, start, stop = best
    lo, hi, matched = _longest_stretch(corr, active, params)
    first = start + lo * block
    last = stop if hi == len(corr) else start + hi * block
    length = last - first
    if length < params.min_overlap_seconds * frame_rate or matched * block < params.min_matched_seconds * frame_rate:
        return None
    spread = envelope_spread(a[first + off:last + off], b[first:last], float(a.min()), float(b.min()))
    if spread > params.envelope_db:
        return None
    score = float(corr[lo:hi][active[lo:hi]].mean())
    exact = spread <= params.exact_envelope_db and score >= params.exact_min_score
    specific = specificity(a, b, off, first, last, params)
    if specific < (params.exact_min_specificity if exact else params.min_specificity):
        return None
    return Alignment(offset=off, start_b=first, length=length, score=score, specificity=specific, envelope_db=spread)
