"""``aacbatch report compare A B``: is A better than B? Two runs or systems on the same split,
per metric the difference A − B, its 95 % paired-bootstrap interval over clips and an
approximate-randomisation p-value (:mod:`aacbatch.evaluate.uncertainty`).

Nothing is re-run but the metrics: retrieval compares the stored similarity matrices, caption
models their stored captions against the split's references, both resampled on the same
clips — the paired question "on these clips, which one is better, and by how much?".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aacbatch import catalog
from aacbatch.data.items import load_items
from aacbatch.errors import InputError, NotFoundError
from aacbatch.evaluate.captions import EVALUATION_METRICS, caption_metrics
from aacbatch.evaluate.retrieval import retrieval_statistics
from aacbatch.evaluate.uncertainty import compare
from aacbatch.registry.datasets import dataset_name, get_dataset
from aacbatch.registry.runs import artifacts, get_run, run_captions
from aacbatch.registry.store import Registry
from aacbatch.registry.systems import find_system, system_predictions


@dataclass(frozen=True)
class Model:
    label: str  # "run 1a2b3c4d" or "system retrieval_s1"
    kind: str  # "retrieval" or "caption"
    dataset_id: str | None
    run_id: str | None = None
    system_id: str | None = None


@dataclass(frozen=True)
class ComparisonTable:
    title: str
    columns: list[str]
    rows: list[tuple]


def _model(registry: Registry, ref: str) -> Model:
    system = find_system(registry, ref)
    if system is not None:
        return Model(f"system {system.name}", system.kind, system.dataset_id, system_id=system.id)
    try:
        run = get_run(registry, ref)
    except NotFoundError:
        raise InputError(f"{ref!r} is neither a system nor a run id (list them with `aacbatch system list` and "
                         "`aacbatch report runs`)") from None
    return Model(f"run {run.id[:8]}", catalog.task(run.task).output, run.dataset_id, run_id=run.id)


def _similarity(registry: Registry, model: Model, split: str, dataset_id: str) -> dict[str, np.ndarray]:
    if model.run_id is not None:
        row = artifacts(registry, [model.run_id], "similarity", [split], dataset_id).get((model.run_id, split))
    else:
        found = system_predictions(registry, model.system_id, "similarity", split, dataset_id)
        row = found[0] if found else None
    if row is None:
        flag = f"--run {model.run_id}" if model.run_id else f"--system {model.label.split()[1]}"
        raise InputError(f"{model.label} has no similarity matrix on split {split!r} of "
                         f"{dataset_name(registry, dataset_id)!r}: score it with `aacbatch evaluate retrieval {flag} "
                         f"--dataset {dataset_name(registry, dataset_id)} --split {split}`")
    with np.load(row.artifact_path) as saved:
        return {k: saved[k] for k in ("similarity", "relevant", "clip_idx")}


def _captions(registry: Registry, model: Model, split: str, dataset_id: str) -> dict[str, str]:
    if model.run_id is not None:
        found = run_captions(registry, model.run_id, split, dataset_id)
    else:
        found = {p.clip_id: p.text for p in system_predictions(registry, model.system_id, "caption", split, dataset_id)}
    if not found:
        flag = f"--run {model.run_id}" if model.run_id else f"--system {model.label.split()[1]}"
        raise InputError(f"{model.label} has no captions on split {split!r} of {dataset_name(registry, dataset_id)!r}: "
                         f"make them with `aacbatch evaluate caption {flag} --dataset "
                         f"{dataset_name(registry, dataset_id)} --split {split}`")
    return found


def compare_models(registry: Registry, a: str, b: str, *, split: str = "eval", dataset: str | None = None
                   ) -> ComparisonTable:
    first, second = _model(registry, a), _model(registry, b)
    if first.kind != second.kind:
        raise InputError(f"{first.label} is a {first.kind} model and {second.label} a {second.kind} one: compare "
                         "models of one kind")
    dataset_id = get_dataset(registry, dataset).id if dataset else first.dataset_id
    if first.kind == "retrieval":
        stats = []
        for model in (first, second):
            arrays = _similarity(registry, model, split, dataset_id)
            stats.append(retrieval_statistics(arrays["similarity"], arrays["relevant"],
                                              [str(c) for c in arrays["clip_idx"]]))
    else:
        items = load_items(registry, dataset_name(registry, dataset_id), split)
        ids = {c.idx: c.id for c in items.clips}
        references = {ids[idx]: texts for idx, texts in items.references().items()}
        stats = [caption_metrics(_captions(registry, m, split, dataset_id), references,
                                 assets_dir=registry.settings.home / "assets", metrics=EVALUATION_METRICS).statistics
                 for m in (first, second)]
    try:
        results = compare(stats[0], stats[1])
    except ValueError as exc:
        raise InputError(f"{first.label} and {second.label}: {exc} (score both on the same split)") from exc
    rows = [(metric, r.a, r.b, r.difference, r.low, r.high, None if math.isnan(r.p_value) else r.p_value)
            for metric, r in results.items()]
    title = (f"{first.label} (A) vs {second.label} (B) on split {split} of {dataset_name(registry, dataset_id)}: "
             f"A − B with its 95 % paired-bootstrap interval over clips (1000 resamples, seed 0) and an "
             "approximate-randomisation p-value")
    return ComparisonTable(title, ["metric", "A", "B", "A-B", "low", "high", "p"], rows)
