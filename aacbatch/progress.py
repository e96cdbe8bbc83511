"""Progress of long jobs, on a terminal and in a log alike.

On a terminal a tqdm bar redraws itself; when stderr is a file or a pipe (a batch job, a CI
log) a bar would be silent or a stream of carriage returns, so :class:`LogProgress` prints
one plain line every ``interval`` seconds, and one when a job that printed any ends (a short
job prints nothing, so its output stays what the command says).
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

LOG_INTERVAL_S = 30.0


class LogProgress:
    """The part of tqdm's interface the jobs use (``update``, ``n``, ``close``), as log lines."""

    def __init__(self, total: int, desc: str, unit: str, interval: float = LOG_INTERVAL_S, stream=None):
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.stream = stream or sys.stderr
        self.n = 0
        self._start = self._last = time.monotonic()
        self._printed = False

    def update(self, k: int = 1) -> None:
        self.n += k
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._line(now)

    def _line(self, now: float, done: str = "") -> None:
        self._printed = True
        rate = self.n / max(now - self._start, 1e-9)
        print(f"{self.desc}: {self.n}/{self.total} {self.unit}s ({rate:.1f}/s, {now - self._start:.0f} s){done}",
              file=self.stream, flush=True)

    def close(self) -> None:
        if self._printed:
            self._line(time.monotonic(), " — done" if self.n >= self.total else "")


def progress(total: int, desc: str, unit: str = "clip"):
    """A bar on a terminal, log lines otherwise."""
    if sys.stderr.isatty():
        return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)
    return LogProgress(total, desc, unit)
