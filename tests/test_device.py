"""Device plumbing, mixed precision and the input pipeline, checked on the CPU.

The GPU paths are the same code with another device (benchmarks/gpu_check.py runs them on a
real GPU); here: every stage runs with device = cpu, a missing GPU is a one-line error,
worker batches equal in-process batches, crops and buckets are deterministic and resume
exactly, amp really lowers the precision, and checkpoints do not remember their device.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from aacbatch import catalog
from aacbatch.data.corpus import Corpus
from aacbatch.batches import Crop, bucketed_batches, epoch_batches, pad_ragged
from aacbatch.cli import cli
from aacbatch.device import autocast, check_amp, current, resolve, to_device, use
from aacbatch.errors import InputError
from aacbatch.models.checkpoints import create_cnn14, read_checkpoint
from aacbatch.registry.queries import run_sql
from aacbatch.train.config import load_config
from aacbatch.train.loader import epoch_loader
from aacbatch.train.run import build_task, evaluate_run, train_task
from aacbatch.train.tagger import TaggerConfig

QUIET = lambda _: None  # noqa: E731
FAST = ("epochs=2", "batch_size=16", "lr=3e-3", "eval_splits=['val']")
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the errors of a machine without a GPU")


# --- choosing the device -------------------------------------------------------------------

def test_device_specs_resolve_on_a_cpu_machine(monkeypatch):
    monkeypatch.delenv("AACBATCH_DEVICE", raising=False)
    assert resolve("cpu") == torch.device("cpu")
    assert current() == (torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu"))
    with pytest.raises(InputError, match=r"unknown device 'tpu': use auto, cpu, cuda or cuda:N"):
        resolve("tpu")
    assert use("CPU") == torch.device("cpu") and current() == torch.device("cpu")


@no_gpu
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_asking_for_a_gpu_without_one_is_one_line(spec):
    with pytest.raises(InputError, match=rf"device '{spec}' asked for, but this machine has no usable CUDA GPU.*--device cpu"):
        resolve(spec)


@no_gpu
def test_cli_device_option(tmp_path, monkeypatch):
    monkeypatch.delenv("AACBATCH_DEVICE", raising=False)
    runner = CliRunner()
    bad = runner.invoke(cli, ["--home", str(tmp_path), "--device", "gpu0", "db", "status"])
    assert bad.exit_code == 2 and "'gpu0': use auto, cpu, cuda or cuda:N" in bad.output
    missing = runner.invoke(cli, ["--home", str(tmp_path), "--device", "cuda", "train", "--task", "tagger",
                                  "--dataset", "sc"])
    assert missing.exit_code != 0
    line = [ln for ln in missing.output.splitlines() if ln.startswith("aacbatch: error:")]
    assert len(line) == 1 and "no usable CUDA GPU" in line[0] and "Traceback" not in missing.output
    monkeypatch.delenv("AACBATCH_DEVICE", raising=False)  # the option sets it for the process


# --- mixed precision -----------------------------------------------------------------------

def test_bf16_autocast_really_runs_the_convolutions_in_bfloat16():
    model = create_cnn14("cnn14-tiny").eval()
    seen = []
    hook = model.conv_block1.conv1.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    mel, lengths = (torch.from_numpy(a) for a in pad_ragged([np.zeros((100, 64), np.float32)] * 2))
    with torch.no_grad():
        with autocast("bf16", torch.device("cpu")):
            low = model(mel, lengths, is_logmel=True)
        with autocast("off", torch.device("cpu")):
            full = model(mel, lengths, is_logmel=True)
    hook.remove()
    assert seen == [torch.bfloat16, torch.float32]
    assert low.embedding.dtype == torch.bfloat16 and full.embedding.dtype == torch.float32


def test_fp16_needs_a_gpu_and_unknown_modes_are_refused():
    with pytest.raises(InputError, match=r"amp = 'fp16' needs a CUDA device but this run is on cpu"):
        check_amp("fp16", torch.device("cpu"))
    with pytest.raises(InputError, match=r"amp = 'half'"):
        check_amp("half", torch.device("cpu"))
    with pytest.raises(InputError, match=r"amp = 'true' is out of range: must be one of off, bf16, fp16"):
        load_config(TaggerConfig, None, ["amp=true"])


def test_stored_boolean_amp_of_older_runs_reads_as_a_precision():
    assert load_config(TaggerConfig, base={"amp": True}).amp == "bf16"
    assert load_config(TaggerConfig, base={"amp": False}).amp == "off"


@pytest.mark.parametrize("setting, message", [
    ("loader_workers=999", r"loader_workers = 999 is out of range: must be between 0 and the \d+ CPU"),
    ("loader_workers=-1", r"loader_workers = -1 is out of range"),
    ("max_seconds=0", r"max_seconds = 0(\.0)? is out of range: must be positive or unset"),
    ("max_seconds=-2.5", r"max_seconds = -2.5 is out of range"),
    ("prefetch_batches=0", r"prefetch_batches = 0 is out of range: must be at least 1"),
])
def test_pipeline_settings_out_of_range(setting, message):
    with pytest.raises(InputError, match=message):
        load_config(TaggerConfig, None, [setting])


# --- crops and buckets ----------------------------------------------------------------------

def test_crops_are_a_function_of_seed_epoch_and_example():
    crop = Crop("mel", frames=100, seed=7, epoch=3)
    examples, lengths = np.array([5, 9, 2, 11]), np.array([250, 80, 100, 101])
    offsets, sizes = crop.windows(examples, lengths)
    assert sizes.tolist() == [100, 80, 100, 100]
    assert offsets[1] == 0 and offsets[2] == 0 and 0 <= offsets[3] <= 1 and 0 <= offsets[0] <= 150
    again, _ = crop.windows(examples[::-1], lengths[::-1])  # another batch order: the same windows
    assert again[::-1].tolist() == offsets.tolist()
    long = np.full(50, 3000)
    first = crop.windows(np.arange(50), long)[0]
    later = Crop("mel", 100, 7, 4).windows(np.arange(50), long)[0]
    assert (first != later).mean() > 0.9 and len(set(first.tolist())) > 40  # new crops each epoch


def _clotho_like_lengths(n: int = 4000) -> np.ndarray:
    """Frames of clips of 15-30 s, as Clotho's (100 frames per second)."""
    return np.random.default_rng(0).uniform(1500, 3000, n).astype(np.int64)


def test_bucketing_removes_a_third_of_the_padding_and_keeps_every_example():
    lengths = _clotho_like_lengths()

    def padded(batches):
        return sum(len(b) * lengths[b].max() - lengths[b].sum() for b in batches) / sum(len(b) * lengths[b].max() for b in batches)

    plain = epoch_batches(np.arange(len(lengths)), 0, 0, 32)
    bucketed = epoch_batches(np.arange(len(lengths)), 0, 0, 32, lengths=lengths)
    assert 1 - padded(bucketed) / padded(plain) >= 0.3
    assert sorted(np.concatenate(bucketed).tolist()) == list(range(len(lengths)))
    assert all(len(b) == 32 for b in bucketed[:-1]) or sum(len(b) < 32 for b in bucketed) <= len(lengths) // (32 * 50) + 1
    again = epoch_batches(np.arange(len(lengths)), 0, 0, 32, lengths=lengths)
    assert all((a == b).all() for a, b in zip(bucketed, again))  # deterministic
    other = epoch_batches(np.arange(len(lengths)), 0, 1, 32, lengths=lengths)
    assert any(len(a) != len(b) or (a != b).any() for a, b in zip(bucketed, other))  # reshuffled per epoch


def test_bucketed_batches_respect_min_size():
    batches = bucketed_batches(np.array([5, 1, 3, 2, 4]), np.array([0, 1, 2, 3, 4]), batch_size=2, min_size=2)
    assert all(len(b) == 2 for b in batches) and len(batches) == 2


# --- the input pipeline on a registered dataset ---------------------------------------------

def _tagger(registry, *sets):
    cfg = load_config(TaggerConfig, None, list(FAST) + list(sets))
    return build_task(registry, catalog.task("tagger"), Corpus.single("sc"), cfg)


def test_worker_batches_equal_in_process_batches(synth_registry):
    task = _tagger(synth_registry, "bucket=true", "max_seconds=1.0")
    for epoch in (0, 1):
        inline = list(epoch_loader(task, epoch, workers=0))
        workers = list(epoch_loader(task, epoch, workers=2, prefetch=2))
        assert len(inline) == len(workers) == len(task.train_batches(epoch)) > 1
        for a, b in zip(inline, workers):
            assert a.keys() == b.keys()
            for key in a:
                assert torch.equal(a[key], b[key]), key
        assert max(int(b["mel_lengths"].max()) for b in inline) <= 100  # 1 s crops of 1.5-2 s clips


def test_crops_and_buckets_resume_exactly_and_record_throughput(synth_registry, monkeypatch):
    from aacbatch.train import distributed

    sets = FAST + ("bucket=true", "max_seconds=1.0", "loader_workers=1")
    straight = train_task(synth_registry, "tagger", dataset="sc", sets=sets, log=QUIET)

    def interrupted():  # the loop's end-of-epoch barrier, after the epoch's checkpoints
        raise KeyboardInterrupt

    monkeypatch.setattr(distributed, "barrier", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_task(synth_registry, "tagger", dataset="sc", sets=sets, log=QUIET)
    monkeypatch.undo()
    _, rows = run_sql(synth_registry, "SELECT id FROM runs WHERE id <> :r", {"r": straight.run_id})
    resumed = train_task(synth_registry, None, resume=rows[0][0], log=QUIET)
    assert resumed.final == straight.final
    a = read_checkpoint(straight.run_dir / "last.pt").state
    b = read_checkpoint(resumed.run_dir / "last.pt").state
    assert all(torch.equal(a[k], b[k]) for k in a)
    _, meter = run_sql(synth_registry, "SELECT metric, value FROM scores WHERE run_id = :r AND split = 'train' "
                       "AND epoch = 1", {"r": straight.run_id})
    got = dict(meter)
    assert set(got) == {"step_s", "data_wait", "examples_per_s", "padded"}
    assert got["step_s"] > 0 and 0 <= got["data_wait"] < 1 and got["examples_per_s"] > 0 and 0 <= got["padded"] < 0.5


def test_reuse_ignores_where_a_run_ran_but_not_what_it_computed(synth_registry):
    one = FAST + ("epochs=1",)
    first = train_task(synth_registry, "tagger", dataset="sc", sets=one, log=QUIET)
    same = train_task(synth_registry, "tagger", dataset="sc", sets=one + ("loader_workers=1", "device=cpu"),
                      reuse=True, log=QUIET)
    assert same.run_id == first.run_id
    other = train_task(synth_registry, "tagger", dataset="sc", sets=one + ("amp=bf16",), reuse=True, log=QUIET)
    assert other.run_id != first.run_id


def test_checkpoints_forget_their_device(synth_registry):
    """A run stored as trained on a GPU is re-scored here on the CPU: the stored device is where
    it ran, not where it must run; weights are CPU tensors in the file."""
    done = train_task(synth_registry, "tagger", dataset="sc", sets=FAST, log=QUIET)
    state = torch.load(done.run_dir / "best.pt", weights_only=True)["model"]  # no map_location: as saved
    assert all(t.device.type == "cpu" for t in state.values())
    _, rows = run_sql(synth_registry, "SELECT config_json FROM runs WHERE id = :r", {"r": done.run_id})
    config = {**json.loads(rows[0][0]), "device": "cuda:0"}
    run_sql(synth_registry, "UPDATE runs SET config_json = :c WHERE id = :r", {"c": json.dumps(config), "r": done.run_id},
            write=True)
    assert evaluate_run(synth_registry, done.run_id, ("val",))["val"] == pytest.approx(done.final["val"])


def test_out_of_memory_names_the_batch_size_and_fails_the_run(synth_registry, monkeypatch):
    from aacbatch.train.loop import OutOfMemory
    from aacbatch.train.tagger import TaggerTask

    calls, steps = [], len(_tagger(synth_registry).train_batches(0))

    def loss(self, batch):
        calls.append(1)
        if len(calls) > steps:  # the first step of epoch 2, after epoch 1's checkpoint
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return TaggerTask.__dict__["_loss"](self, batch)

    monkeypatch.setattr(TaggerTask, "_loss", TaggerTask.loss, raising=False)
    monkeypatch.setattr(TaggerTask, "loss", loss)
    with pytest.raises(OutOfMemory, match=r"out of cpu memory at epoch 2, step \d+ with batch_size 16: lower it "
                                          r"\(--set batch_size=8\); the last checkpoint is .*last.pt"):
        train_task(synth_registry, "tagger", dataset="sc", sets=FAST, log=QUIET)
    _, rows = run_sql(synth_registry, "SELECT status, error FROM runs")
    assert rows[0][0] == "failed" and rows[0][1].startswith("OutOfMemory: out of cpu memory")
    _, ckpt = run_sql(synth_registry, "SELECT epoch FROM checkpoints WHERE NOT is_best")
    assert ckpt == [(1,)]


def test_to_device_moves_numpy_and_tensors():
    moved = to_device({"a": np.arange(3), "b": torch.ones(2)}, torch.device("cpu"))
    assert isinstance(moved["a"], torch.Tensor) and moved["a"].tolist() == [0, 1, 2] and moved["b"].device.type == "cpu"


def test_demo_scales_are_the_catalogs_and_the_gpu_scale_needs_a_gpu(tmp_path, monkeypatch):
    from aacbatch.config import Settings
    from aacbatch.demo import SCALES, run_demo

    assert tuple(SCALES) == catalog.DEMO_SCALES
    if not torch.cuda.is_available():
        monkeypatch.setenv("AACBATCH_DEVICE", "cpu")
        with pytest.raises(InputError, match=r"demo --scale gpu trains the paper-size CNN14 and needs a CUDA GPU"):
            run_demo(Settings.resolve(home=tmp_path), scale="gpu", echo=QUIET)
        assert not (tmp_path / "data").exists()  # refused before anything was generated
        monkeypatch.setenv("AACBATCH_DEVICE", "cuda:2")
        with pytest.raises(InputError, match=r"device 'cuda:2' asked for, but this machine has no usable CUDA GPU"):
            run_demo(Settings.resolve(home=tmp_path), scale="tiny", echo=QUIET)
        assert not (tmp_path / "data").exists()  # any scale: the device is checked first


@pytest.mark.parametrize("recipe, family", [("paper-retrieval-pretrain", "retrieval"), ("paper-retrieval-finetune", "retrieval"),
                                            ("paper-caption-pretrain", "caption"), ("paper-caption-finetune", "caption")])
def test_paper_recipes_load_into_their_tasks_configs(recipe, family):
    (task, *_) = catalog.tasks_where(family=family)
    sets = ["features=encoded-x"] if family == "caption" else []
    cfg = load_config(catalog.task(task).task_class().Config, recipe, sets)
    assert cfg.epochs >= 10 and cfg.lr > 0
