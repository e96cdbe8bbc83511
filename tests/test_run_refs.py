"""Every option that takes a run accepts the 8-character prefix that commands print, an
ambiguous prefix is refused with its matches, and --init-from refuses a parent whose
architecture would leave the model partly initialised (unless init_partial)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from aacbatch.cli import cli
from aacbatch.config import Settings
from aacbatch.data.ingest import ingest
from aacbatch.data.splits import resplit
from aacbatch.errors import InputError
from aacbatch.featurize.job import featurize
from aacbatch.registry.runs import get_run
from aacbatch.registry.store import Registry
from aacbatch.train.run import train_task

QUIET = lambda _: None  # noqa: E731
CLAP = ("epochs=1", "batch_size=16", "text='locked'", "captions_per_clip=1", "eval_splits=['eval']")
SMALL = "model={gru_hidden=16, gru_layers=1, d_model=16, n_heads=2, ff_dim=32, decoder_layers=1}"
OTHER = "model={gru_hidden=24, gru_layers=1, d_model=16, n_heads=2, ff_dim=32, decoder_layers=1}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synth_dir, single_thread):
    """A tagger, a CLAP-TAG run whose teacher and initial encoder are given by prefix, and a
    captioner on its frames (module-wide)."""
    home = tmp_path_factory.mktemp("refs") / "home"
    registry = Registry(Settings.resolve(home=home, db_timeout=2.0))
    ingest(registry, "clotho", synth_dir, name="sc")
    resplit(registry, "sc", ratio=0.8)
    for spec in ("mel", "text_emb"):
        featurize(registry, spec, "sc")
    tagger = train_task(registry, "tagger", dataset="sc", sets=("epochs=1", "batch_size=16"), log=QUIET).run_id
    tags = featurize(registry, "tags", "sc", overrides={"teacher": tagger[:8]})
    clap = train_task(registry, "clap_tag", dataset="sc", sets=(*CLAP, f"audio_init='{tagger[:8]}'"), log=QUIET)
    return registry, home, tagger, tags, clap


def cli_run(home, *args):
    return CliRunner().invoke(cli, ["--home", str(home), *map(str, args)], catch_exceptions=False)


def test_prefixes_resolve_to_full_ids_everywhere(runs, synth_dir):
    registry, home, tagger, tags, clap = runs
    assert tags.status == "complete"
    identity = json.loads(cli_run(home, "features", "show", "tags", "--dataset", "sc").output)["model_identity"]
    assert identity["teacher_run"] == tagger  # the prefix was recorded as the full id
    config = json.loads(get_run(registry, clap.run_id).config_json)
    assert config["audio_init"] == tagger
    # the same teacher by full id is the same feature set (no recompute)
    assert featurize(registry, "tags", "sc", overrides={"teacher": tagger}).computed_blocks == 0

    short = clap.run_id[:8]
    out = cli_run(home, "evaluate", "retrieval", "--run", short, "--split", "val")
    assert out.exit_code == 0 and "t2a/mAP@10=" in out.output
    out = cli_run(home, "featurize", "encoded", "--dataset", "sc", "--from-run", short)
    assert out.exit_code == 0 and f"encoded-{short} [sc]: complete" in out.output
    out = cli_run(home, "train", "--task", "caption", "--dataset", "sc", "--features", f"encoded-{short}",
                  "--set", "epochs=1", "--set", "batch_size=16", "--set", SMALL, "--set", "eval_splits=['eval']")
    assert out.exit_code == 0, out.output
    caption_run = out.output.split("run ", 1)[1].split()[0]
    fine = cli_run(home, "train", "--task", "caption", "--dataset", "sc", "--features", f"encoded-{short}",
                   "--set", "epochs=1", "--set", "batch_size=16", "--set", SMALL, "--set", "eval_splits=['eval']",
                   "--init-from", caption_run[:8])
    assert fine.exit_code == 0, fine.output
    fine_run = fine.output.split("run ", 1)[1].split()[0]
    assert get_run(registry, fine_run).parent_run_id == caption_run
    out = cli_run(home, "caption", "--run", caption_run[:8], "--split", "eval", "--format", "json")
    assert out.exit_code == 0 and len(json.loads(out.output)) > 0
    out = cli_run(home, "evaluate", "caption", "--run", fine_run[:8])
    assert out.exit_code == 0 and "cider_d=" in out.output
    out = cli_run(home, "train", "--resume", fine_run[:8])
    assert out.exit_code != 0 and f"run {fine_run} already finished" in out.output
    folder = synth_dir / "evaluation"
    out = cli_run(home, "index", folder, "--run", short, "--caption-run", caption_run[:8], "--name", "refs")
    assert out.exit_code == 0, out.output
    out = cli_run(home, "search", "a dog barks", "--index", "refs", "--run", short, "-k", 2, "--format", "json")
    assert out.exit_code == 0 and len(json.loads(out.output)) == 2


def test_an_unknown_or_ambiguous_prefix_is_one_line(runs):
    registry, home, *_ = runs
    out = cli_run(home, "evaluate", "retrieval", "--run", "ffffffff")
    assert out.exit_code != 0 and out.output.count("\n") == 1 and "unknown run id 'ffffffff'" in out.output
    ids = [r.id for r in (get_run(registry, runs[2]), get_run(registry, runs[4].run_id))]
    common = next((a[:n] for n in range(8, 3, -1) for a in ids for b in ids if a != b and a[:n] == b[:n]), None)
    if common is not None:  # random ids rarely share 4 characters; the fake below always does
        with pytest.raises(InputError, match="ambiguous"):
            get_run(registry, common)


def test_ambiguous_prefix_lists_the_matching_runs(registry):
    from aacbatch.registry.runs import RunRecorder

    ids = []
    for _ in range(2):
        recorder = RunRecorder.start(registry, task="tagger", config={}, dataset_id=None, parent_run_id=None,
                                     feature_sets=[], seed=0, random_weights=False)
        ids.append(recorder.run_id)
    with registry.transaction() as session:  # give both the same 6-character prefix
        from aacbatch.registry.schema import Run

        for k, run_id in enumerate(ids):
            session.get(Run, run_id).id = f"abcdef{k}" + run_id[7:]
    with pytest.raises(InputError, match=r"prefix 'abcdef' is ambiguous: it matches abcdef0.*abcdef1"):
        get_run(registry, "abcdef")
    assert get_run(registry, "abcdef1").id.startswith("abcdef1")


def test_init_from_another_architecture_is_refused_with_the_parameters(runs):
    registry, home, tagger, tags, clap = runs
    encoded = featurize(registry, "encoded", "sc", overrides={"run": clap.run_id})
    base = (f"features='{encoded.name}'", "epochs=1", "batch_size=16", "eval_splits=['eval']")
    parent = train_task(registry, "caption", dataset="sc", sets=(*base, SMALL), log=QUIET)
    with pytest.raises(InputError, match=r"parameters of this model would stay uninitialised.*gru\.weight_ih_l0 .*"
                                         r"init_partial=true"):
        train_task(registry, "caption", dataset="sc", sets=(*base, OTHER), init_from=parent.run_id, log=QUIET)
    logged = []
    child = train_task(registry, "caption", dataset="sc", sets=(*base, OTHER, "init_partial=true"),
                       init_from=parent.run_id, log=logged.append)
    assert get_run(registry, child.run_id).parent_run_id == parent.run_id
    assert any("not loaded (init_partial)" in line and "gru." in line for line in logged)
    # a retrieval parent without the image head: CLAIP from CLAP-TAG names the head it cannot fill
    featurize(registry, "images", "sc")
    with pytest.raises(InputError, match=r"image_head\.weight"):
        train_task(registry, "claip", dataset="sc", sets=CLAP, init_from=clap.run_id[:8], log=QUIET)
