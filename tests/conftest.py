"""Shared fixtures: an isolated registry per test and small corpora written on the fly."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from aacbatch.config import Settings
from aacbatch.registry.store import Registry


@pytest.fixture
def settings(tmp_path: Path, backend: str, request) -> Settings:
    # ``backend`` is "duckdb" unless the test is marked @pytest.mark.backends(...) (see below).
    db_url = (request.getfixturevalue("pg_url") if backend == "postgresql"
              else f"sqlite:///{tmp_path / 'registry.sqlite'}" if backend == "sqlite" else None)
    return Settings.resolve(home=tmp_path / "home", db_url=db_url, db_timeout=2.0)


@pytest.fixture
def registry(settings: Settings) -> Registry:
    return Registry(settings)


def write_wav(path: Path, seconds: float = 0.5, sr: int = 16000, seed: int = 0, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    data = (0.1 * rng.standard_normal((int(seconds * sr), channels))).astype(np.float32)
    sf.write(str(path), data, sr, subtype="PCM_16")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def make_clotho(root: Path, per_split: dict[str, int] | None = None, n_captions: int = 5) -> Path:
    """A Clotho v2.1-layout folder with ``per_split`` clips per split."""
    per_split = per_split or {"development": 6, "validation": 3, "evaluation": 3}
    header = ["file_name"] + [f"caption_{i}" for i in range(1, n_captions + 1)]
    seed = 0
    for split, n in per_split.items():
        rows = []
        for k in range(n):
            name = f"{split[:3]}_{k:03d}.wav"
            write_wav(root / split / name, seed=seed)
            seed += 1
            rows.append([name] + [f"A {split} sound number {k}, take {j}." for j in range(n_captions)])
        write_csv(root / f"clotho_captions_{split}.csv", header, rows)
    return root


@pytest.fixture
def clotho_dir(tmp_path: Path) -> Path:
    return make_clotho(tmp_path / "clotho")


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """A small SynthCaps set shared by the slower tests (generated once per session)."""
    from aacbatch.data.synthcaps import generate

    out = tmp_path_factory.mktemp("synth") / "synthcaps"
    generate(out, 60, seed=3, duration=(1.5, 2.0))
    return out


@pytest.fixture
def synth_registry(registry, synth_dir) -> Registry:
    """``registry`` with SynthCaps ingested as ``sc``, re-split, and its log-mels cached."""
    from aacbatch.data.ingest import ingest
    from aacbatch.data.splits import resplit
    from aacbatch.featurize.job import featurize

    ingest(registry, "clotho", synth_dir, name="sc")
    resplit(registry, "sc", ratio=0.8)
    featurize(registry, "mel", "sc")
    return registry


# --- Registry backends: DuckDB always, a throwaway PostgreSQL server where a test asks for it ---
#
# Tests (or modules, via ``pytestmark``) marked ``@pytest.mark.backends("duckdb", "postgresql")``
# are run once per backend: the ``backend`` fixture is parametrized and ``settings``/``registry``
# point at a fresh DuckDB file or a fresh PostgreSQL database. Unmarked tests use DuckDB only.
# One PostgreSQL cluster serves the whole session (started on first use, stopped at the end even
# when tests fail); each test gets its own database. Without the server binaries those test
# cases skip, naming the package to install.

BACKENDS = ("duckdb", "postgresql", "sqlite")


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "backends(*names): run the test once per registry backend named (duckdb, postgresql, sqlite); "
                   "unmarked tests use duckdb only")


def pytest_generate_tests(metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    names = marker.args if marker else ("duckdb",)
    unknown = [n for n in names if n not in BACKENDS]
    if unknown or not names:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: backends{names!r}: use some of {BACKENDS}")
    if marker:  # unmarked tests keep their ids unchanged
        metafunc.parametrize("backend", names, indirect=True)


@pytest.fixture
def backend(request) -> str:
    return getattr(request, "param", "duckdb")


@pytest.fixture(scope="session")
def pg_server():
    """The session's throwaway PostgreSQL server (skips when it cannot run on this machine)."""
    import pg

    reason = pg.unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = pg.PgServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server):
    """SQLAlchemy URL of a fresh, empty database on the session's PostgreSQL server."""
    name = pg_server.create_database()
    yield pg_server.url(name)
    pg_server.drop_database(name)


@pytest.fixture(scope="module")
def single_thread():
    """Tiny batches gain nothing from threads, and on a busy CI host OpenMP threads that
    wait for each other make them several times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
