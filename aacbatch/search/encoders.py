"""Embed audio and text with trained retrieval runs: what ``aacbatch index`` and
``aacbatch search`` share.

A model for search is one retrieval run or a system (an ensemble of runs with weights). Each
run's best checkpoint describes itself: ``model_config`` (a :class:`ClapConfig`), the weights,
and the training ``config``, whose ``text`` field says how captions entered the model:

* ``"finetune"``: token ids → the trained text encoder stored in the checkpoint;
* ``"locked"``: the CLS vector of a frozen text model — the one the run's ``text_emb``
  feature set was computed with — → the trained ``text_head``.

A query is tokenised like the run's caption feature set (same tokenizer folder, same
``max_length``), so it is encoded exactly like a training caption.

Shapes: log-mels [(T_i, 64)] → audio embeddings (B, E); queries [str] → text embeddings
(B, E); both L2-normalised float32 (E = ``ClapConfig.embed_dim``, 1024 by default).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aacbatch import catalog
from aacbatch.batches import pad_ragged
from aacbatch.errors import InputError
from aacbatch.hashing import content_sha256
from aacbatch.models.checkpoints import CheckpointRecord, build_model, read_checkpoint
from aacbatch.models.text import TextEncoder, default_text_model_dir, load_tokenizer, model_identity, tokenize
from aacbatch.registry.features import feature_set_by_id
from aacbatch.registry.runs import best_checkpoint, get_run
from aacbatch.registry.store import Registry
from aacbatch.registry.systems import members_of, system_by_name


@dataclass(frozen=True)
class Member:
    """One run of a search model, with its ensemble weight and the checkpoint that embeds."""

    run_id: str
    task: str
    weight: float
    checkpoint: Path
    sha256: str  # of the checkpoint file: an index records it, a search checks it

    def identity(self) -> dict:
        return {"run_id": self.run_id, "task": self.task, "weight": self.weight, "checkpoint_sha256": self.sha256}


def resolve_model(registry: Registry, run: str | None, system: str | None) -> list[tuple[str, float]]:
    """``--run RUN_ID`` (or prefix) or ``--system NAME`` → [(run id, weight)] in rank order."""
    if (run is None) == (system is None):
        raise InputError("give exactly one of --run RUN_ID or --system NAME")
    if run is not None:
        return [(get_run(registry, run).id, 1.0)]
    pairs = members_of(registry, system_by_name(registry, system))
    if not pairs:
        raise InputError(f"system {system!r} has no members: rebuild it with `aacbatch system build {system}`")
    if any(w <= 0 for _, w in pairs):
        raise InputError(f"system {system!r} has a member with a weight <= 0: its scores cannot be averaged")
    return pairs


def members(registry: Registry, pairs: Sequence[tuple[str, float]]) -> list[Member]:
    """Each (run id, weight) with its best checkpoint, checked to be a retrieval run."""
    out = []
    for run_id, weight in pairs:
        run, path = best_checkpoint(registry, run_id, catalog.tasks_where(family="retrieval"), "search model")
        out.append(Member(run.id, run.task, weight, path, content_sha256(path.parent, [path])))
    return out


class RunEncoder:
    """One run's CLAP in eval mode, with the text encoder and tokenizer its captions went through."""

    def __init__(self, run_id: str, model, text_encoder: torch.nn.Module, tokenizer, max_tokens: int):
        self.run_id = run_id
        self.model = model
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens

    @property
    def embed_dim(self) -> int:
        return int(self.model.config.embed_dim)

    def embed_audio(self, logmels: Sequence[np.ndarray]) -> np.ndarray:
        """[(T_i, 64)] log-mels → (B, E) unit vectors; one zero-padded batch (padding is masked)."""
        mel, lengths = pad_ragged(list(logmels))
        with torch.no_grad():
            return self.model.encode_audio(torch.from_numpy(mel), torch.from_numpy(lengths))[0].numpy()

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """[str] → (B, E) unit vectors; texts longer than ``max_tokens`` are cut (see :meth:`n_tokens`)."""
        ids, mask = tokenize(self.tokenizer, list(texts), self.max_tokens)
        with torch.no_grad():
            cls = self.text_encoder(torch.from_numpy(ids), torch.from_numpy(mask))
            return self.model.encode_text(cls=cls).numpy()

    def n_tokens(self, text: str) -> int:
        """Length of ``text`` in tokens (with [CLS] and [SEP]), before any truncation."""
        return len(self.tokenizer(text, truncation=False)["input_ids"])


def load_encoders(registry: Registry, model: Sequence[Member]) -> list[RunEncoder]:
    """A :class:`RunEncoder` per member; members with the same locked text model share it."""
    shared: dict[Path, tuple] = {}
    out = []
    for member in model:
        record = read_checkpoint(member.checkpoint)
        clap = build_model(record).eval()
        finetuned = record.config["text"] == "finetune"
        folder, max_tokens = _text_model(registry, member.run_id, record, finetuned)
        if finetuned:
            encoder, tokenizer = clap.text, load_tokenizer(folder)
        else:
            if folder not in shared:
                shared[folder] = (TextEncoder(folder).freeze(), load_tokenizer(folder))
            encoder, tokenizer = shared[folder]
        out.append(RunEncoder(member.run_id, clap, encoder, tokenizer, max_tokens))
    return out


def _text_model(registry: Registry, run_id: str, record: CheckpointRecord, finetuned: bool) -> tuple[Path, int]:
    """The tokenizer/encoder folder and token limit of the feature set the run read captions from."""
    set_name = record.config["tokens" if finetuned else "text_emb"]
    ids = [s["id"] for s in record.feature_sets if s["name"] == set_name]
    row = feature_set_by_id(registry, ids[0]) if ids else None
    if row is None:
        raise InputError(f"run {run_id} read captions from feature set {set_name!r}, which is no longer registered: "
                         "its text model is unknown; featurize it again or use another run")
    params = json.loads(row.spec_json)["params"]
    if finetuned:  # training checked that the tokens set was made with this folder's tokenizer
        return Path(record.model_config["text_model"]), int(params["max_length"])
    folder = default_text_model_dir() if params["model"] == "default" else Path(params["model"])
    recorded = json.loads(row.model_identity or "{}")
    if model_identity(folder)["sha256"] != recorded.get("sha256"):
        raise InputError(f"run {run_id} was trained on text embeddings of {recorded.get('name')!r}, but {folder} now "
                         "holds another model: restore that model folder to search with this run")
    return folder.resolve(), int(params["max_length"])
