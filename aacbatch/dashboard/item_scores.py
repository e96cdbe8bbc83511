"""Per-clip scores behind the captions page and the paired tests of the compare page.

The registry keeps corpus scores; a reader hunting for a model's worst captions needs one
score per clip. Those are computed here with the same code as the corpus scores (PTB
tokenisation, then :func:`aacbatch.evaluate.captions.caption_metrics`), for the metrics whose
corpus value is the mean of the per-clip values (CIDEr-D, ROUGE-L), so the page can show
that their mean equals the run's recorded score. Tokenising starts a JVM (about a second),
so the work runs in one background thread and is remembered per content: a page never
waits for it, it says "computing" and looks again.

Retrieval runs need no such work: their similarity matrices are artifacts, and
:func:`retrieval_comparison` turns two of them into a paired test directly.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aacbatch.errors import AacbatchError, InputError
from aacbatch.evaluate.captions import CaptionScores, caption_metrics
from aacbatch.evaluate.retrieval import retrieval_statistics
from aacbatch.evaluate.uncertainty import Comparison, compare

METRICS = ("cider_d", "rouge_l")  # corpus value = mean of the per-clip values
KEPT = 64  # scored caption sets remembered (a Clotho eval split is ~1,000 clips: small)


@dataclass(frozen=True)
class Scored:
    """``state`` is "ready" (``scores`` set), "pending" or "failed" (``reason`` says why)."""

    state: str
    scores: CaptionScores | None = None
    reason: str | None = None


class ItemScores:
    """Per-clip caption scores, computed one caption set at a time in a background thread."""

    def __init__(self, assets_dir: Path):
        self.assets_dir = Path(assets_dir)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="aacbatch-item-scores")
        self._jobs: OrderedDict[str, Future] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> Scored:
        """The scores of these captions (clip id → text) against these references, if computed;
        otherwise start computing them and say "pending"."""
        key = hashlib.sha256(json.dumps([predictions, references], sort_keys=True).encode()).hexdigest()
        with self._lock:
            job = self._jobs.get(key)
            if job is None:
                job = self._jobs[key] = self._pool.submit(caption_metrics, dict(predictions), dict(references),
                                                          assets_dir=self.assets_dir, metrics=METRICS)
                while len(self._jobs) > KEPT:
                    self._jobs.popitem(last=False)
            self._jobs.move_to_end(key)
        if not job.done():
            return Scored("pending")
        error = job.exception()
        if error is None:
            return Scored("ready", job.result())
        if isinstance(error, AacbatchError):
            return Scored("failed", reason=str(error))
        return Scored("failed", reason=f"{type(error).__name__}: {error}")

    def wait(self, timeout: float | None = None) -> None:
        """Block until every started job has finished (for tests and scripts)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.exception(timeout)


def retrieval_comparison(path_a: str, path_b: str) -> dict[str, Comparison]:
    """Paired tests of two retrieval models from their saved similarity matrices of one split
    (``similarity`` (captions, clips), ``relevant`` (captions,), ``clip_idx`` (clips,)), per
    metric: A − B, its paired-bootstrap interval and a randomisation p-value, resampled by clip."""
    stats = []
    for path in (path_a, path_b):
        try:
            with np.load(path) as data:
                stats.append(retrieval_statistics(data["similarity"], data["relevant"],
                                                  [str(i) for i in data["clip_idx"]]))
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"cannot read similarity matrix {path}: {exc}") from exc
    try:
        return compare(*stats)
    except ValueError as exc:
        raise InputError(f"cannot pair {path_a} with {path_b}: {exc}") from exc
