"""``aacbatch featurize``: compute one feature set over a dataset, resumably and in shards.

The job fingerprints (spec + source items + model identity), opens or creates the Zarr
group (refusing a cache built from anything else), records the feature set in the registry
as ``building``, computes the pending blocks of its shard and marks the set ``complete``
only when every block of every shard is done.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import shlex
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

from aacbatch import catalog
from aacbatch.cache import FeatureStore, cache_url
from aacbatch.data.items import load_items
from aacbatch.errors import InputError
from aacbatch.featurize.kinds import Context, FeatureKind, kind_class
from aacbatch.featurize.spec import Spec, load_spec
from aacbatch.hashing import fingerprint
from aacbatch.names import check_name
from aacbatch.registry.features import record_feature_set
from aacbatch.registry.runs import exact_ref
from aacbatch.registry.store import Registry

SHARD_WAIT_S = 600.0


@dataclass(frozen=True)
class FeaturizeResult:
    name: str
    url: str
    status: str  # "complete" or "partial" (other shards still running, or an error stopped it)
    n_items: int
    computed_blocks: int
    bad: list[tuple[int, str]]
    random_weights: bool
    repaired: list[int] = field(default_factory=list)  # blocks found damaged and recomputed (--repair)


def parse_shard(text: str) -> tuple[int, int]:
    """``"1/4"`` → ``(1, 4)``; shards are numbered from 0."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r}: expected K/N with integers, e.g. 0/4") from None
    if not (n >= 1 and 0 <= k < n):
        raise InputError(f"--shard {text!r}: need 0 <= K < N")
    return k, n


def featurize(
    registry: Registry,
    spec_name: str,
    dataset: str,
    *,
    split: str | None = None,
    shard: tuple[int, int] = (0, 1),
    workers: int = 1,
    rebuild: bool = False,
    skip_bad: bool = False,
    overrides: dict | None = None,
    name: str | None = None,
    progress: Callable | None = None,
    repair: bool = False,
) -> FeaturizeResult:
    """Compute (or finish) one feature set; ``name`` overrides the registry name, which is
    otherwise the spec's (or the kind's default, e.g. ``encoded-<run>``), ``@split`` appended.

    A finished set is checked cheaply first and refused if damaged; ``repair`` verifies it
    deeply instead and recomputes exactly the damaged blocks (of this shard)."""
    settings = registry.settings
    spec = _exact_runs(registry, load_spec(spec_name, overrides))
    context = Context(settings=settings, dataset=dataset)
    kind = kind_class(spec.kind)(spec.params, context)
    items = load_items(registry, dataset, split)
    todo = items.clips if kind.item == "clip" else items.captions
    if not todo:
        raise InputError(f"dataset {dataset!r} has no {kind.item}s{f' in split {split!r}' if split else ''} to featurize")
    identity = kind.identity()  # may hash model files: computed once per job
    random_weights = _random_weights(identity)
    base = name or kind.default_name(spec.name)
    set_name = check_name(base if split is None else f"{base}@{split}", "feature set name")
    url = cache_url(settings, dataset, set_name)
    meta = {
        "kind": spec.kind, "name": set_name, "dataset": dataset, "split": split, "item": kind.item,
        "spec": spec.canonical(), "model_identity": identity,
        "fingerprint": fingerprint(spec.canonical(), items.dataset_fingerprint, split,
                                   [i.idx for i in todo], _content_only(identity)),
        "command": _command(spec_name, dataset, split, overrides, name),
    }
    with _cache_errors(url):
        store = _open_store(url, meta, todo, kind, spec, shard, rebuild)
        if repair:
            repaired = store.repair(np.array([i.idx for i in todo]), kind.lengths(todo), shard)
        else:
            store.require_intact()
            repaired = []
    _record(registry, items.dataset_id, spec, meta, url, identity, "building", None)

    pending = store.pending_blocks(*shard)
    bad: list[tuple[int, str]] = []
    bar = progress(sum(_block_len(store, b) for b in pending), f"{set_name} [{dataset}]") if progress else None
    try:
        with _cache_errors(url):
            for block, block_bad in _run_blocks(store, kind, todo, pending, workers, skip_bad, spec, context):
                bad.extend(block_bad)
                if bar is not None:
                    bar.update(_block_len(store, block))
    finally:
        if bar is not None:
            bar.close()
        complete = store.is_complete()
        _record(registry, items.dataset_id, spec, meta, url, identity,
                "complete" if complete else "partial", len(todo) if complete else None)
    return FeaturizeResult(set_name, url, "complete" if complete else "partial", len(todo), len(pending), bad,
                           random_weights, repaired)


def _command(spec_name: str, dataset: str, split: str | None, overrides: dict | None, name: str | None) -> str:
    """The featurize command line for this set, quoted by damage messages (with --repair)."""
    parts = ["aacbatch featurize", shlex.quote(spec_name), "--dataset", shlex.quote(dataset)]
    parts += ["--split", shlex.quote(split)] if split else []
    parts += ["--name", shlex.quote(name)] if name else []
    for key, value in (overrides or {}).items():
        parts += ["--set", shlex.quote(f"{key}={value if isinstance(value, str) else json.dumps(value)}")]
    return " ".join(parts)


def _exact_runs(registry: Registry, spec: Spec) -> Spec:
    """The spec with every run it names (``teacher=``, ``run=``) as a full id, so a prefix and
    the full id give the same feature set."""
    params = dict(spec.params)
    for param, role in catalog.feature_kind(spec.kind).run_params:
        params[param] = exact_ref(registry, params[param], catalog.tasks_where(**{role: True}), f"run given as {param}=")
    return replace(spec, params=params)


@contextmanager
def _cache_errors(url: str):
    """Disk full, permissions, read-only stores: one line naming the cache and the fix."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(f"cannot write feature cache {url}: {reason}; free space, fix permissions or "
                         "choose another --cache (finished blocks are kept and resume)") from exc


def _random_weights(identity: dict | None) -> bool:
    return bool((identity or {}).get("random_weights", False))


def _content_only(identity: dict | None) -> dict | None:
    """Identity without file locations: moving a model or reinstalling keeps caches valid."""
    if identity is None:
        return None
    return {k: v for k, v in identity.items() if not k.endswith("path")}


def _block_len(store: FeatureStore, block: int) -> int:
    lo, hi = store.block_range(block)
    return hi - lo


def _open_store(url, meta, todo, kind: FeatureKind, spec: Spec, shard, rebuild) -> FeatureStore:
    """Shard 0 creates the layout; other shards wait for it (never racing to create)."""
    if shard[0] == 0:
        return FeatureStore.create_or_resume(
            url, meta=meta, item_index=np.array([i.idx for i in todo]), arrays=kind.arrays(),
            lengths=kind.lengths(todo), block_size=spec.block_size, rebuild=rebuild)
    if rebuild:
        raise InputError("--rebuild is only allowed for shard 0/N (it recreates the whole cache)")
    deadline = time.monotonic() + SHARD_WAIT_S
    while True:
        try:
            store = FeatureStore.open(url, "r+")
        except InputError:
            store = None
        if store is not None:
            if store.meta.get("fingerprint") != meta["fingerprint"]:
                raise InputError(f"feature cache {url} was built from another spec, dataset or model: "
                                 "rebuild it with shard 0/N --rebuild")
            return store
        if time.monotonic() > deadline:
            raise InputError(f"shard {shard[0]}/{shard[1]}: {url} was not created by shard 0 within {SHARD_WAIT_S:g} s")
        time.sleep(0.5)


def _compute_block(store: FeatureStore, kind: FeatureKind, todo: list, block: int, skip_bad: bool) -> list[tuple[int, str]]:
    lo, hi = store.block_range(block)
    block_items = todo[lo:hi]
    bad: list[int] = []
    reasons: list[tuple[int, str]] = []

    def on_bad(k: int, exc: Exception) -> None:
        item = block_items[k]
        label = getattr(item, "name", None) or f"caption {item.idx}"
        if not skip_bad:
            raise InputError(f"{label}: {exc} — fix or remove it, or pass --skip-bad to record it and go on") from exc
        bad.append(k)
        reasons.append((lo + k, f"{label}: {exc}"))

    values = kind.compute(block_items, on_bad)
    store.write_block(block, values, bad)
    return reasons


# Worker processes rebuild the kind and the store once, then compute and write whole blocks.
_WORKER: dict = {}


def _worker_init(url: str, spec_kind: str, params: dict, context: Context, todo: list, skip_bad: bool) -> None:
    _WORKER.update(store=FeatureStore.open(url, "r+"), kind=kind_class(spec_kind)(params, context), todo=todo,
                   skip_bad=skip_bad)


def _worker_block(block: int) -> tuple[int, list[tuple[int, str]]]:
    w = _WORKER
    return block, _compute_block(w["store"], w["kind"], w["todo"], block, w["skip_bad"])


def _run_blocks(store, kind, todo, pending, workers, skip_bad, spec: Spec, context):
    if workers <= 1 or len(pending) <= 1:
        for block in pending:
            yield block, _compute_block(store, kind, todo, block, skip_bad)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                             initargs=(store.url, spec.kind, spec.params, context, todo, skip_bad)) as pool:
        yield from pool.map(_worker_block, pending)


def _record(registry: Registry, dataset_id: str, spec: Spec, meta: dict, url: str, identity, status: str,
            n_items: int | None) -> None:
    record_feature_set(registry, dataset_id, meta["name"], dict(
        kind=spec.kind, fingerprint=meta["fingerprint"], spec_json=json.dumps(spec.canonical()),
        model_identity=json.dumps(identity) if identity is not None else None,
        random_weights=_random_weights(identity), path=url, status=status, n_items=n_items))
