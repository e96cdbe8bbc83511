"""CNN14: parity with the PANNs reference implementation, masks, variants, SpecAugment.

The reference is ``panns_inference.models.Cnn14`` (test extra ``panns-inference``). Importing
the ``panns_inference`` package runs a download at import time, so only its ``models.py`` is
loaded, under a private package name whose ``__path__`` points at the installed directory.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from aacbatch.errors import InputError  # noqa: E402
from aacbatch.audio.logmel import HOP, SAMPLE_RATE, log_mel, n_frames  # noqa: E402
from aacbatch.models.checkpoints import create_cnn14, load_panns_checkpoint, load_tagger  # noqa: E402
from aacbatch.models.cnn14 import CNN14_CONFIGS, Cnn14, Cnn14Config, LogMel, Spectrogram  # noqa: E402


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float) -> None:
    """Max-abs-error check (``torch.testing.assert_close`` costs 2 s of imports on first use)."""
    np.testing.assert_allclose(actual.detach().float().numpy(), expected.detach().float().numpy(), rtol=0, atol=atol)


def _reference_module() -> types.ModuleType:
    spec = importlib.util.find_spec("panns_inference")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("panns-inference (test extra) is not installed")
    package_dir = Path(list(spec.submodule_search_locations)[0])
    package = types.ModuleType("_panns_reference")
    package.__path__ = [str(package_dir)]
    sys.modules.setdefault("_panns_reference", package)
    name = "_panns_reference.models"
    if name not in sys.modules:
        module_spec = importlib.util.spec_from_file_location(name, package_dir / "models.py")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
    return sys.modules[name]


def _randomise_batchnorm(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial BN statistics, so parity also checks which axis each BN normalises."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, bn in model.named_modules():
            if isinstance(bn, torch.nn.BatchNorm2d):
                if name == "bn0":  # log-mel dB statistics, different per mel bin
                    bn.running_mean.uniform_(-40, -10, generator=g)
                    bn.running_var.uniform_(50, 200, generator=g)
                else:
                    bn.running_mean.normal_(0, 0.1, generator=g)
                    bn.running_var.uniform_(0.5, 1.5, generator=g)
                bn.weight.uniform_(0.8, 1.6, generator=g)
                bn.bias.normal_(0, 0.1, generator=g)


def _clips(seconds: float = 2.0) -> np.ndarray:
    """Two clips (2, n): noise, and an amplitude-modulated tone over noise."""
    rng = np.random.default_rng(0)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 2 * t)) + 0.02 * rng.standard_normal(n)
    return np.stack([0.1 * rng.standard_normal(n), tone]).astype(np.float32)


@pytest.fixture(scope="module")
def reference() -> torch.nn.Module:
    torch.manual_seed(0)
    ref = _reference_module().Cnn14(
        sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64, fmin=50, fmax=14000, classes_num=527
    )
    _randomise_batchnorm(ref, seed=1)
    return ref.eval()


@pytest.fixture(scope="module")
def checkpoint(reference: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("panns") / "Cnn14_random.pth"
    torch.save({"model": reference.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def loaded(checkpoint: Path) -> Cnn14:
    return create_cnn14("cnn14", checkpoint=checkpoint).eval()


@pytest.fixture(scope="module")
def reference_outputs(reference: torch.nn.Module) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return reference(torch.from_numpy(_clips()))


def test_state_dict_matches_reference_key_for_key(reference: torch.nn.Module) -> None:
    with torch.device("meta"):  # names and shapes only: skip allocating 80 M parameters
        ours = Cnn14().state_dict()
    ref = reference.state_dict()
    assert list(ours) == list(ref)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in ref.items()}


def test_front_end_kernels_equal_reference(reference: torch.nn.Module) -> None:
    """Freshly built DFT kernels and mel matrix equal torchlibrosa's to float32 rounding."""
    stft = Spectrogram().stft
    ref = reference.state_dict()
    for part in ("real", "imag"):  # ≤ 1 ulp at 0.5: torchlibrosa's np.power phases are inexact
        ours = getattr(stft, f"conv_{part}").weight
        _assert_close(ours, ref[f"spectrogram_extractor.stft.conv_{part}.weight"], atol=1.2e-7)
    _assert_close(LogMel().melW, ref["logmel_extractor.melW"], atol=1e-8)


def test_front_end_is_not_trainable() -> None:
    model = create_cnn14("cnn14-tiny")
    names = {name for name, _ in model.named_parameters()}
    assert not any(name.startswith(("spectrogram_extractor", "logmel_extractor")) for name in names)


def test_waveform_parity(loaded: Cnn14, reference_outputs: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        out = loaded(torch.from_numpy(_clips()), is_logmel=False)
    # Same ops in the same order: measured bit-identical.
    _assert_close(out.tag_scores, reference_outputs["clipwise_output"], atol=1e-6)
    _assert_close(out.embedding, reference_outputs["embedding"], atol=1e-6)
    assert reference_outputs["clipwise_output"].std() > 0.05  # the comparison is not vacuous


def test_cached_log_mel_parity(loaded: Cnn14, reference_outputs: dict[str, torch.Tensor]) -> None:
    mels = torch.from_numpy(log_mel(_clips()))
    with torch.no_grad():
        out = loaded(mels, is_logmel=True)
    # numpy FFT vs conv DFT front end: measured 2e-7 (scores), 7e-7 (embedding).
    _assert_close(out.tag_scores, reference_outputs["clipwise_output"], atol=1e-5)
    _assert_close(out.embedding, reference_outputs["embedding"], atol=1e-5)


def test_full_lengths_change_nothing(loaded: Cnn14, reference_outputs: dict[str, torch.Tensor]) -> None:
    clips = torch.from_numpy(_clips())
    with torch.no_grad():
        out = loaded(clips, torch.tensor([clips.shape[1]] * 2), is_logmel=False)
    _assert_close(out.embedding, reference_outputs["embedding"], atol=1e-6)


@pytest.mark.parametrize("is_logmel", [False, True])
def test_padded_clip_encodes_like_the_clip_alone(loaded: Cnn14, is_logmel: bool) -> None:
    clips = _clips()
    short = clips[1, : int(1.3 * SAMPLE_RATE)]
    batch = np.zeros_like(clips)
    batch[0] = clips[0]
    batch[1, : short.size] = short
    if is_logmel:
        alone_in, batch_in = log_mel(short)[None], log_mel(batch)
        alone_frames = alone_in.shape[1]
        batch_in[1, alone_frames:] = 0.0  # a cache reader pads with zeros
        batch_in[1, :alone_frames] = alone_in[0]
        lengths = torch.tensor([batch_in.shape[1], alone_frames])
    else:
        alone_in, batch_in = short[None], batch
        lengths = torch.tensor([clips.shape[1], short.size])
    with torch.no_grad():
        alone = loaded(torch.from_numpy(alone_in), is_logmel=is_logmel)
        padded = loaded(torch.from_numpy(batch_in), lengths, is_logmel=is_logmel)
        unmasked = loaded(torch.from_numpy(batch_in), is_logmel=is_logmel)
    t_alone = alone.frames.shape[1]
    assert padded.frame_lengths.tolist() == [n_frames(clips.shape[1]) // 32, t_alone]
    _assert_close(padded.embedding[1], alone.embedding[0], atol=1e-5)
    _assert_close(padded.tag_scores[1], alone.tag_scores[0], atol=1e-5)
    _assert_close(padded.frames[1, :t_alone], alone.frames[0], atol=1e-5)
    assert torch.all(padded.frames[1, t_alone:] == 0)
    # Without lengths the padding leaks into the embedding; the mask is what removes it.
    assert (unmasked.embedding[1] - alone.embedding[0]).abs().max() > 1e-3


def test_checkpoint_of_other_width_is_rejected_with_the_path(checkpoint: Path) -> None:
    with pytest.raises(InputError) as info:
        create_cnn14("cnn14-tiny", checkpoint=checkpoint)
    message = str(info.value)
    assert str(checkpoint) in message and "shape mismatches" in message and "width=1" in message


def test_checkpoint_must_use_the_panns_layout(tmp_path: Path) -> None:
    bare = tmp_path / "bare.pth"
    torch.save(create_cnn14("cnn14-tiny").state_dict(), bare)
    with pytest.raises(InputError, match="PANNs layout"):
        load_panns_checkpoint(create_cnn14("cnn14-tiny"), bare)
    with pytest.raises(InputError, match="does not exist"):
        load_panns_checkpoint(create_cnn14("cnn14-tiny"), tmp_path / "missing.pth")


def test_own_width_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_cnn14("cnn14-tiny")
    path = tmp_path / "tiny.pth"
    torch.save({"model": model.state_dict()}, path)
    again = create_cnn14("cnn14-tiny", checkpoint=path)
    for key, value in model.state_dict().items():
        _assert_close(again.state_dict()[key], value, atol=0)
    # Loaded by assignment onto a meta-device skeleton: nothing left on meta, buffers stay
    # buffers, parameters stay trainable.
    assert not any(t.is_meta for t in again.state_dict().values())
    assert {n for n, _ in again.named_parameters()} == {n for n, _ in model.named_parameters()}
    assert all(p.requires_grad for p in again.parameters())
    fresh = create_cnn14("cnn14-tiny")
    load_panns_checkpoint(fresh, path)
    _assert_close(fresh.fc1.weight, model.fc1.weight, atol=0)


def test_load_tagger_reads_its_config_from_aacbatch_checkpoints(tmp_path: Path) -> None:
    config = Cnn14Config(width=1 / 16, n_classes=7)
    model = create_cnn14(config)
    own = tmp_path / "tagger.pt"
    optimizer_state = {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 1e-3, "params": [0]}]}
    torch.save({"model_config": asdict(config), "labels": list("abcdefg"), "model": model.state_dict(),
                "optimizer": optimizer_state, "epoch": 3, "best": float("-inf")}, own)
    loaded = load_tagger(own, "cnn14")  # the file's own config wins over the variant name
    assert loaded.config == config
    _assert_close(loaded.fc_audioset.weight, model.fc_audioset.weight, atol=0)
    panns = tmp_path / "panns.pth"
    torch.save({"model": model.state_dict()}, panns)
    assert load_tagger(panns, config).config == config
    with pytest.raises(InputError, match="does not fit"):
        load_tagger(panns, "cnn14-tiny")  # 527 classes expected, 7 stored
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"cannot be read \(Unsupported operand"):
        load_tagger(broken)
    with_numpy = tmp_path / "with_numpy.pth"
    torch.save({"model": model.state_dict(), "stats": np.zeros(3)}, with_numpy)
    with pytest.raises(InputError, match="Unsupported global.*weights_only=False"):
        load_tagger(with_numpy)
    fresh = create_cnn14(config)
    load_panns_checkpoint(fresh, with_numpy, weights_only=False)  # a file the user trusts
    _assert_close(fresh.fc1.weight, model.fc1.weight, atol=0)


def test_variants() -> None:
    assert CNN14_CONFIGS["cnn14"].channels == (64, 128, 256, 512, 1024, 2048)
    assert CNN14_CONFIGS["cnn14-small"].channels == (16, 32, 64, 128, 256, 512)
    assert CNN14_CONFIGS["cnn14-tiny"].channels == (4, 8, 16, 32, 64, 128)
    assert CNN14_CONFIGS["cnn14-tiny"].embedding_dim == 128
    assert Cnn14Config(width=1 / 16, embed_dim=96).embedding_dim == 96
    with pytest.raises(InputError, match="unknown CNN14 variant"):
        create_cnn14("cnn15")


def test_tiny_forward_backward_on_both_inputs() -> None:
    torch.manual_seed(0)
    model = create_cnn14(Cnn14Config(width=1 / 16, n_classes=10)).train()
    waves = torch.randn(3, int(1.2 * SAMPLE_RATE)) * 0.1
    lengths = torch.tensor([waves.shape[1], 20000, 12000])
    out = model(waves, lengths, is_logmel=False)
    assert out.tag_scores.shape == (3, 10) and out.embedding.shape == (3, 128)
    assert out.frames.shape == (3, 121 // 32, 128)
    assert out.frame_lengths.tolist() == [3, (1 + 20000 // HOP) // 32, (1 + 12000 // HOP) // 32]
    mels = torch.from_numpy(log_mel(waves.numpy()))
    out_mel = model(mels, lengths=torch.tensor([121, 80, 40]), is_logmel=True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(out.tag_logits, torch.rand(3, 10)) + out_mel.embedding.sum()
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    assert model.conv_block1.conv1.weight.grad.abs().sum() > 0
    with torch.no_grad():  # float16 log-mels straight from the cache
        half = model.eval()(mels.half(), is_logmel=True)
    _assert_close(half.embedding, model(mels, is_logmel=True).embedding, atol=1e-2)


def test_too_short_input_is_explained() -> None:
    with pytest.raises(ValueError, match="at least 32 frames"):
        create_cnn14("cnn14-tiny").eval()(torch.zeros(1, 31 * HOP - 1), is_logmel=False)


def test_spec_augment_only_in_training_and_seeded() -> None:
    model = create_cnn14("cnn14-tiny")
    x = torch.randn(4, 1, 300, 64) + 5.0  # no exact zeros before augmentation
    lengths = torch.tensor([300, 300, 150, 100])

    model.eval()
    assert torch.equal(model.spec_augmenter(x, lengths), x)

    model.train()
    torch.manual_seed(7)
    first = model.spec_augmenter(x, lengths)
    torch.manual_seed(7)
    second = model.spec_augmenter(x, lengths)
    assert torch.equal(first, second)
    assert not torch.equal(first, x)
    assert torch.equal(x.min() > 0, torch.tensor(True))  # not in place
    dropped = first == 0
    kept = first == x
    assert torch.all(dropped | kept)
    # Time stripes ≤ 63 frames × 2 and frequency stripes ≤ 7 bins × 2 per clip.
    time_dropped = dropped.all(dim=3)[:, 0]  # (B, T) whole frames zeroed
    freq_dropped = dropped.all(dim=2)[:, 0]  # (B, M) whole bins zeroed
    assert int(time_dropped.sum(dim=1).max()) <= 2 * 63
    assert int(freq_dropped.sum(dim=1).max()) <= 2 * 7
    # Time stripes fall inside each clip's valid frames.
    assert not time_dropped[3, 100 + 63 :].any()


def test_parity_through_the_featurize_cache(loaded: Cnn14, reference_outputs, tmp_path: Path) -> None:
    """The same audio as files → ingest → `featurize mel32` → Zarr → model == reference."""
    import soundfile as sf

    from aacbatch.batches import pad_ragged
    from aacbatch.config import Settings
    from aacbatch.data.ingest import ingest
    from aacbatch.featurize.job import featurize
    from aacbatch.featurize.sets import cached_set
    from aacbatch.registry.store import Registry

    folder = tmp_path / "clips"
    folder.mkdir()
    rows = ["file_name,caption"]
    for k, clip in enumerate(_clips()):
        sf.write(str(folder / f"c{k}.wav"), clip, SAMPLE_RATE, subtype="FLOAT")  # lossless float32
        rows.append(f"c{k}.wav,clip {k}")
    (folder / "list.csv").write_text("\n".join(rows) + "\n")
    registry = Registry(Settings.resolve(home=tmp_path / "home"))
    ingest(registry, "folder", folder / "list.csv", name="parity")
    featurize(registry, "mel32", "parity")
    store = cached_set(registry, "parity", "mel32").store
    mels, lengths = pad_ragged(store.reader("mel")[store.rows([0, 1])], multiple=1)
    with torch.no_grad():
        out = loaded(torch.from_numpy(mels), torch.from_numpy(lengths), is_logmel=True)
    _assert_close(out.tag_scores, reference_outputs["clipwise_output"], atol=1e-4)
    _assert_close(out.embedding, reference_outputs["embedding"], atol=1e-4)
