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


def recipe(meta: dict) -> dict:
    """What made a set (its store's ``meta``), apart from which dataset it was made from: the
    spec's kind and parameters (not its block size) and the content identity of any model it
    ran — without file locations and without the fingerprints of its input sets (a frozen
    CNN14's ``mel_fingerprint`` names one dataset's log-mels; those sets are compared as sets)."""
    spec = {k: v for k, v in (meta.get("spec") or {}).items() if k != "block_size"}
    identity = {k: v for k, v in (meta.get("model_identity") or {}).items()
                if not k.endswith("path") and not k.endswith("_fingerprint")}
    return {"spec": spec, "model": identity}


def member_sets(registry: Registry, datasets: list[str], name: str) -> dict[str, CachedSet]:
    """Feature set ``name`` of every dataset of a mixture, refused unless all were made alike
    (the same front end, tokenizer, teacher or encoder): examples of one batch must mean the
    same thing whichever dataset they come from."""
    sets = {d: cached_set(registry, d, name) for d in datasets}
    first, reference = datasets[0], recipe(sets[datasets[0]].store.meta)
    for dataset in datasets[1:]:
        made = recipe(sets[dataset].store.meta)
        if made != reference:
            differs = _first_difference(reference, made)
            command = str(sets[first].store.meta.get("command") or f"aacbatch featurize ... --dataset {first}")
            fix = command.replace(f"--dataset {first}", f"--dataset {dataset}") + " --rebuild"
            raise InputError(f"feature set {name!r} of dataset {dataset!r} was made unlike that of {first!r} "
                             f"({differs}): rebuild it alike with `{fix}`")
    return sets


def _first_difference(a, b, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else key)
    return f"{path}: {a!r} vs {b!r}"
