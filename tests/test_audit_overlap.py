"""The acoustic audit on a few dozen short SynthCaps clips with planted copies.

The clips are generated once per module (a few seconds): 6 sources of 12 s and 18
distractors of 3–6 s at 44.1 kHz, and a 3–6 s crop of each source resampled to 32 kHz and
re-encoded as Vorbis/MP3 (:mod:`aacbatch.audit.planted`).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from aacbatch.audit import AuditParams, FingerprintParams, find_overlaps
from aacbatch.audit.fingerprint import fingerprint
from aacbatch.audit.planted import PlantedSet, generate_originals, plant_copies
from aacbatch.errors import InputError


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> PlantedSet:
    root = tmp_path_factory.mktemp("planted")
    originals = generate_originals(root, 6, 18, seed=3, source_seconds=(12.0, 12.0), distractor_seconds=(3.0, 6.0))
    return plant_copies(originals, root / "copies", seed=3, crop_seconds=(3.0, 6.0))


def _pairs(matches) -> set[tuple[int, int]]:
    return {(min(m.a, m.b), max(m.a, m.b)) for m in matches}


def test_planted_copies_found_at_their_offset_and_nothing_else(planted: PlantedSet) -> None:
    """Every match is a planted copy at its offset; one copy may be missed (the copy of the
    chirp-and-cricket source here: a sparse pure tone whose few peaks move with the frame
    grid — recall over 200 copies is measured by benchmarks/bench_audit.py)."""
    assert len(planted.copies) == 5  # 3–6 s crops of 12 s sources; one source is too sparse
    truth = {(c.source, c.copy): c for c in planted.copies}
    matches = find_overlaps(planted.mels, planted.datasets)
    assert len(matches) >= len(truth) - 1
    for m in matches:
        copy = truth[(m.a, m.b)]  # a true pair, reported from the source (where the audio starts later)
        assert abs(m.offset - copy.offset) <= 0.02, (m, copy)  # within two frames
        assert abs(m.duration - copy.duration) <= 0.1
        assert m.start_b == 0.0 and m.start_a == pytest.approx(m.offset)
        assert 0.6 <= m.score <= 1.0


def test_clips_sharing_an_event_type_are_not_matched(planted: PlantedSet) -> None:
    n = len(planted.mels) - len(planted.copies)
    sharing = [(i, j) for i, j in combinations(range(n), 2) if set(planted.labels[i]) & set(planted.labels[j])]
    assert len(sharing) >= 20  # the precondition that makes the test mean something
    matched = _pairs(find_overlaps(planted.mels[:n]))
    assert matched == set()


def test_exact_duplicate_is_a_full_match(planted: PlantedSet) -> None:
    mels = [planted.mels[0], planted.mels[7], planted.mels[0].copy()]
    (m,) = find_overlaps(mels)
    assert (m.a, m.b, m.offset, m.start_b) == (0, 2, 0.0, 0.0)
    assert m.duration == pytest.approx(len(planted.mels[0]) / 100)
    assert m.score == pytest.approx(1.0) and m.envelope_db == pytest.approx(0.0)


def test_frame_exact_crop_and_gain_change(planted: PlantedSet) -> None:
    source = planted.mels[1].astype(np.float32)
    crop = source[333:333 + 450] - 9.0  # 4.5 s from 3.33 s, 9 dB quieter
    (m,) = find_overlaps([crop, source])
    assert (m.a, m.b) == (1, 0)  # reported from the longer recording
    assert m.offset == pytest.approx(3.33)
    assert m.duration == pytest.approx(4.5)


def test_fingerprint_ignores_gain(planted: PlantedSet) -> None:
    mel = planted.mels[2].astype(np.float32)
    hashes, times = fingerprint(mel)
    quieter = fingerprint(mel - 12.0)
    assert len(hashes) > 100
    np.testing.assert_array_equal(hashes, quieter[0])
    np.testing.assert_array_equal(times, quieter[1])


def test_within_and_across_datasets(planted: PlantedSet) -> None:
    copy = planted.copies[0]
    # the copy in its own dataset, plus an exact duplicate of a distractor inside "synthcaps"
    mels = planted.mels[:24] + [planted.mels[copy.copy], planted.mels[10].copy()]
    datasets = planted.datasets[:24] + ["copies", "synthcaps"]
    across = _pairs(find_overlaps(mels, datasets, pairs="across"))
    within = _pairs(find_overlaps(mels, datasets, pairs="within"))
    every = _pairs(find_overlaps(mels, datasets, pairs="all"))
    assert across == {(copy.source, 24)}
    assert within == {(10, 25)}
    assert every == across | within


def test_look_alike_renders_are_not_copies() -> None:
    """Two clips holding the same deterministic sweep over different noise beds share no
    audio; a lossy-ish copy of one of them does (a twin of SynthCaps' sirens, built directly)."""
    rng = np.random.default_rng(0)
    t = np.arange(1500)[:, None] / 100.0
    bins = np.arange(64)[None, :]
    centre = 20 + 8 * np.sin(2 * np.pi * 0.35 * t)  # a slow sweep, the same in both renders
    sweep = -15.0 * np.minimum(np.abs(bins - centre), np.abs(bins - 2 * centre + 10)) ** 1.2

    def render(seed: int) -> np.ndarray:
        bed = -35.0 + 3.0 * np.random.default_rng(seed).standard_normal((1500, 64))
        return (10 * np.log10(10 ** (sweep / 10) + 10 ** (bed / 10))).astype(np.float32)

    first, second = render(1), render(2)
    copy = first[200:900] - 3.0 + 0.3 * rng.standard_normal((700, 64)).astype(np.float32)
    matches = find_overlaps([first, second, copy])
    assert _pairs(matches) == {(0, 2)}
    assert matches[0].offset == pytest.approx(2.0)


def test_empty_short_and_silent_inputs() -> None:
    assert find_overlaps([]) == []
    short = [np.zeros((0, 64), np.float16), np.full((5, 64), -30.0, np.float16), np.full((400, 64), -100.0, np.float16)]
    assert find_overlaps(short + short) == []


def test_bad_inputs_are_one_line_input_errors() -> None:
    mel = np.zeros((100, 64), np.float32)
    with pytest.raises(InputError, match="clip 1: a log-mel must have shape"):
        find_overlaps([mel, np.zeros((100, 128))])
    with pytest.raises(InputError, match="pairs must be one of"):
        find_overlaps([mel], pairs="some")
    with pytest.raises(InputError, match="needs a dataset label"):
        find_overlaps([mel], pairs="across")
    with pytest.raises(InputError, match="1 labels for 2 clips"):
        find_overlaps([mel, mel], ["a"])


def test_thresholds_are_parameters(planted: PlantedSet) -> None:
    copy = planted.copies[0]
    mels = [planted.mels[copy.source], planted.mels[copy.copy]]
    assert len(find_overlaps(mels)) == 1
    assert find_overlaps(mels, params=AuditParams(min_votes=10**6)) == []
    assert find_overlaps(mels, params=AuditParams(fingerprint=FingerprintParams(floor_db=0.0))) == []
