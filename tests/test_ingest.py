"""Ingest: every format parses, re-ingest is a no-op, and bad input changes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from aacbatch.data.ingest import ingest
from aacbatch.errors import InputError
from aacbatch.registry.schema import Caption, Clip, Dataset, SplitMember

from conftest import make_clotho, write_csv, write_wav

pytestmark = pytest.mark.backends("duckdb", "postgresql")


def row_counts(registry) -> dict[str, int]:
    with registry.transaction() as session:
        return {t.__tablename__: session.scalar(select(func.count()).select_from(t)) for t in (Dataset, Clip, Caption, SplitMember)}


def test_clotho_ingest_registers_clips_captions_and_source_splits(registry, clotho_dir):
    result = ingest(registry, "clotho", clotho_dir, name="clotho")
    assert (result.status, result.n_clips, result.n_captions) == ("created", 12, 60)
    with registry.transaction() as session:
        splits = dict(session.execute(select(SplitMember.name, func.count()).group_by(SplitMember.name)).all())
        clip = session.scalar(select(Clip).where(Clip.name == "dev_002.wav"))
        captions = session.scalars(select(Caption.text).where(Caption.clip_id == clip.id).order_by(Caption.caption_index)).all()
    assert splits == {"development": 6, "validation": 3, "evaluation": 3}
    assert clip.sample_rate == 16000 and clip.channels == 1 and clip.duration == pytest.approx(0.5)
    assert Path(clip.path) == clotho_dir / "development" / "dev_002.wav"
    assert captions == [f"A development sound number 2, take {j}." for j in range(5)]


def test_reingest_same_data_is_a_noop_and_changed_data_needs_replace(registry, clotho_dir, tmp_path):
    ingest(registry, "clotho", clotho_dir, name="c")
    moved = tmp_path / "moved"
    shutil.copytree(clotho_dir, moved)  # same content elsewhere is still the same dataset
    assert ingest(registry, "clotho", moved, name="c").status == "unchanged"
    before = row_counts(registry)
    write_wav(moved / "development" / "dev_000.wav", seconds=0.7)
    with pytest.raises(InputError, match="already exists with different content.*--replace"):
        ingest(registry, "clotho", moved, name="c")
    assert row_counts(registry) == before
    replaced = ingest(registry, "clotho", moved, name="c", replace=True)
    assert replaced.status == "replaced"
    assert row_counts(registry) == before
    with registry.transaction() as session:
        assert session.scalar(select(Clip.duration).where(Clip.name == "dev_000.wav")) == pytest.approx(0.7)


def test_tags_and_labels_from_synthcaps_style_files(registry, clotho_dir):
    write_csv(clotho_dir / "tags.csv", ["file_name", "tags"], [["dev_000.wav", "Dog;Rain"], ["dev_001.wav", ""]])
    (clotho_dir / "labels.txt").write_text("Dog\nRain\nSiren\n")
    ingest(registry, "clotho", clotho_dir, name="t")
    with registry.transaction() as session:
        tags = dict(session.execute(select(Clip.name, Clip.tags)).all())
        meta = json.loads(session.scalar(select(Dataset.meta_json)))
    assert tags["dev_000.wav"] == "Dog;Rain" and tags["dev_001.wav"] is None
    assert meta["tag_labels"] == ["Dog", "Rain", "Siren"]


def test_audiocaps_groups_rows_by_youtube_id_and_finds_Y_prefixed_files(registry, tmp_path):
    root = tmp_path / "ac"
    write_wav(root / "audio" / "abc.wav")
    write_wav(root / "audio" / "sub" / "Ydef.wav", channels=2)
    header = ["audiocap_id", "youtube_id", "start_time", "caption"]
    write_csv(root / "train.csv", header, [["1", "abc", "30", "A dog barks."]])
    write_csv(root / "test.csv", header, [["2", "def", "0", "Rain falls."], ["3", "def", "0", "It rains."]])
    result = ingest(registry, "audiocaps", root, name="ac")
    assert (result.n_clips, result.n_captions) == (2, 3)
    with registry.transaction() as session:
        assert session.scalar(select(Clip.channels).where(Clip.name == "Ydef.wav")) == 2


def test_macs_yaml(registry, tmp_path):
    root = tmp_path / "macs"
    write_wav(root / "audio" / "a.wav")
    (root / "MACS.yaml").write_text(
        "files:\n- filename: a.wav\n  annotations:\n  - annotator_id: 1\n    sentence: Birds sing.\n    tags: [birds]\n"
        "  - annotator_id: 2\n    sentence: People talk.\n    tags: [adults_talking, birds]\n")
    result = ingest(registry, "macs", root, name="macs")
    assert (result.n_clips, result.n_captions) == (1, 2)
    with registry.transaction() as session:
        assert session.scalar(select(Clip.tags)) == "adults_talking;birds"


def test_wavcaps_json_with_limit(registry, tmp_path):
    root = tmp_path / "wc"
    for i in range(3):
        write_wav(root / f"{i}.flac", seed=i)
    data = {"data": [{"id": str(i), "caption": f"Sound {i}.", "audio": f"{i}.flac", "duration": 0.5} for i in range(3)]}
    (root / "fsd.json").write_text(json.dumps(data))
    assert ingest(registry, "wavcaps", root, name="wc", limit=2).n_clips == 2


def test_folder_csv_with_splits_and_multiple_captions(registry, tmp_path):
    root = tmp_path / "f"
    write_wav(root / "x y ü.wav")  # spaces and unicode in paths
    write_wav(root / "z.wav")
    write_csv(root / "list.csv", ["file_name", "caption", "split", "tags"],
              [["x y ü.wav", "One.", "train", "a;b"], ["x y ü.wav", "Two.", "train", "a;b"], ["z.wav", "Three.", "eval", ""]])
    result = ingest(registry, "folder", root, name="f")
    assert (result.n_clips, result.n_captions) == (2, 3)


def _missing_audio(root):
    (root / "development" / "dev_001.wav").unlink()


def _corrupt_audio(root):
    (root / "development" / "dev_001.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)


def _empty_audio(root):
    (root / "development" / "dev_001.wav").write_bytes(b"")


def _zero_length_audio(root):
    write_wav(root / "development" / "dev_001.wav", seconds=0)


def _missing_column(root):
    write_csv(root / "clotho_captions_validation.csv", ["name", "caption_1"], [["val_000.wav", "x"]])


def _empty_caption(root):
    write_csv(root / "clotho_captions_validation.csv", ["file_name", "caption_1", "caption_2"], [["val_000.wav", "ok.", "  "]])


def _duplicate_name(root):
    write_csv(root / "clotho_captions_validation.csv", ["file_name", "caption_1"], [["val_000.wav", "a."], ["val_000.wav", "b."]])


BAD_INPUTS = [
    (_missing_audio, r"dev_001\.wav \(clotho_captions_development\.csv line 3\) is missing"),
    (_corrupt_audio, r"dev_001\.wav .* is unreadable"),
    (_empty_audio, r"dev_001\.wav .* is unreadable"),
    (_zero_length_audio, r"dev_001\.wav .* has no samples"),
    (_missing_column, r"clotho_captions_validation\.csv: missing column\(s\) file_name"),
    (_empty_caption, r"clotho_captions_validation\.csv line 2: caption 2 of 'val_000\.wav' is empty"),
    (_duplicate_name, r"duplicate file name 'val_000\.wav' \(clotho_captions_validation\.csv line 3 and .* line 2\)"),
]


@pytest.mark.parametrize("damage, message", BAD_INPUTS, ids=[f.__name__.strip("_") for f, _ in BAD_INPUTS])
def test_bad_input_is_refused_and_leaves_the_registry_unchanged(registry, tmp_path, damage, message):
    ingest(registry, "clotho", make_clotho(tmp_path / "good"), name="good")
    before = row_counts(registry)
    root = make_clotho(tmp_path / "bad")
    damage(root)
    with pytest.raises(InputError, match=message):
        ingest(registry, "clotho", root, name="bad")
    assert row_counts(registry) == before


@pytest.mark.parametrize("fmt, path, message", [
    ("nope", "x", r"unknown format 'nope': use one of clotho"),
    ("clotho", "/does/not/exist", r"/does/not/exist does not exist"),
])
def test_unknown_format_and_missing_path(registry, fmt, path, message):
    with pytest.raises(InputError, match=message):
        ingest(registry, fmt, Path(path), name="x")
