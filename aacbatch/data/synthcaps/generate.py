"""SynthCaps generator: a deterministic procedural dataset in the Clotho v2.1 layout.

``generate`` writes ``{development,validation,evaluation}/synth_NNNNNN.wav``, the matching
``clotho_captions_{split}.csv`` files, ``tags.csv`` (every event in each clip), ``labels.txt``
(the tag vocabulary) and ``synthcaps.json`` (the recipe), so the ordinary Clotho ingest reads it.

Each clip is drawn from its own seed, ``SeedSequence(seed, spawn_key=(profile, index))``, and
its split from a golden-ratio sequence of its index. A clip therefore never depends on the
others: the first N clips of a larger dataset are the N clips of a smaller one, and equal
arguments give byte-identical files. Audio and captions use separate child seeds, so a
change in phrasing never moves a sample.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from aacbatch.data.synthcaps.captions import make_captions
from aacbatch.data.synthcaps.events import LABELS
from aacbatch.data.synthcaps.scenes import PRETRAIN, TARGET, SceneProfile, sample_scene

GENERATOR_VERSION = "1"
SPLITS = ("development", "validation", "evaluation")
_CLOTHO_V21 = np.array([3839, 1045, 1045]) / 5929
_WAV = re.compile(r"synth_\d+\.wav")
_OWN_FILES = frozenset({"tags.csv", "labels.txt", "synthcaps.json", *(f"clotho_captions_{s}.csv" for s in SPLITS)})
MIN_SAMPLE_RATE = 16000   # the highest fundamentals (~5 kHz chirps, crickets) need the room
MIN_DURATION = 1.0        # shorter clips would truncate repeats until count/order words lie


@dataclass(frozen=True)
class Profile:
    key: int                                   # part of every clip's seed: profiles never share clips
    scenes: SceneProfile
    n_captions: int
    splits: tuple[float, float, float]         # development, validation, evaluation fractions
    notice_prob: float                         # chance a clip's captions may name its loudest bed


PROFILES: dict[str, Profile] = {
    # Clotho-like target set: five captions, Clotho v2.1 split proportions.
    "target": Profile(0, TARGET, 5, tuple(_CLOTHO_V21), 0.5),
    # WavCaps-like pretraining set: one caption, no evaluation split.
    "pretrain": Profile(1, PRETRAIN, 1, (0.9, 0.1, 0.0), 0.6),
}


@dataclass(frozen=True)
class ClipRecord:
    file_name: str
    split: str
    duration: float                            # seconds
    labels: tuple[str, ...]                    # every event present, vocabulary order (= tags.csv)
    salient: tuple[str, ...]                   # the events captions are about, in caption order
    mentioned: tuple[str, ...]                 # every label some caption names (salient + a bed)
    captions: tuple[str, ...]
    templates: tuple[tuple[str, ...], ...]     # template ids behind each caption


@dataclass(frozen=True)
class SynthSummary:
    out_dir: Path
    n_clips: int
    split_counts: dict[str, int]
    labels: tuple[str, ...]
    clips: tuple[ClipRecord, ...]


def generate(out_dir: str | Path, n_clips: int, seed: int = 0, sample_rate: int = 32000,
             profile: str = "target", duration: tuple[float, float] = (5.0, 10.0),
             progress: Callable[[int, int], None] | None = None) -> SynthSummary:
    """Write a SynthCaps dataset to ``out_dir`` and describe what was written.

    ``out_dir`` must be empty, missing, or hold only an earlier SynthCaps output (which is
    replaced); anything else is refused rather than mixed or deleted. ``progress(done,
    total)`` is called after every clip.
    """
    recipe = _check(n_clips, seed, sample_rate, profile, duration)
    out = Path(out_dir)
    _clear_previous(out)
    splits = [s for s, share in zip(SPLITS, recipe.splits) if share > 0]
    for split in splits:
        (out / split).mkdir(parents=True, exist_ok=True)
    width = max(6, len(str(n_clips - 1)))
    records = []
    for index in range(n_clips):
        record, audio = _clip(index, f"synth_{index:0{width}d}.wav", seed, sample_rate, recipe, duration)
        sf.write(out / record.split / record.file_name, audio, sample_rate, subtype="PCM_16", format="WAV")
        records.append(record)
        if progress is not None:
            progress(index + 1, n_clips)
    counts = {s: sum(r.split == s for r in records) for s in splits}
    _write_tables(out, records, splits, recipe.n_captions)
    meta = {"generator": "aacbatch.synthcaps", "version": GENERATOR_VERSION, "seed": seed, "profile": profile,
            "n_clips": n_clips, "sample_rate": sample_rate, "duration": [float(duration[0]), float(duration[1])],
            "captions_per_clip": recipe.n_captions, "split_counts": counts, "n_labels": len(LABELS)}
    (out / "synthcaps.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return SynthSummary(out, n_clips, counts, LABELS, tuple(records))


def split_of(index: int, shares: tuple[float, ...]) -> str:
    """Split of clip ``index``: every prefix of clips matches ``shares`` to within about one clip."""
    u = math.fmod((index + 1) * (math.sqrt(5) - 1) / 2, 1.0)
    return SPLITS[min(int(np.searchsorted(np.cumsum(shares), u, side="right")), len(SPLITS) - 1)]


def _clip(index: int, file_name: str, seed: int, sample_rate: int, recipe: Profile,
          duration: tuple[float, float]) -> tuple[ClipRecord, np.ndarray]:
    audio_seed, text_seed = np.random.SeedSequence(seed, spawn_key=(recipe.key, index)).spawn(2)
    audio_rng, text_rng = np.random.default_rng(audio_seed), np.random.default_rng(text_seed)
    n_samples = int(round(audio_rng.uniform(*duration) * sample_rate))
    scene = sample_scene(audio_rng, n_samples, sample_rate, recipe.scenes)
    split = split_of(index, recipe.splits)
    captions = make_captions(scene, text_rng, recipe.n_captions, evaluation=split == "evaluation",
                             notice_prob=recipe.notice_prob)
    salient = tuple(e.spec.label for e in scene.salient)
    named = {c.background for c in captions if c.background}
    record = ClipRecord(
        file_name=file_name, split=split, duration=n_samples / sample_rate,
        labels=tuple(label for label in LABELS if label in scene.labels),
        salient=salient, mentioned=salient + tuple(sorted(named)),
        captions=tuple(c.text for c in captions), templates=tuple(c.templates for c in captions),
    )
    return record, scene.mix()


def _write_tables(out: Path, records: list[ClipRecord], splits: list[str], n_captions: int) -> None:
    header = ["file_name"] + [f"caption_{i}" for i in range(1, n_captions + 1)]
    for split in splits:
        _write_csv(out / f"clotho_captions_{split}.csv", header,
                   [[r.file_name, *r.captions] for r in records if r.split == split])
    _write_csv(out / "tags.csv", ["file_name", "tags"], [[r.file_name, ";".join(r.labels)] for r in records])
    (out / "labels.txt").write_text("".join(f"{label}\n" for label in LABELS), encoding="utf-8")


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _clear_previous(out: Path) -> None:
    """Remove an earlier SynthCaps output in ``out``; refuse if anything else is there."""
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    split_dirs = [out / s for s in SPLITS if (out / s).is_dir()]
    foreign = [p for p in out.iterdir() if p.name not in _OWN_FILES and p not in split_dirs]
    foreign += [p for d in split_dirs for p in d.iterdir() if not _WAV.fullmatch(p.name)]
    if foreign:
        raise FileExistsError(f"{out} holds files that SynthCaps did not write (e.g. {foreign[0]}); "
                              "choose an empty or new directory")
    for d in split_dirs:
        for p in d.iterdir():
            p.unlink()
        d.rmdir()
    for name in _OWN_FILES:
        (out / name).unlink(missing_ok=True)


def _check(n_clips: int, seed: int, sample_rate: int, profile: str, duration: tuple[float, float]) -> Profile:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    if n_clips < 1:
        raise ValueError(f"n_clips must be at least 1, got {n_clips}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if sample_rate < MIN_SAMPLE_RATE:
        raise ValueError(f"sample_rate must be at least {MIN_SAMPLE_RATE} Hz, got {sample_rate}")
    lo, hi = duration
    if not MIN_DURATION <= lo <= hi:
        raise ValueError(f"duration must satisfy {MIN_DURATION} <= min <= max seconds, got {duration}")
    return PROFILES[profile]
