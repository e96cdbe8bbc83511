"""Captioning from a retrieval run: encoded-frame cache, vocabulary, training, scores and
captions in the registry, ensembles and captions of new audio."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sqlalchemy import select

from aacbatch.captioning import caption_files, caption_split, evaluate_ensemble
from aacbatch.errors import InputError
from aacbatch.featurize.job import featurize
from aacbatch.featurize.sets import cached_set
from aacbatch.models.vocab import END, PAD, START, UNK, Vocabulary
from aacbatch.registry.schema import Prediction, Score
from aacbatch.train.run import train_task

QUIET = lambda _: None  # noqa: E731
CLAP = ("epochs=1", "batch_size=16", "text='locked'", "captions_per_clip=1", "eval_splits=['eval']")
SMALL = "model={gru_hidden=32, gru_layers=1, d_model=32, n_heads=2, ff_dim=64, decoder_layers=1}"


def test_vocabulary_orders_words_and_encodes_with_reserved_ids():
    vocab = Vocabulary.build([["a", "dog", "barks"], ["a", "cat"], ["zebra"]], min_count=2)
    assert vocab.words == ("<pad>", "<start>", "<end>", "<unk>", "a")
    rows = vocab.encode([["a", "dog"], ["a", "a", "a", "a"]], max_words=3)
    assert rows.tolist() == [[START, 4, UNK, END, PAD], [START, 4, 4, 4, END]]
    assert vocab.decode([4, UNK]) == "a <unk>"
    # the same union of captions gives the same vocabulary whatever the order
    assert Vocabulary.build([["b"], ["a"]]) == Vocabulary.build([["a"], ["b"]])


@pytest.fixture(scope="module")
def captioned(tmp_path_factory, synth_dir, single_thread):
    """One CLAP run, its encoded set, and a small captioner trained on it (module-wide)."""
    from aacbatch.config import Settings
    from aacbatch.data.ingest import ingest
    from aacbatch.data.splits import resplit
    from aacbatch.registry.store import Registry

    registry = Registry(Settings.resolve(home=tmp_path_factory.mktemp("cap") / "home", db_timeout=2.0))
    ingest(registry, "clotho", synth_dir, name="sc")
    resplit(registry, "sc", ratio=0.8)
    for spec in ("mel", "text_emb"):
        featurize(registry, spec, "sc")
    clap = train_task(registry, "clap", dataset="sc", sets=CLAP, log=QUIET)
    encoded = featurize(registry, "encoded", "sc", overrides={"run": clap.run_id})
    run = train_task(registry, "caption", dataset="sc", log=QUIET,
                     sets=(f"features='{encoded.name}'", "epochs=3", "lr=3e-3", "batch_size=16", "eval_splits=['eval']",
                           SMALL))
    return registry, clap, encoded, run


def test_encoded_frames_are_the_frozen_encoders(captioned):
    from aacbatch.models.checkpoints import load_tagger
    from aacbatch.registry.runs import checkpoint_file

    registry, clap, encoded, _ = captioned
    assert encoded.name == f"encoded-{clap.run_id[:8]}" and encoded.status == "complete"
    frames = cached_set(registry, "sc", encoded.name).store.reader("frames")
    mels = cached_set(registry, "sc", "mel").store.reader("mel")
    encoder = load_tagger(checkpoint_file(registry, clap.run_id, ("clap",))[1]).eval()
    with torch.no_grad():
        out = encoder(torch.from_numpy(mels[[3]][0].astype(np.float32))[None], is_logmel=True)
    assert frames[[3]][0].shape == tuple(out.frames.shape[1:])
    np.testing.assert_allclose(frames[[3]][0].astype(np.float32), out.frames[0].numpy(), rtol=2e-3, atol=2e-3)
    # the set's fingerprint follows the encoder: another run's encoder makes another set
    again = featurize(registry, "encoded", "sc", overrides={"run": clap.run_id})
    assert again.computed_blocks == 0


def test_caption_run_scores_and_captions_every_eval_clip(captioned):
    registry, clap, encoded, run = captioned
    with registry.transaction() as session:
        final = {(s.split, s.metric): (s.value, s.reason) for s in session.scalars(
            select(Score).where(Score.run_id == run.run_id, Score.epoch.is_(None)))}
        epochs = session.scalars(select(Score.epoch).where(Score.run_id == run.run_id, Score.metric == "cider_d",
                                                           Score.epoch.is_not(None))).all()
        captions = session.scalars(select(Prediction).where(Prediction.run_id == run.run_id,
                                                            Prediction.kind == "caption")).all()
        config = json.loads(session.get(__import__("aacbatch.registry.schema", fromlist=["Run"]).Run, run.run_id).config_json)
    assert sorted(epochs) == [1, 2, 3]
    meteor, _ = final[("eval", "meteor")]
    cider, _ = final[("eval", "cider_d")]
    assert 0.0 < meteor < 1.0 and cider > 0.0
    for metric in ("spice", "spider", "spider_fl"):
        value, reason = final[("eval", metric)]
        assert value is None and "metrics install" in reason
    assert config["encoder_run"] == clap.run_id and config["features"] == encoded.name
    eval_captions = {p.clip_id: p.text for p in captions if p.split == "eval"}
    assert eval_captions and all(text.strip() for text in eval_captions.values())
    # the stored captions are what the checkpoint decodes now
    again = caption_split(registry, [run.run_id], "eval")
    assert again.captions == eval_captions and set(again.references) == set(eval_captions)


def test_ensemble_of_one_is_the_run_and_weights_must_match(captioned):
    registry, _, _, run = captioned
    alone = evaluate_ensemble(registry, [run.run_id], None, "eval")
    assert alone.metrics["meteor"] == pytest.approx(run.final["eval"]["meteor"], abs=1e-12)
    assert alone.metrics["cider_d"] == pytest.approx(run.final["eval"]["cider_d"], abs=1e-12)
    twice = caption_split(registry, [run.run_id, run.run_id], "eval", [0.3, 0.7])
    assert twice.captions == alone.captions
    with pytest.raises(InputError, match="2 weights for 1"):
        evaluate_ensemble(registry, [run.run_id], [1.0, 1.0], "eval")


def test_captions_for_new_audio_files(captioned, synth_dir, tmp_path):
    from conftest import write_wav

    registry, _, _, run = captioned
    wav = sorted((synth_dir / "evaluation").glob("*.wav"))[0]
    short = write_wav(tmp_path / "short.wav", seconds=100 / 16000)
    text = caption_files(registry, [run.run_id], [wav, short])
    assert len(text) == 2 and all(t.strip() for t in text)
    with pytest.raises(InputError, match="cannot read audio file .*no-such.wav"):
        caption_files(registry, [run.run_id], [synth_dir / "no-such.wav"])
    with pytest.raises(InputError, match="empty.wav has no samples"):
        caption_files(registry, [run.run_id], [write_wav(tmp_path / "empty.wav", seconds=0.0)])
    for weights in ([0.0], [float("nan")], [-1.0]):
        with pytest.raises(InputError, match="not a positive number"):
            caption_files(registry, [run.run_id], [wav], weights)


def test_finetune_needs_the_parents_vocabulary(captioned):
    registry, _, encoded, run = captioned
    with pytest.raises(InputError, match="vocabulary differs"):
        train_task(registry, "caption", dataset="sc", init_from=run.run_id, log=QUIET,
                   sets=(f"features='{encoded.name}'", "epochs=1", "min_word_count=3", SMALL))
    other = train_task(registry, "clap", dataset="sc", sets=CLAP, seed=1, log=QUIET)
    other_set = featurize(registry, "encoded", "sc", overrides={"run": other.run_id}).name
    with pytest.raises(InputError, match="read frames of encoder run"):
        train_task(registry, "caption", dataset="sc", init_from=run.run_id, log=QUIET,
                   sets=(f"features='{other_set}'", "epochs=1", SMALL))
    with pytest.raises(InputError, match="is a mel set"):
        train_task(registry, "caption", dataset="sc", log=QUIET, sets=("features='mel'", "epochs=1", SMALL))
    with pytest.raises(InputError, match="select_metric must be 'cider_d'"):
        train_task(registry, "caption", dataset="sc", log=QUIET, sets=(f"features='{encoded.name}'", "select_metric='meteor'"))
    with pytest.raises(InputError, match=r"no feature set 'encoded-nope'.*featurize encoded --dataset sc --from-run"):
        train_task(registry, "caption", dataset="sc", log=QUIET, sets=("features='encoded-nope'",))


def test_caption_and_evaluate_commands(captioned, synth_dir):
    from click.testing import CliRunner

    from aacbatch.cli import cli

    registry, _, _, run = captioned
    home = ["--home", str(registry.settings.home)]
    wav = sorted((synth_dir / "evaluation").glob("*.wav"))[0]
    out = CliRunner().invoke(cli, [*home, "caption", "--run", run.run_id, str(wav), "--format", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)[0]["file"] == str(wav)
    out = CliRunner().invoke(cli, [*home, "caption", "--run", run.run_id, "--split", "eval", "--format", "csv"])
    assert out.exit_code == 0 and out.output.count("\n") == 1 + len(caption_split(registry, [run.run_id], "eval").captions)
    out = CliRunner().invoke(cli, [*home, "caption", "--run", run.run_id])
    assert out.exit_code != 0 and "give audio files or --split" in out.output
    out = CliRunner().invoke(cli, [*home, "evaluate", "caption", "--run", run.run_id, "--split", "val"])
    assert out.exit_code == 0, out.output
    assert "meteor=0." in out.output and "spice=n/a (" in out.output


def test_frequent_caption_baseline_predicts_the_modal_training_caption(captioned):
    from aacbatch.train.frequent_caption import most_frequent_caption

    assert most_frequent_caption(["A dog barks.", "a cat", "a dog barks", "A cat!", "birds"]) == "a cat"
    registry, _, _, _ = captioned
    baseline = train_task(registry, "frequent_caption", dataset="sc", sets=("eval_splits=['eval']",), log=QUIET)
    with registry.transaction() as session:
        texts = set(session.scalars(select(Prediction.text).where(Prediction.run_id == baseline.run_id)))
    assert len(texts) == 1 and 0.0 <= baseline.final["eval"]["cider_d"] < 10.0
