"""Acoustic audit (``aacbatch.audit``): precision/recall on planted near-duplicates, and
how audit time grows with the number of clips.

    python benchmarks/bench_audit.py [--work DIR] [--sizes 1000,2000,5000,10000]
                                     [--workers 2] [--chromaprint] [--skip-planted] [--skip-scaling]

1. **Planted set.** 200 SynthCaps sources (20–30 s) and 1,600 distractors (5–30 s), all
   generated at 44.1 kHz, and one copy of each source whose crops carry sound: 5–15 s cut at
   a random sample, turned down 0–6 dB, resampled to 32 kHz, encoded as Ogg Vorbis or MP3
   and decoded (``aacbatch.audit.planted``) — about 2,000 clips. Every pair is audited
   (``pairs="all"``: within the originals, within the copies and across). A true positive
   is a source/copy pair matched at the right offset (± 20 ms). **Negatives** are every
   other pair: SynthCaps renders each clip from its own seed, so no two generated clips
   share a sample — also when they hold the same event types, which the report counts —
   and a match between them is false. Precision = true matches / matches. It is run at the
   default codec setting (libsndfile compression 0.3–0.7, ≈ 35–80 kbit/s) and, on the same
   sources, at a harsh one (0.7–0.9, ≈ 33–50 kbit/s).
2. **Scaling.** 10,000 ten-second SynthCaps clips (32 kHz, log-mels kept as float16 like
   the cache); the audit of the first 1k, 2k, 5k and 10k against each other, from the
   log-mels in memory, on ``--workers`` threads. Per-clip cost shows whether growth is
   near-linear; the 10k time is held against the 2-minute target, and every match found
   among these independent clips is a false one.
3. **Chromaprint** (``--chromaprint``, needs ``fpcalc`` from Debian's libchromaprint-tools):
   the same planted set through ``fpcalc -raw`` with an inverted index over its 32-bit
   sub-fingerprints, offset voting and a bit-error-rate check — how AcoustID matches — at
   several BER thresholds; plus its decode+fingerprint time per clip.

Generated data is cached under ``--work`` (default ``~/.cache/aacbatch-bench/audit``): the
first run spends ~10 minutes generating it on two cores.
"""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from itertools import combinations
from pathlib import Path

import numpy as np

from aacbatch.audit import find_overlaps
from aacbatch.audit.planted import Originals, PlantedSet, generate_originals, plant_copies
from result import result

TARGET_RECALL = 0.95
TARGET_SECONDS_10K = 120.0


def _cached(path: Path, build):
    if path.exists():
        return pickle.loads(path.read_bytes())
    value = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(value))
    return value


def planted_sets(work: Path, seed: int) -> dict[str, PlantedSet]:
    originals: Originals = _cached(work / "originals.pkl", lambda: generate_originals(work / "planted", 200, 1600, seed=seed))
    return {name: _cached(work / f"planted_{name}.pkl", lambda q=quality, n=name: plant_copies(
                originals, work / "planted" / f"copies_{n}", seed=seed, quality=q))
            for name, quality in (("default", (0.3, 0.7)), ("harsh", (0.7, 0.9)))}


def score(planted: PlantedSet, matches) -> dict:
    """Recall, precision and the false matches, with what the negatives held."""
    truth = {(c.source, c.copy): c for c in planted.copies}
    correct, offset_err, duration_err, false = 0, [], [], []
    for m in matches:
        copy = truth.get((m.a, m.b))
        if copy is not None and abs(m.offset - copy.offset) <= 0.02:
            correct += 1
            offset_err.append(abs(m.offset - copy.offset))
            duration_err.append(abs(m.duration - copy.duration))
        else:
            false.append(m)
    n = len(planted.mels)
    labels = [set(x) for x in planted.labels]
    negatives = n * (n - 1) // 2 - len(truth)
    sharing = sum(1 for i, j in combinations(range(n), 2) if labels[i] & labels[j]) - len(truth)
    return {"clips": n, "copies": len(truth), "matches": len(matches), "correct": correct,
            "recall": correct / len(truth), "precision": correct / len(matches) if matches else None,
            "false": false, "negatives": negatives, "negatives_sharing_event": sharing,
            "offset_err_ms": 1000 * np.array(offset_err), "duration_err_s": np.array(duration_err)}


def report_planted(name: str, planted: PlantedSet, workers: int) -> None:
    start = time.perf_counter()
    matches = find_overlaps(planted.mels, planted.datasets, workers=workers)
    seconds = time.perf_counter() - start
    s = score(planted, matches)
    precision = "n/a (no matches)" if s["precision"] is None else f"{s['precision']:.4f}"
    print(f"\n[{name} codec] {s['clips']} clips, {s['copies']} planted copies, audit {seconds:.1f} s")
    print(f"  recall {s['recall']:.4f} ({s['correct']}/{s['copies']}), precision {precision}, "
          f"false matches {len(s['false'])} among {s['negatives']:,} negative pairs "
          f"({s['negatives_sharing_event']:,} of them share an event type)")
    if s["correct"]:
        print(f"  offset error median {np.median(s['offset_err_ms']):.1f} ms, max {s['offset_err_ms'].max():.1f} ms; "
              f"duration error median {np.median(s['duration_err_s']):.2f} s, max {s['duration_err_s'].max():.2f} s")
    for m in s["false"][:10]:
        print(f"  false: clips {m.a}/{m.b} {sorted(planted.labels[m.a])} / {sorted(planted.labels[m.b])} "
              f"score {m.score:.2f} specificity {m.specificity:.2f} envelope {m.envelope_db:.2f} dB, {m.duration:.1f} s")
    result(f"audit recall, planted copies ({name} codec)", s["recall"], ">=" if name == "default" else None,
           TARGET_RECALL if name == "default" else None)
    result(f"audit false matches, planted set ({name} codec)", float(len(s["false"])), "<=" if name == "default" else None,
           0.0 if name == "default" else None)


def _ten_second_clips(args: tuple[Path, int, int]) -> np.ndarray:
    import soundfile as sf

    from aacbatch.data.synthcaps import generate
    from aacbatch.featurize.logmel import log_mel

    out, n, seed = args
    summary = generate(out, n, seed=seed, sample_rate=32000, duration=(10.0, 10.0))
    mels = np.stack([log_mel(sf.read(out / r.split / r.file_name, dtype="float32")[0]).astype(np.float16)
                     for r in summary.clips])
    shutil.rmtree(out)
    return mels


def scaling_clips(work: Path, n: int, workers: int) -> np.ndarray:
    path = work / f"tensec_{n}.npy"
    if not path.exists():
        parts = max(1, workers)
        jobs = [(work / f"tensec_part{k}", n // parts + (k < n % parts), 1000 + k) for k in range(parts)]
        with ProcessPoolExecutor(parts) as pool:
            mels = np.concatenate(list(pool.map(_ten_second_clips, jobs)))
        work.mkdir(parents=True, exist_ok=True)
        np.save(path, mels)
    return np.load(path)


def report_scaling(work: Path, sizes: list[int], workers: int) -> None:
    clips = scaling_clips(work, max(sizes), workers)
    print(f"\n[scaling] ten-second SynthCaps clips, all pairs, {workers} worker thread(s)")
    print("| clips | seconds | CPU seconds | ms / clip | matches (all false) |\n|---|---|---|---|---|")
    per_clip = {}
    for n in sizes:
        mels = list(clips[:n])
        start, cpu = time.perf_counter(), time.process_time()
        matches = find_overlaps(mels, workers=workers)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        per_clip[n] = seconds / n
        print(f"| {n} | {seconds:.1f} | {cpu:.1f} | {1000 * seconds / n:.2f} | {len(matches)} |")
    result(f"audit time, {max(sizes)} ten-second clips, s", per_clip[max(sizes)] * max(sizes), "<=", TARGET_SECONDS_10K)
    result(f"audit cost per clip at {max(sizes)} / at {min(sizes)} clips (1 = linear)",
           per_clip[max(sizes)] / per_clip[min(sizes)])


def chromaprint(paths: list[Path]) -> tuple[list[np.ndarray], float]:
    """Raw Chromaprint sub-fingerprints (uint32, ≈ 8 per second) of every file, and seconds.

    One ``fpcalc`` per file, as pyacoustid runs it: given several, fpcalc 1.5 stops after
    the first that ends with a decoder warning."""
    start = time.perf_counter()
    prints = []
    for path in paths:
        out = subprocess.run(["fpcalc", "-raw", "-json", "-length", "0", str(path)], capture_output=True, text=True).stdout
        prints.append(np.array(json.loads(out)["fingerprint"], dtype=np.uint32))
    return prints, time.perf_counter() - start


def chromaprint_matches(prints: list[np.ndarray], max_ber: float, min_items: int = 16, min_votes: int = 2):
    """AcoustID-style matching: exact 32-bit values vote for an item offset, the best offset
    of each pair is checked by bit error rate over the overlap (± 1 item)."""
    values = np.concatenate(prints)
    clip = np.concatenate([np.full(len(p), i) for i, p in enumerate(prints)])
    pos = np.concatenate([np.arange(len(p)) for p in prints])
    order = np.argsort(values, kind="stable")
    values, clip, pos = values[order], clip[order], pos[order]
    start = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    size = np.diff(np.r_[start, len(values)])
    votes: dict[tuple[int, int, int], int] = {}
    for s, z in zip(start[(size >= 2) & (size <= 500)], size[(size >= 2) & (size <= 500)]):
        for i, j in combinations(range(s, s + z), 2):
            if clip[i] != clip[j]:
                a, b = (i, j) if clip[i] < clip[j] else (j, i)
                key = (int(clip[a]), int(clip[b]), int(pos[a] - pos[b]))
                votes[key] = votes.get(key, 0) + 1
    best: dict[tuple[int, int], tuple[int, int]] = {}
    for (a, b, off), v in votes.items():
        if v > best.get((a, b), (0, 0))[0]:
            best[(a, b)] = (v, off)
    found = []
    for (a, b), (v, off) in best.items():
        if v < min_votes:
            continue
        errors = []
        for o in (off - 1, off, off + 1):
            x, y = prints[a], prints[b]
            lo, hi = max(0, -o), min(len(y), len(x) - o)
            if hi - lo >= min_items:
                diff = np.bitwise_xor(x[lo + o:hi + o], y[lo:hi])
                errors.append((np.unpackbits(diff.view(np.uint8)).mean(), o))
        if errors and min(errors)[0] <= max_ber:
            found.append((a, b, min(errors)[1]))
    return found


def report_chromaprint(planted: PlantedSet, work: Path) -> None:
    if shutil.which("fpcalc") is None:
        print("\n[chromaprint] fpcalc not found: apt-get install libchromaprint-tools")
        return
    prints, seconds = _cached(work / "chromaprint.pkl", lambda: chromaprint(planted.paths))
    item = 4096 / 3 / 11025  # Chromaprint's hop in seconds
    truth = {(c.source, c.copy): c for c in planted.copies}
    print(f"\n[chromaprint] fpcalc on {len(prints)} files: {1000 * seconds / len(prints):.1f} ms / clip "
          f"(decode + resample + fingerprint)")
    for ber in (0.05, 0.10, 0.15, 0.25, 0.35):
        found = chromaprint_matches(prints, ber)
        correct = sum(1 for a, b, o in found if (a, b) in truth and abs(o * item - truth[(a, b)].offset) <= item)
        print(f"  BER <= {ber:.2f}: recall {correct / len(truth):.4f}, matches {len(found)}, false {len(found) - correct}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "aacbatch-bench" / "audit")
    parser.add_argument("--seed", type=int, default=7, help="seed of the planted set (its data is cached per seed)")
    parser.add_argument("--sizes", default="1000,2000,5000,10000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chromaprint", action="store_true")
    parser.add_argument("--skip-planted", action="store_true")
    parser.add_argument("--skip-scaling", action="store_true")
    args = parser.parse_args()
    if not args.skip_planted or args.chromaprint:
        seed_dir = args.work / f"seed{args.seed}"
        sets = planted_sets(seed_dir, args.seed)
        if not args.skip_planted:
            for name, planted in sets.items():
                report_planted(name, planted, args.workers)
        if args.chromaprint:
            report_chromaprint(sets["default"], seed_dir)
    if not args.skip_scaling:
        report_scaling(args.work, [int(n) for n in args.sizes.split(",")], args.workers)


if __name__ == "__main__":
    main()
