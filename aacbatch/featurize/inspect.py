"""What ``aacbatch features show`` prints: the registry row joined with the cache's own view."""

from __future__ import annotations

import json

import numpy as np
from aacbatch.cache import FeatureStore
from aacbatch.errors import NotFoundError
from aacbatch.registry.features import feature_set_names, find_feature_set
from aacbatch.registry.store import Registry


def describe(registry: Registry, dataset: str, name: str) -> dict:
    row = find_feature_set(registry, dataset, name)
    if row is None:
        known = ", ".join(feature_set_names(registry, dataset)) or "none"
        raise NotFoundError(f"no feature set {name!r} for dataset {dataset!r} (known: {known}); run `aacbatch featurize`")
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
