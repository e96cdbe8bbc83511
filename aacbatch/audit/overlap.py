"""Duplicate and near-duplicate audio among clips, from their cached log-mels.

``find_overlaps`` finds clips that share audio — exact duplicates, a clip that is a crop of
a longer one at any offset, resampled or lossy re-encoded copies — within and across
datasets, without comparing every pair of clips:

1. **Fingerprint** every clip (:mod:`aacbatch.audit.fingerprint`): ≈ 180 landmark-triplet
   hashes per second of audio, each at an anchor frame.
2. **Vote.** All hashes are sorted once; clips that share a hash value vote for the
   distance between their anchors, ``offset = t_a - t_b`` — one vote per anchor frame of
   ``b``, as an anchor's triplets share its peaks. Copies pile their votes on one offset
   (± 1 frame, as a crop's frame grid sits up to half a hop off the original's); chance
   collisions scatter. A hash value held by more than ``max_postings`` anchors is a
   pattern, not a recording, and is skipped, which also caps the pairs a value can make.
   The cost is the sort plus the colliding pairs: linear in the number of hashes while
   chance collisions stay rare, which triplet hashes (≈ 10⁹ values) keep them to at the
   scale of 10⁴ clips. What does grow with the square of the collection is the number of
   pairs that really do sound alike (on SynthCaps, renders of the same deterministic
   event), each of which has to be verified.
3. **Verify** each clip pair's best offset with ``min_votes`` or more on the aligned
   log-mels (:mod:`aacbatch.audit.verify`): a cheap look at a few blocks first, then the
   full check, which also finds the shared stretch.

Why not Chromaprint (``fpcalc`` from Debian's libchromaprint-tools 1.5.1, or pyacoustid
over libchromaprint): measured on the same planted set (``benchmarks/bench_audit.py
--chromaprint``) with AcoustID-style matching — an inverted index over its 32-bit
sub-fingerprints, offset votes, a bit-error-rate check — it finds 93 % of the copies, but
at BER ≤ 0.10 it also matches 1,005 of the 1.9·10⁶ pairs that share no audio (2,161 at
0.15; at 0.05 still 291, with recall down to 66 %). Its 12 chroma bands (pitch classes)
are what tells one song from another and little else: synthetic rain, engines or beeps
come out nearly alike, and half of those false matches are stretches where its
fingerprint holds a single value. It also decodes and resamples every file again (≈ 90 ms
per clip here) where the log-mels are already cached (≈ 2–4 ms to fingerprint one). So
the audit fingerprints the log-mels, and Chromaprint is not a dependency.

Units: offsets and durations in :class:`Match` are seconds; log-mels are ``(T, 64)`` at
:data:`FRAME_RATE` frames per second.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from aacbatch.audit.fingerprint import FingerprintParams, as_mel, fingerprint
from aacbatch.audit.verify import VerifyParams, clamp_floor, plausible, verify
from aacbatch.errors import InputError
from aacbatch.audio import logmel

FRAME_RATE = logmel.SAMPLE_RATE / logmel.HOP  # 100 frames per second
PAIRS = ("all", "within", "across")


@dataclass(frozen=True)
class AuditParams:
    """Every threshold of an audit; the defaults are the ones the benchmark measures.

    ``max_postings``: hash values held by more anchors than this are skipped as patterns
    (a steady tone, a common synthetic event), not evidence of shared audio.
    ``min_votes``: a clip pair's best offset needs this many votes (anchor frames, its own
    offset's plus the better neighbour's) to be verified. Among 2,000 SynthCaps clips,
    3 lets through 97 % of planted copies and ≈ 1,700 of the 2·10⁶ other pairs, which the
    verification then rejects; 4 would keep 96 % and ≈ 500.
    """

    fingerprint: FingerprintParams = field(default_factory=FingerprintParams)
    verify: VerifyParams = field(default_factory=VerifyParams)
    max_postings: int = 100
    min_votes: int = 3

    def __post_init__(self):
        if self.max_postings < 2:
            raise ValueError(f"max_postings must be at least 2, got {self.max_postings}")
        if self.min_votes < 1:
            raise ValueError(f"min_votes must be at least 1, got {self.min_votes}")


@dataclass(frozen=True)
class Match:
    """Clips ``a`` and ``b`` (positions in the input) share audio: ``b`` at time ``t`` sounds
    like ``a`` at ``t + offset``, over ``duration`` seconds starting at ``start_b`` in ``b``
    (``start_a = start_b + offset`` in ``a``).

    ``offset >= 0``: ``a`` is the clip the shared audio starts later in (the longer recording
    of a crop); for equal starts, ``a < b``. ``score`` is the mean texture correlation of the
    shared stretch (≈ 0.9 for a copy, 1.0 for an exact duplicate); ``specificity`` and
    ``envelope_db`` are the values of the two checks that tell copies from look-alike renders
    (:mod:`aacbatch.audit.verify`); ``votes`` the hash votes behind the match.
    """

    a: int
    b: int
    offset: float
    start_a: float
    start_b: float
    duration: float
    score: float
    specificity: float
    envelope_db: float
    votes: int


@dataclass(frozen=True)
class Candidates:
    """The best-voted offset of each clip pair that passed ``min_votes``: ``(K,)`` arrays,
    ``a < b`` and ``b[t] ≈ a[t + offset]`` in frames."""

    a: np.ndarray
    b: np.ndarray
    offset: np.ndarray
    votes: np.ndarray


def find_overlaps(mels: Sequence[np.ndarray], datasets: Sequence[Hashable] | None = None, *,
                  pairs: str = "all", params: AuditParams = AuditParams(), workers: int = 1) -> list[Match]:
    """Every pair of clips among ``mels`` that shares audio, sorted by ``(a, b)``.

    ``mels``: log-mels ``(T_i, 64)`` float16/float32 dB — any sequence with ``len`` and
    integer indexing, so a lazy view over a feature cache works (each clip is read twice:
    to fingerprint it, and again if it is a candidate). ``datasets``: one label per clip;
    ``pairs`` chooses which pairs are audited: ``"all"``, ``"within"`` one dataset, or
    ``"across"`` datasets only. A clip pair gets at most one match (its best offset), a clip
    is never matched with itself, and clips without peaks — digital silence, a perfectly
    steady tone — cannot match anything. ``workers`` threads fingerprint and verify (numpy
    and scipy release the GIL in the heavy loops; the vote is one sort either way).
    """
    if workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    labels = _dataset_ids(len(mels), datasets, pairs)
    with ThreadPoolExecutor(workers) as pool:
        hashes, times, clips = _fingerprints(mels, params.fingerprint, pool, workers)
        found = vote(hashes, times, clips, labels, pairs, params)
        return _verified(mels, found, params, pool, workers)


def _dataset_ids(n: int, datasets: Sequence[Hashable] | None, pairs: str) -> np.ndarray:
    if pairs not in PAIRS:
        raise InputError(f"pairs must be one of {', '.join(PAIRS)}, got {pairs!r}")
    if datasets is None:
        if pairs == "across":
            raise InputError("pairs='across' needs a dataset label for every clip (datasets=...)")
        return np.zeros(n, dtype=np.int64)
    if len(datasets) != n:
        raise InputError(f"datasets has {len(datasets)} labels for {n} clips: give one label per clip")
    _, ids = np.unique(np.array([str(d) for d in datasets]), return_inverse=True)
    return ids.astype(np.int64)


def _chunks(n: int, workers: int) -> list[range]:
    """``range(n)`` cut into contiguous pieces, a few per worker so that they even out."""
    size = max(1, -(-n // (4 * workers)))
    return [range(lo, min(lo + size, n)) for lo in range(0, n, size)]


def _fingerprint_range(mels: Sequence[np.ndarray], clips: range,
                       params: FingerprintParams) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for i in clips:
        try:
            out.append(fingerprint(mels[i], params))
        except ValueError as exc:
            raise InputError(f"clip {i}: {exc}: audit a log-mel ('mel') feature set") from None
    return out


def _fingerprints(mels: Sequence[np.ndarray], params: FingerprintParams, pool: ThreadPoolExecutor,
                  workers: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All clips' hashes, anchor frames and clip positions, concatenated: ``(H,)`` each."""
    parts = [fp for part in pool.map(lambda r: _fingerprint_range(mels, r, params), _chunks(len(mels), workers))
             for fp in part]
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32)
    clips = np.repeat(np.arange(len(parts), dtype=np.int32), [len(h) for h, _ in parts])
    return np.concatenate([h for h, _ in parts]), np.concatenate([t for _, t in parts]), clips


def _colliding_pairs(group_start: np.ndarray, group_size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(i, j)``, ``i < j``, of every two entries in the same group of a sorted array."""
    n_entries = int(group_size.sum())
    rank = np.arange(n_entries) - np.repeat(np.cumsum(group_size) - group_size, group_size)
    entry = np.repeat(group_start, group_size) + rank
    partners = np.repeat(group_start + group_size, group_size) - entry - 1
    first = np.repeat(entry, partners)
    step = np.arange(len(first)) - np.repeat(np.cumsum(partners) - partners, partners)
    return first, first + 1 + step


def _group_batches(size: np.ndarray, max_pairs: int) -> list[slice]:
    """Consecutive groups whose pairs add up to about ``max_pairs`` each (a bigger group
    stays whole), so the pair arrays of one batch bound the vote's memory."""
    pairs = np.cumsum(size * (size - 1) // 2)
    cuts = np.searchsorted(pairs, np.arange(max_pairs, int(pairs[-1]) if len(pairs) else 0, max_pairs), side="right")
    edges = np.unique(np.r_[0, cuts, len(size)])
    return [slice(int(lo), int(hi)) for lo, hi in zip(edges[:-1], edges[1:])]


def vote(hashes: np.ndarray, times: np.ndarray, clips: np.ndarray, labels: np.ndarray, pairs: str,
         params: AuditParams, max_pairs: int = 4_000_000) -> Candidates:
    """Offset-histogram voting over an inverted index of all hashes.

    ``hashes``/``times``/``clips``: ``(H,)`` hash values, anchor frames and clip positions;
    ``labels``: dataset id per clip. Clips sharing a hash value vote for ``t_a - t_b``, one
    vote per anchor frame of ``b`` (the triplets of one anchor share its peaks, so a single
    chance coincidence — two onsets the same gap apart — would otherwise vote six times).
    Votes at adjacent offsets are pooled — a pair's count at ``o`` is its own plus the
    larger of ``o - 1`` and ``o + 1`` — because a crop's frames fall between the
    original's and its peaks round either way. Colliding pairs are formed ``max_pairs`` at
    a time; each leaves one int64 key behind.
    """
    empty = Candidates(*(np.zeros(0, np.int64) for _ in range(4)))
    if len(hashes) < 2:
        return empty
    order = np.argsort(hashes, kind="stable")
    h, t, c = hashes[order], times[order].astype(np.int64), clips[order].astype(np.int64)
    del order
    start = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
    size = np.diff(np.r_[start, len(h)])
    keep = (size >= 2) & (size <= params.max_postings)
    start, size = start[keep], size[keep]
    del h, keep
    n, frames = int(c.max()) + 1, int(t.max()) + 1
    shift, span = frames, 2 * frames + 1  # offsets lie in (-frames, frames)
    packed = float(n) * n * span * frames < 2.0 ** 62  # (pair, offset, anchor) fits one int64
    keys, anchors = [], []
    for batch in _group_batches(size, max_pairs):
        i, j = _colliding_pairs(start[batch], size[batch])
        ci, cj = c[i], c[j]
        ok = ci != cj
        if pairs == "within":
            ok &= labels[ci] == labels[cj]
        elif pairs == "across":
            ok &= labels[ci] != labels[cj]
        i, j, ci, cj = i[ok], j[ok], ci[ok], cj[ok]
        swap = ci > cj
        key = (np.where(swap, cj, ci) * n + np.where(swap, ci, cj)) * span + shift
        key += np.where(swap, t[j] - t[i], t[i] - t[j])
        anchor_b = np.where(swap, t[i], t[j])
        keys.append(key * frames + anchor_b if packed else key)
        anchors.append(None if packed else anchor_b)
    if not keys or not sum(len(k) for k in keys):
        return empty
    if packed:
        # One sort of the packed key; np.sort, as numpy 2's hash-based np.unique is ~20x slower here.
        raw = np.sort(np.concatenate(keys))
        raw = raw[np.r_[True, raw[1:] != raw[:-1]]] // frames
    else:
        raw, anchor_b = np.concatenate(keys), np.concatenate(anchors)
        order = np.lexsort((anchor_b, raw))
        raw, anchor_b = raw[order], anchor_b[order]
        raw = raw[np.r_[True, (raw[1:] != raw[:-1]) | (anchor_b[1:] != anchor_b[:-1])]]
    del keys, anchors
    first = np.flatnonzero(np.r_[True, raw[1:] != raw[:-1]])
    count = np.diff(np.r_[first, len(raw)]).astype(np.int32)
    key = raw[first]
    del raw, first
    # Keys are sorted, so offset o - 1 of the same pair can only be the previous key, o + 1 the next.
    neighbour = np.zeros_like(count)
    below = key[1:] == key[:-1] + 1
    neighbour[1:][below] = count[:-1][below]
    np.maximum(neighbour[:-1], np.where(below, count[1:], 0), out=neighbour[:-1])
    pooled = count + neighbour
    strong = np.flatnonzero(pooled >= params.min_votes)
    key, pooled = key[strong], pooled[strong]
    pair = key // span
    best = np.lexsort((pooled, pair))
    last = best[np.r_[pair[best][1:] != pair[best][:-1], True]] if len(best) else best
    return Candidates(a=pair[last] // n, b=pair[last] % n, offset=key[last] % span - shift, votes=pooled[last])


def _verified(mels: Sequence[np.ndarray], found: Candidates, params: AuditParams, pool: ThreadPoolExecutor,
              workers: int) -> list[Match]:
    """Candidates that pass :func:`verify`, as :class:`Match`, sorted by ``(a, b)``."""
    parts = pool.map(lambda r: _verify_range(mels, found, r, params), _chunks(len(found.a), workers))
    return sorted((m for part in parts for m in part), key=lambda m: (m.a, m.b))



def _verify_range(mels: Sequence[np.ndarray], found: Candidates, rows: range, params: AuditParams) -> list[Match]:
    """Verified candidates ``rows``; floored log-mels are kept for the last few clips, which
    in ``(a, b)`` order covers every repeat of ``a``."""
    cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def floored(i: int) -> np.ndarray:
        if i not in cache:
            cache[i] = clamp_floor(as_mel(mels[i]), params.verify.floor_db)
            if len(cache) > 64:
                cache.popitem(last=False)
        return cache[i]

    loudest: dict[int, float] = {}

    def top(i: int, mel: np.ndarray) -> float:
        if i not in loudest:
            loudest[i] = float(np.max(mel)) if len(mel) else 0.0
        return loudest[i]

    matches = []
    sl = slice(rows.start, rows.stop)
    for a, b, offset, votes in zip(found.a[sl].tolist(), found.b[sl].tolist(), found.offset[sl].tolist(),
                                   found.votes[sl].tolist()):
        mel_a, mel_b = mels[a], mels[b]
        if not plausible(mel_a, mel_b, offset, top(a, mel_a), top(b, mel_b), params.verify):
            continue
        hit = verify(floored(a), floored(b), offset, params.verify, FRAME_RATE)
        if hit is None:
            continue
        start_a = hit.start_b + hit.offset
        if hit.offset < 0:  # report from the clip the shared audio starts later in
            a, b, start_a, start_b, off = b, a, hit.start_b, start_a, -hit.offset
        else:
            start_b, off = hit.start_b, hit.offset
        matches.append(Match(a=a, b=b, offset=off / FRAME_RATE, start_a=int(start_a) / FRAME_RATE,
                             start_b=int(start_b) / FRAME_RATE, duration=int(hit.length) / FRAME_RATE,
                             score=hit.score, specificity=hit.specificity,
                             envelope_db=hit.envelope_db, votes=int(votes)))
    return matches
