"""Concurrent writers: several processes recording runs at once lose nothing and duplicate nothing.

Each writer is a separate Python process (this file run as a script) that records runs through
:class:`aacbatch.registry.runs.RunRecorder`, one short transaction per call, exactly as training
processes do. The same four processes serve both backends (their imports take seconds). For each
backend every writer gets its job, reports "ready" and waits; all are then released together
against a fresh registry that none has migrated yet, so the first-use schema upgrade races too.
On DuckDB the writers take turns through the store's lock retry; on PostgreSQL they run
concurrently.

The "registry busy" case (a DuckDB writer blocked past ``db_timeout`` fails with RegistryBusy) is
covered by ``test_registry.py::test_busy_duckdb_fails_with_clear_message_after_timeout``.

Run with ``-rP`` (or ``-s``) to see the measured throughput of each backend.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

WRITERS = 4
RUNS_PER_WRITER = 10
WRITES_PER_RUN = 5  # start, epoch-0 scores, final scores, final scores again (replacing), finish
WRITER_TIMEOUT_S = 120.0  # the DuckDB lock wait of each transaction; generous, the test takes seconds


def _expected_value(worker: int, k: int, what: str) -> float:
    base = worker * 1000 + k * 10
    return float(base + {"val": 1, "eval-provisional": 2, "eval": 3}[what])


def _record_runs(url: str, home: str, worker: int, runs: int) -> dict:
    """One writer's job: wait for "go", record ``runs`` runs, return a summary."""
    from aacbatch.config import Settings
    from aacbatch.registry.store import Registry
    from aacbatch.registry.runs import RunRecorder

    registry = Registry(Settings.resolve(home=home, db_url=url, db_timeout=WRITER_TIMEOUT_S))
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("writer: expected 'go'")
    started = time.monotonic()
    run_ids, slowest = [], 0.0
    for k in range(runs):
        t0 = time.monotonic()
        rec = RunRecorder.start(registry, task="concurrency", config={"worker": worker, "k": k}, dataset_id=None,
                                parent_run_id=None, feature_sets=[], seed=worker * 1000 + k, random_weights=False)
        run_ids.append(rec.run_id)
        rec.scores("val", {"loss": _expected_value(worker, k, "val"), "acc": -_expected_value(worker, k, "val")}, epoch=0)
        provisional = _expected_value(worker, k, "eval-provisional")
        rec.scores("eval", {"loss": provisional, "acc": -provisional}, epoch=None)
        rec.scores("eval", {"loss": _expected_value(worker, k, "eval"), "acc": -_expected_value(worker, k, "eval")},
                   epoch=None)  # a re-evaluation replaces the final scores
        rec.status("finished")
        slowest = max(slowest, (time.monotonic() - t0) / WRITES_PER_RUN)
    return {"worker": worker, "run_ids": run_ids, "seconds": time.monotonic() - started, "slowest_write_s": slowest}


def _writer_main() -> None:
    """A writer process: one JSON job per stdin line until stdin closes; one JSON reply each."""
    import traceback

    import aacbatch.registry.runs  # noqa: F401  (pay the imports before the first job)

    for line in iter(sys.stdin.readline, ""):
        job = json.loads(line)
        try:
            reply = _record_runs(job["url"], job["home"], job["worker"], job["runs"])
        except Exception:  # reported to the test, which fails with it
            reply = {"error": traceback.format_exc()}
        print(json.dumps(reply), flush=True)
    os._exit(0)  # every connection is already closed; skip a slow interpreter teardown


class Writers:
    """``n`` long-lived writer processes, shared by both backends (their imports take seconds).

    Started on first use; after a failed round they are stopped and the next round starts
    fresh ones, so one backend's failure cannot leak into the other's result.
    """

    def __init__(self, n: int, logdir: Path):
        self.n = n
        self.logs = [logdir / f"writer{i}.stderr" for i in range(n)]
        self.procs: list[subprocess.Popen] = []
        self.lines: list[queue.Queue] = []

    def _start(self) -> None:
        for log in self.logs:
            with log.open("w") as err:
                proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=err, text=True)
            self.procs.append(proc)
            lines: queue.Queue = queue.Queue()
            threading.Thread(target=self._pump, args=(proc, lines), daemon=True).start()
            self.lines.append(lines)

    @staticmethod
    def _pump(proc: subprocess.Popen, lines: queue.Queue) -> None:
        for line in iter(proc.stdout.readline, ""):
            lines.put(line.strip())
        lines.put(None)  # end of output: the process exited

    def _read(self, i: int, timeout: float) -> str:
        try:
            line = self.lines[i].get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None:
            pytest.fail(f"writer {i} stopped or hung (exit code {self.procs[i].poll()}):\n"
                        f"{self.logs[i].read_text()[-3000:]}")
        return line

    def _send(self, i: int, line: str) -> None:
        self.procs[i].stdin.write(line + "\n")
        self.procs[i].stdin.flush()

    def run(self, url: str, home: Path, runs: int) -> tuple[list[dict], float]:
        """Give every writer a job, release them together, return their summaries and the wall time."""
        try:
            if not self.procs:
                self._start()
            for i in range(self.n):
                self._send(i, json.dumps({"url": url, "home": str(home), "worker": i, "runs": runs}))
            for i in range(self.n):
                assert self._read(i, timeout=120) == "ready"
            started = time.monotonic()
            for i in range(self.n):  # as close to simultaneous as pipe writes allow
                self._send(i, "go")
            replies = [json.loads(self._read(i, timeout=300)) for i in range(self.n)]
            wall = time.monotonic() - started
        except BaseException:
            self.close()
            raise
        for i, reply in enumerate(replies):
            assert "error" not in reply, f"writer {i} failed:\n{reply['error']}"
        return replies, wall

    def close(self) -> None:
        for proc in self.procs:
            try:
                proc.stdin.close()  # end of jobs: the writer exits
            except OSError:
                pass
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        self.procs, self.lines = [], []


@pytest.fixture(scope="module")
def writers(tmp_path_factory):
    pool = Writers(WRITERS, tmp_path_factory.mktemp("writers"))
    yield pool
    pool.close()


@pytest.mark.backends("duckdb", "postgresql")
def test_concurrent_writers_lose_nothing_and_duplicate_nothing(writers, registry, backend, tmp_path, record_property):
    from sqlalchemy import func, select

    from aacbatch.registry.schema import Run, Score

    summaries, wall = writers.run(registry.url, tmp_path / "writers-home", RUNS_PER_WRITER)

    reported = [run_id for s in summaries for run_id in s["run_ids"]]
    assert len(reported) == len(set(reported)) == WRITERS * RUNS_PER_WRITER
    with registry.transaction() as session:
        runs = session.execute(select(Run.id, Run.config_json, Run.status, Run.finished_at, Run.seed)).all()
        scores = session.execute(select(Score.run_id, Score.split, Score.metric, Score.epoch, Score.value)).all()
        n_distinct = session.scalar(select(func.count(func.distinct(Run.id))))

    # Runs: exactly one row per (writer, k), all finished, and exactly the ids the writers made.
    assert len(runs) == n_distinct == WRITERS * RUNS_PER_WRITER
    assert {r.id for r in runs} == set(reported)
    keys = Counter((json.loads(r.config_json)["worker"], json.loads(r.config_json)["k"]) for r in runs)
    assert keys == Counter({(w, k): 1 for w in range(WRITERS) for k in range(RUNS_PER_WRITER)})
    assert all(r.status == "finished" and r.finished_at is not None for r in runs)
    assert all(r.seed == json.loads(r.config_json)["worker"] * 1000 + json.loads(r.config_json)["k"] for r in runs)

    # Scores: per run val@0 and final eval, 2 metrics each; the replaced provisional values are gone.
    by_id = {r.id: json.loads(r.config_json) for r in runs}
    got = Counter((s.run_id, s.split, s.metric, s.epoch, s.value) for s in scores)
    want = Counter()
    for run_id, cfg in by_id.items():
        w, k = cfg["worker"], cfg["k"]
        for split, epoch, what in (("val", 0, "val"), ("eval", None, "eval")):
            value = _expected_value(w, k, what)
            want[(run_id, split, "loss", epoch, value)] += 1
            want[(run_id, split, "acc", epoch, -value)] += 1
    assert got == want
    assert len(scores) == WRITERS * RUNS_PER_WRITER * 4

    writes = WRITERS * RUNS_PER_WRITER * WRITES_PER_RUN
    rows_written = WRITERS * RUNS_PER_WRITER * (1 + 2 + 2 + 2)  # run + val scores + eval scores twice
    slowest = max(s["slowest_write_s"] for s in summaries)
    record_property("wall_s", round(wall, 3))
    record_property("writes_per_s", round(writes / wall, 1))
    print(f"\n{backend}: {WRITERS} writers x {writes // WRITERS} writes ({writes} transactions, {rows_written} rows "
          f"inserted) in {wall:.2f} s: {writes / wall:.0f} writes/s, {rows_written / wall:.0f} rows/s; "
          f"slowest writer's worst run averaged {slowest * 1000:.0f} ms per write")


if __name__ == "__main__":
    _writer_main()
