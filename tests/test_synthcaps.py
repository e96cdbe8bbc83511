"""SynthCaps: determinism, Clotho layout, caption/tag contracts, audio sanity, learnable events."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from aacbatch.data.synthcaps import SynthSummary, generate
from aacbatch.data.synthcaps.captions import HELDOUT_IDS, TEMPLATES
from aacbatch.data.synthcaps.events import EVENTS, LABELS, BY_LABEL, render_event
from aacbatch.data.synthcaps.scenes import TARGET, PRETRAIN, sample_scene

SR = 16000
DURATION = (1.5, 2.5)
N_TARGET = 24


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> tuple[Path, SynthSummary]:
    out = tmp_path_factory.mktemp("target") / "synth"
    return out, generate(out, N_TARGET, seed=3, sample_rate=SR, duration=DURATION)


@pytest.fixture(scope="module")
def pretrain(tmp_path_factory) -> tuple[Path, SynthSummary]:
    out = tmp_path_factory.mktemp("pretrain") / "synth"
    return out, generate(out, 12, seed=3, sample_rate=SR, duration=DURATION, profile="pretrain")


def test_same_arguments_give_byte_identical_files(target, pretrain, tmp_path):
    again = generate(tmp_path / "again", N_TARGET, seed=3, sample_rate=SR, duration=DURATION)
    first = _hashes(target[0])
    assert len(first) == N_TARGET + 6  # wavs + 3 caption CSVs + tags.csv + labels.txt + synthcaps.json
    assert first == _hashes(again.out_dir)
    again = generate(tmp_path / "again_pre", 12, seed=3, sample_rate=SR, duration=DURATION, profile="pretrain")
    assert _hashes(pretrain[0]) == _hashes(again.out_dir)


def test_other_seed_gives_other_clips(target, tmp_path):
    out, _ = target
    other = _hashes(generate(tmp_path / "other", N_TARGET, seed=4, sample_rate=SR, duration=DURATION).out_dir)
    mine = _hashes(out)
    wavs = [k for k in mine if k.endswith(".wav")]
    assert all(mine[k] != other[k] for k in wavs)
    assert mine["clotho_captions_development.csv"] != other["clotho_captions_development.csv"]
    assert mine["labels.txt"] == other["labels.txt"]


def test_a_clip_does_not_depend_on_the_others(target, tmp_path):
    out, _ = target
    small = _hashes(generate(tmp_path / "small", 7, seed=3, sample_rate=SR, duration=DURATION).out_dir)
    small_wavs = {k: v for k, v in small.items() if k.endswith(".wav")}
    assert len(small_wavs) == 7 and small_wavs.items() <= _hashes(out).items()


def test_target_layout_and_tables(target):
    out, summary = target
    assert summary.out_dir == out and summary.n_clips == N_TARGET
    assert summary.split_counts == {"development": 15, "validation": 4, "evaluation": 5}
    assert summary.labels == LABELS and len(set(LABELS)) == len(LABELS) >= 30
    for split, count in summary.split_counts.items():
        header, rows = _rows(out / f"clotho_captions_{split}.csv")
        assert header == ["file_name"] + [f"caption_{i}" for i in range(1, 6)]
        names = sorted(p.name for p in (out / split).glob("*.wav"))
        assert [r[0] for r in rows] == names and len(names) == count
        assert all(re.fullmatch(r"synth_\d{6}\.wav", n) for n in names)
    header, rows = _rows(out / "tags.csv")
    assert header == ["file_name", "tags"]
    assert [r[0] for r in rows] == [c.file_name for c in summary.clips]
    assert [r[1].split(";") for r in rows] == [list(c.labels) for c in summary.clips]
    assert (out / "labels.txt").read_text(encoding="utf-8").splitlines() == list(LABELS)
    meta = json.loads((out / "synthcaps.json").read_text())
    assert (meta["seed"], meta["profile"], meta["n_clips"], meta["sample_rate"], meta["duration"]) == (
        3, "target", N_TARGET, SR, list(DURATION))
    assert meta["version"]


def test_pretrain_has_one_caption_and_no_evaluation(pretrain):
    out, summary = pretrain
    assert not (out / "evaluation").exists() and not (out / "clotho_captions_evaluation.csv").exists()
    assert set(summary.split_counts) == {"development", "validation"} and sum(summary.split_counts.values()) == 12
    for split in summary.split_counts:
        header, rows = _rows(out / f"clotho_captions_{split}.csv")
        assert header == ["file_name", "caption_1"]
        assert all(len(r) == 2 and r[1] for r in rows)
    assert all(len(c.captions) == 1 for c in summary.clips)


def test_pretrain_scenes_are_busier_than_target():
    rng = np.random.default_rng(0)
    def mean_events(profile):
        return np.mean([len(sample_scene(rng, SR // 2, SR, profile).events) for _ in range(30)])
    assert mean_events(PRETRAIN) > mean_events(TARGET) + 0.5


def test_captions_are_distinct_clotho_like_sentences(target):
    _, summary = target
    for clip in summary.clips:
        assert len(clip.captions) == 5 and len(set(clip.captions)) == 5
        for text in clip.captions:
            assert re.fullmatch(r"[A-Z][a-z ,;'-]+[a-z]\.", text), text
            assert "  " not in text and 4 <= len(text.split()) <= 30
    words = [len(t.split()) for c in summary.clips for t in c.captions]
    assert 8 <= np.median(words) <= 20


def _fragments(text: str) -> list[str]:
    """Literal multi-word pieces of a template, e.g. "is followed by"."""
    pieces = (f.strip(" ,.;") for f in re.split(r"\{\w+\}", text))
    return [f for f in pieces if len(f.split()) >= 2]


def test_heldout_templates_appear_only_in_evaluation(target):
    _, summary = target
    seen = " | ".join(t.text for t in TEMPLATES if not t.heldout)
    unseen = [f for t in TEMPLATES if t.heldout for f in _fragments(t.text) if f not in seen]
    assert len(unseen) >= 4 and HELDOUT_IDS
    used_in_eval = set()
    for clip in summary.clips:
        ids = {i for caption_ids in clip.templates for i in caption_ids}
        if clip.split == "evaluation":
            used_in_eval |= ids & HELDOUT_IDS
        else:
            assert not ids & HELDOUT_IDS, clip
            assert not any(f in text for f in unseen for text in clip.captions), clip
    assert len(used_in_eval) >= 2  # evaluation really gets the unseen phrasings


def test_tags_list_every_event_and_captions_name_a_subset(target):
    _, summary = target
    unmentioned = 0
    for clip in summary.clips:
        assert 1 <= len(clip.salient) <= 2
        assert set(clip.salient) <= set(clip.mentioned) <= set(clip.labels)
        unmentioned += len(set(clip.labels) - set(clip.mentioned))
        for label in clip.salient:  # every caption names each salient event by one of its subjects
            subjects = BY_LABEL[label].words.subjects
            assert all(any(s in text.lower() for s in subjects) for text in clip.captions), (label, clip.captions)
    assert unmentioned >= N_TARGET // 3  # tags know more than captions say


def test_unmentioned_events_are_quiet_and_tagged():
    rng = np.random.default_rng(1)
    seen_roles = set()
    for _ in range(30):
        scene = sample_scene(rng, SR, SR, TARGET)
        quietest_salient = min(e.gain_db for e in scene.salient)
        for hidden in (e for e in scene.events if e.role != "salient"):
            assert quietest_salient - 30 < hidden.gain_db < quietest_salient  # quiet, yet there
            assert np.sqrt(np.mean(hidden.audio ** 2)) > 0.1 and hidden.spec.label in scene.labels
        seen_roles |= {e.role for e in scene.events}
    assert seen_roles == {"salient", "extra", "background"}


def test_scene_timing_matches_the_order_words():
    rng = np.random.default_rng(2)
    relations = set()
    for _ in range(40):
        scene = sample_scene(rng, 2 * SR, SR, TARGET)
        relations.add(scene.relation)
        assert all(0 <= e.onset and e.end <= scene.n_samples for e in scene.events)
        if scene.relation == "sequence":
            first, second = scene.salient
            assert first.end <= second.onset
        elif scene.relation == "overlap":
            during, inner = scene.salient
            assert during.spec.pattern.continuous
            assert during.onset <= inner.onset and inner.end <= during.end
        for e in scene.salient:
            assert 1 <= e.count and (e.spec.pattern.continuous or e.count <= e.spec.pattern.count[1])
    assert relations == {"single", "sequence", "overlap"}


def test_audio_files_are_sane(target):
    out, summary = target
    for clip in summary.clips:
        audio, sr = sf.read(out / clip.split / clip.file_name, dtype="float64")
        info = sf.info(out / clip.split / clip.file_name)
        assert sr == SR and audio.ndim == 1 and info.subtype == "PCM_16"
        assert DURATION[0] * SR - 1 <= len(audio) <= DURATION[1] * SR + 1
        assert len(audio) == round(clip.duration * SR)
        assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
        assert np.abs(audio).max() > 0.2 and np.sqrt(np.mean(audio ** 2)) > 1e-3


def test_render_event_respects_the_room_it_gets():
    rng = np.random.default_rng(3)
    for spec in EVENTS:
        free = render_event(spec, rng, SR, SR)
        filled = render_event(spec, rng, SR, SR, fill=True)
        assert len(free.audio) <= SR and len(filled.audio) == SR
        if spec.pattern.continuous:
            assert len(free.audio) == SR
        assert np.isfinite(free.audio).all() and np.abs(free.audio).max() > 0


def _band_features(x: np.ndarray) -> np.ndarray:
    """Mean and spread over active frames of log energy in 24 log-spaced bands."""
    n = 1024
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::160] * np.hanning(n)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(n, 1 / SR)
    edges = np.geomspace(100, 7500, 25)
    bands = np.stack([power[:, (freqs >= lo) & (freqs < hi)].sum(1) for lo, hi in zip(edges[:-1], edges[1:])], 1)
    logs = np.log10(bands + 1e-12)
    logs = np.maximum(logs, logs.max() - 5)
    active = logs[logs.max(1) > logs.max() - 3]
    return np.concatenate([active.mean(0), active.std(0)])


def test_event_classes_are_distinguishable():
    """Averaged spectral features of one event's instances are nearest to fresh instances of
    the same event, and the deliberately similar pairs are still told apart."""
    rng = np.random.default_rng(4)
    def profile(spec):
        return np.mean([_band_features(render_event(spec, rng, SR, SR).audio) for _ in range(4)], axis=0)
    reference = {e.label: profile(e) for e in EVENTS}
    fresh = {e.label: profile(e) for e in EVENTS}
    hits = sum(min(reference, key=lambda k: np.linalg.norm(reference[k] - x)) == label for label, x in fresh.items())
    assert hits >= 0.85 * len(EVENTS)
    for a, b in [("Door knock", "Footsteps"), ("Siren", "Whistling"), ("Bird vocalization", "Chirp"),
                 ("Beep", "Smoke detector"), ("Stream", "Water tap"), ("Clapping", "Applause"),
                 ("Engine", "Helicopter")]:
        within = np.linalg.norm(reference[a] - fresh[a])
        assert np.linalg.norm(reference[a] - reference[b]) > 1.5 * within, (a, b)


def test_regeneration_replaces_its_own_output_but_never_foreign_files(tmp_path):
    out = tmp_path / "ds"
    generate(out, 6, seed=0, sample_rate=SR, duration=DURATION)
    generate(out, 3, seed=0, sample_rate=SR, duration=DURATION, profile="pretrain")
    assert sorted(p.name for p in out.rglob("*.wav")) == [f"synth_{i:06d}.wav" for i in range(3)]
    assert not (out / "evaluation").exists() and not (out / "clotho_captions_evaluation.csv").exists()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        generate(out, 3, seed=0, sample_rate=SR, duration=DURATION)
    assert (out / "notes.txt").read_text() == "mine"


def test_progress_and_argument_checks(tmp_path):
    calls = []
    generate(tmp_path / "p", 3, sample_rate=SR, duration=DURATION, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    for bad in ({"profile": "huge"}, {"duration": (3.0, 2.0)}, {"sample_rate": 8000}, {"seed": -1}):
        with pytest.raises(ValueError):
            generate(tmp_path / "bad", 2, **{"sample_rate": SR, "duration": DURATION, **bad})
