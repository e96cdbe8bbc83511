"""One machine-readable line per measurement, which ``benchmarks/run.py`` collects."""

from __future__ import annotations

import json


def result(measure: str, value: float, op: str | None = None, target: float | None = None) -> None:
    """Print ``RESULT {...}``; ``op`` is ">=" or "<=" against ``target`` (None: informational)."""
    print("RESULT " + json.dumps({"measure": measure, "value": value, "op": op, "target": target}), flush=True)
