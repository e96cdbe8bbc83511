"""The last answer of a slow computation, kept fresh in the background, for pages that must
render fast although what they show takes seconds to compute.

Table 1 and Table 2 run the reports of ``aacbatch report``, whose views derive every run's
lineage (seconds at 10,000 runs). A page asks :meth:`Recent.get`: the first time it waits up to
``first_wait_s`` for the answer; afterwards it gets the last answer at once, with the time it
was computed, and an answer older than ``max_age_s`` is recomputed in the background (one job
per key at a time), so a page is never older than that plus one computation — and says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

MAX_AGE_S = 30.0
FIRST_WAIT_S = 5.0


@dataclass(frozen=True)
class Answer:
    """``value`` computed at ``computed_at`` (both None: not computed yet, still ``refreshing``);
    ``refreshing`` while a newer one is being computed."""

    value: object
    computed_at: datetime | None
    refreshing: bool


class Recent:
    """Last answers per key (a hashable naming the computation and its arguments)."""

    def __init__(self, max_age_s: float = MAX_AGE_S, first_wait_s: float = FIRST_WAIT_S):
        self.max_age_s, self.first_wait_s = max_age_s, first_wait_s
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="aacbatch-recent")
        self._done: dict[Hashable, tuple[object, datetime, float]] = {}  # key → value, when, monotonic when
        self._running: dict[Hashable, Future] = {}
        self._lock = threading.Lock()

    def _run(self, key: Hashable, compute: Callable[[], object]) -> object:
        started = (datetime.now(), time.monotonic())
        try:
            value = compute()
        finally:
            with self._lock:
                self._running.pop(key, None)
        with self._lock:
            self._done[key] = (value, *started)
        return value

    def get(self, key: Hashable, compute: Callable[[], object]) -> Answer:
        with self._lock:
            done = self._done.get(key)
            job = self._running.get(key)
            if job is None and (done is None or time.monotonic() - done[2] > self.max_age_s):
                job = self._running[key] = self._pool.submit(self._run, key, compute)
        if done is not None:
            return Answer(done[0], done[1], job is not None)
        try:
            value = job.result(self.first_wait_s)  # its exception, if it fails, is the page's (the next visit retries)
        except TimeoutError:
            return Answer(None, None, True)
        return Answer(value, self._done[key][1], False)
