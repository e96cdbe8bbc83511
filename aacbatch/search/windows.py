"""Which stretches of a file an index embeds, and how a search turns windows back into hits.

Without ``--window`` a file is one window: its first ``max_seconds`` (what an index always
did). With ``--window W --hop H`` every file is cut into windows of W seconds starting every
H seconds, the last one ending where the file ends, so a long recording is covered whole:

    n = 1                          if duration <= W
    n = ceil((duration - W) / H) + 1  otherwise;  window k spans [k·H, min(k·H + W, duration)]

(the last window is longer than W − H, never a sliver). A search ranks windows; a candidate
window and the candidate windows of its file that overlap it are merged into one hit spanning
them, scored by the best, so a sound heard in three overlapping windows is listed once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aacbatch.audio import logmel
from aacbatch.audio.files import AudioInfo
from aacbatch.audio.waveform import load_32k
from aacbatch.errors import InputError


@dataclass(frozen=True)
class Windowing:
    window: float | None  # seconds; None: one window per file, its first max_seconds
    hop: float | None
    max_seconds: float

    @classmethod
    def checked(cls, window: float | None, hop: float | None, max_seconds: float) -> "Windowing":
        """The windowing of ``--window/--hop/--max-seconds``, or a one-line error."""
        if not max_seconds > 0:
            raise InputError(f"--max-seconds must be positive, got {max_seconds:g}")
        if window is None:
            if hop is not None:
                raise InputError("--hop needs --window: give the window length in seconds too")
            return cls(None, None, float(max_seconds))
        if not window > 0:
            raise InputError(f"--window must be positive, got {window:g} (seconds)")
        if window > max_seconds:
            raise InputError(f"--window {window:g} is longer than --max-seconds {max_seconds:g}: the encoder reads at "
                             "most --max-seconds at once; pass a shorter --window or a larger --max-seconds")
        hop = window / 2 if hop is None else hop
        if not 0 < hop <= window:
            raise InputError(f"--hop must be positive and at most --window {window:g}, got {hop:g}: a larger hop "
                             "would leave parts of each file out")
        return cls(float(window), float(hop), float(max_seconds))

    def spec(self) -> dict:
        """What an index records (and compares before an incremental run)."""
        return {"max_seconds": self.max_seconds, "window": self.window, "hop": self.hop}

    @classmethod
    def of_spec(cls, spec: dict) -> "Windowing":
        return cls(spec.get("window"), spec.get("hop"), spec["max_seconds"])

    @property
    def query_seconds(self) -> float:
        """How much of an example file a query embeds: as much as one window of the index."""
        return self.window or self.max_seconds

    def count(self, duration: float) -> int:
        """Number of windows of a file of ``duration`` seconds (see the module docstring)."""
        if self.window is None or duration <= self.window:
            return 1
        return math.ceil(round((duration - self.window) / self.hop, 9)) + 1

    def spans(self, duration: float) -> tuple[np.ndarray, np.ndarray]:
        """(starts (n,), ends (n,)) in seconds, float32, of a file of ``duration`` seconds."""
        if self.window is None:
            return np.zeros(1, np.float32), np.array([min(duration, self.max_seconds)], np.float32)
        starts = np.arange(self.count(duration), dtype=np.float64) * self.hop
        return starts.astype(np.float32), np.minimum(starts + self.window, duration).astype(np.float32)

    def cut(self, wave: np.ndarray, duration: float) -> list[np.ndarray]:
        """A 32 kHz waveform (S,) → its windows' samples; a window reaching the file's end keeps
        every sample to the end (a header's duration and a resampled length can differ by one)."""
        out = []
        for start, end in zip(*self.spans(duration)):
            lo = int(round(float(start) * logmel.SAMPLE_RATE))
            hi = len(wave) if end >= duration else int(round(float(end) * logmel.SAMPLE_RATE))
            out.append(wave[lo:hi])
        return out


def first_window_logmel(path: Path, info: AudioInfo, seconds: float) -> np.ndarray:
    """(T, 64) log-mel of a file's first ``seconds``, decoded and cut as an index cuts a window
    (what a query by example and ``aacbatch embed`` feed the encoder)."""
    wave = load_32k(path, info.frames, info.sample_rate)
    return logmel.log_mel(Windowing(None, None, seconds).cut(wave, info.duration)[0])


@dataclass(frozen=True)
class Span:
    """Merged candidate windows of one file: rows into the index's window arrays."""

    file_row: int
    start: float
    end: float
    best: int  # the best-scoring window's row
    score: float


def merge_windows(rows: np.ndarray, scores: np.ndarray, window_file: np.ndarray, starts: np.ndarray,
                  ends: np.ndarray) -> list[Span]:
    """Candidate windows ``rows`` (m,) with their ``scores`` (m,) → hits, best first.

    Greedy, best window first: a hit is its window with the candidate windows of the same file
    that overlap it (its neighbours), spanning them all and scored as the best; candidates
    overlapping that span are used up (they hold the same sound), so the hits of one file never
    overlap and none spans more than one window and its neighbours. Equal scores are taken in
    row order (deterministic)."""
    by_file: dict[int, list[int]] = {}
    for k, row in enumerate(rows):
        by_file.setdefault(int(window_file[row]), []).append(k)
    used = np.zeros(len(rows), dtype=bool)
    spans: list[Span] = []
    for k in sorted(range(len(rows)), key=lambda k: (-scores[k], rows[k])):
        if used[k]:
            continue
        best, same = int(rows[k]), by_file[int(window_file[rows[k]])]
        group = [j for j in same if not used[j] and starts[rows[j]] < ends[best] and ends[rows[j]] > starts[best]]
        lo, hi = float(min(starts[rows[j]] for j in group)), float(max(ends[rows[j]] for j in group))
        for j in same:
            if starts[rows[j]] < hi and ends[rows[j]] > lo:
                used[j] = True
        spans.append(Span(int(window_file[best]), lo, hi, best, float(scores[k])))
    return spans
