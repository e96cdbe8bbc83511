"""METEOR 1.5 through pycocoevalcap's ``meteor-1.5.jar``, speaking its stdio protocol ourselves.

Why not pycocoevalcap's ``Meteor`` class: it starts Java without a fixed locale (the jar prints
its scores with the default one, so a German locale yields unparsable ``0,25``), pipes stderr
without ever reading it (a chatty JVM can deadlock), and does one blocking round trip per
caption. The protocol itself is unchanged, and so are the scores:

* ``SCORE ||| ref 1 ||| ... ||| ref k ||| hypothesis`` -> one line of sufficient statistics;
* ``EVAL ||| stats 1 ||| ... ||| stats N`` -> N per-item scores, then the corpus score. The
  corpus score is METEOR's own aggregate over all statistics, not the mean of the item scores.

The statistics line of a segment is 23 numbers (:data:`STATS`): lengths and function-word
counts of hypothesis and reference, matches per module (exact, stem, synonym, paraphrase) for
content and function words, chunks, and matched words. The corpus score is the score formula
applied to their sum over segments, with one rule of the jar's ``MeteorStats.addStats``: a
segment that matches its reference perfectly (every word matched, one chunk) adds no chunk.
:func:`meteor_from_sums` re-implements the jar's ``MeteorScorer.computeMetrics`` with the
parameters it prints for ``-l en -norm`` (:data:`PARAMETERS`, :data:`MODULE_WEIGHTS`), so the
corpus score of any multiset of segments -- a bootstrap resample -- is a weighted sum of the
per-segment rows (:func:`meteor_sum_rows`) and one vectorised formula, without another JVM
round trip. The tests check both against the jar's own per-item and corpus scores.

The JVM spends several seconds loading the paraphrase table, so the process starts when the
scorer is created: build it before tokenising and the two overlap. A process that scores many
caption sets (a training run's final splits, the demo's dozens of runs and systems) shares one
JVM through :func:`shared_meteor` instead of paying that start-up for every set; the jar's
``EVAL`` is stateless, so sharing changes no score.
"""

from __future__ import annotations

import atexit
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

import numpy as np

from aacbatch.errors import AacbatchError
from aacbatch.evaluate.ptb import java_command, pycocoevalcap_file, stderr_tail
from aacbatch.evaluate.statistics import CorpusStatistic

METEOR_JAR = "meteor/meteor-1.5.jar"
METEOR_DATA = "meteor/data/paraphrase-en.gz"
# The jar's "Parameters" (alpha, beta, gamma, delta) and module "Weights" (exact, stem, synonym,
# paraphrase) for English, task "Ranking" -- what `-l en -norm` runs with, as it prints them.
PARAMETERS = {"alpha": 0.85, "beta": 0.2, "gamma": 0.6, "delta": 0.75}
MODULE_WEIGHTS = (1.0, 0.6, 0.8, 0.6)
# Column layout of one statistics line (MeteorStats.toString): 4 + 4 modules x 4 + 3 = 23 numbers.
STATS = ("test_length", "ref_length", "test_function", "ref_function",
         *(f"{side}_{kind}_{m}" for m in range(len(MODULE_WEIGHTS))
           for kind, side in (("content", "test"), ("content", "ref"), ("function", "test"), ("function", "ref"))),
         "chunks", "test_word_matches", "ref_word_matches")


def _field(text: str) -> str:
    """Text safe inside one ``|||``-separated protocol line.

    This is pycocoevalcap's clean-up of the hypothesis; we apply it to references too, so that
    no caption can inject a separator. PTB-tokenised text never contains ``|||`` (the lexer
    splits it into ``| | |``), newlines or double spaces, so tokenised input is sent unchanged.
    """
    return text.replace("\n", " ").replace("|||", "").replace("  ", " ")


class Meteor:
    """A running METEOR 1.5 process; use as a context manager, call :meth:`compute` any number of times."""

    def __init__(self, heap: str = "2G") -> None:
        jar = pycocoevalcap_file(METEOR_JAR)
        cmd = java_command("-jar", jar.name, "-", "-", "-stdio", "-l", "en", "-norm", heap=heap)
        self._stderr = tempfile.TemporaryFile()
        self._process = subprocess.Popen(cmd, cwd=jar.parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._stderr)

    def __enter__(self) -> "Meteor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the JVM (closing its stdin ends the jar's read loop) and release the stderr file."""
        with suppress(BrokenPipeError):  # a JVM that already died cannot take the last buffered bytes
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._stderr.close()

    def compute(self, candidates: Sequence[str], references: Sequence[Sequence[str]]) -> tuple[float, np.ndarray]:
        """(corpus score computed by the jar, per-item scores) for tokenised captions."""
        corpus, per_item, _ = self.compute_with_stats(candidates, references)
        return corpus, per_item

    def compute_with_stats(self, candidates: Sequence[str],
                           references: Sequence[Sequence[str]]) -> tuple[float, np.ndarray, np.ndarray]:
        """(the jar's corpus score, its per-item scores, the (N, 23) per-segment statistics)."""
        score_lines = "".join(
            "SCORE ||| " + " ||| ".join([*map(_field, refs), _field(cand)]) + "\n"
            for cand, refs in zip(candidates, references)
        )
        # A writer thread feeds all SCORE lines while we read the answers, so neither side
        # blocks on a full pipe and there is no per-caption round trip.
        writer = threading.Thread(target=self._write, args=(score_lines,))
        writer.start()
        stats = [self._readline() for _ in candidates]
        writer.join()
        self._write("EVAL ||| " + " ||| ".join(stats) + "\n")
        per_item = np.array([float(self._readline()) for _ in candidates])
        corpus = float(self._readline())
        table = np.array([line.split() for line in stats], dtype=np.float64).reshape(len(stats), len(STATS))
        return corpus, per_item, table

    def _write(self, text: str) -> None:
        try:
            self._process.stdin.write(text.encode("utf-8"))
            self._process.stdin.flush()
        except BrokenPipeError:
            pass  # the JVM died; the next read reports why

    def _readline(self) -> str:
        line = self._process.stdout.readline()
        if not line:
            self._process.wait()
            self._stderr.seek(0)
            raise AacbatchError(f"METEOR (meteor-1.5.jar) stopped with java exit {self._process.returncode}: "
                                f"{stderr_tail(self._stderr.read())}")
        return line.decode("utf-8").strip()


def meteor_statistic(ids: Sequence[str], stats: np.ndarray) -> CorpusStatistic:
    """METEOR as a resamplable corpus statistic of (N, 23) per-segment statistics."""
    return CorpusStatistic(tuple(ids), meteor_sum_rows(stats), meteor_from_sums)


def meteor_sum_rows(stats: np.ndarray) -> np.ndarray:
    """Per-segment rows whose plain sum is what the jar's ``addStats`` accumulates.

    stats: (N, 23) statistics lines. The only change: a perfectly matched segment (all words
    of both sides matched in one chunk) contributes 0 chunks, as ``addStats`` skips it.
    """
    rows = np.array(stats, dtype=np.float64)
    rows[_perfect(_columns(rows)), STATS.index("chunks")] = 0.0
    return rows


def meteor_from_sums(sums: np.ndarray) -> np.ndarray:
    """METEOR score of summed statistics, as the jar's ``computeMetrics`` computes it.

    sums: (..., 23) -- one statistics line, or the sum of :func:`meteor_sum_rows` over any
    multiset of segments; returns (...). Division by zero (an empty hypothesis) gives 0, and
    the score is clipped at 0, as in the jar.
    """
    c = _columns(np.asarray(sums, dtype=np.float64))
    alpha, beta, gamma, delta = (PARAMETERS[k] for k in ("alpha", "beta", "gamma", "delta"))
    test_weighted_length = delta * (c["test_length"] - c["test_function"]) + (1 - delta) * c["test_function"]
    ref_weighted_length = delta * (c["ref_length"] - c["ref_function"]) + (1 - delta) * c["ref_function"]
    # Same terms, same order of operations as the jar: content matches, then function matches.
    test_matches, ref_matches = 0.0, 0.0
    for kind, share in (("content", delta), ("function", 1 - delta)):
        for m, weight in enumerate(MODULE_WEIGHTS):
            test_matches = test_matches + c[f"test_{kind}_{m}"] * weight * share
            ref_matches = ref_matches + c[f"ref_{kind}_{m}"] * weight * share
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = test_matches / test_weighted_length
        recall = ref_matches / ref_weighted_length
        f_mean = 1.0 / ((1 - alpha) / precision + alpha / recall)
        frag = np.where(_perfect(c), 0.0, c["chunks"] / ((c["test_word_matches"] + c["ref_word_matches"]) / 2))
        score = f_mean * (1 - gamma * frag ** beta)
    return np.where(np.isnan(score), 0.0, np.maximum(score, 0.0))


def _perfect(c: dict[str, np.ndarray]) -> np.ndarray:
    """Every word of both sides matched, in one chunk: the jar's "test = reference" case."""
    return (c["test_matches"] == c["test_length"]) & (c["ref_matches"] == c["ref_length"]) & (c["chunks"] == 1)


def _columns(stats: np.ndarray) -> dict[str, np.ndarray]:
    """Named columns of (..., 23) statistics, plus the unweighted match totals the jar derives."""
    c = {name: stats[..., i] for i, name in enumerate(STATS)}
    for side in ("test", "ref"):
        c[f"{side}_matches"] = sum(c[f"{side}_{kind}_{m}"] for m in range(len(MODULE_WEIGHTS))
                                   for kind in ("content", "function"))
    return c


_shared: Meteor | None = None
_shared_lock = threading.Lock()


@contextmanager
def shared_meteor() -> Iterator[Meteor]:
    """This process's METEOR scorer, started on first use and stopped at exit (one caller at
    a time). A JVM that died is replaced on the next use; an error while scoring retires it."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared._process.poll() is not None:
            _shared = Meteor()
            atexit.register(_shared.close)
        try:
            yield _shared
        except BaseException:
            _shared.close()
            _shared = None
            raise
