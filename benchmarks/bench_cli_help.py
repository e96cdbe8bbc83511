"""Wall time of `aacbatch --help` in a fresh interpreter (target < 0.5 s), and of a bare
`python -c pass` in the same run for scale."""

from __future__ import annotations

import subprocess
import sys
import time

from result import result


def best_of(cmd: list[str], n: int = 5) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    bare = best_of([sys.executable, "-c", "pass"])
    help_s = best_of([sys.executable, "-m", "aacbatch", "--help"])
    print(f"python -c pass: {bare * 1e3:.0f} ms; aacbatch --help: {help_s * 1e3:.0f} ms (target < 500 ms)")
    result("aacbatch --help, s", help_s, "<=", 0.5)


if __name__ == "__main__":
    main()
