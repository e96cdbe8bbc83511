"""Systems: an SQL query picks member runs; their ensemble is evaluated and recorded.

A system is a named query — ``sql/systems/NAME.sql`` or a user's file — returning member run
ids in rank order: a ``run_id`` column, optionally ``weight`` (default 1) and ``expected``
(how many members the definition asks for; finding fewer builds the system anyway and
records a warning). Other columns are for the reader and are ignored. The members' tasks
decide the ensemble:

* **retrieval**: the weighted mean of the members' (captions × clips) similarity matrices of
  each split, scored exactly like a run (:func:`aacbatch.evaluate.retrieval.retrieval_scores`)
  and saved under ``$AACBATCH_HOME/systems/<name>/``;
* **caption**: ensemble beam search over the members
  (:func:`aacbatch.captioning.evaluate_ensemble`), every caption metric, NULL with a reason
  where an asset is missing, and the ensemble's captions.

The fingerprint hashes the query text, its parameters, the splits and each member with the
registry rows of what it contributes (best checkpoint, similarity artifacts), so rebuilding
an unchanged system is a no-op and anything else replaces its rows. All validation and
computation happen before one write transaction: a failed build leaves the registry as it was.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aacbatch import catalog
from aacbatch.captioning import evaluate_ensemble
from aacbatch.errors import InputError
from aacbatch.evaluate.scored import score_retrieval
from aacbatch.hashing import fingerprint
from aacbatch.names import check_name, inside
from aacbatch.registry.datasets import dataset_name
from aacbatch.registry.queries import declared_params, named_query, run_sql, with_dataset
from aacbatch.registry.runs import artifacts, best_checkpoints, runs_by_id
from aacbatch.registry.store import Registry
from aacbatch.registry.systems import (SystemRows, artifacts_present, find_system, stored_scores, system_by_name,
                                       write_system)

DEFAULT_SPLITS = ("val", "eval")
_SIMILARITY_KEYS = ("similarity", "caption_idx", "clip_idx", "relevant")
_BASE = re.compile(r"^--\s*query:\s*([A-Za-z0-9_.-]+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Member:
    run_id: str
    rank: int  # 1-based, the query's row order
    weight: float


@dataclass(frozen=True)
class Selection:
    """What a system query returned, checked against the registry."""

    members: list[Member]
    kind: str
    dataset_id: str
    warnings: list[str]


@dataclass(frozen=True)
class BuildResult:
    name: str
    system_id: str
    kind: str
    status: str  # "created", "replaced" or "unchanged"
    members: list[Member]
    scores: dict[str, dict[str, float | None]]  # split → metric → value
    reasons: dict[str, dict[str, str]]  # split → metric → why it is NULL
    warnings: list[str]
    params: dict[str, object]  # as the query ran, the dataset resolved
    dataset: str | None  # the dataset the members were trained and selected on


@dataclass(frozen=True)
class _Similarity:
    """One member's similarity artifact of one split: (captions, clips) scores and their index."""

    run_id: str
    path: Path
    arrays: dict[str, np.ndarray]


def system_query(name: str, query_file: Path | None = None) -> tuple[str, str, dict[str, object]]:
    """The text of the system's query, how to name it in errors, and its parameter defaults.

    A file may be a preset of another system query: a ``-- query: NAME`` line takes the body
    of ``sql/systems/NAME.sql`` and the file's own ``-- param:`` lines override its defaults
    (``retrieval_s1`` … ``s4`` are presets of ``retrieval_top_k``)."""
    source = str(query_file) if query_file is not None else f"sql/systems/{name}.sql"
    text = _read_query(query_file if query_file is not None else named_query(name, "systems"))
    base = _BASE.search(text)
    if base is None:
        return text, source, declared_params(text)
    body = _read_query(named_query(base.group(1), "systems"))
    if _BASE.search(body):
        raise InputError(f"{source}: sql/systems/{base.group(1)}.sql is itself a preset; point at the query it uses")
    return f"{text.rstrip()}\n{body}", source, {
        **declared_params(body), **declared_params(text)}


def _read_query(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read query file {path}: {exc}") from exc


def select_members(registry: Registry, sql: str, params: dict[str, object], source: str) -> Selection:
    """Run a system query and check its rows: known, finished runs of one kind and dataset."""
    columns, rows = run_sql(registry, sql, params, source=source)
    if "run_id" not in columns:
        raise InputError(f"{source} returned columns ({', '.join(columns) or 'none'}): a system query must return "
                         "a run_id column (and optionally weight and expected)")
    if not rows:
        shown = ", ".join(f"{k}={v}" for k, v in params.items())
        raise InputError(f"{source} selected no runs ({shown}): train and score runs first, or change --param")
    records = [dict(zip(columns, row)) for row in rows]
    ids = [str(r["run_id"]) for r in records]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise InputError(f"{source} returned run {repeated[0]} more than once: each member must appear once")
    members = [Member(run_id, rank, _weight(record.get("weight", 1.0), run_id, source))
               for rank, (run_id, record) in enumerate(zip(ids, records), start=1)]
    runs = runs_by_id(registry, ids)
    unknown = [i for i in ids if i not in runs]
    if unknown:
        raise InputError(f"{source} returned {unknown[0]!r}, which is not a run id: the run_id column must hold "
                         "ids from the runs table")
    unfinished = [runs[i] for i in ids if runs[i].status != "finished"]
    if unfinished:
        raise InputError(f"run {unfinished[0].id} is {unfinished[0].status}, not finished: a system member needs "
                         "its final scores")
    kinds = {runs[i].task: _ensemble_kind(runs[i].task) for i in ids}
    if None in kinds.values() or len(set(kinds.values())) > 1:
        raise InputError(f"{source} mixes or includes runs that cannot be ensembled together (tasks: "
                         f"{', '.join(sorted(kinds))}): a system's members are all retrieval runs or all caption runs")
    if len({runs[i].dataset_id for i in ids}) > 1:
        raise InputError(f"{source} returned runs of different datasets: members of a system must "
                         "be trained on the same dataset (filter with --param dataset=NAME)")
    expected = records[0].get("expected")
    warnings = []
    if expected is not None and len(ids) < int(expected):
        warnings.append(f"{source} asked for {int(expected)} members and found {len(ids)}: built with those")
    return Selection(members, next(iter(kinds.values())), runs[ids[0]].dataset_id, warnings)


def _ensemble_kind(task: str) -> str | None:
    """The kind of system a run of ``task`` may join (its catalog ``output``), None if none."""
    info = catalog.TASKS.get(task)
    return info.output if info is not None and info.ensemble else None


def _weight(value: object, run_id: str, source: str) -> float:
    try:
        weight = float(value)
    except (TypeError, ValueError):
        weight = math.nan
    if not math.isfinite(weight) or weight <= 0:
        raise InputError(f"{source} gave run {run_id} the weight {value!r}: weights must be positive numbers")
    return weight


def _inputs(registry: Registry, selection: Selection, splits: Sequence[str]) -> dict[str, object]:
    """Registry rows each member contributes, checked to exist on disk; they go into the fingerprint.

    Retrieval members need each split's similarity artifact; caption members their best checkpoint.
    """
    ids = [m.run_id for m in selection.members]
    best = best_checkpoints(registry, ids)
    similarity = artifacts(registry, ids, "similarity", splits, selection.dataset_id)
    inputs: dict[str, object] = {}
    for member in selection.members:
        ckpt = best.get(member.run_id)
        entry: dict[str, object] = {"checkpoint": [ckpt.path, ckpt.created_at.isoformat()] if ckpt else None}
        if selection.kind == "caption" and (ckpt is None or not Path(ckpt.path).is_file()):
            where = ckpt.path if ckpt else "none registered"
            raise InputError(f"run {member.run_id} has no best checkpoint on disk ({where}): a caption system "
                             "decodes with its members' weights")
        if selection.kind == "retrieval":
            for split in splits:
                row = similarity.get((member.run_id, split))
                if row is None:
                    raise InputError(f"run {member.run_id} has no similarity matrix for split {split!r}: score it "
                                     f"with `aacbatch evaluate retrieval --run {member.run_id} --split {split}` "
                                     "or build with --split for the splits it has")
                if not Path(row.artifact_path).is_file():
                    raise InputError(f"run {member.run_id}'s similarity matrix for split {split!r} is missing "
                                     f"({row.artifact_path}): re-score it with `aacbatch evaluate retrieval "
                                     f"--run {member.run_id} --split {split}`")
                entry[split] = [row.artifact_path, row.created_at.isoformat()]
        inputs[member.run_id] = entry
    return inputs


def system_fingerprint(sql: str, params: dict[str, object], splits: Sequence[str], members: Sequence[Member],
                       inputs: dict[str, object]) -> str:
    """What the system's rows depend on; equal fingerprints make a rebuild a no-op."""
    return fingerprint({"query": sql, "params": params, "splits": list(splits),
                        "members": [[m.run_id, m.rank, m.weight, inputs[m.run_id]] for m in members]})


def _load_similarity(run_id: str, path: Path) -> _Similarity:
    try:
        with np.load(path) as data:
            arrays = {key: data[key] for key in _SIMILARITY_KEYS}
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"run {run_id}'s similarity matrix {path} is unreadable or lacks "
                         f"{'/'.join(_SIMILARITY_KEYS)} ({exc}): re-score the run") from exc
    sim = arrays["similarity"]
    if sim.shape != (len(arrays["caption_idx"]), len(arrays["clip_idx"])):
        raise InputError(f"run {run_id}'s similarity matrix {path} is {sim.shape} for {len(arrays['caption_idx'])} "
                         f"captions × {len(arrays['clip_idx'])} clips: re-score the run")
    return _Similarity(run_id, path, arrays)


def similarity_arrays(run_id: str, arrays: dict[str, np.ndarray]) -> _Similarity:
    """A member's similarity arrays computed now (not read from an artifact), for :func:`mean_similarity`."""
    return _Similarity(run_id, Path("<computed>"), arrays)


def mean_similarity(parts: Sequence[_Similarity], weights: Sequence[float], split: str) -> dict[str, np.ndarray]:
    """Weighted mean of members' similarity matrices over the same captions and clips.

    Each part: similarity (captions, clips), caption_idx (captions,), clip_idx (clips,),
    relevant (captions,). Returns the same four arrays for the ensemble (similarity float32,
    as runs store theirs, so re-scoring the artifact gives exactly the stored scores).
    """
    first = parts[0]
    for other in parts[1:]:
        same = all(np.array_equal(first.arrays[k], other.arrays[k]) for k in ("caption_idx", "clip_idx", "relevant"))
        if not same:
            a, b = first.arrays["similarity"].shape, other.arrays["similarity"].shape
            raise InputError(f"runs {first.run_id} and {other.run_id} were scored on different captions or clips of "
                             f"split {split!r} ({a[0]}×{a[1]} vs {b[0]}×{b[1]}): members of a system must share "
                             "the evaluation set")
    w = np.asarray(weights, dtype=np.float64)
    total = sum(wi * p.arrays["similarity"].astype(np.float64) for wi, p in zip(w, parts)) / w.sum()
    return {"similarity": total.astype(np.float32), "caption_idx": first.arrays["caption_idx"],
            "clip_idx": first.arrays["clip_idx"], "relevant": first.arrays["relevant"]}


def _retrieval_ensemble(selection: Selection, inputs: dict[str, dict], splits: Sequence[str]):
    """Per split: the mean similarity arrays and their scores."""
    out = {}
    weights = [m.weight for m in selection.members]
    for split in splits:
        parts = [_load_similarity(m.run_id, Path(inputs[m.run_id][split][0])) for m in selection.members]
        arrays = mean_similarity(parts, weights, split)
        out[split] = (arrays, score_retrieval(arrays["similarity"], arrays["relevant"],
                                              [str(c) for c in arrays["clip_idx"]]))
    return out


def _caption_ensemble(registry: Registry, selection: Selection, splits: Sequence[str]):
    """Per split: the ensemble's CaptionEvaluation (metrics, reasons, captions)."""
    ids, weights = [m.run_id for m in selection.members], [m.weight for m in selection.members]
    return {split: evaluate_ensemble(registry, ids, weights, split) for split in splits}


def system_dir(registry: Registry, name: str) -> Path:
    root = Path(registry.settings.home) / "systems"
    return inside(root, root / name, "system folder")


def build_system(registry: Registry, name: str, *, query_file: Path | None = None,
                 params: dict[str, object] | None = None, splits: Sequence[str] = DEFAULT_SPLITS) -> BuildResult:
    """Select members with the query, evaluate their ensemble on ``splits``, record the system.

    ``name`` is the system's name and, without ``query_file``, the packaged query
    ``sql/systems/<name>.sql``. ``params`` override the defaults the query declares.
    """
    check_name(name, "system name")
    splits = list(dict.fromkeys(splits))
    if not splits:
        raise InputError("give at least one --split to evaluate the system on")
    sql, source, defaults = system_query(name, query_file)
    params = with_dataset(registry, sql, {**defaults, **(params or {})})
    selection = select_members(registry, sql, params, source)
    inputs = _inputs(registry, selection, splits)
    fp = system_fingerprint(sql, params, splits, selection.members, inputs)
    existing = find_system(registry, name)
    if existing is not None and existing.fingerprint == fp and artifacts_present(registry, existing.id):
        scores, reasons = stored_scores(registry, existing.id)
        return BuildResult(name, existing.id, existing.kind, "unchanged", selection.members, scores, reasons,
                           existing.warnings.split("\n") if existing.warnings else [], params,
                           dataset_name(registry, selection.dataset_id))
    if selection.kind == "retrieval":
        results = _retrieval_ensemble(selection, inputs, splits)
        evaluations = {split: scored for split, (_, scored) in results.items()}
    else:
        results = _caption_ensemble(registry, selection, splits)
        evaluations = results
    scores = {split: dict(ev.metrics) for split, ev in evaluations.items()}
    reasons = {split: {k: v for k, v in ev.reasons.items() if ev.metrics.get(k) is None}
               for split, ev in evaluations.items()}
    written = _write_artifacts(registry, name, fp, results) if selection.kind == "retrieval" else {}
    captions = {split: ev.captions for split, ev in results.items()} if selection.kind == "caption" else {}
    rows = SystemRows(selection.kind, selection.dataset_id, sql, params, fp, selection.warnings,
                      [(m.run_id, m.rank, m.weight) for m in selection.members], scores, reasons, written, captions,
                      {split: ev.intervals for split, ev in evaluations.items()},
                      {split: ev.provenance for split, ev in evaluations.items()})
    try:
        system_id, status = write_system(registry, name, rows)
    except BaseException:
        for path in written.values():
            path.unlink(missing_ok=True)
        raise
    _remove_stale_artifacts(registry, name, set(written.values()))
    return BuildResult(name, system_id, selection.kind, status, selection.members, scores, reasons, selection.warnings,
                       params, dataset_name(registry, selection.dataset_id))


def _write_artifacts(registry: Registry, name: str, fp: str, results: dict) -> dict[str, Path]:
    """Save each split's mean similarity under a fingerprinted name, so the files of the
    system's current rows are never overwritten before the new rows are committed."""
    folder = system_dir(registry, name)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, (arrays, _) in results.items():
        path = folder / f"similarity-{split}-{fp[:12]}.npz"
        np.savez_compressed(path, **arrays)
        written[split] = path
    return written


def _remove_stale_artifacts(registry: Registry, name: str, keep: set[Path]) -> None:
    for path in system_dir(registry, name).glob("similarity-*.npz"):
        if path not in keep:
            path.unlink(missing_ok=True)


def list_systems(registry: Registry) -> tuple[list[str], list[tuple]]:
    """Every system with its kind, members and headline score (``sql/queries/systems.sql``)."""
    return run_sql(registry, named_query("systems").read_text(encoding="utf-8"), source="sql/queries/systems.sql")


def show_system(registry: Registry, name: str) -> dict:
    """A system's definition, members (with task, tag loss, dataset) and stored scores."""
    system = system_by_name(registry, name)
    scores, reasons = stored_scores(registry, system.id)
    members = run_sql(registry, named_query("system_members").read_text(encoding="utf-8"), {"system": system.id},
                      source="sql/queries/system_members.sql")
    return {"name": system.name, "id": system.id, "kind": system.kind, "params": json.loads(system.params_json),
            "fingerprint": system.fingerprint, "built": system.created_at.isoformat(timespec="seconds"),
            "warnings": system.warnings.split("\n") if system.warnings else [], "query": system.query_text,
            "members": members, "scores": scores, "reasons": reasons}
