"""What hostile-input checks must still accept, and the helpers they are built from: UTF-8
with a byte-order mark, CRLF line ends, quoted commas and doubled quotes, tabs in captions
(turned into spaces), non-ASCII text; ``shown`` and the UTF-8 decoder's positions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from aacbatch.data.ingest import ingest
from aacbatch.errors import InputError, shown
from aacbatch.evaluate.captions import load_json_mapping
from aacbatch.registry.schema import Caption, Dataset
from aacbatch.textfiles import decode_utf8, describe_character, first_forbidden
from aacbatch.typed import read_toml

from conftest import make_clotho, write_wav

BOM = b"\xef\xbb\xbf"


def captions(registry, dataset: str) -> list[str]:
    with registry.transaction() as session:
        dataset_id = session.scalar(select(Dataset.id).where(Dataset.name == dataset))
        return session.scalars(select(Caption.text).where(Caption.dataset_id == dataset_id)
                               .order_by(Caption.clip_id, Caption.caption_index)).all()


def test_bom_crlf_quotes_and_tabs_are_accepted_in_a_clotho_listing(registry, tmp_path):
    root = make_clotho(tmp_path / "c", {"development": 2}, n_captions=2)
    text = ('file_name,caption_1,caption_2\r\n'
            'dev_000.wav,"A dog, then a cat.","She said ""hush""."\r\n'
            'dev_001.wav,Rain\ton a roof.,Caf\u00e9 noise \u2013 \u65e5\u672c.\r\n')
    (root / "clotho_captions_development.csv").write_bytes(BOM + text.encode())
    (root / "labels.txt").write_bytes(BOM + "Dog\r\n\r\nRain\r\n".encode())
    (root / "tags.csv").write_bytes(BOM + b"file_name,tags\r\ndev_000.wav,Dog;Rain\r\n")
    assert ingest(registry, "clotho", root, name="c").n_captions == 4
    assert sorted(captions(registry, "c")) == sorted(['A dog, then a cat.', 'She said "hush".', "Rain on a roof.",
                                                      "Caf\u00e9 noise \u2013 \u65e5\u672c."])
    with registry.transaction() as session:
        assert json.loads(session.scalar(select(Dataset.meta_json)))["tag_labels"] == ["Dog", "Rain"]


def test_header_names_are_trimmed_and_blank_lines_skipped(registry, tmp_path):
    write_wav(tmp_path / "f" / "a.wav")
    (tmp_path / "f" / "list.csv").write_text("file_name , caption\n\na.wav,One.\n\n")
    assert ingest(registry, "folder", tmp_path / "f" / "list.csv", name="f").n_captions == 1


def test_bom_is_accepted_in_yaml_json_toml_and_metrics_files(registry, tmp_path):
    write_wav(tmp_path / "m" / "audio" / "a.wav")
    (tmp_path / "m" / "MACS.yaml").write_bytes(BOM + b"files:\n- filename: a.wav\n  annotations:\n  - sentence: Hi.\n")
    assert ingest(registry, "macs", tmp_path / "m", name="m").n_captions == 1
    write_wav(tmp_path / "w" / "a.wav")
    (tmp_path / "w" / "x.json").write_bytes(BOM + json.dumps({"data": [{"id": "a", "caption": "Hi."}]}).encode())
    assert ingest(registry, "wavcaps", tmp_path / "w", name="w").n_captions == 1
    (tmp_path / "spec.toml").write_bytes(BOM + b'kind = "mel"\n')
    assert read_toml(tmp_path / "spec.toml", "feature spec") == {"kind": "mel"}
    (tmp_path / "refs.json").write_bytes(BOM + json.dumps({"a": ["A dog."]}).encode())
    assert load_json_mapping(tmp_path / "refs.json", list) == {"a": ["A dog."]}


@pytest.mark.parametrize("data, where", [
    (b"ab\xffc", "line 1, column 3 (byte offset 2)"),
    (b"x\ny\n\xc3\xa9\xe9", "line 3, column 2 (byte offset 6)"),  # columns count characters, not bytes
    (BOM + b"\xff", "line 1, column 1 (byte offset 3)"),  # the BOM is no column
    (b"ok\n\x00", "line 2, column 1 (byte offset 3)"),
])
def test_decoding_errors_give_line_column_and_byte_offset(data, where):
    with pytest.raises(InputError, match=r"^f\.csv .*" + where.replace("(", r"\(").replace(")", r"\)")):
        decode_utf8(data, "f.csv")


def test_shown_quotes_only_what_would_break_a_line():
    assert shown(Path("/data/bad inputs ü/a b.wav")) == "/data/bad inputs ü/a b.wav"
    for text in ("a\nb", "a\rb", "a\tb", "a\x00b", "a\x1b[2Jb", "a\u2028b", "a\x85b", "a\udcffb"):
        out = shown(text)
        assert out == repr(text) and out.isprintable() and len(out.splitlines()) == 1


def test_forbidden_characters_are_exactly_cc_line_separators_and_surrogates():
    forbidden = {c for c in map(chr, range(0x10000)) if first_forbidden(c) is not None}
    expected = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *range(0xD800, 0xE000)]}
    assert forbidden == expected
    assert first_forbidden("A dog\u200d barks \u00ad \U0001F415") is None  # format characters and emoji pass
    assert describe_character("\x00") == "U+0000 (NUL)" and describe_character("\x1b") == "U+001B"
