"""Training loop via the tagger task: registry rows, checkpoints, determinism, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aacbatch.errors import InputError, NotFoundError
from aacbatch.evaluate.tagging import average_precision, mean_average_precision
from aacbatch.registry.queries import run_sql
from aacbatch.typed import parse_value
from aacbatch.train.config import load_config
from aacbatch.train.run import train_task
from aacbatch.train.tagger import TaggerConfig

FAST = ("epochs=3", "batch_size=16", "lr=3e-3", "eval_splits=['val', 'eval']")


def test_average_precision_by_hand():
    targets = [[1, 0], [0, 0], [1, 1]]
    scores = [[0.9, 0.1], [0.8, 0.8], [0.1, 0.8]]
    ap = average_precision(targets, scores)
    assert ap[0] == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert ap[1] == pytest.approx(1 / 2)  # the positive ties with a negative: ranked after it
    assert mean_average_precision(targets, scores) == pytest.approx((ap[0] + ap[1]) / 2)


def test_tagger_run_is_registered_with_scores_and_checkpoints(synth_registry):
    result = train_task(synth_registry, "tagger", dataset="sc", sets=FAST, log=lambda _: None)
    assert set(result.final) == {"val", "eval"} and 0.0 < result.final["eval"]["mAP"] <= 1.0
    _, rows = run_sql(synth_registry, "SELECT task, status, seed, random_weights FROM runs")
    assert rows == [("tagger", "finished", 0, False)]
    _, epochs = run_sql(synth_registry, "SELECT epoch FROM scores WHERE metric = 'mAP' AND split = 'val' AND epoch IS NOT NULL ORDER BY epoch")
    assert [e for (e,) in epochs] == [1, 2, 3]
    _, final = run_sql(synth_registry, "SELECT split, value FROM scores WHERE epoch IS NULL AND metric = 'mAP' ORDER BY split")
    assert dict(final) == pytest.approx({s: m["mAP"] for s, m in result.final.items()})
    _, best = run_sql(synth_registry, "SELECT path FROM checkpoints WHERE is_best")
    ckpt = torch.load(synth_registry.real_path(best[0][0]), weights_only=False)  # stored relative to the home
    assert ckpt["task"] == "tagger" and ckpt["config"]["epochs"] == 3 and ckpt["feature_sets"][0]["name"] == "mel"
    assert ckpt["model_config"]["n_classes"] == len(ckpt["labels"])


def test_run_killed_with_sigkill_resumes_to_the_uninterrupted_metrics(synth_registry, settings):
    """kill -9 a training process after its first checkpoint; `train --resume` ends equal."""
    import os
    import signal
    import subprocess
    import sys
    quiet = lambda _: None  # noqa: E731
    straight = train_task(synth_registry, "tagger", dataset="sc", sets=FAST, log=quiet)
    cmd = [sys.executable, "-m", "aacbatch", "--home", str(settings.home), "train", "--task", "tagger",
           "--dataset", "sc"] + [a for pair in FAST for a in ("--set", pair)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in proc.stdout:  # the loop logs an epoch only after its checkpoints are written
        if line.startswith("epoch 1/3"):
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    _, rows = run_sql(synth_registry, "SELECT id, status FROM runs WHERE id <> :r", {"r": straight.run_id})
    assert len(rows) == 1 and rows[0][1] == "running"  # killed: nothing could mark it
    resumed = train_task(synth_registry, None, resume=rows[0][0], log=quiet)
    assert resumed.run_id == rows[0][0]
    assert resumed.final == straight.final
    with pytest.raises(InputError, match="already finished"):
        train_task(synth_registry, None, resume=rows[0][0], log=quiet)


def test_config_layers_and_errors(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('epochs = 4\nlr = 1\nmodel = "cnn14-small"\n')
    cfg = load_config(TaggerConfig, recipe, ["lr=2e-4", "eval_splits=['eval']"])
    assert (cfg.epochs, cfg.lr, cfg.model, cfg.eval_splits) == (4, 2e-4, "cnn14-small", ("eval",))
    assert parse_value("abc") == "abc" and parse_value("true") is True
    with pytest.raises(InputError, match=r"unknown setting 'epoch' \(did you mean 'epochs'\?\)"):
        load_config(TaggerConfig, None, ["epoch=3"])
    with pytest.raises(InputError, match=r"epochs = 'many' is not a <class 'int'>"):
        load_config(TaggerConfig, None, ["epochs=many"])


def test_unknown_run_and_missing_features(synth_registry):
    with pytest.raises(NotFoundError, match="unknown run id 'nope'"):
        train_task(synth_registry, None, resume="nope")
    with pytest.raises(InputError, match=r"has no feature set 'mel16'.*aacbatch featurize mel16"):
        train_task(synth_registry, "tagger", dataset="sc", sets=("mel=mel16",))


def test_nan_loss_stops_the_run_and_records_why(synth_registry):
    from aacbatch.train.loop import TrainingDiverged

    with pytest.raises(TrainingDiverged, match=r"loss is (nan|inf) at epoch \d+, step \d+: lower the learning rate"):
        train_task(synth_registry, "tagger", dataset="sc", sets=("epochs=3", "lr=1e30", "batch_size=8"), log=lambda _: None)
    _, rows = run_sql(synth_registry, "SELECT status, error FROM runs")
    assert rows[0][0] == "failed" and "TrainingDiverged: loss is" in rows[0][1]


def test_warmup_then_cosine_schedule_shape():
    from aacbatch.train.schedule import warmup_cosine

    values = [warmup_cosine(s, warmup_steps=4, total_steps=12) for s in range(12)]
    assert values[:4] == [0.25, 0.5, 0.75, 1.0]  # linear warm-up reaches the peak at the end of epoch 1
    assert values[4] == 1.0 and values[8] == pytest.approx(0.5)  # cosine: half-way down at the middle
    assert all(a > b for a, b in zip(values[4:], values[5:])) and values[-1] == pytest.approx(0.5 * (1 + np.cos(np.pi * 7 / 8)))
