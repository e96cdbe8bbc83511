"""Bad input, command by command: exit ≠ 0, exactly one ``aacbatch: error:`` line (the last
line of stderr, so a message cannot spill onto a second line), no traceback, and registry and
caches unchanged (checked by hashing the registry file and every cache file before and after).

The cases are one table (:data:`CASES`, counted in the test id); most of it is hostile
listings for every ingest format: encodings other than UTF-8, broken headers, quoting that
swallows rows, rows of the wrong width, control characters in captions, names and tags,
non-text YAML/JSON values, and paths holding line breaks or control characters.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import NamedTuple

import pytest
import zarr
from click.testing import CliRunner

from aacbatch.cli import cli
from aacbatch.errors import InputError
from aacbatch.featurize.job import featurize
from aacbatch.registry.queries import run_sql

from conftest import make_clotho, write_csv, write_wav


def digest(settings) -> str:
    h = hashlib.sha256()
    files = [settings.home / "registry.duckdb"] + sorted(p for p in Path(settings.cache_dir).rglob("*") if p.is_file())
    for path in files:
        if path.exists():
            h.update(str(path).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


class Corpus(NamedTuple):
    """A small corpus written for one case: its format, its listing files (relative path →
    bytes, over the format's good defaults), the path given to ``ingest`` (relative to the
    corpus folder, whose name is ``folder``), and extra arguments."""

    fmt: str
    files: dict[str, bytes]
    target: str = ""
    folder: str = "corpus"
    args: tuple[str, ...] = ()


# --- the good listings each corpus starts from (each ingests cleanly) --------------------------

CLOTHO = "file_name,caption_1\ndev_000.wav,A dog barks.\ndev_001.wav,Rain falls.\n"
FOLDER = "file_name,caption,split,tags\na.wav,A dog barks.,train,dog\nb.wav,Rain falls.,train,rain\n"
AUDIOCAPS = "audiocap_id,youtube_id,start_time,caption\n1,abc,0,A dog barks.\n2,def,0,Rain falls.\n"
MACS = "files:\n- filename: a.wav\n  annotations:\n  - sentence: Birds sing.\n    tags: [birds]\n"
WAVCAPS = {"data": [{"id": "a", "caption": "A dog barks.", "audio": "a.wav"}]}


def clotho(text: str | bytes, **extra: str | bytes) -> Corpus:
    files = {"clotho_captions_development.csv": text, **{k.replace("_", "."): v for k, v in extra.items()}}
    return Corpus("clotho", {k: v.encode() if isinstance(v, str) else v for k, v in files.items()})


def folder(text: str | bytes) -> Corpus:
    return Corpus("folder", {"list.csv": text.encode() if isinstance(text, str) else text}, target="list.csv")


def audiocaps(text: str | bytes) -> Corpus:
    return Corpus("audiocaps", {"train.csv": text.encode() if isinstance(text, str) else text})


def macs(text: str | bytes) -> Corpus:
    return Corpus("macs", {"MACS.yaml": text.encode() if isinstance(text, str) else text})


def wavcaps(doc: object) -> Corpus:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return Corpus("wavcaps", {"fsd.json": data}, target="fsd.json")


def caption(text: str) -> str:
    """The good Clotho listing with ``text`` as the first caption (quoted, as csv writes it)."""
    return CLOTHO.replace("A dog barks.", text)


def write_corpus(root: Path, corpus: Corpus) -> Path:
    """Audio for ``corpus.fmt`` (every good listing's files exist), then its listing files."""
    if corpus.fmt == "clotho":
        make_clotho(root, {"development": 2}, n_captions=1)
    elif corpus.fmt in ("folder", "wavcaps"):
        for name in ("a.wav", "b.wav"):
            write_wav(root / name)
    else:
        for name in ("a.wav", "abc.wav", "def.wav"):
            write_wav(root / "audio" / name)
    defaults = {"folder": {"list.csv": FOLDER}, "audiocaps": {"train.csv": AUDIOCAPS}, "macs": {"MACS.yaml": MACS},
                "wavcaps": {"fsd.json": json.dumps(WAVCAPS)}}.get(corpus.fmt, {})
    for rel, data in {**{k: v.encode() for k, v in defaults.items()}, **corpus.files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root / corpus.target


LATIN1_HEADER = "file_name,caption_1\n".encode()
UTF16_TEXT = CLOTHO.encode("utf-16")  # with its byte-order mark

INGEST: list[tuple[str, Corpus, str]] = [
    # Encodings: one line naming the file, the byte, line and column, and iconv.
    ("latin-1 caption", clotho(caption("Un café.").encode("latin-1")), "is not UTF-8 text: byte 0xE9 at line 2, column 19 (byte offset 38)"),
    ("stray 0xff", clotho(CLOTHO.encode()[:-3] + b"\xff.\n"), "byte 0xFF at line 3"),
    ("cp1252 smart quotes", clotho(caption("A \u201cdog\u201d.").encode("cp1252")), "byte 0x93 at line 2"),
    ("non-utf-8 header", clotho("file_nam\u00e9,caption_1\n".encode("latin-1")), "byte 0xE9 at line 1, column 9"),
    ("truncated sequence at eof", clotho(CLOTHO.encode() + b"\xc3"), "unexpected end of data"),
    ("lone continuation byte", clotho(caption("A \x80 dog.").encode("utf-8").replace(b"\xc2\x80", b"\x80")), "byte 0x80"),
    ("utf-16 with bom", clotho(UTF16_TEXT), "is UTF-16 text (it starts with a UTF-16 byte-order mark)"),
    ("utf-16-le without bom", clotho(CLOTHO.encode("utf-16-le")), "holds a NUL byte at line 1, column 2"),
    ("utf-16-be without bom", clotho(CLOTHO.encode("utf-16-be")), "holds a NUL byte at line 1, column 1"),
    ("utf-32", clotho(CLOTHO.encode("utf-32")), "UTF-16"),
    ("nul byte in a caption", clotho(caption("A dog\x00 barks.").encode()), "holds a NUL byte at line 2"),
    ("labels.txt 0xff", clotho(CLOTHO, labels_txt=b"Dog\n\xffRain\n"), "labels.txt is not UTF-8 text: byte 0xFF at line 2"),
    ("tags.csv latin-1", clotho(CLOTHO, tags_csv="file_name,tags\ndev_000.wav,Chien;Pi\u00e8ce\n".encode("latin-1")),
     "tags.csv is not UTF-8 text"),
    ("folder csv latin-1", folder(FOLDER.replace("Rain", "Pluie d\u00e9").encode("latin-1")), "list.csv is not UTF-8 text"),
    ("audiocaps csv 0xff", audiocaps(AUDIOCAPS.encode() + b"3,abc,0,\xff\n"), "train.csv is not UTF-8 text: byte 0xFF at line 4"),
    ("macs yaml latin-1", macs(MACS.replace("Birds", "Oiseaux \u00e9").encode("latin-1")), "MACS.yaml is not UTF-8 text"),
    ("macs yaml utf-16", macs(MACS.encode("utf-16")), "MACS.yaml is UTF-16 text"),
    ("wavcaps json latin-1", wavcaps(json.dumps(WAVCAPS, ensure_ascii=False).replace("dog", "d\u00f6g").encode("latin-1")),
     "fsd.json is not UTF-8 text"),
    ("wavcaps json utf-16", wavcaps(json.dumps(WAVCAPS).encode("utf-16-le")), "fsd.json holds a NUL byte"),
    # Headers: the column, by name.
    ("caption_x", clotho("file_name,caption_1,caption_x\ndev_000.wav,a.,b.\ndev_001.wav,c.,d.\n"),
     "column 'caption_x' is not a caption column"),
    ("caption_0", clotho("file_name,caption_1,caption_0\ndev_000.wav,a.,b.\ndev_001.wav,c.,d.\n"),
     "column 'caption_0' is not a caption column"),
    ("only caption_0", clotho(CLOTHO.replace("caption_1", "caption_0")), "missing column(s) caption_1 (header is file_name,caption_0)"),
    ("caption_01", clotho("file_name,caption_1,caption_01\ndev_000.wav,a.,b.\ndev_001.wav,c.,d.\n"),
     "column 'caption_01' is not a caption column"),
    ("caption_-1", clotho("file_name,caption_1,caption_-1\ndev_000.wav,a.,b.\ndev_001.wav,c.,d.\n"), "'caption_-1'"),
    ("duplicate caption_1", clotho("file_name,caption_1,caption_1\ndev_000.wav,a.,b.\ndev_001.wav,c.,d.\n"),
     "column 'caption_1' appears twice in the header"),
    ("caption gap", clotho("file_name,caption_1,caption_3\ndev_000.wav,a.,b.\ndev_001.wav,c.,d.\n"), "caption_2 is missing"),
    ("extra clotho column", clotho("file_name,caption_1,notes\ndev_000.wav,a.,b.\ndev_001.wav,c.,d.\n"),
     "column 'notes' is not a caption column"),
    ("missing file_name", clotho(CLOTHO.replace("file_name", "file")), "missing column(s) file_name"),
    ("missing caption_1", clotho(CLOTHO.replace("caption_1", "caption")), "missing column(s) caption_1"),
    ("unnamed column", clotho("file_name,,caption_1\ndev_000.wav,x,a.\ndev_001.wav,y,b.\n"),
     "column 2 of the header has no name"),
    ("trailing comma in header", clotho(CLOTHO.replace("caption_1\n", "caption_1,\n")), "column 3 of the header has no name"),
    ("header only", clotho("file_name,caption_1\n"), "has a header but no rows"),
    ("header only, no newline", clotho("file_name,caption_1"), "has a header but no rows"),
    ("empty file", clotho(b""), "is empty: expected a header line file_name,caption_1"),
    ("blank lines only", clotho("\n \n\r\n"), "is empty"),
    ("only a utf-8 bom", clotho(b"\xef\xbb\xbf"), "is empty"),
    ("semicolon separated", clotho(CLOTHO.replace(",", ";")), "separates columns with semicolons"),
    ("tab separated", clotho(CLOTHO.replace(",", "\t")), "separates columns with tabs"),
    ("folder semicolons", folder(FOLDER.replace(",", ";")), "separates columns with semicolons"),
    ("folder misspelt column", folder(FOLDER.replace("split", "Split")), "unknown column 'Split' (did you mean 'split'?)"),
    ("folder unknown column", folder(FOLDER.replace("tags", "labels")), "unknown column 'labels'"),
    ("folder duplicate column", folder("file_name,caption,caption\na.wav,x.,y.\n"), "column 'caption' appears twice"),
    ("folder missing caption", folder("file_name,text\na.wav,x.\n"), "missing column(s) caption"),
    ("folder header only", folder("file_name,caption\n"), "has a header but no rows"),
    ("folder empty", folder(""), "list.csv is empty"),
    ("tags.csv without tags column", clotho(CLOTHO, tags_csv="file_name,tag\ndev_000.wav,Dog\n"), "missing column(s) tags"),
    ("tags.csv header only", clotho(CLOTHO, tags_csv="file_name,tags\n"), "tags.csv has a header but no rows"),
    ("tags.csv duplicate file", clotho(CLOTHO, tags_csv="file_name,tags\ndev_000.wav,Dog\ndev_000.wav,Rain\n"),
     "tags.csv line 3: 'dev_000.wav' is listed again (first on line 2)"),
    ("labels.txt duplicate", clotho(CLOTHO, labels_txt="Dog\nRain\nDog\n"), "labels.txt line 3: label 'Dog' is listed again"),
    ("audiocaps missing youtube_id", audiocaps(AUDIOCAPS.replace("youtube_id", "ytid")), "missing column(s) youtube_id"),
    ("audiocaps extra column", audiocaps(AUDIOCAPS.replace("caption\n", "caption,x\n").replace(".\n", ".,1\n")),
     "unknown column 'x'"),
    # Quoting that swallows rows, and rows of the wrong width: the row, by line.
    ("unclosed quote to eof", clotho(CLOTHO.replace("Rain falls.", '"Rain falls.')),
     "line 3: a quoted field opened here is never closed"),
    ("unclosed quote swallows rows", clotho(CLOTHO.replace("A dog barks.", '"A dog barks.') + 'dev_002.wav,Wind."\n'),
     "line 2: field 'caption_1' runs over lines 2-4"),
    ("unclosed quote until a quoted field", clotho(CLOTHO.replace("A dog barks.", '"A dog barks.') + 'dev_002.wav,"Wind."\n'),
     "line 2: a quoted field opened here runs on to line 4"),
    ("folder quote swallows rows", folder(FOLDER.replace("A dog barks.,train", '"A dog barks.,train') + 'c.wav,x",train,\n'),
     "list.csv line 2: field 'caption' runs over lines 2-4"),
    ("quoted field with a line break", clotho(caption('"A dog\nbarks."')), "field 'caption_1' runs over lines 2-3"),
    ("quoted field with crlf", clotho(caption('"A dog\r\nbarks."')), "runs over lines 2-3"),
    ("quoted field with a lone cr", clotho(caption('"A dog\rbarks."')), "runs over lines 2-3"),
    ("text after a closing quote", clotho(caption('"A dog" barks.')), "line 2: malformed CSV"),
    ("undoubled quote in a quoted field", clotho(caption('"A "dog" barks."')), "line 2: malformed CSV"),
    ("merged fields", clotho(caption('"A dog"",""barks."')), "holds '\",\"'"),
    ("unquoted comma", clotho(caption("A dog, barking.")), "line 2 has 3 field(s) but the header has 2"),
    ("row without a caption", clotho(CLOTHO + "dev_002.wav\n"), "line 4 has 1 field(s) but the header has 2"),
    ("whitespace-only line", clotho(CLOTHO.replace("\ndev_001", "\n   \ndev_001")), "line 3 has 1 field(s)"),
    ("folder row too short", folder(FOLDER + "c.wav,Wind.\n"), "line 4 has 2 field(s) but the header has 4"),
    ("folder row too long", folder(FOLDER + "c.wav,Wind.,train,,extra\n"), "line 4 has 5 field(s)"),
    ("tags.csv unclosed quote", clotho(CLOTHO, tags_csv='file_name,tags\ndev_000.wav,"Dog\n'), "tags.csv line 2: a quoted field"),
    ("audiocaps unclosed quote", audiocaps(AUDIOCAPS.replace("Rain falls.", '"Rain falls.')), "train.csv line 3: a quoted"),
    ("field over the csv limit", clotho(caption('"' + "word " * 30000)), "line 2: a field longer than 131072 characters"),
    # Control characters: refused (a tab in a caption becomes a space), naming the character.
    ("U+0001 in a caption", clotho(caption("A dog\x01 barks.")), "caption 1 of 'dev_000.wav' holds U+0001 at character 6"),
    ("escape sequence in a caption", clotho(caption("A \x1b[31mred\x1b[0m dog.")), "holds U+001B"),
    ("DEL in a caption", clotho(caption("A dog\x7f.")), "holds U+007F (DEL)"),
    ("C1 NEL in a caption", clotho(caption("A dog\x85barks.")), "holds U+0085"),
    ("C1 CSI in a caption", clotho(caption("A dog\x9bbarks.")), "holds U+009B"),
    ("line separator in a caption", clotho(caption("A dog\u2028barks.")), "holds U+2028 (line separator)"),
    ("paragraph separator", clotho(caption("A dog\u2029barks.")), "holds U+2029 (paragraph separator)"),
    ("vertical tab in a caption", clotho(caption("A dog\x0bbarks.")), "holds U+000B"),
    ("form feed in a caption", clotho(caption("A dog\x0cbarks.")), "holds U+000C"),
    ("bell in the second caption", clotho(CLOTHO.replace("Rain falls.", "Rain\x07 falls.")),
     "line 3: caption 1 of 'dev_001.wav' holds U+0007"),
    ("control character in a file name", clotho(CLOTHO.replace("dev_000.wav", "dev\x01000.wav")),
     "file name 'dev\\x01000.wav' holds U+0001"),
    ("tab in a file name", clotho(CLOTHO.replace("dev_000.wav", "dev\t000.wav")), "holds U+0009 (tab)"),
    ("control character in a tag", clotho(CLOTHO, tags_csv="file_name,tags\ndev_000.wav,Dog\x02;Rain\n"), "holds U+0002"),
    ("control character in labels.txt", clotho(CLOTHO, labels_txt="Dog\nRa\x03in\n"), "labels.txt line 2"),
    ("line separator in labels.txt", clotho(CLOTHO, labels_txt="Dog\u2028Rain\n"), "U+2028"),
    ("control character in a split", folder(FOLDER.replace(",train,dog", ",tr\x04ain,dog")), "split name (list.csv line 2) 'tr\\x04ain' is not a valid name"),
    ("macs sentence with a bell", macs(MACS.replace("Birds sing.", '"Birds\\a sing."')), "caption 1 of 'a.wav' holds U+0007"),
    ("macs file name with a newline", macs(MACS.replace("a.wav", '"a\\nb.wav"')), "file name 'a\\nb.wav' holds U+000A"),
    ("macs tag with a semicolon", macs(MACS.replace("[birds]", '["birds;rain"]')), "holds ';', which separates tags"),
    ("wavcaps caption with nul", wavcaps({"data": [{"id": "a", "caption": "A\u0000 dog.", "audio": "a.wav"}]}),
     "holds U+0000 (NUL)"),
    ("wavcaps lone surrogate", wavcaps(b'{"data": [{"id": "a", "caption": "A \\ud800 dog.", "audio": "a.wav"}]}'),
     "holds U+D800"),
    ("wavcaps id with a newline", wavcaps({"data": [{"id": "a\nb", "caption": "x."}]}), "file name 'a\\nb' holds U+000A"),
    # Structure of YAML/JSON listings: the entry, by index.
    ("macs null sentence", macs(MACS.replace("Birds sing.", "null")), "sentence: expected text, got null"),
    ("macs numeric sentence", macs(MACS.replace("Birds sing.", "42")), "expected text, got int 42"),
    ("macs boolean sentence", macs(MACS.replace("Birds sing.", "yes")), "expected text, got bool True"),
    ("macs annotations not a list", macs("files:\n- filename: a.wav\n  annotations: Birds sing.\n"),
     "files[0].annotations: expected a list of mappings"),
    ("macs tags a string", macs(MACS.replace("[birds]", "birds")), "tags: expected a list of tags, got str"),
    ("macs entry a string", macs("files:\n- a.wav\n"), "files[0]: expected a mapping"),
    ("macs top-level list", macs("- a.wav\n"), "expected a top-level 'files' list, got list"),
    ("macs yaml syntax", macs("files: [\n"), "MACS.yaml is not valid YAML"),
    ("macs raw control character", macs(MACS.replace("Birds", "Bi\x01rds")), "MACS.yaml is not valid YAML"),
    ("wavcaps null caption", wavcaps({"data": [{"id": "a", "caption": None}]}), "'caption' must be a string, got null"),
    ("wavcaps list caption", wavcaps({"data": [{"id": "a", "caption": ["x."]}]}), "'caption' must be a string"),
    ("wavcaps boolean id", wavcaps({"data": [{"id": True, "caption": "x."}]}), "'id' must be a non-empty string"),
    ("wavcaps empty id", wavcaps({"data": [{"id": " ", "caption": "x."}]}), "'id' must be a non-empty string"),
    ("wavcaps numeric audio", wavcaps({"data": [{"id": "a", "caption": "x.", "audio": 3}]}), "'audio' must be a string"),
    ("wavcaps invalid json", wavcaps(b'{"data": [}'), "fsd.json is not valid JSON"),
    ("wavcaps nested too deeply", wavcaps(b"[" * 100000), "nested too deeply"),
    # Paths with line breaks and control characters: shown quoted, one line.
    ("newline in the corpus folder", Corpus("clotho", {"development/dev_001.wav": b""}, folder="new\nline"),
     "new\\nline"),
    ("carriage return in the listing name", Corpus("folder", {"list\r.csv": b"file_name\na.wav\n"}, target="list\r.csv"),
     "list\\r.csv': missing column(s) caption (header is file_name); expected file_name,caption[,split][,tags]"),
    ("escape in a missing path", Corpus("folder", {}, target="no\x1b[2Jpe.csv"), "no\\x1b[2Jpe.csv' does not exist"),
    ("newline in a missing audio folder", Corpus("audiocaps", {}, args=("--audio-dir", "/no/such\nfolder")),
     "audio folder '/no/such\\nfolder' does not exist"),
    ("tab in the folder of an unreadable file", Corpus("folder", {"a.wav": b"RIFFjunk"}, folder="tab\there"),
     "tab\\there"),
    ("newline in a folder of two jsons", Corpus("wavcaps", {"b.json": b"{}"}, folder="two\njsons"),
     "two\\njsons': expected exactly one WavCaps .json file"),
]

OTHER: list[tuple[str, list[str], str]] = [
    ("ingest missing path", ["ingest", "clotho", "{bad}/nope", "--name", "x"], "does not exist"),
    ("ingest empty caption", ["ingest", "clotho", "{bad}/empty caption", "--name", "x"], "caption 1 of 'dev_001.wav' is empty"),
    ("ingest huge caption", ["ingest", "clotho", "{bad}/huge caption", "--name", "x"], "characters long"),
    ("ingest 0-byte audio", ["ingest", "clotho", "{bad}/zero byte", "--name", "x"], "dev_001.wav"),
    ("ingest malformed csv", ["ingest", "clotho", "{bad}/bad csv", "--name", "x"], "missing column(s) file_name"),
    ("ingest same name, other data", ["ingest", "clotho", "{bad}/zero byte", "--name", "sc"], "dev_001.wav"),
    ("ingest name with a control character", ["ingest", "clotho", "{bad}/ok", "--name", "x\x01y"], "'x\\x01y'"),
    ("split unknown dataset", ["split", "nope"], "unknown dataset 'nope'"),
    ("split bad ratio", ["split", "sc", "--ratio", "1.5", "--replace"], "strictly between 0 and 1"),
    ("sql injection in a param name", ["sql", "SELECT 1", "--param", "x; DROP TABLE runs=1"], "expected NAME=VALUE"),
    ("sql syntax error", ["sql", "SELEC name FROM datasets"], "query:"),
    ("sql missing param", ["sql", "SELECT * FROM runs WHERE id = :id"], "--param id=VALUE"),
    ("featurize unknown spec", ["featurize", "nope", "--dataset", "sc"], "unknown feature spec 'nope'"),
    ("featurize spec typo", ["featurize", "mel", "--dataset", "sc", "--set", "dtyp=float32"], "did you mean 'dtype'"),
    ("featurize shard syntax", ["featurize", "mel", "--dataset", "sc", "--shard", "3/2"], "need 0 <= K < N"),
    ("featurize other spec over cache", ["featurize", "mel", "--dataset", "sc", "--set", "dtype='float32'"], "--rebuild"),
    ("featurize latin-1 spec", ["featurize", "{bad}/latin1.toml", "--dataset", "sc"], "is not UTF-8 text: byte 0xE9 at line 1"),
    ("featurize utf-16 spec", ["featurize", "{bad}/utf16.toml", "--dataset", "sc"], "is UTF-16 text"),
    ("featurize invalid toml", ["featurize", "{bad}/broken.toml", "--dataset", "sc"], "is not valid TOML"),
    ("featurize spec path with a newline", ["featurize", "{bad}/sp\nec.toml", "--dataset", "sc"], "sp\\nec.toml' does not exist"),
    ("features show unknown", ["features", "show", "nope", "--dataset", "sc"], "no feature set 'nope'"),
    ("train unknown init-from", ["train", "--task", "tagger", "--dataset", "sc", "--init-from", "nope"], "unknown run id 'nope'"),
    ("train unknown setting", ["train", "--task", "tagger", "--dataset", "sc", "--set", "epoch=3"], "did you mean 'epochs'"),
    ("train latin-1 recipe", ["train", "--task", "tagger", "--dataset", "sc", "--config", "{bad}/latin1.toml"],
     "config {bad}/latin1.toml is not UTF-8 text"),
    ("train recipe with a nul byte", ["train", "--task", "tagger", "--dataset", "sc", "--config", "{bad}/nul.toml"],
     "holds a NUL byte"),
    ("train resume unknown", ["train", "--resume", "nope"], "unknown run id 'nope'"),
    ("evaluate unknown run", ["evaluate", "retrieval", "--run", "nope"], "unknown run id 'nope'"),
    ("metrics bad json", ["metrics", "caption", "--predictions", "{bad}/preds.json", "--references", "{bad}/refs.json"],
     "is not valid JSON"),
    ("metrics latin-1 predictions", ["metrics", "caption", "--predictions", "{bad}/latin1.json", "--references",
                                     "{bad}/refs.json"], "latin1.json is not UTF-8 text: byte 0xE9"),
    ("metrics utf-16 references", ["metrics", "caption", "--predictions", "{bad}/ok.json", "--references",
                                   "{bad}/utf16.json"], "utf16.json is UTF-16 text"),
    ("metrics non-string reference", ["metrics", "caption", "--predictions", "{bad}/ok.json", "--references",
                                      "{bad}/numbers.json"], "the references of 'a' must be strings, got 1"),
    ("metrics lone surrogate", ["metrics", "caption", "--predictions", "{bad}/surrogate.json", "--references",
                                "{bad}/refs.json"], "lone surrogate"),
    ("metrics nested too deeply", ["metrics", "caption", "--predictions", "{bad}/deep.json", "--references",
                                   "{bad}/refs.json"], "nested too deeply"),
    ("metrics missing file with a newline", ["metrics", "caption", "--predictions", "{bad}/pre\ndictions.json",
                                             "--references", "{bad}/refs.json"], "pre\\ndictions.json' does not exist"),
]


def ingest_args(i: int, corpus: Corpus) -> list[str]:
    return ["ingest", corpus.fmt, f"{{bad}}/ingest-{i:03d}/{corpus.folder}/{corpus.target}".rstrip("/"),
            "--name", "x", *corpus.args]


CASES: list[tuple[str, list[str], str]] = OTHER + [(name, ingest_args(i, corpus), message)
                                                   for i, (name, corpus, message) in enumerate(INGEST)]


@pytest.fixture
def workspace(synth_registry, settings, tmp_path):
    """A registry with SynthCaps ingested and log-mels cached, plus a folder of bad inputs."""
    bad = tmp_path / "bad inputs ü"  # spaces and unicode in every path below
    make_clotho(bad / "ok", {"development": 2})
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
    (bad / "ok.json").write_text(json.dumps({"a": "A dog."}))
    (bad / "latin1.json").write_bytes(json.dumps({"a": "Un café."}, ensure_ascii=False).encode("latin-1"))
    (bad / "utf16.json").write_bytes(json.dumps({"a": ["ref."]}).encode("utf-16"))
    (bad / "numbers.json").write_text(json.dumps({"a": [1, 2]}))
    (bad / "surrogate.json").write_text('{"a": "A \\udc80 dog."}')
    (bad / "deep.json").write_text("[" * 100000)
    (bad / "latin1.toml").write_bytes('kind = "mel" # caf\u00e9\n'.encode("latin-1"))
    (bad / "utf16.toml").write_bytes('kind = "mel"\n'.encode("utf-16"))
    (bad / "nul.toml").write_bytes(b'epochs = 1\x00\n')
    (bad / "broken.toml").write_text('kind = "mel\n')
    for i, (_, corpus, _) in enumerate(INGEST):
        write_corpus(bad / f"ingest-{i:03d}" / corpus.folder, corpus)
    newer = Path(settings.cache_dir) / "sc" / "mel.zarr"
    return settings, bad, newer


@pytest.mark.parametrize("cases", [CASES], ids=[f"{len(CASES)} cases"])
def test_every_bad_input_is_one_line_and_changes_nothing(workspace, cases):
    """Every case of :data:`CASES` (at least 140: the test id says how many): exit ≠ 0, one
    error line that is the last line of stderr, no traceback, nothing written."""
    assert len(cases) >= 140
    settings, bad, _ = workspace
    runner = CliRunner()
    failures = []
    for name, args, message in cases:
        args = [a.replace("{bad}", str(bad)) for a in args]
        message = message.replace("{bad}", str(bad))
        before = digest(settings)
        result = runner.invoke(cli, ["--home", str(settings.home), "--cache", str(settings.cache_dir), *args])
        lines = result.stderr.splitlines()
        errors = [line for line in lines if line.startswith("aacbatch: error: ")]
        problems = [
            result.exit_code == 0 and "exit code 0",
            len(errors) != 1 and f"{len(errors)} error lines",
            errors and lines[-1] != errors[0] and "the error is not the last line",
            errors and message not in errors[0] and f"expected {message!r}",
            "Traceback" in result.output + result.stderr and "a traceback",
            result.exception is not None and not isinstance(result.exception, SystemExit) and repr(result.exception),
            digest(settings) != before and "the registry or cache changed",
        ]
        if any(problems):
            failures.append(f"{name}: {', '.join(p for p in problems if p)}: {result.stderr!r}")
    assert not failures, "\n".join(failures)


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


@pytest.mark.parametrize("fmt", sorted({corpus.fmt for _, corpus, _ in INGEST}))
def test_the_good_listings_the_cases_start_from_ingest(registry, tmp_path, fmt):
    """Each hostile case differs from a listing that ingests cleanly, so a refusal is the
    damage's doing and not the base corpus's."""
    from aacbatch.data.ingest import ingest

    root = write_corpus(tmp_path / fmt, Corpus(fmt, {}, target={"folder": "list.csv", "wavcaps": "fsd.json"}.get(fmt, "")))
    assert ingest(registry, fmt, root, name=fmt).status == "created"
