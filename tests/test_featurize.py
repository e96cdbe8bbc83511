"""Featurize: resumable, shardable, fingerprinted Zarr feature sets (mel kind end to end)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from aacbatch.cache import FeatureStore
from aacbatch.config import Settings
from aacbatch.data.ingest import ingest
from aacbatch.errors import InputError
from aacbatch.audio import logmel
from aacbatch.featurize.job import featurize, parse_shard
from aacbatch.audio.waveform import load_32k
from aacbatch.registry.queries import run_sql
from aacbatch.registry.store import Registry

from conftest import make_clotho, write_wav


@pytest.fixture
def small_spec(tmp_path) -> str:
    """A mel spec with tiny blocks, so a few clips make many blocks."""
    path = tmp_path / "specs" / "mel.toml"
    path.parent.mkdir()
    path.write_text('kind = "mel"\ndtype = "float16"\nblock_size = 3\n')
    return str(path)


@pytest.fixture
def dataset(registry, tmp_path) -> str:
    ingest(registry, "clotho", make_clotho(tmp_path / "c", {"development": 8, "validation": 3, "evaluation": 3}), name="c")
    return "c"


def arrays_digest(url: str) -> dict[str, str]:
    group = zarr.open_group(store=url, mode="r")
    return {name: hashlib.sha256(np.ascontiguousarray(group[name][:]).tobytes()).hexdigest() for name in sorted(group.array_keys())}


def test_mel_cache_equals_direct_computation(registry, dataset, small_spec):
    result = featurize(registry, small_spec, dataset)
    assert (result.status, result.n_items, result.computed_blocks) == ("complete", 14, 5)
    store = FeatureStore.open(result.url)
    reader = store.reader("mel")
    _, rows = run_sql(registry, "SELECT path, n_frames, sample_rate FROM clips ORDER BY idx")
    for i in (0, 7, 13):
        expected = logmel.log_mel(load_32k(*rows[i])).astype(np.float16)
        np.testing.assert_array_equal(reader[[i]][0], expected)
    assert reader[[0]][0].shape == (1 + 16000 // 320, 64)  # 0.5 s at 16 kHz → 16000 samples at 32 kHz
    assert run_sql(registry, "SELECT status, n_items FROM feature_sets")[1] == [("complete", 14)]
    again = featurize(registry, small_spec, dataset)
    assert again.computed_blocks == 0 and again.status == "complete"


def test_interrupted_job_resumes_to_identical_arrays(registry, dataset, small_spec, tmp_path):
    reference = featurize(registry, small_spec, dataset)
    digest = arrays_digest(reference.url)
    group = zarr.open_group(store=reference.url, mode="r+")
    group["done"][1:3] = 0                                  # as if killed during block 1
    group["mel"][group["mel.starts"][3]:group["mel.starts"][4]] = 7.0  # half-written garbage
    assert not FeatureStore.open(reference.url).is_complete()
    resumed = featurize(registry, small_spec, dataset)
    assert resumed.computed_blocks == 2
    assert arrays_digest(reference.url) == digest


def _cli(settings: Settings, *args: str) -> list[str]:
    return [sys.executable, "-m", "aacbatch", "--home", str(settings.home), *args]


def test_kill_9_mid_job_then_rerun_gives_identical_arrays(registry, settings, tmp_path):
    root = make_clotho(tmp_path / "big", {"development": 40, "validation": 0, "evaluation": 0})
    ingest(registry, "clotho", root, name="big")
    spec = tmp_path / "mel.toml"
    spec.write_text('kind = "mel"\nblock_size = 2\n')
    # the child computes each block 0.2 s slower, so it is surely still running when it is killed:
    # log-mels of these clips take milliseconds, too short a window to catch otherwise
    slow = ("import sys, time; from aacbatch.featurize.mel import MelKind; compute = MelKind.compute; "
            "MelKind.compute = lambda self, *a: (time.sleep(0.2), compute(self, *a))[1]; "
            "from aacbatch.cli import main; sys.argv[0] = 'aacbatch'; main()")
    command = [sys.executable, "-c", slow, *_cli(settings, "featurize", str(spec), "--dataset", "big")[3:]]
    proc = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    url = str(settings.cache_dir / "big" / "mel.zarr")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            done = zarr.open_group(store=url, mode="r")["done"][:]
            if 2 <= done.sum() < len(done):
                break
        except Exception:
            pass
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = zarr.open_group(store=url, mode="r")["done"][:]
    assert 0 < partial.sum() < len(partial), "the job should have been killed mid-way"
    assert run_sql(registry, "SELECT status FROM feature_sets")[1] == [("building",)]
    resumed = featurize(registry, str(spec), "big")
    assert resumed.status == "complete" and resumed.computed_blocks == len(partial) - partial.sum()
    fresh = Registry(Settings.resolve(home=settings.home, cache_dir=tmp_path / "fresh-cache"))
    assert arrays_digest(featurize(fresh, str(spec), "big").url) == arrays_digest(url)


def test_two_concurrent_shard_processes_equal_one_process(registry, settings, dataset, small_spec, tmp_path):
    procs = [subprocess.Popen(_cli(settings, "featurize", small_spec, "--dataset", dataset, "--shard", f"{k}/2"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in (1, 0)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    url = str(settings.cache_dir / dataset / "mel.zarr")
    assert FeatureStore.open(url).is_complete()
    assert run_sql(registry, "SELECT status FROM feature_sets")[1] == [("complete",)]
    single = Registry(Settings.resolve(home=settings.home, cache_dir=tmp_path / "single"))
    assert arrays_digest(featurize(single, small_spec, dataset).url) == arrays_digest(url)


def test_worker_processes_give_the_same_arrays(registry, settings, dataset, small_spec, tmp_path):
    parallel = featurize(registry, small_spec, dataset, workers=2)
    serial = Registry(Settings.resolve(home=settings.home, cache_dir=tmp_path / "serial"))
    assert arrays_digest(featurize(serial, small_spec, dataset).url) == arrays_digest(parallel.url)


def test_cache_from_another_spec_is_refused_until_rebuild(registry, dataset, small_spec):
    first = featurize(registry, small_spec, dataset)
    Path(small_spec).write_text('kind = "mel"\ndtype = "float32"\nblock_size = 3\n')
    before = arrays_digest(first.url)
    with pytest.raises(InputError, match=r"was built from another spec, dataset or model .*--rebuild"):
        featurize(registry, small_spec, dataset)
    assert arrays_digest(first.url) == before
    rebuilt = featurize(registry, small_spec, dataset, rebuild=True)
    assert FeatureStore.open(rebuilt.url).group["mel"].dtype == np.float32


def test_corrupt_clip_mid_dataset_names_the_clip_or_is_skipped(registry, dataset, small_spec, tmp_path):
    bad = tmp_path / "c" / "development" / "dev_004.wav"
    bad.write_bytes(bad.read_bytes()[:44] + b"\xff" * 10)  # header intact, data truncated
    with pytest.raises(InputError, match=r"dev_004\.wav: .*changed since ingest.*--skip-bad"):
        featurize(registry, small_spec, dataset)
    status = run_sql(registry, "SELECT status FROM feature_sets")[1]
    assert status == [("partial",)]  # blocks before the bad clip are kept, completeness is not claimed
    result = featurize(registry, small_spec, dataset, skip_bad=True)
    assert result.status == "complete" and [i for i, _ in result.bad] == [4]
    assert FeatureStore.open(result.url).bad_items().tolist() == [4]


@pytest.mark.parametrize("text, message", [("1/0", "need 0 <= K < N"), ("2/2", "need 0 <= K < N"), ("a/b", "expected K/N")])
def test_shard_syntax(text, message):
    with pytest.raises(InputError, match=message):
        parse_shard(text)


@pytest.mark.parametrize("content, message", [
    ('kind = "mel"\ndtyp = "float16"\n', r"unknown key 'dtyp' for kind 'mel' \(did you mean 'dtype'\?\)"),
    ('kind = "mle"\n', r"unknown feature kind 'mle'"),
    ('kind = "mel"\nhop = 160\n', r"mel parameters must be CNN14's"),
    ('kind = "mel"\nblock_size = 0\n', r"block_size must be a positive integer"),
    ('kind = "mel\n', r"is not valid TOML"),
])
def test_spec_errors(registry, dataset, tmp_path, content, message):
    spec = tmp_path / "bad.toml"
    spec.write_text(content)
    with pytest.raises(InputError, match=message):
        featurize(registry, str(spec), dataset)


def test_unknown_spec_and_split(registry, dataset):
    with pytest.raises(InputError, match=r"unknown feature spec 'nope' \(packaged: .*mel"):
        featurize(registry, "nope", dataset)
    with pytest.raises(InputError, match=r"has no split 'test'"):
        featurize(registry, "mel", dataset, split="test")


def test_unwritable_cache_is_one_clear_error(registry, settings, dataset, small_spec, tmp_path):
    if os.geteuid() == 0:
        # root ignores permission bits; a file where the cache folder should be fails the same way
        blocked = tmp_path / "blocked"
        blocked.write_text("not a folder")
        cache = blocked / "cache"
    else:
        cache = tmp_path / "ro"
        cache.mkdir(mode=0o500)
    readonly = Registry(Settings.resolve(home=settings.home, cache_dir=cache))
    with pytest.raises(InputError, match=r"cannot write feature cache .*choose another --cache"):
        featurize(readonly, small_spec, dataset)
    assert run_sql(registry, "SELECT COUNT(*) FROM feature_sets")[1] == [(0,)]


def test_cache_on_an_fsspec_url(registry, settings, dataset, small_spec):
    """Any fsspec store works as the cache (here fsspec's in-memory filesystem)."""
    remote = Registry(Settings.resolve(home=settings.home, cache_dir="memory://aacbatch-test-cache/"))
    result = featurize(remote, small_spec, dataset)
    assert result.url == "memory://aacbatch-test-cache/c/mel.zarr" and result.status == "complete"
    assert featurize(remote, small_spec, dataset).computed_blocks == 0
    assert FeatureStore.open(result.url).is_complete()
