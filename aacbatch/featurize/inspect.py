"""What ``aacbatch features show`` and ``features verify`` print: the registry row joined with
the cache's own view, and the cache's integrity check."""

from __future__ import annotations

import json

import numpy as np

from aacbatch.cache import FeatureStore
from aacbatch.cache_integrity import VerifyReport
from aacbatch.errors import NotFoundError
from aacbatch.registry.features import feature_set_names, find_feature_set
from aacbatch.registry.schema import FeatureSet
from aacbatch.registry.store import Registry


def _row(registry: Registry, dataset: str, name: str) -> FeatureSet:
    row = find_feature_set(registry, dataset, name)
    if row is None:
        known = ", ".join(feature_set_names(registry, dataset)) or "none"
        raise NotFoundError(f"no feature set {name!r} for dataset {dataset!r} (known: {known}); run `aacbatch featurize`")
    return row


def verify_set(registry: Registry, dataset: str, name: str, deep: bool = True) -> tuple[VerifyReport, str]:
    """The integrity report of a feature set (``deep``: every chunk's bytes against its CRC and
    record; else sizes only) and its one-line summary with the command that repairs it."""
    store = FeatureStore.open(_row(registry, dataset, name).path)
    report = store.verify(deep=deep)
    return report, report.line(store.repair_hint())


def describe(registry: Registry, dataset: str, name: str) -> dict:
    row = _row(registry, dataset, name)
    store = FeatureStore.open(row.path)
    done = store.group["done"][:]
    return {
        "name": row.name, "dataset": dataset, "kind": row.kind, "status": row.status, "path": row.path,
        "fingerprint": row.fingerprint, "random_weights": row.random_weights,
        "spec": json.loads(row.spec_json),
        "model_identity": json.loads(row.model_identity) if row.model_identity else None,
        "items": store.n_items, "blocks_done": f"{int(done.sum())}/{len(done)}",
        "bad_items": [int(i) for i in store.bad_items()],
        "arrays": {k: dict(v, shape=list(store.group[k].shape)) for k, v in store.meta["arrays"].items()},
        "cache_matches_registry": store.meta.get("fingerprint") == row.fingerprint and bool(np.all(done)) == (row.status == "complete"),
    }
