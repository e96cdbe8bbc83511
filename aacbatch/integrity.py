"""``aacbatch db check``: is the registry whole? Every reference between rows resolves
(``sql/checks/references.sql``), every file a row names exists — checkpoints, similarity
matrices, source audio — and every complete feature set passes its cache's checksum check
(quick: chunk sizes; ``deep``: every byte against its CRC). Read-only: it reports, it never
repairs (``featurize --repair``, a re-ingest or a restore does that).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aacbatch.cache import FeatureStore
from aacbatch.errors import AacbatchError, first_line
from aacbatch.registry.inventory import referenced_files, source_audio
from aacbatch.registry.queries import named_query, run_sql
from aacbatch.registry.store import Registry


@dataclass(frozen=True)
class Problem:
    where: str  # a table and row, a dataset, a feature set
    what: str


def check_registry(registry: Registry, *, deep: bool = False) -> tuple[list[Problem], dict[str, int]]:
    """Every problem found, and how many things of each kind were checked."""
    _, rows = run_sql(registry, named_query("references", "checks").read_text(encoding="utf-8"),
                      source="sql/checks/references.sql")
    problems = [Problem(f"{table} {row_id}", problem) for table, row_id, problem in rows]
    files = referenced_files(registry)
    for ref in files:
        if ref.table == "feature_sets":
            problems += _feature_set(ref.label, ref.path, deep)
        elif not Path(ref.path).is_file():
            problems.append(Problem(f"{ref.table} {ref.row_id}", f"{ref.label}: file {ref.path!r} is missing"))
    audio = source_audio(registry)
    for dataset, clips in audio.items():
        missing = [(name, path) for name, path in clips if not Path(path).is_file()]
        if missing:
            problems.append(Problem(f"dataset {dataset}", f"{len(missing)} of {len(clips)} audio files are missing "
                                                          f"(e.g. {missing[0][1]!r}): restore them or re-ingest"))
    counted = {"rows checked for references": len(rows), "files": len(files),
               "audio files": sum(len(c) for c in audio.values())}
    return problems, counted


def _feature_set(label: str, url: str, deep: bool) -> list[Problem]:
    try:
        store = FeatureStore.open(url)
        report = store.verify(deep=deep)
    except (AacbatchError, OSError) as exc:
        return [Problem(label, f"cannot be opened ({first_line(exc)})")]
    return [] if report.ok else [Problem(label, report.line(store.repair_hint()))]
