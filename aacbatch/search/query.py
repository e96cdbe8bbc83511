"""``aacbatch search``: rank an index's files by cosine similarity to a text query.

A :class:`Searcher` holds the index's current version in memory (embeddings, names,
captions) and its model's text encoders, so the web page answers many queries from one
load. With a system, a file's score is the weighted mean of the members' cosine
similarities, each member comparing the query with the embeddings it made itself.

Scoring 100k files: a float16 matrix-vector product over all rows (torch: ~50 ms for
100k × 1024 on one core) picks candidates, which are re-scored in float32, so the reported
scores, and the order of near-equal ones, do not depend on half-precision rounding.

A query is encoded and scored on one thread: a 30-token text and one matrix-vector product
gain nothing from intra-op parallelism, and on a busy machine torch's threads waiting for
each other made the text encoder 5× slower (0.54 s vs 0.1 s for MiniLM right after reading
a 100k-file index, measured on 2 shared cores).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aacbatch.cache import FeatureStore
from aacbatch.errors import InputError, NotFoundError
from aacbatch.registry.indexes import Registered, registered_index
from aacbatch.registry.store import Registry
from aacbatch.search.encoders import load_encoders, members, resolve_model
from aacbatch.search.index import describe, known_indexes


@dataclass(frozen=True)
class Hit:
    rank: int
    id: int  # the file's id in the index (what /audio/<id> serves)
    file: str  # path relative to the indexed folder
    score: float
    duration: float
    caption: str | None


@dataclass(frozen=True)
class Results:
    query: str
    hits: list[Hit]
    notes: list[str]  # e.g. the query was cut to the text encoder's token limit


@dataclass(frozen=True)
class LoadedIndex:
    """One version of an index, searchable rows only (files that failed to decode are left out)."""

    name: str
    folder: Path
    spec: dict
    identity: dict
    ids: np.ndarray  # (n,) int64
    names: np.ndarray  # (n,) str
    durations: np.ndarray  # (n,) float32
    captions: np.ndarray | None  # (n,) str
    embeddings: list[np.ndarray]  # per member (n, E_m) float16, unit rows

    def __len__(self) -> int:
        return len(self.ids)


def find_index(registry: Registry, name: str) -> Registered:
    found = registered_index(registry, name)
    if found is None:
        known = ", ".join(known_indexes(registry)) or "none yet"
        raise NotFoundError(f"unknown index {name!r} (known: {known}); build it with `aacbatch index AUDIO_DIR --run RUN_ID "
                            f"--name {name}`")
    return found


def load_index(registry: Registry, name: str) -> LoadedIndex:
    """The current version of index ``name``, read whole."""
    found = find_index(registry, name)
    store = FeatureStore.open(found.feature_set.path)
    bad = store.bad_items()

    def searchable(array: str) -> np.ndarray:
        values = store.group[array][:]
        return np.delete(values, bad, axis=0) if len(bad) else values  # no 200 MB copy when nothing is bad

    return LoadedIndex(
        name=name, folder=Path(found.dataset.source_path), spec=found.spec, identity=found.identity,
        ids=searchable("item_index"), names=searchable("name"), durations=searchable("duration"),
        captions=searchable("caption") if "caption" in store.meta["arrays"] else None,
        embeddings=[searchable(f"embedding.{m}") for m in range(len(found.spec["runs"]))])


def rank(embeddings: Sequence[np.ndarray], queries: Sequence[np.ndarray], weights: Sequence[float],
         k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` rows by weighted mean cosine: (rows, float32 scores), best first, ties by row.

    ``embeddings[m]`` (n, E_m) float16 and ``queries[m]`` (E_m,) are member m's unit vectors.
    """
    w = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
    n = len(embeddings[0])
    coarse = torch.zeros(n, dtype=torch.float32)
    for emb, q, wm in zip(embeddings, queries, w):
        coarse += float(wm) * (torch.from_numpy(emb) @ torch.from_numpy(q).half()).float()
    candidates = torch.topk(coarse, min(n, 4 * k + 64)).indices.numpy()
    exact = np.zeros(len(candidates), dtype=np.float64)
    for emb, q, wm in zip(embeddings, queries, w):
        exact += wm * (emb[candidates].astype(np.float32) @ q.astype(np.float32))
    order = np.lexsort((candidates, -exact))[:k]
    return candidates[order], exact[order].astype(np.float32)


class Searcher:
    """An index with its model's text encoders, ready for queries."""

    def __init__(self, index: LoadedIndex, encoders: list):
        self.index = index
        self.encoders = encoders
        self._lock = threading.Lock()  # torch's thread count is process-wide: one query at a time

    @classmethod
    def open(cls, registry: Registry, name: str, run: str | None = None, system: str | None = None) -> "Searcher":
        """Load index ``name`` and the run(s) that built it. ``run``/``system``, when given,
        must be what built it: embeddings of one model mean nothing to another's queries."""
        index = load_index(registry, name)
        built_with = list(zip(index.spec["runs"], index.spec["weights"]))
        if run is not None or system is not None:
            asked = resolve_model(registry, run, system)
            if [(r, float(w)) for r, w in asked] != built_with or (system is not None and system != index.spec["system"]):
                shown = f"system {system}" if system is not None else f"run {asked[0][0]}"
                raise InputError(f"index {name!r} was built with {describe(index.spec)}, not {shown}: search it "
                                 f"without --run/--system, or index the folder for that model under another --name")
        model = members(registry, built_with)
        recorded = [m["checkpoint_sha256"] for m in index.identity["members"]]
        for member, sha in zip(model, recorded):
            if member.sha256 != sha:
                raise InputError(f"the checkpoint of run {member.run_id} ({member.checkpoint}) changed since index "
                                 f"{name!r} was built: rebuild it with `aacbatch index {index.folder} --replace`")
        return cls(index, load_encoders(registry, model))

    def search(self, query: str, k: int = 10) -> Results:
        text = query.strip()
        if not text:
            raise InputError('empty query: describe the sound to find, e.g. "a dog barks while cars pass"')
        if k < 1:
            raise InputError(f"-k must be at least 1, got {k}")
        notes = sorted({f"the query is {n} tokens long; the text encoder reads only the first {e.max_tokens}, "
                        "the rest was ignored" for e in self.encoders if (n := e.n_tokens(text)) > e.max_tokens})
        with self._lock, _one_thread():
            queries = [e.embed_text([text])[0] for e in self.encoders]
            rows, scores = rank(self.index.embeddings, queries, self.index.spec["weights"], k)
        idx = self.index
        hits = [Hit(r + 1, int(idx.ids[row]), str(idx.names[row]), float(score), float(idx.durations[row]),
                    str(idx.captions[row]) if idx.captions is not None else None)
                for r, (row, score) in enumerate(zip(rows, scores))]
        return Results(text, hits, notes)

    def audio_path(self, file_id: int) -> Path | None:
        """The file with id ``file_id`` if it is in the index and still inside its folder, else None."""
        rows = np.flatnonzero(self.index.ids == file_id)
        if len(rows) == 0:
            return None
        folder = self.index.folder.resolve()
        path = (folder / str(self.index.names[rows[0]])).resolve()
        return path if path.is_relative_to(folder) and path.is_file() else None


@contextmanager
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
