"""METEOR 1.5 through pycocoevalcap's ``meteor-1.5.jar``, speaking its stdio protocol ourselves.

Why not pycocoevalcap's ``Meteor`` class: it starts Java without a fixed locale (the jar prints
its scores with the default one, so a German locale yields unparsable ``0,25``), pipes stderr
without ever reading it (a chatty JVM can deadlock), and does one blocking round trip per
caption. The protocol itself is unchanged, and so are the scores:

* ``SCORE ||| ref 1 ||| ... ||| ref k ||| hypothesis`` -> one line of sufficient statistics;
* ``EVAL ||| stats 1 ||| ... ||| stats N`` -> N per-item scores, then the corpus score. The
  corpus score is METEOR's own aggregate over all statistics, not the mean of the item scores.

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

METEOR_JAR = "meteor/meteor-1.5.jar"


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
        return float(self._readline()), per_item

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
