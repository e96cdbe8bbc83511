"""``aacbatch embed``: audio or text embeddings of a retrieval run or system, written out.

Rows are a dataset's clips (with their id, path and reference captions), audio files given
by path, or texts. Audio is decoded and cut exactly as ``aacbatch index`` embeds a file
(its first ``max_seconds``), text is tokenised as the run's captions were.

With a system the vector of an item is the concatenation of its members' unit embeddings,
member m's scaled by sqrt(w_m / Σw): the dot product of an audio vector and a text vector
is then the system's score (the weighted mean of the members' cosines), and every vector
is still unit length. One run: its own embedding.

Written as Parquet by DuckDB (no extra dependency; DuckDB, pandas and polars read it, and
so does ``aacbatch sql "SELECT * FROM 'emb.parquet'"``), one row per item with an
``embedding FLOAT[D]`` column; or as ``.npy``: the (n, D) float32 matrix alone, rows in the
order the Parquet file would list them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np

from aacbatch.audio.files import probe
from aacbatch.errors import InputError, shown
from aacbatch.registry.datasets import split_rows
from aacbatch.registry.store import Registry
from aacbatch.search.encoders import load_encoders, members, resolve_model
from aacbatch.search.windows import first_window_logmel

FORMATS = (".parquet", ".npy")
BATCH = 32  # items per encoder call


@dataclass(frozen=True)
class Embeddings:
    """Items and their vectors: ``columns[c]`` (n,) per column, ``vectors`` (n, D) float32."""

    kind: str  # "audio" or "text"
    columns: dict[str, list]
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.vectors)


def check_output(out: Path) -> Path:
    """The output path, refused (one line, before any model loads) unless .parquet or .npy in
    an existing folder."""
    out = Path(out).expanduser()
    if out.suffix.lower() not in FORMATS:
        raise InputError(f"--out {shown(out)}: name a .parquet or .npy file")
    if not out.parent.is_dir():
        raise InputError(f"--out {shown(out)}: folder {shown(out.parent)} does not exist")
    return out


def embed(registry: Registry, *, run: str | None = None, system: str | None = None, dataset: str | None = None,
          split: str | None = None, audio: Sequence[Path] = (), texts: Sequence[str] = (),
          max_seconds: float = 60.0) -> Embeddings:
    """Embeddings of ``dataset`` (``split``: one of its splits), of ``audio`` files or of
    ``texts`` — exactly one of the three — with run ``run`` or system ``system``."""
    if sum(map(bool, (dataset, list(audio), list(texts)))) != 1:
        raise InputError("give exactly one of --dataset NAME, AUDIO files or --text TEXT")
    if split is not None and dataset is None:
        raise InputError("--split needs --dataset")
    if not max_seconds > 0:
        raise InputError(f"--max-seconds must be positive, got {max_seconds:g}")
    if any(not t.strip() for t in texts):
        raise InputError('empty --text: give the caption to embed, e.g. --text "a dog barks"')
    if dataset is not None:
        rows = split_rows(registry, dataset, split)
        by_clip: dict[str, list[str]] = {}
        for caption in rows.captions:
            by_clip.setdefault(caption.clip_id, []).append(caption.text)
        files = [(Path(c.path), probe(Path(c.path), f"dataset {dataset}")) for c in rows.clips]
        columns = {"idx": [c.idx for c in rows.clips], "name": [c.name for c in rows.clips],
                   "path": [str(p) for p, _ in files], "captions": [by_clip.get(c.id, []) for c in rows.clips]}
    elif audio:
        files = [(Path(p).expanduser(), probe(Path(p).expanduser())) for p in audio]  # all checked before a model loads
        columns = {"path": [str(p) for p, _ in files], "duration": [info.duration for _, info in files]}
    else:
        columns = {"text": [t.strip() for t in texts]}
    pairs = resolve_model(registry, run, system)
    encoders = load_encoders(registry, members(registry, pairs))
    weights = np.array([w for _, w in pairs], dtype=np.float64)
    if "text" in columns:
        parts = [_in_batches(lambda chunk, e=e: e.embed_text(chunk), columns["text"]) for e in encoders]
        return Embeddings("text", columns, combine(parts, weights))
    parts: list[list[np.ndarray]] = [[] for _ in encoders]
    for lo in range(0, len(files), BATCH):  # a batch of log-mels at a time: memory stays bounded
        mels = [first_window_logmel(path, info, max_seconds) for path, info in files[lo:lo + BATCH]]
        for part, encoder in zip(parts, encoders):
            part.append(encoder.embed_audio(mels))
    return Embeddings("audio", columns, combine([np.concatenate(p) for p in parts], weights))


def _in_batches(encode, items: list) -> np.ndarray:
    return np.concatenate([encode(items[lo:lo + BATCH]) for lo in range(0, len(items), BATCH)])


def combine(parts: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """Members' unit embeddings ``parts[m]`` (n, E_m) → (n, ΣE_m) float32, member m scaled by
    sqrt(w_m / Σw) (see the module docstring); one member: its embedding unchanged."""
    if len(parts) == 1:
        return np.asarray(parts[0], dtype=np.float32)
    scale = np.sqrt(weights / weights.sum())
    return np.concatenate([s * np.asarray(p, np.float32) for s, p in zip(scale, parts)], axis=1).astype(np.float32)


def write(embeddings: Embeddings, out: Path) -> Path:
    """Write ``embeddings`` to ``out`` (.parquet or .npy), replacing it; nothing is left
    half-written (a temporary file is renamed into place)."""
    out = check_output(out)
    partial = out.with_name(f".{out.name}.partial")
    try:
        if out.suffix.lower() == ".npy":
            with partial.open("wb") as f:
                np.save(f, embeddings.vectors)
        else:
            _write_parquet(embeddings, partial)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return out


def _write_parquet(embeddings: Embeddings, path: Path) -> None:
    """One row per item: its columns, then ``embedding FLOAT[D]`` (DuckDB scans the NumPy
    columns in place; an object column of row vectors becomes a list column)."""
    n, dim = embeddings.vectors.shape
    rows = np.empty(n, dtype=object)
    rows[:] = list(embeddings.vectors)
    table = {name: _column(values) for name, values in embeddings.columns.items()} | {"embedding": rows}
    casts = {"captions": "::VARCHAR[]", "embedding": f"::FLOAT[{dim}]"}
    select = ", ".join(f'"{name}"{casts.get(name, "")} AS "{name}"' for name in table)
    con = duckdb.connect()
    try:
        con.register("items", table)
        con.execute(f"COPY (SELECT {select} FROM items) TO '{_quoted(path)}' (FORMAT parquet)")
    finally:
        con.close()


def _column(values: list) -> np.ndarray:
    if values and isinstance(values[0], list):
        column = np.empty(len(values), dtype=object)
        column[:] = values
        return column
    return np.asarray(values)


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")
