"""Planted near-duplicates: SynthCaps clips plus known crops of them, re-encoded.

An audit's recall and precision can only be measured where the truth is known. SynthCaps
gives that for free: every clip is drawn from its own seed and every event in it is
rendered afresh, so two generated clips never share a sample — even when they hold the
same kind of event (two sirens, two rain beds) they are different renders. Planting then
adds the positives: a crop of a source clip at a random sample offset, resampled from the
source rate (44.1 kHz) to 32 kHz with libsoxr, turned down by a random gain, encoded lossy
(Ogg Vorbis or MP3 through libsndfile) and decoded again — what a re-uploaded excerpt of a
recording looks like — and then put through the same CNN14 log-mel front end as the rest.

A crop must carry sound in at least ``min_active`` of its frames: SynthCaps clips without a
background bed are digitally silent between events, and a crop of silence shares no audio
that anything could find.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from aacbatch.data.synthcaps import ClipRecord, generate
from aacbatch.audio import logmel

SOURCE_RATE = 44100
SILENT_DB = -90.0  # a frame whose loudest mel bin is under this carries no sound
CODECS = {"vorbis": ("OGG", "VORBIS", ".ogg"), "mp3": ("MP3", "MPEG_LAYER_III", ".mp3")}


@dataclass(frozen=True)
class Copy:
    """A planted near-duplicate: ``copy`` is a crop of ``source`` starting ``offset`` seconds
    into it, ``duration`` seconds long (both clip positions in :class:`PlantedSet`)."""

    source: int
    copy: int
    offset: float
    duration: float
    codec: str
    quality: float   # libsndfile compression level, 0 (best) .. 1 (smallest)
    gain_db: float


@dataclass(frozen=True)
class PlantedSet:
    """Log-mels of originals then copies, with what is known about every clip.

    ``mels[i]``: ``(T_i, 64)`` float16; ``paths[i]``: its audio file (a WAV at 44.1 kHz, or
    a copy's Ogg/MP3 file at 32 kHz); ``datasets[i]``: ``"synthcaps"`` for generated clips,
    ``"copies"`` for planted ones; ``labels[i]``: the SynthCaps events in clip ``i`` (a
    copy carries its source's); ``copies``: the truth.
    """

    mels: list[np.ndarray]
    paths: list[Path]
    datasets: list[str]
    labels: list[tuple[str, ...]]
    copies: list[Copy]

    def positives(self) -> set[tuple[int, int]]:
        """Clip pairs ``(min, max)`` that share audio."""
        return {(min(c.source, c.copy), max(c.source, c.copy)) for c in self.copies}


def encode_lossy(wave: np.ndarray, sample_rate: int, codec: str, quality: float) -> bytes:
    """The file bytes of ``wave`` encoded with ``codec`` at compression level ``quality``."""
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {', '.join(CODECS)}, got {codec!r}")
    fmt, subtype, _ = CODECS[codec]
    buffer = io.BytesIO()
    sf.write(buffer, wave, sample_rate, format=fmt, subtype=subtype, compression_level=quality)
    return buffer.getvalue()


def decode(data: bytes) -> np.ndarray:
    """Mono float32 samples of an encoded file held in memory."""
    wave, _ = sf.read(io.BytesIO(data), dtype="float32")
    return wave


def active_fraction(mel: np.ndarray) -> float:
    """Share of frames of ``mel`` ``(T, 64)`` whose loudest bin is above :data:`SILENT_DB`."""
    return float((np.asarray(mel, dtype=np.float32).max(axis=1) > SILENT_DB).mean()) if len(mel) else 0.0


def near_duplicate(wave: np.ndarray, sample_rate: int, start: int, length: int, codec: str, quality: float,
                   gain_db: float) -> bytes:
    """Samples ``[start, start + length)`` of ``wave``, scaled by ``gain_db``, resampled to
    32 kHz and encoded with ``codec``: the file's bytes."""
    crop = wave[start:start + length] * np.float32(10.0 ** (gain_db / 20.0))
    return encode_lossy(logmel.resample(crop, sample_rate), logmel.SAMPLE_RATE, codec, quality)


@dataclass(frozen=True)
class Originals:
    """Generated clips, sources first: ``mels[i]`` ``(T_i, 64)`` float16 as cached,
    ``paths[i]`` the 44.1 kHz WAV, ``labels[i]`` its SynthCaps events."""

    mels: list[np.ndarray]
    paths: list[Path]
    labels: list[tuple[str, ...]]
    n_sources: int


def _read(out_dir: Path, records: tuple[ClipRecord, ...]) -> tuple[list[Path], list[np.ndarray]]:
    """Files and log-mels (float16, as cached) of generated clips."""
    paths, mels = [], []
    for record in records:
        path = out_dir / record.split / record.file_name
        wave, _ = sf.read(path, dtype="float32")
        paths.append(path)
        mels.append(logmel.log_mel(logmel.resample(wave, SOURCE_RATE)).astype(np.float16))
    return paths, mels


def generate_originals(out_dir: str | Path, n_sources: int, n_distractors: int, *, seed: int = 0,
                       source_seconds: tuple[float, float] = (20.0, 30.0),
                       distractor_seconds: tuple[float, float] = (5.0, 30.0)) -> Originals:
    """Sources and distractors at 44.1 kHz: two SynthCaps datasets (seeds ``seed`` and
    ``seed + 1``) under ``out_dir``/sources and ``out_dir``/distractors."""
    out = Path(out_dir)
    sources = generate(out / "sources", n_sources, seed=seed, sample_rate=SOURCE_RATE, duration=source_seconds)
    paths, mels = _read(sources.out_dir, sources.clips)
    records = list(sources.clips)
    if n_distractors:
        others = generate(out / "distractors", n_distractors, seed=seed + 1, sample_rate=SOURCE_RATE,
                          duration=distractor_seconds)
        more_paths, more_mels = _read(others.out_dir, others.clips)
        paths += more_paths
        mels += more_mels
        records += others.clips
    return Originals(mels=mels, paths=paths, labels=[r.labels for r in records], n_sources=n_sources)


def plant_copies(originals: Originals, out_dir: str | Path, *, seed: int = 0,
                 crop_seconds: tuple[float, float] = (5.0, 15.0), quality: tuple[float, float] = (0.3, 0.7),
                 gain_db: tuple[float, float] = (-6.0, 0.0), min_active: float = 0.5) -> PlantedSet:
    """One lossy crop of each source, written to ``out_dir``, appended after the originals.

    Copies alternate Vorbis and MP3 at a libsndfile compression level drawn from
    ``quality``: the default 0.3–0.7 gives about 35–80 kbit/s on SynthCaps (0.9 gives
    ~33–45 kbit/s, the encoders' floor). A source whose crops never reach ``min_active`` in
    20 draws gets no copy (it stays a negative). Everything is drawn from ``seed``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0xA0D17,)))
    mels, paths, labels = list(originals.mels), list(originals.paths), list(originals.labels)
    datasets = ["synthcaps"] * len(mels)
    copies = []
    frames_per_sample = logmel.SAMPLE_RATE / SOURCE_RATE / logmel.HOP
    for index in range(originals.n_sources):
        wave, _ = sf.read(originals.paths[index], dtype="float32")
        length = int(rng.uniform(*crop_seconds) * SOURCE_RATE)
        if length >= len(wave):
            continue
        codec = ("vorbis", "mp3")[len(copies) % 2]
        level, gain = float(rng.uniform(*quality)), float(rng.uniform(*gain_db))
        for _ in range(20):
            start = int(rng.integers(0, len(wave) - length))
            first = int(start * frames_per_sample)
            if active_fraction(mels[index][first:first + int(length * frames_per_sample)]) >= min_active:
                break
        else:
            continue
        encoded = near_duplicate(wave, SOURCE_RATE, start, length, codec, level, gain)
        path = out / f"copy_{len(copies):06d}{CODECS[codec][2]}"
        path.write_bytes(encoded)
        copies.append(Copy(source=index, copy=len(mels), offset=start / SOURCE_RATE, duration=length / SOURCE_RATE,
                           codec=codec, quality=level, gain_db=gain))
        mels.append(logmel.log_mel(decode(encoded)).astype(np.float16))
        paths.append(path)
        labels.append(labels[index])
        datasets.append("copies")
    return PlantedSet(mels=mels, paths=paths, datasets=datasets, labels=labels, copies=copies)


def plant(out_dir: str | Path, n_sources: int, n_distractors: int, *, seed: int = 0, **copy_options) -> PlantedSet:
    """:func:`generate_originals` under ``out_dir`` plus :func:`plant_copies` into
    ``out_dir``/copies, both from ``seed``; ``copy_options`` go to :func:`plant_copies`."""
    originals = generate_originals(out_dir, n_sources, n_distractors, seed=seed)
    return plant_copies(originals, Path(out_dir) / "copies", seed=seed, **copy_options)


def plant_into_corpus(target: Path, corpus: Path, n: int, *, split: str = "evaluation", into: str = "development",
                      seed: int = 0) -> list[str]:
    """Copy ``n`` clips of ``target``'s Clotho-layout ``split`` into ``corpus``'s ``into`` split:
    the longest ones, each cropped 0.3 s in, turned down 3 dB and re-encoded as Ogg Vorbis at
    32 kHz, listed with the source's first caption (what a re-uploaded recording looks like
    in a scraped corpus). The demo's pretraining set gets these, and its audit must find
    them. Returns the planted file names; a second call with the same ``n`` changes nothing.
    """
    listing = corpus / f"clotho_captions_{into}.csv"
    text = listing.read_text(encoding="utf-8")
    names = [f"planted_{k:02d}.ogg" for k in range(n)]
    if all(f"\n{name}," in text for name in names):
        return names
    rows = list(csv.reader(io.StringIO((target / f"clotho_captions_{split}.csv").read_text(encoding="utf-8"))))[1:]
    rows.sort(key=lambda row: (-sf.info(target / split / row[0]).frames, row[0]))
    rng = np.random.default_rng(seed)
    width = len(text.partition("\n")[0].split(",")) - 1  # its caption columns, each given the caption
    added = []
    for name, row in zip(names, rows):
        wave, rate = sf.read(target / split / row[0], dtype="float32", always_2d=True)
        start = int(0.3 * rate)
        data = near_duplicate(wave.mean(axis=1), rate, start, len(wave) - start, "vorbis", float(rng.uniform(0.3, 0.6)), -3.0)
        (corpus / into / name).write_bytes(data)
        added.append([name] + [row[1]] * width)
    with listing.open("a", encoding="utf-8", newline="") as out:
        if not text.endswith("\n"):
            out.write("\n")
        csv.writer(out, lineterminator="\n").writerows(added)
    return names
