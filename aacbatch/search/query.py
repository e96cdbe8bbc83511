"""``aacbatch search``: rank an index's windows by cosine similarity to a query.

A query is a text, an example (an audio file embedded like one window of the index, or a
window already in it: "more like this"), or a mix of a text and an example: with text weight
w, a window scores w·cos(text, window) + (1 − w)·cos(example, window) — the cosine with the
mixed vector w·t + (1 − w)·a, so one ranking pass serves every kind.

A :class:`Searcher` holds the index's current version in memory (window embeddings, file
names, captions) and its model's encoders, so the web page answers many queries from one
load. With a system, a window's score is the weighted mean of the members' cosine
similarities, each member comparing the query with the embeddings it made itself. Windows
are ranked; overlapping candidate windows of one file become one hit
(:func:`~aacbatch.search.windows.merge_windows`).

Scoring 100k files: a float16 matrix-vector product over all rows (torch: ~50 ms for
100k × 1024 on one core) picks candidates, which are re-scored in float32, so the reported
scores, and the order of near-equal ones, do not depend on half-precision rounding.

A query is encoded and scored on one thread: a 30-token text and one matrix-vector product
gain nothing from intra-op parallelism, and on a busy machine torch's threads waiting for
each other made the text encoder 5× slower (0.54 s vs 0.1 s for MiniLM right after reading
a 100k-file index, measured on 2 shared cores).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import torch

from aacbatch.audio.files import AudioInfo, probe
from aacbatch.cache import FeatureStore
from aacbatch.errors import InputError, NotFoundError, shown
from aacbatch.registry.indexes import Registered, registered_index
from aacbatch.registry.queries import describe_model
from aacbatch.registry.store import Registry
from aacbatch.search.encoders import load_encoders, members, resolve_model
from aacbatch.search import ann
from aacbatch.search.index import check_layout, describe, known_indexes, searchable_windows
from aacbatch.search.windows import Windowing, first_window_logmel, merge_windows
from aacbatch.textfiles import read_utf8


RANK_CHUNK = 8192


@dataclass(frozen=True)
class Hit:
    rank: int
    id: int  # the file's id in the index (what /audio/<id> serves)
    file: str  # path relative to the indexed folder
    score: float  # of the best window in the span
    duration: float  # of the whole file
    caption: str | None
    start: float = 0.0  # seconds: the span of the merged windows inside the file
    end: float = 0.0
    at: float = 0.0  # start of the best window (what "more like this" asks for)


@dataclass(frozen=True)
class Results:
    query: str
    hits: list[Hit]
    notes: list[str]  # e.g. the query was cut to the text encoder's token limit
    expected: str | None = None  # a file the query should find (batch queries)
    expected_rank: int | None = None  # its 1-based pessimistic rank among every indexed file


@dataclass(frozen=True)
class Query:
    text: str
    expected: str | None = None  # path relative to the indexed folder


@dataclass(frozen=True)
class Example:
    """An audio example to search by: a file (embedded like the index) or a window of the index."""

    path: Path | None = None
    info: AudioInfo | None = None
    file_id: int | None = None
    at: float | None = None  # seconds: the window of file_id starting there (None: its first)

    def describe(self) -> str:
        if self.path is not None:
            return f"like {self.path.name}"
        return f"like file {self.file_id}" + (f" at {self.at:g} s" if self.at else "")


def check_example(path: Path | None = None, file_id: int | None = None, at: float | None = None) -> Example:
    """``--like FILE`` (probed: a file that is not audio is one line, before any model loads)
    or ``--like-id ID [--at S]``."""
    if (path is None) == (file_id is None):
        raise InputError("give one of --like FILE or --like-id ID")
    if at is not None and file_id is None:
        raise InputError("--at names a window of an indexed file: use it with --like-id ID")
    if path is not None:
        path = Path(path).expanduser()
        return Example(path=path, info=probe(path, "--like query"))
    return Example(file_id=int(file_id), at=at)


def check_weight(weight: float) -> float:
    if not 0.0 <= weight <= 1.0:
        raise InputError(f"--weight is the text's share of a mixed query, between 0 and 1; got {weight:g}")
    return float(weight)


def check_query(text: str, k: int) -> str:
    """A query as it is searched, or a one-line error — checked before any model loads."""
    text = text.strip()
    if not text:
        raise InputError('empty query: describe the sound to find, e.g. "a dog barks while cars pass"')
    if k < 1:
        raise InputError(f"-k must be at least 1, got {k}")
    return text


def read_queries(path: Path, k: int) -> list[Query]:
    """Queries from a file: one per line (blank lines and ``#`` comments skipped; ``TEXT<TAB>FILE``
    names the file it should find), or JSON: a list of strings or of ``{"query", "expected"}``."""
    text = read_utf8(Path(path), "queries file")
    if Path(path).suffix.lower() == ".json":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"queries file {shown(path)} is not valid JSON ({exc.msg}, line {exc.lineno})") from exc
        if not isinstance(items, list):
            raise InputError(f"queries file {shown(path)}: expected a JSON list of queries")
        queries = [Query(i) if isinstance(i, str) else Query(i.get("query", ""), i.get("expected"))
                   if isinstance(i, dict) else None for i in items]
        if None in queries:
            raise InputError(f"queries file {shown(path)}: each item is a string or an object with query/expected")
    else:
        queries = [Query(*(line.split("\t", 1) + [None])[:2]) for line in text.splitlines()
                   if line.strip() and not line.lstrip().startswith("#")]
    if not queries:
        raise InputError(f"queries file {shown(path)} holds no queries")
    for number, q in enumerate(queries, 1):
        try:
            check_query(q.text, k)
        except InputError as exc:
            raise InputError(f"queries file {shown(path)}, query {number}: {exc}") from None
    return [Query(q.text.strip(), q.expected.strip() if q.expected else None) for q in queries]


@dataclass(frozen=True)
class LoadedIndex:
    """One version of an index, searchable files only (files that failed to decode are left
    out): n files and their W windows (W = n without --window)."""

    name: str
    folder: Path
    spec: dict
    identity: dict
    ids: np.ndarray  # (n,) int64
    names: np.ndarray  # (n,) str
    durations: np.ndarray  # (n,) float32
    captions: np.ndarray | None  # (n,) str
    embeddings: list[np.ndarray]  # per member (W, E_m) float16, unit rows
    window_file: np.ndarray  # (W,) int64: the file row of each window
    starts: np.ndarray  # (W,) float32 seconds
    ends: np.ndarray  # (W,) float32 seconds
    ann: ann.AnnIndex | None = None  # candidates for large indexes (None: exact search only)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def windowing(self) -> Windowing:
        return Windowing.of_spec(self.spec)

    @property
    def windowed(self) -> bool:
        return self.windowing.window is not None

    def window_of(self, file_id: int, at: float | None = None) -> int:
        """The row of file ``file_id``'s window starting at ``at`` seconds (None: its first)."""
        rows = np.flatnonzero(self.ids == file_id)
        if len(rows) == 0:
            raise InputError(f"file id {file_id} is not in index {self.name!r}: take an id from a search's hits")
        windows = np.flatnonzero(self.window_file == rows[0])
        if at is None:
            return int(windows[0])
        found = windows[np.isclose(self.starts[windows], at, atol=1e-3)]
        if len(found) == 0:
            listed = ", ".join(f"{s:g}" for s in self.starts[windows][:8])
            raise InputError(f"file {self.names[rows[0]]} has no window starting at {at:g} s (its windows start at "
                             f"{listed}{', …' if len(windows) > 8 else ''})")
        return int(found[0])


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
    check_layout(store, name, found.dataset.source_path)
    bad = store.bad_items()
    good, lengths, rows = searchable_windows(store, bad)  # the bad list read (and checked) once

    def searchable(array: str) -> np.ndarray:
        values = store.group[array][:]
        return np.delete(values, bad, axis=0) if len(bad) else values  # no 200 MB copy when nothing is bad

    def windows(array: str) -> np.ndarray:
        values = store.group[array][:]
        contiguous = len(rows) == len(values) and (len(rows) == 0 or rows[-1] == len(values) - 1)
        return values if contiguous else values[rows]  # rows rise strictly: contiguous means all of them

    return LoadedIndex(
        name=name, folder=Path(found.dataset.source_path), spec=found.spec, identity=found.identity,
        ids=searchable("item_index"), names=searchable("name"), durations=searchable("duration"),
        captions=searchable("caption") if "caption" in store.meta["arrays"] else None,
        embeddings=[windows(f"embedding.{m}") for m in range(len(found.spec["runs"]))],
        window_file=np.repeat(np.arange(len(good)), lengths), starts=windows("window_start"),
        ends=windows("window_end"),
        ann=ann.load(store.url, name, found.dataset.source_path,
                     ann.record_of(store.meta["fingerprint"], found.identity, len(rows))))


def rank(embeddings: Sequence[np.ndarray], queries: Sequence[np.ndarray], weights: Sequence[float],
         k: int, candidates: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` rows by weighted mean cosine: (rows, float32 scores), best first, ties by row.

    ``embeddings[m]`` (n, E_m) float16 and ``queries[m]`` (E_m,) are member m's unit vectors.
    Candidates are the best 4k + 64 rows of a float16 pass over every row, or ``candidates``
    (rows from an ANN index); either way they are re-scored in float32.
    """
    w = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
    if candidates is None:
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

    def __init__(self, index: LoadedIndex, encoders: list, model: str = ""):
        self.index = index
        self.encoders = encoders
        self.model = model  # what the model is, in one line (registry.queries.describe_model)
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
        return cls(index, load_encoders(registry, model),
                   describe_model(registry, [m.run_id for m in model], index.spec["system"]))

    def describe_model(self) -> str:
        return self.model

    def search(self, query: str | None = None, k: int = 10, expected: str | None = None, *,
               like: Example | None = None, weight: float = 0.5, exact: bool = False) -> Results:
        """The ``k`` best hits for a text ``query``, an example ``like``, or both mixed with
        text weight ``weight``; with ``expected`` (a relative path in the index), also that
        file's rank among every file (by its best window). An index with an ANN index takes
        its candidates from it unless ``exact``."""
        text = check_query(query, k) if query is not None else None
        if text is None and like is None:
            raise InputError("give a query text, an example (--like FILE or --like-id ID), or both")
        if k < 1:
            raise InputError(f"-k must be at least 1, got {k}")
        weight = check_weight(weight) if text is not None and like is not None else 1.0
        notes = sorted({f"the query is {n} tokens long; the text encoder reads only the first {e.max_tokens}, "
                        "the rest was ignored" for e in self.encoders if (n := e.n_tokens(text)) > e.max_tokens}
                       ) if text is not None else []
        with self._lock, _one_thread():
            vectors, exclude = self._vectors(text, like, weight)
            spans = self._spans(vectors, k, exclude, exact)
            expected_rank = self._rank_of(expected, vectors) if expected is not None else None
        idx = self.index
        hits = [Hit(r + 1, int(idx.ids[s.file_row]), str(idx.names[s.file_row]), s.score, float(idx.durations[s.file_row]),
                    str(idx.captions[s.file_row]) if idx.captions is not None else None, s.start, s.end,
                    float(idx.starts[s.best])) for r, s in enumerate(spans)]
        label = text if like is None else like.describe() if text is None else \
            f"{text} + {like.describe()} (text weight {weight:g})"
        return Results(label, hits, notes, expected, expected_rank)

    def search_many(self, queries: Sequence[Query], k: int = 10, exact: bool = False) -> list[Results]:
        """Every query answered from this one load of the index and its model."""
        return [self.search(q.text, k, q.expected, exact=exact) for q in queries]

    def _vectors(self, text: str | None, like: Example | None, weight: float) -> tuple[list[np.ndarray], np.ndarray]:
        """Per member the query's (E_m,) float32 vector — ``weight``·text + (1 − weight)·example —
        and the window rows a search leaves out (those overlapping the example's own window)."""
        parts, exclude = [], np.zeros(0, np.int64)
        if text is not None:
            parts.append((weight, [e.embed_text([text])[0] for e in self.encoders]))
        if like is not None:
            audio, exclude = self._example(like)
            parts.append((1.0 - weight if text is not None else 1.0, audio))
        return [sum(w * p[m].astype(np.float32) for w, p in parts) for m in range(len(self.encoders))], exclude

    def _example(self, like: Example) -> tuple[list[np.ndarray], np.ndarray]:
        """An example's (E_m,) vector per member: a file's first window (as long as one window of
        the index, embedded as the index embeds it), or a window of the index as stored."""
        idx = self.index
        if like.path is not None:
            mel = first_window_logmel(like.path, like.info, idx.windowing.query_seconds)
            return [e.embed_audio([mel])[0] for e in self.encoders], np.zeros(0, np.int64)
        row = idx.window_of(like.file_id, like.at)
        same = np.flatnonzero((idx.window_file == idx.window_file[row]) & (idx.starts < idx.ends[row])
                              & (idx.ends > idx.starts[row]))
        return [emb[row].astype(np.float32) for emb in idx.embeddings], same

    def _spans(self, vectors: list[np.ndarray], k: int, exclude: np.ndarray, exact: bool) -> list:
        """The ``k`` best spans: the best windows (more while merging leaves fewer than ``k``
        spans), less ``exclude``, merged per file."""
        idx = self.index
        n = len(idx.window_file)
        want = (4 * k if idx.windowed else k) + len(exclude)
        while True:
            candidates = None if exact or idx.ann is None else idx.ann.candidates(vectors, min(n, 4 * want + 64))
            rows, scores = rank(idx.embeddings, vectors, idx.spec["weights"], min(n, want), candidates)
            keep = ~np.isin(rows, exclude)
            spans = merge_windows(rows[keep], scores[keep], idx.window_file, idx.starts, idx.ends)
            if len(spans) >= k or want >= n:
                return spans[:k]
            want *= 4

    def _rank_of(self, file: str, queries: list[np.ndarray]) -> int:
        rows = np.flatnonzero(self.index.names == file)
        if len(rows) == 0:
            raise InputError(f"expected file {file!r} is not in index {self.index.name!r} (paths are relative to "
                             f"{self.index.folder})")
        w = np.asarray(self.index.spec["weights"], dtype=np.float64) / float(np.sum(self.index.spec["weights"]))
        scores = np.zeros(len(self.index.window_file), dtype=np.float64)
        for lo in range(0, len(scores), RANK_CHUNK):  # exact float32 scores, a chunk of rows at a time
            scores[lo:lo + RANK_CHUNK] = sum(wm * (emb[lo:lo + RANK_CHUNK].astype(np.float32) @ q.astype(np.float32))
                                             for emb, q, wm in zip(self.index.embeddings, queries, w))
        best = np.full(len(self.index), -np.inf)
        np.maximum.at(best, self.index.window_file, scores)  # a file scores as its best window
        return int((best >= best[rows[0]]).sum())  # pessimistic: ties count against it

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
    threads, faiss_threads = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        faiss.omp_set_num_threads(faiss_threads)
