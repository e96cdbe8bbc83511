"""Run every benchmark, each in its own process, and print one table:
measure, value, target, pass/fail, plus the machine it ran on.

Each benchmark measures both sides of its comparison in the same process; this script only
collects their ``RESULT`` lines (see ``result.py``). `make bench` runs it.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["bench_cli_help.py", "bench_logmel.py", "bench_cache_reads.py", "bench_retrieval_metrics.py",
           "bench_cider.py", "bench_metrics.py", "bench_clap_tag.py", "bench_caption_cache.py", "bench_beam_search.py",
           "bench_search.py", "bench_ann.py", "bench_cache_verify.py", "bench_input_pipeline.py", "bench_zeroshot.py",
           "bench_mixture_epoch.py"]


def verdict(row: dict) -> str:
    if row["op"] is None:
        return "info"
    ok = row["value"] >= row["target"] if row["op"] == ">=" else row["value"] <= row["target"]
    return "pass" if ok else "FAIL"


def main() -> int:
    rows = []
    for bench in BENCHES:
        print(f"--- {bench}", flush=True)
        proc = subprocess.run([sys.executable, str(HERE / bench)], cwd=HERE, capture_output=True, text=True)
        for line in proc.stdout.splitlines():
            if line.startswith("RESULT "):
                rows.append(json.loads(line[7:]))
            else:
                print("   " + line)
        if proc.returncode != 0:
            print(proc.stderr[-2000:])
            rows.append({"measure": f"{bench} crashed", "value": float("nan"), "op": None, "target": None})
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.platform()}")
    print("| measure | value | target | result |\n|---|---|---|---|")
    for row in rows:
        target = f"{row['op']} {row['target']:g}" if row["op"] else ""
        print(f"| {row['measure']} | {row['value']:.3g} | {target} | {verdict(row)} |")
    return 1 if any(verdict(r) == "FAIL" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
