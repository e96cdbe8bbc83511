"""Property: whatever CSV bytes and dataset name ``aacbatch ingest folder|clotho`` is given,
it either registers the data or says why in exactly one ``aacbatch: error:`` line, with no
traceback and the registry unchanged.

The generated listings mix near-valid CSVs (real headers, file names that exist, captions)
with the hostile pieces users actually produce: stray and doubled quotes, commas, semicolons
and tabs, CR/LF/CRLF line ends, control characters, non-ASCII text, other encodings (Latin-1,
UTF-16 with and without a byte-order mark), a UTF-8 byte-order mark, inserted random bytes,
and pure noise. Names may be empty or hold any character (an "invalid name" refusal is one
more one-line error). The examples are derandomised, so the test is the same on every run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, note, settings, strategies as st
from sqlalchemy import select

from aacbatch.cli import cli
from aacbatch.config import Settings
from aacbatch.registry.schema import Base
from aacbatch.registry.store import Registry

from conftest import write_wav

AUDIO = {"folder": ("a.wav", "b.wav"), "clotho": ("dev_000.wav", "dev_001.wav")}
HEADERS = {"folder": ("file_name,caption", "file_name,caption,split", "file_name,caption,split,tags", "file_name,tags,caption"),
           "clotho": ("file_name,caption_1", "file_name,caption_1,caption_2", "caption_1,file_name")}
BROKEN_HEADERS = ("file_name,caption_2", "file_name,caption_x", "file_name,caption,caption", "file_name,,caption", "file_name",
                  "file_name;caption", "", "file_name,caption_1,Split")
HOSTILE = list(',;"\'\t\n\r \x00\x01\x1b\x7f\x85\u2028\u2029\u00e9\u65e5\U0001F415.ab')
COUNTER = itertools.count()  # one folder per example

clean_text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=20)
hostile_text = st.one_of(st.text(st.sampled_from(HOSTILE), max_size=12), st.text(max_size=8))


def value(column: str, fmt: str):
    """A clean value for ``column`` other than ``file_name``: a split, tags or a caption."""
    if column == "split":
        return st.sampled_from(["train", "val", ""])
    if column == "tags":
        return st.sampled_from(["", "dog", "dog;rain"])
    return clean_text


@st.composite
def listings(draw) -> tuple[str, bytes]:
    """(format, CSV bytes): a well-formed listing (written by ``csv.writer``, so quoted as a
    spreadsheet would), then, often, one or more hostile edits; or pure noise."""
    fmt = draw(st.sampled_from(["folder", "clotho"]))
    if draw(st.integers(0, 11)) == 0:
        return fmt, draw(st.binary(max_size=200))
    header = draw(st.one_of(st.sampled_from(HEADERS[fmt]), st.sampled_from(BROKEN_HEADERS)) if draw(st.booleans())
                  else st.sampled_from(HEADERS[fmt]))
    columns = header.split(",")
    files = draw(st.permutations(AUDIO[fmt]))[: draw(st.integers(1, len(AUDIO[fmt])))]
    rows = [tuple(name if c == "file_name" else draw(value(c, fmt)) for c in columns) for name in files]
    if draw(st.integers(0, 2)) == 0:  # hostile: a field, a row's width, a quote, a separator
        edit = draw(st.sampled_from(["field", "width", "quote", "separator"]))
        r = draw(st.integers(0, len(rows) - 1))
        row = list(rows[r])
        if edit == "field":
            row[draw(st.integers(0, len(row) - 1))] = draw(hostile_text)
        elif edit == "width":
            row = row[:-1] if draw(st.booleans()) else row + [draw(hostile_text)]
        rows[r] = tuple(row)
    else:
        edit = None
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"]))).writerows([columns, *rows])
    text = buffer.getvalue()
    if edit == "quote" and '"' in text:
        at = draw(st.sampled_from([i for i, c in enumerate(text) if c == '"']))
        text = text[:at] + text[at + 1:]
    elif edit == "quote":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + '"' + text[at:]
    elif edit == "separator":
        text = text.replace(",", draw(st.sampled_from([";", "\t", "|"])))
    encoding = draw(st.sampled_from(["utf-8"] * 8 + ["utf-8-sig", "latin-1", "utf-16", "utf-16-le"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.integers(0, 5)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=3)) + data[at:]
    return fmt, data


UNIQUE = object()  # a fresh name, so that valid data is registered rather than refused as a clash
names = st.one_of(st.just(UNIQUE), st.just(UNIQUE), st.just(UNIQUE), st.just("prop"), st.text(max_size=10),
                  st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=10))


def registry_digest(home) -> str:
    """The registry's files, byte for byte (any row written changes them)."""
    h = hashlib.sha256()
    for path in sorted(home.glob("registry.duckdb*")):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """One registry and one audio pool for all examples (``--audio-dir`` points at it)."""
    root = tmp_path_factory.mktemp("properties")
    for name in AUDIO["folder"]:
        write_wav(root / "audio" / name)
    for name in AUDIO["clotho"]:
        write_wav(root / "audio" / "development" / name)
    home = root / "home"
    Registry(Settings.resolve(home=home, db_timeout=2.0)).upgrade()
    return root, home


@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=listings(), name=names)
def test_any_listing_and_name_is_ingested_or_refused_in_one_line(place, case, name):
    root, home = place
    fmt, listing = case
    number = next(COUNTER)
    name = f"ds-{number}" if name is UNIQUE else name
    folder = root / f"case-{number:04d}"
    folder.mkdir()
    csv_name = "list.csv" if fmt == "folder" else "clotho_captions_development.csv"
    (folder / csv_name).write_bytes(listing)
    target = folder / csv_name if fmt == "folder" else folder
    note(f"listing={listing!r} name={name!r}")
    before = registry_digest(home)
    result = CliRunner().invoke(cli, ["--home", str(home), "ingest", fmt, str(target), f"--name={name}",
                                      f"--audio-dir={root / 'audio'}"])
    assert "Traceback" not in result.output + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    event("ingested" if result.exit_code == 0 else "refused")  # --hypothesis-show-statistics shows the mix
    if result.exit_code == 0:
        assert result.stderr == "" and result.stdout.rstrip("\n").endswith(" captions)")
        return
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("aacbatch: error: "), result.stderr
    assert registry_digest(home) == before

