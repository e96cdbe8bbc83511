"""Complete feature sets looked up in the registry: what trainers and dependent kinds read."""

from __future__ import annotations

from dataclasses import dataclass

from aacbatch.cache import FeatureStore
from aacbatch.errors import InputError
from aacbatch.registry.features import require_complete
from aacbatch.registry.store import Registry


@dataclass(frozen=True)
class CachedSet:
    """A complete feature set: its store plus what lineage records about it."""

    store: FeatureStore
    id: str
    name: str
    fingerprint: str
    random_weights: bool

    def lineage(self) -> dict:
        return {"id": self.id, "name": self.name, "fingerprint": self.fingerprint, "random_weights": self.random_weights}


def cached_set(registry: Registry, dataset: str, name: str) -> CachedSet:
    """The complete feature set ``name`` of ``dataset``; a clear error if absent or unfinished."""
    how = (f"aacbatch featurize encoded --dataset {dataset} --from-run RUN_ID" if name.startswith("encoded-")
           else f"aacbatch featurize {name} --dataset {dataset}")
    row = require_complete(registry, dataset, name, how)
    store = FeatureStore.open(row.path)
    if store.meta.get("fingerprint") != row.fingerprint:
        raise InputError(f"feature cache {row.path} does not match the registry's {name!r}: re-run featurize with --rebuild")
    store.require_intact()  # refuse a damaged set before any work starts, never read zeros
    return CachedSet(store, row.id, name, row.fingerprint, row.random_weights)
