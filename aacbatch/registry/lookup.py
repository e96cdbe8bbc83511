"""Resolve what users type (a run id, a checkpoint path) to files, through the registry."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from aacbatch.errors import InputError
from aacbatch.registry.schema import Checkpoint, Run
from aacbatch.registry.store import Registry


def checkpoint_of(registry: Registry, ref: str, tasks: tuple[str, ...]) -> Path:
    """``ref`` as an existing checkpoint file, or the best checkpoint of run ``ref``.

    The run must be one of ``tasks`` and have a best checkpoint on disk.
    """
    path = Path(ref)
    if path.is_file():
        return path
    with registry.transaction() as session:
        run = session.get(Run, ref)
        best = session.scalar(select(Checkpoint.path).where(Checkpoint.run_id == ref, Checkpoint.is_best))
    if run is None:
        raise InputError(f"{ref!r} is neither a checkpoint file nor a registered run id")
    if run.task not in tasks:
        raise InputError(f"run {run.id} is a {run.task} run; expected {' or '.join(tasks)}")
    if best is None or not Path(best).is_file():
        raise InputError(f"run {run.id} ({run.status}) has no best checkpoint on disk ({best}): did it finish?")
    return Path(best)
