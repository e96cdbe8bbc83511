"""Caption metrics against pycocoevalcap's own classes, plus SPICE/SPIDEr/SPIDEr-FL wiring and input errors.

JVM start-ups dominate the run time, so the Java-backed results are module fixtures: one PTB
tokenisation of ours, one full ``caption_metrics`` run (tokenizer + METEOR), and
pycocoevalcap's tokenizer and METEOR once each for comparison.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor as CocoMeteor

from aacbatch.errors import InputError
from aacbatch.evaluate import captions, spice
from aacbatch.evaluate.captions import caption_metrics, install_assets
from aacbatch.evaluate.cider import CiderD
from aacbatch.evaluate.fense import FluencyErrors
from aacbatch.evaluate.ptb import TOKENIZER_JAR, pycocoevalcap_file, tokenize

TOL = 1e-6
# Zipf-ish vocabulary with the things PTB and the metrics treat specially: capitals, clitics,
# quotes, brackets, hyphens, fractions, non-ASCII, "|||", and punctuation-only tokens.
WORDS = ("a the dog dog barks loudly bird birds chirp car passes by rain falls on roof people talk in "
         "background water flows door slams twice and then while engine hums wind blows Someone is "
         "walking footsteps metal clanks crowd cheers café it's don't man's (far) away \"quiet\" "
         "high-pitched 3 1/2 times again & over ||| ... - -- ; , . ! ? : ' `").split()
SHARED = ("A dog barks.", "Rain falls on a metal roof.", "People are talking in the background.")


def random_corpus(n_items: int, seed: int = 0, n_refs: int = 5) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Predictions and references sharing n-grams: each item's captions are mutations of one base sentence.

    Lengths run from one word to ~40; words repeat (Zipf-like draws and doubled words); some
    references are shared across items, some candidates are punctuation only (empty after PTB).
    """
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(WORDS) + 1)
    p /= p.sum()

    def sentence(length: int) -> list[str]:
        return list(rng.choice(WORDS, size=length, p=p))

    def mutate(base: list[str]) -> str:
        words = [w if rng.random() > 0.3 else str(rng.choice(WORDS, p=p)) for w in base if rng.random() > 0.15]
        if rng.random() < 0.2 and words:
            i = int(rng.integers(len(words)))
            words.insert(i, words[i])
        text = " ".join(words) or str(rng.choice(WORDS))
        return text[0].upper() + text[1:] + ("." if rng.random() < 0.7 else "")

    predictions, references = {}, {}
    for i in range(n_items):
        base = sentence(int(rng.choice([1, 2, 3, 8, 12, 20, 35])))
        key = f"clip {i:03d}.wav" if i % 50 else f"clip-é-{i}"
        predictions[key] = "!!" if i % 97 == 5 else mutate(base)
        references[key] = [SHARED[i % 3] if rng.random() < 0.1 else mutate(base) for _ in range(n_refs)]
    return predictions, references


@pytest.fixture(scope="module")
def corpus() -> tuple[dict[str, str], dict[str, list[str]]]:
    return random_corpus(300)


@pytest.fixture(scope="module")
def coco_tokens(corpus, tmp_path_factory) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """pycocoevalcap's PTBTokenizer on (references, predictions), as COCOEvalCap calls it.

    It writes its temp file beside its own module, so we run a copy of the module from a
    temporary folder (jar symlinked next to it) instead of writing into site-packages.
    """
    folder = tmp_path_factory.mktemp("coco_ptb")
    jar = pycocoevalcap_file(TOKENIZER_JAR)
    shutil.copy(jar.parent / "ptbtokenizer.py", folder / "ptbtokenizer.py")
    os.symlink(jar, folder / jar.name)
    spec = importlib.util.spec_from_file_location("coco_ptbtokenizer", folder / "ptbtokenizer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    predictions, references = corpus
    tokenizer = module.PTBTokenizer()
    gts = tokenizer.tokenize({k: [{"caption": r} for r in refs] for k, refs in references.items()})
    res = tokenizer.tokenize({k: [{"caption": c}] for k, c in predictions.items()})
    return gts, res


@pytest.fixture(scope="module")
def coco_meteor():
    """pycocoevalcap's METEOR process, started early so its JVM warms up while ours runs.

    pycocoevalcap starts Java without locale flags. That works where Java's default language is
    English (as on the development machine); JAVA_TOOL_OPTIONS adds the flags so the comparison
    also holds under other locales.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAVA_TOOL_OPTIONS", "-Duser.language=en -Duser.country=US")
        meteor = CocoMeteor()
    yield meteor
    meteor.meteor_p.kill()  # what its __del__ does, without waiting for garbage collection
    meteor.meteor_p.wait()


@pytest.fixture(scope="module")
def scores(corpus, coco_meteor, tmp_path_factory) -> captions.CaptionScores:
    return caption_metrics(*corpus, assets_dir=tmp_path_factory.mktemp("assets"))


def test_ptb_tokens_match_pycocoevalcap(corpus, coco_tokens):
    predictions, references = corpus
    cands, refs = tokenize(list(predictions.values()), [r for refs in references.values() for r in refs])
    gts, res = coco_tokens
    assert cands == [c for k in predictions for c in res[k]]
    assert refs == [r for k in predictions for r in gts[k]]
    assert "" in cands  # punctuation-only candidates really do reach the metrics empty


def test_tokenizer_memo_returns_the_same_tokens_without_java(monkeypatch):
    from aacbatch.evaluate import ptb

    block = ["A memo test, once.", "The dog's bark!"]
    first = tokenize(block)
    monkeypatch.setattr(ptb, "_run_tokenizer", lambda blocks: pytest.fail("tokenised again"))
    assert tokenize(block) == first == [["a memo test once", "the dog 's bark"]]


def test_tokenizer_context_and_line_breaks():
    """A caption's tokens depend on the next caption (hence blocks, not distinct texts); stray line breaks are flattened.

    pycocoevalcap only flattens "\\n"; the lexer also breaks at "\\r", U+2028 and form feed and
    would shift every later caption onto the wrong id.
    """
    assert tokenize(["Footsteps by a.", "A b."], ["Footsteps by a.", "the end"], []) == [
        ["footsteps by a", "a b."], ["footsteps by a.", "the end"], []]
    assert tokenize(["a\rb", "c\u2028d", "e\x0cf", "Last one."]) == [["a b", "c d", "e f", "last one"]]


def test_cider_d_matches_pycocoevalcap(corpus, coco_tokens, scores):
    gts, res = coco_tokens
    corpus_score, per_item = Cider().compute_score(gts, res)
    ids = list(corpus[0])
    assert scores.corpus["cider_d"] == pytest.approx(corpus_score, abs=TOL)
    assert np.abs(np.array([scores.per_item["cider_d"][k] for k in ids]) - per_item).max() < TOL
    assert corpus_score > 0.1  # the corpus really shares n-grams


def test_meteor_matches_pycocoevalcap(corpus, coco_tokens, coco_meteor, scores):
    gts, res = coco_tokens
    corpus_score, per_item = coco_meteor.compute_score(gts, res)
    ids = list(corpus[0])
    assert scores.corpus["meteor"] == pytest.approx(corpus_score, abs=TOL)
    assert np.abs(np.array([scores.per_item["meteor"][k] for k in ids]) - np.array(per_item)).max() < TOL
    assert scores.corpus["meteor"] != pytest.approx(np.mean(per_item), abs=TOL)  # the jar's aggregate, not a mean


def test_cider_d_by_hand():
    """Three items whose references share no n-gram across items, so every weight is log 3 and cancels.

    * "a b" vs "a b": unigram and bigram cosines 1, no 3-/4-grams -> 10 (1 + 1 + 0 + 0) / 4 = 5.
    * "c c" vs "c d": unigrams clip to min(2, 1): 1 / (2 sqrt 2); bigrams "c c"/"c d" share
      nothing -> 10 / (4 * 2 sqrt 2) = 0.8839 (unclipped it would be twice that).
    * "e f g h" vs "e f": unigrams 2 / (2 sqrt 2) = 1/sqrt 2, bigrams 1 / sqrt 3, the reference
      has no trigram; lengths (in bigrams) 3 vs 1 -> penalty exp(-2^2 / (2 * 6^2)) = exp(-1/18).
    """
    cands = ["a b", "c c", "e f g h"]
    refs = [["a b"], ["c d"], ["e f"]]
    expected = [5.0, 10 / (8 * math.sqrt(2)), 10 / 4 * math.exp(-1 / 18) * (1 / math.sqrt(2) + 1 / math.sqrt(3))]
    corpus_score, per_item = CiderD().compute(cands, refs)
    np.testing.assert_allclose(per_item, expected, rtol=1e-12)
    assert corpus_score == pytest.approx(np.mean(expected), rel=1e-12)
    _, coco_items = Cider().compute_score(dict(enumerate(refs)), {i: [c] for i, c in enumerate(cands)})
    np.testing.assert_allclose(coco_items, expected, rtol=1e-12)


def test_spice_and_spider_unavailable_without_corenlp(scores):
    reason = scores.reasons["spice"]
    assert reason.startswith("SPICE needs the Stanford CoreNLP 3.6.0 jars") and "aacbatch metrics install --from DIR" in reason
    for metric in ("spice", "spider", "spider_fl"):
        assert scores.corpus[metric] is None and metric not in scores.per_item
        assert scores.reasons[metric] == reason
    assert set(scores.per_item) == {"meteor", "cider_d"}
    assert list(scores.per_item["meteor"]) == list(scores.per_item["cider_d"])


def test_spider_and_spider_fl_combine_per_item(monkeypatch, tmp_path):
    predictions = {"x": "A dog barks.", "y": "Rain on a roof.", "z": "Birds chirp birds chirp."}
    references = {"z": ["Birds are chirping."], "x": ["A dog is barking.", "Dog barks."], "y": ["Rain falls on a roof."]}
    monkeypatch.setattr(spice.Spice, "missing", lambda self: None)
    monkeypatch.setattr(spice.Spice, "compute", lambda self, c, r: (0.2, np.array([0.1, 0.2, 0.3])))
    monkeypatch.setattr(FluencyErrors, "missing", lambda self: None)
    monkeypatch.setattr(FluencyErrors, "compute", lambda self, c: np.array([False, False, True]))
    result = caption_metrics(predictions, references, assets_dir=tmp_path, metrics=("spider", "spider_fl"))
    cider = CiderD().compute(["a dog barks", "rain on a roof", "birds chirp birds chirp"],
                             [["a dog is barking", "dog barks"], ["rain falls on a roof"], ["birds are chirping"]])[1]
    spider = (cider + [0.1, 0.2, 0.3]) / 2
    assert result.reasons == {}
    np.testing.assert_allclose(list(result.per_item["spider"].values()), spider)
    np.testing.assert_allclose(list(result.per_item["spider_fl"].values()), spider * [1, 1, 0.1])
    assert result.corpus["spider_fl"] == pytest.approx(np.mean(spider * [1, 1, 0.1]))
    assert list(result.per_item["spider"]) == ["x", "y", "z"] and set(result.corpus) == {"spider", "spider_fl"}


def test_spice_keeps_input_order(monkeypatch, tmp_path):
    """SPICE's output is matched back by the integer ids we send, whatever order it comes back in."""
    seen = {}

    def fake_java(cmd, *, what, cwd):
        seen["cmd"] = cmd
        items = json.loads(next(Path(arg) for arg in cmd if arg.endswith("spice_in.json")).read_text())
        f = {it["image_id"]: None if it["test"] == "?" else len(it["test"]) / 10 for it in items}
        results = [{"image_id": i, "scores": {"All": {"f": f[i]}}} for i in reversed(list(f))]
        next(Path(arg) for arg in cmd if arg.endswith("spice_out.json")).write_text(json.dumps(results))
        return ""

    monkeypatch.setattr(spice, "run_java", fake_java)
    corpus_score, per_item = spice.Spice(tmp_path, threads=3).compute(["ab", "?", "abcd"], [["r"], ["r"], ["r"]])
    np.testing.assert_array_equal(per_item, [0.2, np.nan, 0.4])
    assert math.isnan(corpus_score)  # NaN propagates to the mean, as in pycocoevalcap
    cmd = seen["cmd"]
    assert cmd[cmd.index("-threads") + 1] == "3" and "java.base/java.util=ALL-UNNAMED" in cmd
    assert all(str(spice.spice_lib_dir(tmp_path) / jar) in cmd[cmd.index("-cp") + 1] for jar in spice.CORENLP_JARS)


def _fake_jar(path: Path, entry: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as jar:
        jar.writestr(entry, "x")
    return path


def test_install_assets_copies_and_validates_jars(tmp_path):
    source = tmp_path / "download" / "stanford-corenlp-full-2015-12-09"
    models = source / "stanford-corenlp-3.6.0-models.jar"
    for name, marker in spice.CORENLP_JARS.items():
        _fake_jar(source / name, marker + ("" if marker.endswith(".class") else "pos-tagger/x.tagger"))
    assets = tmp_path / "assets"
    assert spice.Spice(assets).missing().startswith("SPICE needs the Stanford CoreNLP 3.6.0 jars")
    installed = install_assets(tmp_path / "download", assets)
    assert installed == [spice.spice_lib_dir(assets) / name for name in spice.CORENLP_JARS]
    assert spice.Spice(assets).missing() is None

    models.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable jar"):
        install_assets(tmp_path / "download", assets)
    _fake_jar(models, "edu/other/Thing.class")
    with pytest.raises(InputError, match="really stanford-corenlp-3.6.0-models.jar"):
        install_assets(tmp_path / "download", assets)
    models.unlink()
    with pytest.raises(InputError, match="stanford-corenlp-3.6.0-models.jar is not there"):
        install_assets(tmp_path / "download", assets)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no caption-metric assets found"):
        install_assets(tmp_path / "empty", assets)


def test_install_assets_checks_the_fense_checkpoint(tmp_path):
    (tmp_path / "fense" / "bert-base-uncased").mkdir(parents=True)
    for name in ("config.json", "vocab.txt"):
        (tmp_path / "fense" / "bert-base-uncased" / name).write_text("{}")
    (tmp_path / "fense" / "echecker_clotho_audiocaps_base.ckpt").write_bytes(b"not FENSE's checkpoint")
    with pytest.raises(InputError, match="is not FENSE's published"):
        install_assets(tmp_path / "fense", tmp_path / "assets")


def test_fluency_detector_runs_a_fense_format_checkpoint(tmp_path):
    """A tiny random BERT saved in FENSE's checkpoint format; the head's bias decides every verdict."""
    torch = pytest.importorskip("torch")
    from transformers import BertConfig, BertModel

    assets = tmp_path / "assets"
    bert = assets / "fense" / "bert-base-uncased"
    assert FluencyErrors(assets).missing().startswith("SPIDEr-FL needs the FENSE checkpoint")
    config = BertConfig(vocab_size=16, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                        max_position_embeddings=64)
    config.save_pretrained(bert)
    (bert / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "dog", "barks"]) + "\n")
    torch.manual_seed(0)
    encoder = BertModel(config)
    for bias, expected in ((10.0, True), (-10.0, False)):
        state = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
        state["encoder.embeddings.position_ids"] = torch.arange(64)[None]  # what older transformers saved
        state["clf.weight"] = torch.zeros(6, 8)
        state["clf.bias"] = torch.tensor([0.0] * 5 + [bias])
        torch.save({"model_type": "bert-base-uncased", "num_classes": 6, "state_dict": state},
                   bert.parent / "echecker_clotho_audiocaps_base.ckpt")
        detector = FluencyErrors(assets, device="cpu", batch_size=2)
        assert detector.missing() is None
        assert detector.compute(["A dog barks.", "a dog", "barks barks barks!"]).tolist() == [expected] * 3


@pytest.mark.parametrize(("predictions", "references", "message"), [
    ({}, {}, "no predictions"),
    ({"a": "  "}, {"a": ["x"]}, "prediction for id 'a' is empty"),
    ({"a": "x"}, {"b": ["x"]}, "id 'a' has a prediction but no references"),
    ({"a": "x"}, {"a": ["x"], "b": ["y"]}, "id 'b' has references but no prediction"),
    ({"a": "x"}, {"a": []}, "id 'a' needs a non-empty list"),
    ({"a": "x"}, {"a": "x"}, "id 'a' needs a non-empty list"),
    ({"a": "x"}, {"a": ["x", ""]}, "reference 2 of id 'a' is empty"),
])
def test_input_errors_name_the_id(predictions, references, message, tmp_path):
    with pytest.raises(InputError, match=message):
        caption_metrics(predictions, references, assets_dir=tmp_path)


def test_unknown_metric(tmp_path):
    with pytest.raises(InputError, match="unknown caption metric 'bleu'"):
        caption_metrics({"a": "x"}, {"a": ["x"]}, assets_dir=tmp_path, metrics=("bleu",))


def test_missing_java_and_a_crashing_jar_name_the_tool(monkeypatch, tmp_path):
    from aacbatch.errors import AacbatchError
    from aacbatch.evaluate import ptb

    # captions no other test tokenises: a block seen before is answered from memory, without Java
    monkeypatch.setenv("PATH", str(tmp_path))  # no java here
    with pytest.raises(AacbatchError, match="java not found on PATH"):
        caption_metrics({"a": "a missing jvm"}, {"a": ["no java at all"]}, assets_dir=tmp_path, metrics=("cider_d",))
    monkeypatch.undo()
    broken = tmp_path / "broken.jar"
    broken.write_bytes(b"not a jar")
    monkeypatch.setattr(ptb, "pycocoevalcap_file", lambda relative: broken)
    with pytest.raises(AacbatchError, match=r"PTB tokenizer failed \(java exit 1\)"):
        caption_metrics({"a": "a broken jar"}, {"a": ["the jar crashes"]}, assets_dir=tmp_path, metrics=("cider_d",))


def test_metrics_command_refuses_non_utf8_and_partial_predictions(tmp_path):
    from click.testing import CliRunner

    from aacbatch.cli import cli

    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps({"a": ["a dog barks"], "b": ["rain falls"]}))
    latin = tmp_path / "latin1.json"
    latin.write_bytes('{"a": "caf\xe9"}'.encode("latin-1"))
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"a": "a dog"}))
    for preds, message in ((latin, "latin1.json is not UTF-8 text: byte 0xE9"), (partial, "id 'b' has references but no prediction")):
        out = CliRunner().invoke(cli, ["--home", str(tmp_path / "h"), "metrics", "caption", "--predictions", str(preds),
                                       "--references", str(refs)])
        assert out.exit_code != 0 and message in out.output and "Traceback" not in out.output


def test_metrics_cli_prints_every_metric_of_a_set_with_an_interval_or_a_reason(tmp_path):
    from click.testing import CliRunner

    from aacbatch.cli import cli

    rng = np.random.default_rng(0)
    words = ["a", "dog", "barks", "loudly", "rain", "falls", "on", "roof", "cars", "pass", "bird", "sings"]
    refs = {f"c{k}": [" ".join(rng.choice(words, 6)) for _ in range(5)] for k in range(30)}
    preds = {k: v[0] if int(k[1:]) % 2 else " ".join(rng.choice(words, 5)) for k, v in refs.items()}
    (tmp_path / "p.json").write_text(json.dumps(preds))
    (tmp_path / "r.json").write_text(json.dumps(refs))
    out = CliRunner().invoke(cli, ["--home", str(tmp_path / "h"), "metrics", "caption", "--predictions",
                                   str(tmp_path / "p.json"), "--references", str(tmp_path / "r.json"),
                                   "--metrics", "dcase2024", "--ci", "95"])
    assert out.exit_code == 0, out.output
    lines = {line.split()[0]: line for line in out.output.splitlines() if line and not line.startswith("time:")}
    assert set(lines) == {"meteor", "cider_d", "spice", "spider", "spider_fl", "fense", "vocab"}
    for metric in ("meteor", "cider_d"):
        value, low, high = (float(x) for x in re.findall(r"\d+\.\d{4}", lines[metric])[:3])
        assert low <= value <= high and "(95 %)" in lines[metric]
    assert "n/a (" in lines["spice"] and "n/a (" in lines["fense"] and "no interval" in lines["vocab"]
    assert "time: JVM start + PTB tokenise" in out.output and "1000 bootstrap resamples" in out.output
