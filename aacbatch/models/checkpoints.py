"""Checkpoints: the one place that reads and writes model files, and the model factory.

Every aacbatch checkpoint describes itself (nanoGPT / open_clip style): ``model_family``
and ``model_config`` rebuild the architecture, ``model`` holds the weights, and the rest
records where it came from — task, run, dataset, training config, the feature sets it read
(``feature_sets``), the parent run, task facts such as the captioner's vocabulary or the
tagger's labels, and, for resuming, the optimiser/scheduler/RNG state. The official PANNs
file (``Cnn14_mAP=0.431.pth``: ``{"model": state_dict}``, no family) is read too, as a CNN14
of a named variant.

Files are read with ``torch.load(weights_only=True)``: a checkpoint is data, never code. A
file that needs pickled objects is refused with the option that reads it when trusted.

On disk a checkpoint stays a flat dict (the layout of every earlier version), which
:class:`CheckpointRecord` types on reading.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from aacbatch.errors import InputError
from aacbatch.models.captioner import Captioner, CaptionerConfig
from aacbatch.models.clap import Clap, ClapConfig
from aacbatch.models.cnn14 import PANNS_CHANNELS, Cnn14, Cnn14Config, resolve_config

# model_family → (config class, model class): what build_model constructs.
FAMILIES: dict[str, tuple[type, type[nn.Module]]] = {
    model.MODEL_FAMILY: (config, model) for config, model in
    ((Cnn14Config, Cnn14), (ClapConfig, Clap), (CaptionerConfig, Captioner))}
_LINEAGE = ("task", "run_id", "dataset", "config", "feature_sets", "parent_run_id")
_TRAINING = ("optimizer", "scaler", "epoch", "step", "best", "history", "torch_rng")


@dataclass(frozen=True)
class CheckpointRecord:
    """A checkpoint file, typed.

    ``model_family`` is None only for a foreign file (the PANNs layout); ``extras`` holds the
    task's own facts (``vocab``, ``labels``, ``encoder_run``, ``features``); ``training`` the
    state a resumed run continues from (None in files written without it).
    """

    path: Path
    model_family: str | None
    model_config: dict
    state: dict[str, Tensor]
    task: str | None = None
    run_id: str | None = None
    dataset: str | None = None
    config: dict = field(default_factory=dict)
    feature_sets: list[dict] = field(default_factory=list)
    parent_run_id: str | None = None
    extras: dict = field(default_factory=dict)
    training: dict | None = None

    def to_dict(self) -> dict:
        return {"model_family": self.model_family, "model_config": self.model_config, "model": self.state,
                **{k: getattr(self, k) for k in _LINEAGE}, **self.extras, **(self.training or {})}


def load_file(path: str | Path, *, trusted: bool = False) -> object:
    """What a torch file holds, on the CPU — the one ``torch.load`` of aacbatch; ``trusted=True``
    also unpickles non-tensor objects (only for a file you trust). One-line
    :class:`InputError` for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted)
    except Exception as exc:  # not a torch file, truncated, or objects weights_only refuses
        text = " ".join(str(exc).split())
        found = re.search(r"WeightsUnpickler error: (.*?)(?:\. Please use| Check the documentation|$)", text)
        reason = found.group(1) if found else text[:200] or type(exc).__name__
        hint = "; if you trust it, read it with trusted=True (load_panns_checkpoint(..., weights_only=False))"
        raise InputError(f"checkpoint {path} cannot be read ({reason}){hint if 'Unsupported global' in reason else ''}"
                         ) from exc


def read_checkpoint(path: str | Path, *, trusted: bool = False) -> CheckpointRecord:
    """The checkpoint at ``path`` as a record (see :func:`load_file` for ``trusted``)."""
    path = Path(path)
    raw = load_file(path, trusted=trusted)
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict):
        found = list(raw)[:5] if isinstance(raw, dict) else type(raw).__name__
        raise InputError(f"checkpoint {path} is not in the PANNs layout {{'model': state_dict}} (found {found})")
    known = {"model_family", "model_config", "model", *_LINEAGE, *_TRAINING}
    training = {k: raw[k] for k in _TRAINING if k in raw} or None
    return CheckpointRecord(
        path=path, model_family=raw.get("model_family"), model_config=raw.get("model_config") or {},
        state=raw["model"], task=raw.get("task"), run_id=raw.get("run_id"), dataset=raw.get("dataset"),
        config=raw.get("config") or {}, feature_sets=raw.get("feature_sets") or [],
        parent_run_id=raw.get("parent_run_id"), extras={k: v for k, v in raw.items() if k not in known},
        training=training)


def write_checkpoint(path: Path, record: CheckpointRecord) -> None:
    """Save atomically: a kill mid-save never leaves a truncated checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(record.to_dict(), tmp)
    os.replace(tmp, path)


def build_model(record: CheckpointRecord) -> nn.Module:
    """The model a checkpoint describes, with its weights loaded strictly, on the CPU."""
    if record.model_family not in FAMILIES:
        raise InputError(f"checkpoint {record.path} has model family {record.model_family!r}; aacbatch builds "
                         f"{', '.join(FAMILIES)}")
    config_cls, model_cls = FAMILIES[record.model_family]
    try:
        config = config_cls(**record.model_config)
    except (TypeError, ValueError) as exc:
        raise InputError(f"checkpoint {record.path} has an invalid model_config ({exc})") from exc
    model = model_cls(config)
    problems = state_mismatches(model.state_dict(), record.state)
    if problems:
        raise InputError(f"checkpoint {record.path} does not fit its own {record.model_family} config: {problems}")
    model.load_state_dict(record.state, strict=True)
    return model


def audio_encoder(record: CheckpointRecord, variant: str | Cnn14Config = "cnn14") -> Cnn14:
    """The CNN14 of a checkpoint: a tagger's whole model, a retrieval model's ``audio.`` part
    (its encoder still tags: CLAP-TAG trains that head), or a PANNs file built as ``variant``."""
    state = record.state
    if record.model_family == Clap.MODEL_FAMILY:
        fields = record.model_config.get("audio")
        state = {k.removeprefix("audio."): v for k, v in state.items() if k.startswith("audio.")}
    elif record.model_family in (None, Cnn14.MODEL_FAMILY):
        fields = record.model_config or None
    else:
        raise InputError(f"checkpoint {record.path} is a {record.model_family} model, which has no CNN14 audio encoder")
    if fields is not None:
        try:
            config = Cnn14Config(**fields)
        except (TypeError, ValueError) as exc:
            raise InputError(f"CNN14 checkpoint {record.path} has an invalid model_config ({exc})") from exc
    else:
        config = resolve_config(variant)
    return _cnn14_from_state(config, state, record.path)


def load_tagger(path: str | Path, variant: str | Cnn14Config = "cnn14") -> Cnn14:
    """A tagging CNN14 from an aacbatch tagger or retrieval checkpoint, or an official PANNs file."""
    return audio_encoder(read_checkpoint(path), variant)


def create_cnn14(name_or_config: str | Cnn14Config, checkpoint: str | Path | None = None) -> Cnn14:
    """A CNN14 by variant name or config; with ``checkpoint`` (PANNs layout) its weights, strictly."""
    config = resolve_config(name_or_config)
    if checkpoint is None:
        return Cnn14(config)
    return _cnn14_from_state(config, read_checkpoint(checkpoint).state, Path(checkpoint))


def load_panns_checkpoint(model: Cnn14, path: str | Path, *, weights_only: bool = True) -> None:
    """Load ``{"model": state_dict}`` from ``path`` into ``model`` with ``strict=True``.

    ``weights_only=False`` also reads a file that stores non-tensor objects — only for a file
    you trust. Copies into the model's tensors, so device and dtype stay."""
    path = Path(path)
    state = read_checkpoint(path, trusted=not weights_only).state
    _check_fits(model, state, path)
    model.load_state_dict(state, strict=True)


def _cnn14_from_state(config: Cnn14Config, state: dict[str, Tensor], path: Path) -> Cnn14:
    """A model whose every tensor is taken from ``state`` (strict)."""
    with torch.device("meta"):  # all tensors come from the file: skip 80 M random inits
        model = Cnn14(config)
    _check_fits(model, state, path)
    model.load_state_dict(state, strict=True, assign=True)
    return model


def _check_fits(model: Cnn14, state: dict[str, Tensor], path: Path) -> None:
    problems = state_mismatches(model.state_dict(), state)
    if problems:
        if "conv_block1.conv1.weight" in state and "fc_audioset.weight" in state:
            width = state["conv_block1.conv1.weight"].shape[0] / PANNS_CHANNELS[0]
            problems += f"; the file looks like width={width:g}, n_classes={state['fc_audioset.weight'].shape[0]}"
        raise InputError(f"CNN14 checkpoint {path} does not fit {model.config}: {problems}")


def state_mismatches(expected: dict[str, Tensor], found: dict[str, Tensor]) -> str:
    """One-line summary of missing/unexpected keys and shape mismatches ('' if none)."""
    report = StateReport.compare(expected, found)
    parts = [f"{label} ({len(items)}): {_few(items)}" for label, items in (
        ("missing keys", report.missing), ("unexpected keys", report.unused), ("shape mismatches", report.mismatched))
        if items]
    return "; ".join(parts)


def _few(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (", ..." if len(items) > n else "")


@dataclass(frozen=True)
class StateReport:
    """How a state dict fits a model: keys it lacks, keys the model lacks, shape mismatches
    (``"name (file shape) vs model (shape)"``), and the keys that fit."""

    missing: list[str]
    unused: list[str]
    mismatched: list[str]
    fitting: dict[str, Tensor]

    @classmethod
    def compare(cls, expected: dict[str, Tensor], found: dict[str, Tensor]) -> "StateReport":
        fitting = {k: v for k, v in found.items() if k in expected and expected[k].shape == v.shape}
        return cls(missing=[k for k in expected if k not in found], unused=[k for k in found if k not in expected],
                   mismatched=[f"{k} {tuple(found[k].shape)} vs model {tuple(v.shape)}" for k, v in expected.items()
                               if k in found and found[k].shape != v.shape],
                   fitting=fitting)


def init_from_state(model: nn.Module, record: CheckpointRecord, *, allow_partial: bool) -> StateReport:
    """Start ``model`` from a parent checkpoint's weights (``--init-from``).

    Parameters the parent has and this model lacks are dropped (a head the child does not
    use). Parameters of this model that the parent lacks or has in another shape would stay
    as initialised: that is an architecture mismatch, refused with their names unless
    ``allow_partial`` (then the fitting ones are loaded and the report says which were not)."""
    report = StateReport.compare(model.state_dict(), record.state)
    source = f"run {record.run_id}" if record.run_id else str(record.path)
    if not report.fitting:
        raise InputError(f"{source}'s weights share no parameters with this model: check --init-from")
    unloaded = report.missing + report.mismatched
    if unloaded and not allow_partial:
        raise InputError(f"--init-from {source}: {len(unloaded)} of {len(model.state_dict())} parameters of this model "
                         f"would stay uninitialised — the architectures differ ({_few(unloaded)}); use a parent with "
                         "the same model settings, or --set init_partial=true to load only the parameters that fit")
    model.load_state_dict(report.fitting, strict=False)
    return report
