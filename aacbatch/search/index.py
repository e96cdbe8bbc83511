"""``aacbatch index``: embed a folder of audio with a retrieval run or system, for search.

An index is registered like a corpus with one feature set: a ``datasets`` row (format
``index``, ``source_path`` = the folder) and a ``feature_sets`` row (kind ``index``) whose
``path`` is the index's current *version*, a Zarr group written by
:class:`~aacbatch.cache.FeatureStore`::

    item_index (n,)          file id: stable while the file stays at the same relative path
    name (n,)                path relative to the folder (str)
    size, mtime_ns (n,)      the file's stamp when it was embedded (int64)
    duration (n,)            seconds (float32)
    window_start, window_end seconds of each of a file's w_i windows (ragged (w_i,), float32)
    embedding.<m>            member m's unit audio embedding of each window (ragged (w_i, E),
                             float16, stored uncompressed: a search reads it whole, and
                             random-looking floats do not compress)
    caption (n,)             generated caption of the file's first window (str; only with caption runs)
    bad (n,)                 1 where the file could not be decoded (left out of searches)

A row is a file; its windows (:mod:`~aacbatch.search.windows`: one, its first
``max_seconds``, unless ``--window``/``--hop`` cut it into overlapping windows) are the
ragged rows of the window arrays, so everything below works per file. An index written
before windows existed (one embedding per file, no ``index_layout`` in its metadata) is
refused with the command that rebuilds it.

Incremental: a file whose relative path, size and mtime are unchanged keeps its embedding
(and caption), copied from the current version; new or changed files are embedded; files
that are gone are dropped. Atomic and resumable: every run that changes anything writes a
*new* version, named by the fingerprint of its plan (files, stamps, models), block by block;
only when all blocks are written does one registry transaction switch the index to it, and
the old version is deleted after that. An interrupted run leaves the registered index as it
was, and the same command resumes the new version's unfinished blocks. One ``aacbatch
index`` per index at a time (a concurrent switch is detected and refused).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from fsspec.core import url_to_fs

from aacbatch import catalog
from aacbatch.audio import logmel
from aacbatch.audio.files import AUDIO_SUFFIXES, AudioInfo, probe
from aacbatch.audio.waveform import load_32k
from aacbatch.cache import ArraySpec, FeatureStore, cache_url
from aacbatch.captioning import caption_logmels
from aacbatch.errors import InputError, first_line
from aacbatch.hashing import content_sha256, fingerprint
from aacbatch.names import check_name
from aacbatch.registry.datasets import dataset_names
from aacbatch.registry.indexes import INDEX_FORMAT, Registered, registered_index, switch_version
from aacbatch.registry.runs import best_checkpoint, runs_by_id
from aacbatch.registry.store import Registry
from aacbatch.search import ann
from aacbatch.search.encoders import load_encoders, members, resolve_model
from aacbatch.search.windows import Windowing

INDEX_LAYOUT = 2  # meta["index_layout"]: 2 = ragged windows per file; absent = one embedding per file
BLOCK_SIZE = 1024  # files per resumable block and per chunk of every array (few chunks: fast reads)
MEL_SLICE = 128  # files whose log-mels are held at once while embedding
FRAME_BUDGET = 16_000  # log-mel frames per encoder batch (batch size × longest clip): bounds memory
MAX_SECONDS = 60.0


@dataclass(frozen=True)
class AudioFile:
    name: str  # relative POSIX path inside the folder
    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class PlannedFile:
    id: int
    file: AudioFile
    info: AudioInfo | None  # header facts of a file to embed; None when copied
    source: int | None  # its row in the current version when copied
    n_windows: int = 1


@dataclass(frozen=True)
class IndexResult:
    name: str
    status: str  # "created", "updated" or "unchanged"
    n_files: int  # searchable files in the index now
    kept: int
    added: int
    changed: int
    removed: int
    embedded: int  # files embedded by this run (not copied, not done by an interrupted run)
    unreadable: list[tuple[str, str]]  # (relative path, reason): skipped
    non_audio: int  # files libsndfile cannot read that do not look like audio either (text, images, …)
    cut: int  # files longer than max_seconds, embedded from their start (0 with --window)
    url: str
    non_audio_files: list[str] = field(default_factory=list)  # their relative paths (for -v)


def known_indexes(registry: Registry) -> list[str]:
    return dataset_names(registry, INDEX_FORMAT)


def scan_folder(folder: Path) -> list[AudioFile]:
    """Every file below ``folder``, sorted by relative path. Which of them are audio is decided
    by probing their content (libsndfile), not by their extension: an ``.oga`` is Ogg Vorbis."""
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        files.append(AudioFile(path.relative_to(folder).as_posix(), path, stat.st_size, stat.st_mtime_ns))
    return files


def default_name(folder: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", folder.name).strip("-.") or "index"


def build_index(registry: Registry, folder: Path, *, run: str | None = None, system: str | None = None,
                name: str | None = None, caption_runs: Sequence[str] = (), max_seconds: float = MAX_SECONDS,
                window: float | None = None, hop: float | None = None, replace: bool = False,
                block_size: int = BLOCK_SIZE, ann_above: int = ann.ANN_ABOVE,
                progress: Callable | None = None) -> IndexResult:
    """Index ``folder`` with a run (``run``) or a system's members (``system``) as ``name``;
    ``window``/``hop`` (seconds) embed overlapping windows of every whole file; a version of
    ``ann_above`` searchable windows or more also gets an ANN index (:mod:`~aacbatch.search.ann`).

    ``progress(total, description)`` returns a tqdm-like bar (counting windows). See the
    module docstring for what is kept, recomputed and when the registry changes.
    """
    folder = Path(folder).expanduser().absolute()
    if not folder.is_dir():
        raise InputError(f"audio folder {folder} does not exist or is not a folder")
    name = name or default_name(folder)
    check_name(name, "index name")
    windowing = Windowing.checked(window, hop, max_seconds)
    if ann_above < 0:
        raise InputError(f"--ann-above must be 0 or more windows, got {ann_above}")
    model = members(registry, resolve_model(registry, run, system))
    identity_of_captions = _caption_identity(registry, caption_runs)
    caption_runs = [c["run_id"] for c in identity_of_captions]  # full ids, as the spec records them
    spec = {"runs": [m.run_id for m in model], "weights": [m.weight for m in model], "system": system,
            "caption_runs": list(caption_runs)} | windowing.spec()
    identity = {"members": [m.identity() for m in model], "captions": identity_of_captions}
    current = registered_index(registry, name)
    previous = None
    if current is not None and not replace:
        previous = FeatureStore.open(current.feature_set.path)
        check_layout(previous, name, folder)
        _check_same_model(current, folder, spec, identity)

    plan, unreadable, skipped, counts = _plan(scan_folder(folder), previous, windowing, progress)
    non_audio = len(skipped)
    if not plan:
        example = f" (e.g. {unreadable[0][0]}: {unreadable[0][1]})" if unreadable else ""
        raise InputError(f"no readable audio in {folder}: {len(unreadable)} unreadable audio file(s){example} and "
                         f"{non_audio} other file(s) libsndfile cannot read (wav, flac, ogg/oga, mp3, aiff, …)")
    fp = fingerprint(spec, identity, str(folder), [(p.id, p.file.name, p.file.size, p.file.mtime_ns) for p in plan])
    if current is not None and current.feature_set.fingerprint == fp:
        store = FeatureStore.open(current.feature_set.path)
        _ensure_ann(store, folder, identity, ann_above)
        return IndexResult(name, "unchanged", current.dataset.n_clips, len(plan), 0, 0, 0, 0, unreadable, non_audio,
                           _long_files(store, windowing), store.url, skipped)

    url = cache_url(registry.settings, name, f"index-{fp[:16]}")
    meta = {"kind": INDEX_FORMAT, "name": name, "folder": str(folder), "spec": spec, "model_identity": identity,
            "fingerprint": fp, "index_layout": INDEX_LAYOUT}
    builder = _Builder(registry, model, list(caption_runs), windowing, plan, previous)
    arrays = builder.arrays()
    counts_of = np.array([p.n_windows for p in plan], dtype=np.int64)
    store = FeatureStore.create_or_resume(url, meta=meta, item_index=np.array([p.id for p in plan], dtype=np.int64),
                                          arrays=arrays, lengths={a: counts_of for a, s in arrays.items() if s.ragged},
                                          block_size=block_size, time_chunk=block_size)
    pending = store.pending_blocks()
    bar = progress(sum(p.n_windows for b in pending for p in plan[slice(*store.block_range(b))] if p.info is not None),
                   f"embedding {name}") if progress else None
    try:
        for block in pending:
            lo, hi = store.block_range(block)
            values, bad, reasons = builder.block(plan[lo:hi], bar)
            store.write_block(block, values, bad)
            unreadable.extend(reasons)
    finally:
        if bar is not None:
            bar.close()
    listed = {n for n, _ in unreadable}
    unreadable += [(str(store.group["name"][row]), "could not be decoded (by an earlier, interrupted run)")
                   for row in store.bad_items() if str(store.group["name"][row]) not in listed]
    good = int(store.n_items - len(store.bad_items()))
    _ensure_ann(store, folder, identity, ann_above)
    register_version(registry, store, replaces=current.feature_set.fingerprint if current is not None else None,
                     random_weights=_random_weights(registry, spec["runs"]))
    _drop_other_versions(url)
    status = "created" if current is None else "updated"
    return IndexResult(name, status, good, counts["kept"], counts["added"], counts["changed"], counts["removed"],
                       builder.embedded, unreadable, non_audio, _long_files(store, windowing), url, skipped)


def _long_files(store: FeatureStore, windowing: Windowing) -> int:
    """Searchable files longer than ``max_seconds`` embedded from their start only (none with windows)."""
    if windowing.window is not None:
        return 0
    durations = np.delete(store.group["duration"][:], store.bad_items())
    return int((durations > windowing.max_seconds).sum())


def _ensure_ann(store: FeatureStore, folder: Path, identity: dict, ann_above: int) -> None:
    """Build the version's ANN index if it has ``ann_above`` searchable windows or more and
    none yet (a resumed or unchanged run reuses a complete one)."""
    _, _, rows = searchable_windows(store)
    record = ann.record_of(store.meta["fingerprint"], identity, len(rows))
    if len(rows) >= max(ann_above, 1) and ann.load(store.url, store.meta["name"], str(folder), record) is None:
        n_members = len(identity["members"])
        ann.save(store.url, ann.build([store.group[f"embedding.{m}"][:][rows] for m in range(n_members)]), record)


def searchable_windows(store: FeatureStore, bad: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(searchable file rows (n,), their window counts (n,), their window rows (W,) in the
    ragged window arrays, file by file): files that failed to decode (``bad``, read from the
    store when not given) are left out, and so is the padding between blocks."""
    good = np.delete(np.arange(store.n_items), store.bad_items() if bad is None else bad)
    starts, lengths = store.group["window_start.starts"][:][good], store.group["window_start.lengths"][:][good]
    first = np.cumsum(lengths) - lengths  # each file's first window among the searchable windows
    return good, lengths, np.arange(int(lengths.sum())) - np.repeat(first, lengths) + np.repeat(starts, lengths)


def check_layout(store: FeatureStore, name: str, folder: Path | str) -> None:
    """Refuse an index version of another layout (one written before windows existed)."""
    if store.meta.get("index_layout") != INDEX_LAYOUT:
        raise InputError(f"index {name!r} was built by an older aacbatch (one embedding per file, no windows): "
                         f"rebuild it with `aacbatch index {folder} --name {name} --replace`")


def _check_same_model(current: Registered, folder: Path, spec: dict, identity: dict) -> None:
    name = current.dataset.name
    if current.dataset.source_path != str(folder):
        raise InputError(f"index {name!r} indexes {current.dataset.source_path}, not {folder}: pass --replace to "
                         "rebuild it from this folder, or choose another --name")
    if current.spec != spec or current.identity != identity:
        raise InputError(f"index {name!r} was built with {describe(current.spec)}: pass --replace to rebuild it "
                         "with this model (or captioner), or choose another --name")


def describe(spec: dict) -> str:
    """'run 1a2b…' or 'system S1 (runs …)' for messages."""
    runs = ", ".join(r[:8] for r in spec["runs"])
    return f"system {spec['system']} (runs {runs})" if spec["system"] else f"run {spec['runs'][0]}"


def _caption_identity(registry: Registry, caption_runs: Sequence[str]) -> list[dict]:
    out = []
    for ref in caption_runs:
        run, path = best_checkpoint(registry, ref, catalog.tasks_where(family="caption"), "--caption-run")
        out.append({"run_id": run.id, "checkpoint_sha256": content_sha256(path.parent, [path])})
    return out


def _plan(files: list[AudioFile], previous: FeatureStore | None, windowing: Windowing,
          progress: Callable | None) -> tuple[list[PlannedFile], list[tuple[str, str]], list[str], dict[str, int]]:
    """Each readable file with its id, and whether it is copied (unchanged) or embedded; the
    files that look like audio (by extension) but cannot be read, with why; the other files
    libsndfile cannot read (not audio: skipped).

    A file keeps its id while it stays at the same path; new paths get ids above every id
    used so far, in path order, so the same folder always gives the same plan (resume)."""
    old: dict[str, tuple[int, int, int, int, bool]] = {}
    windows_before = None
    if previous is not None:
        g = previous.group
        windows_before = g["window_start.lengths"][:]
        bad = np.zeros(previous.n_items, dtype=bool)
        bad[previous.bad_items()] = True
        old = {str(n): (int(i), row, int(s), int(m), bool(b)) for row, (n, i, s, m, b) in
               enumerate(zip(g["name"][:], previous.item_index, g["size"][:], g["mtime_ns"][:], bad))}
    next_id = max((v[0] for v in old.values()), default=-1) + 1
    to_check = [f for f in files if not _unchanged(old.get(f.name), f)]
    bar = progress(len(to_check), "checking audio") if progress and to_check else None
    infos, unreadable, skipped = {}, [], []
    for f in to_check:
        try:
            infos[f.name] = probe(f.path)
        except InputError as exc:
            if Path(f.name).suffix.lower() in AUDIO_SUFFIXES:
                unreadable.append((f.name, first_line(exc)))
            else:
                skipped.append(f.name)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    plan, counts = [], {"kept": 0, "added": 0, "changed": 0, "removed": 0}
    for f in files:
        before = old.get(f.name)
        if _unchanged(before, f):
            plan.append(PlannedFile(before[0], f, None, before[1], int(windows_before[before[1]])))
            counts["kept"] += 1
        elif f.name in infos:
            if before is None:
                file_id, next_id = next_id, next_id + 1
                counts["added"] += 1
            else:
                file_id = before[0]
                counts["changed"] += 1
            plan.append(PlannedFile(file_id, f, infos[f.name], None, windowing.count(infos[f.name].duration)))
    present = {p.file.name for p in plan}
    counts["removed"] = sum(1 for n, v in old.items() if not v[4] and n not in present)
    return plan, unreadable, skipped, counts


def _unchanged(before: tuple | None, f: AudioFile) -> bool:
    return before is not None and not before[4] and (before[2], before[3]) == (f.size, f.mtime_ns)


class _Builder:
    """Computes one block of a new version: copies unchanged files, embeds the others."""

    def __init__(self, registry: Registry, model: list, caption_runs: list[str], windowing: Windowing,
                 plan: list[PlannedFile], previous: FeatureStore | None):
        self.registry, self.model, self.caption_runs = registry, model, caption_runs
        self.windowing = windowing
        self.previous = previous
        self.embedded = 0
        self._encoders = None
        self._dims = None
        if previous is not None and any(p.source is not None for p in plan):
            self._dims = [previous.meta["arrays"][f"embedding.{m}"]["tail"][0] for m in range(len(model))]
            self._copy_from = {a: previous.reader(a) for a in window_arrays(len(model))}

    @property
    def encoders(self):
        if self._encoders is None:
            self._encoders = load_encoders(self.registry, self.model)
        return self._encoders

    @property
    def dims(self) -> list[int]:
        return self._dims or [e.embed_dim for e in self.encoders]

    def arrays(self) -> dict[str, ArraySpec]:
        return index_arrays(self.dims, bool(self.caption_runs))

    def block(self, rows: list[PlannedFile], bar) -> tuple[dict, list[int], list[tuple[str, str]]]:
        """Values of every array for ``rows``, positions that failed to decode, and why."""
        n = len(rows)
        values = {"name": [p.file.name for p in rows], "size": [p.file.size for p in rows],
                  "mtime_ns": [p.file.mtime_ns for p in rows], "duration": np.zeros(n, np.float32)}
        windows = {"window_start": [np.zeros(p.n_windows, np.float32) for p in rows],
                   "window_end": [np.zeros(p.n_windows, np.float32) for p in rows]}
        windows |= {f"embedding.{m}": [np.zeros((p.n_windows, d), np.float32) for p in rows]
                    for m, d in enumerate(self.dims)}
        captions = [""] * n
        copied = [k for k, p in enumerate(rows) if p.source is not None]
        if copied:
            source = [rows[k].source for k in copied]
            values["duration"][copied] = self.previous.group["duration"].get_orthogonal_selection(source)
            for array, reader in self._copy_from.items():
                for k, data in zip(copied, reader[source]):
                    windows[array][k] = data
            if self.caption_runs:
                for k, text in zip(copied, self.previous.group["caption"].get_orthogonal_selection(source)):
                    captions[k] = str(text)
        for k, p in enumerate(rows):
            if p.info is not None:
                windows["window_start"][k], windows["window_end"][k] = self.windowing.spans(p.info.duration)
        bad, reasons = self._embed(rows, values["duration"], windows, captions, bar)
        values |= windows
        if self.caption_runs:
            values["caption"] = captions
        return values, bad, reasons

    def _embed(self, rows, durations, windows, captions, bar) -> tuple[list[int], list[tuple[str, str]]]:
        """Embed (and caption) the rows that need it, ``MEL_SLICE`` files at a time so memory
        stays bounded: each file decoded in full and cut into its windows' log-mels, then the
        encoders over every window of the slice in length-sorted batches of at most
        ``FRAME_BUDGET`` frames."""
        todo = [k for k, p in enumerate(rows) if p.info is not None]
        bad, reasons = [], []
        for lo in range(0, len(todo), MEL_SLICE):
            mels: dict[tuple[int, int], np.ndarray] = {}  # (row in block, window) → (T, 64)
            for k in todo[lo:lo + MEL_SLICE]:
                durations[k] = rows[k].info.duration
                try:
                    for j, mel in enumerate(self._logmels(rows[k])):
                        mels[k, j] = mel
                except Exception as exc:  # decoding errors of one file: listed, skipped
                    bad.append(k)
                    reasons.append((rows[k].file.name, first_line(exc)))
                    if bar is not None:
                        bar.update(rows[k].n_windows)
            order = sorted(mels, key=lambda kj: len(mels[kj]))
            for batch in _batches(order, [len(mels[kj]) for kj in order]):
                for m, encoder in enumerate(self.encoders):
                    for (k, j), vector in zip(batch, encoder.embed_audio([mels[kj] for kj in batch])):
                        windows[f"embedding.{m}"][k][j] = vector
                if bar is not None:
                    bar.update(len(batch))
            files = sorted({k for k, _ in mels})
            if self.caption_runs and files:
                firsts = sorted(files, key=lambda k: len(mels[k, 0]))
                for k, text in zip(firsts, caption_logmels(self.registry, self.caption_runs, [mels[k, 0] for k in firsts])):
                    captions[k] = text
            self.embedded += len(files)
        return bad, reasons

    def _logmels(self, row: PlannedFile) -> list[np.ndarray]:
        """(T, 64) log-mel of each window of the file at 32 kHz (as the ``mel`` kind computes them)."""
        wave = load_32k(row.file.path, row.info.frames, row.info.sample_rate)
        return [logmel.log_mel(piece) for piece in self.windowing.cut(wave, row.info.duration)]


def _batches(items: list[int], lengths: list[int]) -> list[list[int]]:
    """Consecutive groups of length-sorted items whose size × longest length ≤ FRAME_BUDGET."""
    out: list[list[int]] = []
    for item, length in zip(items, lengths):
        if out and (len(out[-1]) + 1) * max(length, 32) <= FRAME_BUDGET:
            out[-1].append(item)
        else:
            out.append([item])
    return out


def _random_weights(registry: Registry, run_ids: list[str]) -> bool:
    return any(r.random_weights for r in runs_by_id(registry, run_ids).values())


def index_arrays(dims: Sequence[int], captions: bool) -> dict[str, ArraySpec]:
    """The arrays of an index version (see the module docstring); ``dims[m]``: member m's E."""
    arrays = {"name": ArraySpec((), "str"), "size": ArraySpec((), "int64"), "mtime_ns": ArraySpec((), "int64"),
              "duration": ArraySpec((), "float32"), "window_start": ArraySpec((), "float32", ragged=True),
              "window_end": ArraySpec((), "float32", ragged=True)}
    arrays |= {f"embedding.{m}": ArraySpec((d,), "float16", ragged=True, compress=False) for m, d in enumerate(dims)}
    if captions:
        arrays["caption"] = ArraySpec((), "str")
    return arrays


def window_arrays(n_members: int) -> list[str]:
    """The ragged (per-window) arrays of an index version."""
    return ["window_start", "window_end"] + [f"embedding.{m}" for m in range(n_members)]


def register_version(registry: Registry, store: FeatureStore, *, replaces: str | None, random_weights: bool) -> None:
    """Make the complete version ``store`` its index's current one, in one transaction.

    ``replaces`` is the fingerprint of the version it was planned from (None for a new
    index): if the registry holds another one, a concurrent run switched the index meanwhile
    and nothing is written."""
    meta = store.meta
    switch_version(registry, name=meta["name"], folder=meta["folder"], fingerprint=meta["fingerprint"], url=store.url,
                   spec=meta["spec"], identity=meta["model_identity"], n_files=store.n_items - len(store.bad_items()),
                   captions="caption" in meta["arrays"], random_weights=random_weights, replaces=replaces)


def _drop_other_versions(keep: str) -> None:
    """Delete the index's other version folders (the replaced one, abandoned partial ones)."""
    fs, kept = url_to_fs(keep)
    parent = kept.rstrip("/").rsplit("/", 1)[0]
    for path in fs.glob(f"{parent}/index-*.zarr"):
        if path.rstrip("/") != kept.rstrip("/"):
            fs.rm(path, recursive=True)
