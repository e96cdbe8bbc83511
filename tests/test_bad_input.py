"""Bad input, command by command: exit ≠ 0, one clear line, registry and caches unchanged
(checked by hashing the registry file and every cache file before and after)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import zarr
from click.testing import CliRunner

from aacbatch.cli import cli
from aacbatch.errors import InputError
from aacbatch.featurize.job import featurize
from aacbatch.registry.queries import run_sql

from conftest import make_clotho, write_csv


def digest(settings) -> str:
    h = hashlib.sha256()
    files = [settings.home / "registry.duckdb"] + sorted(p for p in Path(settings.cache_dir).rglob("*") if p.is_file())
    for path in files:
        if path.exists():
            h.update(str(path).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture
def workspace(synth_registry, settings, tmp_path):
    """A registry with SynthCaps ingested and log-mels cached, plus a folder of bad inputs."""
    bad = tmp_path / "bad inputs ü"  # spaces and unicode in every path below
    make_clotho(bad / "empty caption", {"development": 2})
    write_csv(bad / "empty caption" / "clotho_captions_development.csv", ["file_name", "caption_1"],
              [["dev_000.wav", "fine."], ["dev_001.wav", " "]])
    make_clotho(bad / "huge caption", {"development": 2})
    write_csv(bad / "huge caption" / "clotho_captions_development.csv", ["file_name", "caption_1"],
              [["dev_000.wav", "fine."], ["dev_001.wav", "word " * 5000]])
    make_clotho(bad / "zero byte", {"development": 2})
    (bad / "zero byte" / "development" / "dev_001.wav").write_bytes(b"")
    make_clotho(bad / "bad csv", {"development": 2})
    write_csv(bad / "bad csv" / "clotho_captions_development.csv", ["file", "caption_1"], [["dev_000.wav", "x."]])
    (bad / "preds.json").write_text("{not json")
    (bad / "refs.json").write_text(json.dumps({"a": ["ref."]}))
    newer = Path(settings.cache_dir) / "sc" / "mel.zarr"
    return settings, bad, newer


def cases(bad: Path) -> list[tuple[str, list[str], str]]:
    return [
        ("ingest missing path", ["ingest", "clotho", str(bad / "nope"), "--name", "x"], "does not exist"),
        ("ingest empty caption", ["ingest", "clotho", str(bad / "empty caption"), "--name", "x"], "caption 1 of 'dev_001.wav' is empty"),
        ("ingest huge caption", ["ingest", "clotho", str(bad / "huge caption"), "--name", "x"], "characters long"),
        ("ingest 0-byte audio", ["ingest", "clotho", str(bad / "zero byte"), "--name", "x"], "dev_001.wav"),
        ("ingest malformed csv", ["ingest", "clotho", str(bad / "bad csv"), "--name", "x"], "missing column(s) file_name"),
        ("ingest same name, other data", ["ingest", "clotho", str(bad / "zero byte"), "--name", "sc"], "dev_001.wav"),
        ("split unknown dataset", ["split", "nope"], "unknown dataset 'nope'"),
        ("split bad ratio", ["split", "sc", "--ratio", "1.5", "--replace"], "strictly between 0 and 1"),
        ("sql injection in a param name", ["sql", "SELECT 1", "--param", "x; DROP TABLE runs=1"], "expected NAME=VALUE"),
        ("sql syntax error", ["sql", "SELEC name FROM datasets"], "query:"),
        ("sql missing param", ["sql", "SELECT * FROM runs WHERE id = :id"], "--param id=VALUE"),
        ("featurize unknown spec", ["featurize", "nope", "--dataset", "sc"], "unknown feature spec 'nope'"),
        ("featurize spec typo", ["featurize", "mel", "--dataset", "sc", "--set", "dtyp=float32"], "did you mean 'dtype'"),
        ("featurize shard syntax", ["featurize", "mel", "--dataset", "sc", "--shard", "3/2"], "need 0 <= K < N"),
        ("featurize other spec over cache", ["featurize", "mel", "--dataset", "sc", "--set", "dtype='float32'"], "--rebuild"),
        ("features show unknown", ["features", "show", "nope", "--dataset", "sc"], "no feature set 'nope'"),
        ("train unknown init-from", ["train", "--task", "tagger", "--dataset", "sc", "--init-from", "nope"], "unknown run id 'nope'"),
        ("train unknown setting", ["train", "--task", "tagger", "--dataset", "sc", "--set", "epoch=3"], "did you mean 'epochs'"),
        ("train resume unknown", ["train", "--resume", "nope"], "unknown run id 'nope'"),
        ("evaluate unknown run", ["evaluate", "retrieval", "--run", "nope"], "unknown run id 'nope'"),
        ("metrics bad json", ["metrics", "caption", "--predictions", str(bad / "preds.json"), "--references",
                              str(bad / "refs.json")], "is not valid JSON"),
    ]


def test_every_bad_input_is_one_line_and_changes_nothing(workspace):
    settings, bad, _ = workspace
    runner = CliRunner()
    for name, args, message in cases(bad):
        before = digest(settings)
        result = runner.invoke(cli, ["--home", str(settings.home), "--cache", str(settings.cache_dir), *args])
        errors = [line for line in result.stderr.splitlines() if line.startswith(("aacbatch: error:", "Error:"))]
        assert result.exit_code != 0, name
        assert len(errors) == 1 and message in errors[0], (name, result.stderr)
        assert result.exception is None or isinstance(result.exception, SystemExit), (name, result.exception)
        assert digest(settings) == before, name


def test_cache_from_a_newer_format_is_refused(workspace):
    settings, _, cache = workspace
    group = zarr.open_group(store=str(cache), mode="r+")
    group.attrs["aacbatch"] = {**group.attrs["aacbatch"], "format_version": 99}
    before = digest(settings)
    result = CliRunner().invoke(cli, ["--home", str(settings.home), "--cache", str(settings.cache_dir),
                                      "featurize", "mel", "--dataset", "sc"])
    assert result.exit_code != 0 and "format version 99" in result.stderr and "upgrade aacbatch" in result.stderr
    assert digest(settings) == before


def test_nan_audio_mid_dataset_is_named_and_never_marked_complete(synth_registry, synth_dir, tmp_path):
    """Data errors found while computing keep finished blocks (resumable) but never claim completeness."""
    import numpy as np
    import soundfile as sf

    root = tmp_path / "nan"
    make_clotho(root, {"development": 4})
    sf.write(str(root / "development" / "dev_002.wav"), np.full(8000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    from aacbatch.data.ingest import ingest

    ingest(synth_registry, "clotho", root, name="nan")
    with pytest.raises(InputError, match=r"dev_002\.wav.*NaN or infinite"):
        featurize(synth_registry, "mel", "nan")
    _, rows = run_sql(synth_registry, "SELECT f.status FROM feature_sets f JOIN datasets d ON d.id = f.dataset_id WHERE d.name = 'nan'")
    assert rows == [("partial",)]
