"""Approximate nearest-neighbour candidates for large indexes (FAISS inverted lists).

Exact search scores every window; past ``ANN_ABOVE`` windows (``aacbatch index
--ann-above N``) an index version also holds, per member, a FAISS IVF index over its
searchable windows: k-means cells (``nlist`` ≈ √n) whose member vectors are stored as
float16. A query scans the cells nearest to it (12 %, at least 32) for candidates, which are then
re-scored exactly like an exact search's (float32 of the stored float16 embeddings), so
reported scores never come from the approximate side; only which windows are considered
does. Its recall is measured against exact search by ``benchmarks/bench_ann.py``.

FAISS rather than usearch's HNSW: in one trial on the shared 2-core machine (load ≈ 5), an
IVF index over 200k clustered 1024-d windows was built in 50 s, answering in 3–8 ms, while
usearch's graph (connectivity 16, expansion 128, f16, 2 threads) had not finished the same
200k after 5 minutes — a 1M-window build would not fit the 5-minute budget.

Stored next to the version's arrays, inside its Zarr folder: ``ann.json`` (what it was built
from: the version's fingerprint, the members' checkpoint hashes, n, nlist) and
``ann.<m>.faiss`` (serialised indexes). A search refuses an ANN index whose record does not
match its version and model, exactly as it refuses an index built with another model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import faiss
import numpy as np
from fsspec.core import url_to_fs

from aacbatch.errors import InputError

ANN_ABOVE = 200_000  # windows: at or past this, an index version is built with an ANN index
NPROBE, NPROBE_SHARE = 32, 0.12  # cells scanned per query: 12 % of them, at least 32. Recall@10 on 1M clustered
# windows with 1000 cells (idle 2 cores): 0.84 at 80 cells (22 ms), 0.87 at 120 (37 ms), 0.91 at 160 (52 ms);
# on 200k with 447 cells: 0.97 at 32, 0.98 at 64
MIN_PER_CELL = 40  # fewer training points per cell than this and k-means is unreliable (FAISS warns below 39)
TRAIN_PER_CELL = 128  # k-means sample per cell: at 40, recall@10 at 200k clustered windows was 0.81, at 128 0.97
RECORD = "ann.json"


@dataclass
class AnnIndex:
    """One FAISS index per member, over the rows of the version's searchable windows."""

    members: list  # faiss.IndexIVFScalarQuantizer per member
    record: dict

    def candidates(self, queries: Sequence[np.ndarray], n: int) -> np.ndarray:
        """Rows near any member's query ``queries[m]`` (E_m,): up to ``n`` per member, unique."""
        found = []
        for index, q in zip(self.members, queries):
            index.nprobe = n_probe(index.nlist)
            _, rows = index.search(np.ascontiguousarray(q, dtype=np.float32)[None], n)
            found.append(rows[0][rows[0] >= 0])
        return np.unique(np.concatenate(found))


def n_probe(cells: int) -> int:
    """Cells a query scans: a fixed share of them, so recall holds as an index grows (its cost
    grows as √n)."""
    return min(cells, max(NPROBE, math.ceil(NPROBE_SHARE * cells)))


def n_cells(n: int) -> int:
    """≈ √n cells, no more than the training points allow (n / MIN_PER_CELL)."""
    return max(1, min(int(math.sqrt(n)), n // MIN_PER_CELL))


def build(embeddings: Sequence[np.ndarray], seed: int = 0) -> list:
    """Member m's windows ``embeddings[m]`` (n, E_m) float16 → its FAISS index (inner product,
    float16 codes), trained on a seeded sample of TRAIN_PER_CELL points per cell (or all)."""
    out = []
    for emb in embeddings:
        n, dim = emb.shape
        cells = n_cells(n)
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFScalarQuantizer(quantizer, dim, cells, faiss.ScalarQuantizer.QT_fp16,
                                              faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        sample = np.random.default_rng(seed).choice(n, min(n, cells * TRAIN_PER_CELL), replace=False)
        index.train(np.ascontiguousarray(emb[np.sort(sample)], dtype=np.float32))
        for lo in range(0, n, 65536):  # float32 copies a slice at a time: bounded memory
            index.add(np.ascontiguousarray(emb[lo:lo + 65536], dtype=np.float32))
        out.append(index)
    return out


def save(url: str, members: list, record: dict) -> None:
    """Write the indexes and their record into the version folder at ``url`` (record last:
    an interrupted write leaves no record, so nothing half-written is ever used)."""
    fs, root = url_to_fs(url)
    for m, index in enumerate(members):
        fs.pipe_file(f"{root}/ann.{m}.faiss", faiss.serialize_index(index).tobytes())
    fs.pipe_file(f"{root}/{RECORD}", json.dumps(record).encode())


def load(url: str, name: str, folder: str, expected: dict) -> AnnIndex | None:
    """The version's ANN index, None if it has none; refused (one line) unless its record
    equals ``expected`` (the version's fingerprint and model, the window count)."""
    fs, root = url_to_fs(url)
    if not fs.exists(f"{root}/{RECORD}"):
        return None
    record = json.loads(fs.cat_file(f"{root}/{RECORD}"))
    if {k: record.get(k) for k in expected} != expected:
        what = "another model" if record.get("members") != expected.get("members") else "another version of the index"
        raise InputError(f"the ANN index of index {name!r} was built with {what}: rebuild it with "
                         f"`aacbatch index {folder} --name {name} --replace`")
    members = [faiss.deserialize_index(np.frombuffer(fs.cat_file(f"{root}/ann.{m}.faiss"), dtype=np.uint8))
               for m in range(len(record["members"]))]
    return AnnIndex(members, record)


def record_of(fingerprint: str, identity: dict, n_windows: int) -> dict:
    """What an ANN index must match: the version, the checkpoints that embedded it, its size."""
    return {"fingerprint": fingerprint, "members": [m.get("checkpoint_sha256") for m in identity["members"]],
            "n_windows": int(n_windows)}
