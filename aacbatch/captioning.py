"""Using trained captioners: captions for a split, for audio files or log-mels, and
ensembles — what ``aacbatch caption``, caption systems and indexes with captions share.

A caption run's best checkpoint holds everything needed to use it: the captioner config
and weights, its vocabulary, the encoded feature set it read and the retrieval run whose
frozen encoder made those features. Members of an ensemble may read different encoders
(that is the point of captioning systems S1 and S4) but must share the vocabulary, since
decoding averages their per-step distributions over the same words.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from aacbatch import catalog
from aacbatch.audio.waveform import file_logmel
from aacbatch.batches import CachedBatches, Source, pad_ragged
from aacbatch.data.items import load_items
from aacbatch.decode import Member, beam_search, decode_clips
from aacbatch.errors import InputError, first_line, shown
from aacbatch.evaluate.captions import CaptionEvaluation
from aacbatch.featurize.sets import cached_set
from aacbatch.models.checkpoints import audio_encoder, build_model, read_checkpoint
from aacbatch.models.cnn14 import Cnn14
from aacbatch.models.vocab import Vocabulary
from aacbatch.registry.runs import best_checkpoint
from aacbatch.registry.store import Registry


@dataclass
class CaptionModel:
    """A caption run's best checkpoint, loaded for inference."""

    run_id: str
    dataset: str
    model: object  # aacbatch.models.captioner.Captioner, in eval mode
    vocab: Vocabulary
    features: str  # its encoded feature set
    encoder_run: str | None
    beam_size: int  # decoding settings of the run's config
    max_tokens: int  # max_words: END counts as a token, so a caption never exceeds max_words words
    registry: Registry

    @classmethod
    def load(cls, registry: Registry, run_id: str) -> "CaptionModel":
        run, path = best_checkpoint(registry, run_id, catalog.tasks_where(family="caption"), "caption run")
        config = json.loads(run.config_json)
        record = read_checkpoint(path)
        return cls(run.id, config["dataset"], build_model(record).eval(), Vocabulary(tuple(record.extras["vocab"])),
                   record.extras["features"], record.extras["encoder_run"], config["beam_size"], config["max_words"],
                   registry)

    @cached_property
    def encoder(self) -> Cnn14:
        """The frozen CNN14 whose frames this captioner reads (for new audio)."""
        if self.encoder_run is None:
            raise InputError(f"caption run {self.run_id} was trained on features of a checkpoint file, not a run: "
                             "caption its dataset's splits instead of new audio")
        _, path = best_checkpoint(self.registry, self.encoder_run, catalog.tasks_where(encoder=True), "encoder run")
        return audio_encoder(read_checkpoint(path)).eval()


def load_members(registry: Registry, run_ids: Sequence[str]) -> list[CaptionModel]:
    """Caption runs for one ensemble; refuses members with different vocabularies."""
    if not run_ids:
        raise InputError("no caption run given: pass --run RUN_ID (repeat it for an ensemble)")
    members = [CaptionModel.load(registry, r) for r in run_ids]
    for m in members[1:]:
        if m.vocab != members[0].vocab:
            raise InputError(f"caption runs {members[0].run_id} and {m.run_id} have different vocabularies and cannot "
                             "be ensembled: train them with the same captions (vocab_from)")
    return members


def _weights(members: list, weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        return [1.0] * len(members)
    if len(weights) != len(members):
        raise InputError(f"{len(weights)} weights for {len(members)} caption runs")
    bad = [w for w in weights if not (math.isfinite(w) and w > 0)]
    if bad:
        raise InputError(f"ensemble weight {bad[0]} is not a positive number")
    return list(weights)


@dataclass(frozen=True)
class SplitCaptions:
    """Generated captions, references and file names of a split's clips, keyed by clip id."""

    captions: dict[str, str]
    references: dict[str, list[str]]
    names: dict[str, str]


def caption_split(registry: Registry, run_ids: Sequence[str], split: str, weights: Sequence[float] | None = None,
                  batch_size: int = 64, dataset: str | None = None) -> SplitCaptions:
    """Captions of every clip of ``split`` of ``dataset`` (default: the members' own) by one run
    or an ensemble. Every member reads the dataset's encoded frames of its own encoder (the
    set it was trained on, by name); decoding uses the first member's beam size and length limit."""
    members = load_members(registry, run_ids)
    weights = _weights(members, weights)
    datasets = {m.dataset for m in members}
    if dataset is None and len(datasets) > 1:
        raise InputError(f"caption runs {', '.join(m.run_id for m in members)} were trained on different datasets "
                         f"({', '.join(sorted(datasets))}): an ensemble captions one dataset's split")
    dataset = dataset or members[0].dataset
    items = load_items(registry, dataset, split)
    clips = [c.idx for c in items.clips]
    readers = [CachedBatches({"frames": Source(_frames(registry, dataset, m).store, "frames", "clip")}, clips)
               for m in members]
    texts = decode_clips([m.model for m in members], readers, np.arange(len(clips)), members[0].vocab, weights,
                         beam_size=members[0].beam_size, max_tokens=members[0].max_tokens, batch_size=batch_size)
    ids, refs = {c.idx: c.id for c in items.clips}, items.references()
    return SplitCaptions({ids[i]: t for i, t in zip(clips, texts)}, {ids[i]: refs[i] for i in clips if i in refs},
                         {c.id: c.name for c in items.clips})


def _frames(registry: Registry, dataset: str, member: CaptionModel):
    """The dataset's encoded set of the member's encoder — checked to be the same encoder."""
    found = cached_set(registry, dataset, member.features)
    encoder = (found.store.meta.get("model_identity") or {}).get("encoder_run")
    if encoder != member.encoder_run:
        raise InputError(f"feature set {member.features!r} of {dataset!r} holds frames of encoder run {encoder}, not "
                         f"{member.encoder_run} (the one run {member.run_id} learned on): featurize encoded --dataset "
                         f"{dataset} --from-run {member.encoder_run}")
    return found


def evaluate_ensemble(registry: Registry, run_ids: Sequence[str], weights: Sequence[float] | None,
                      split: str, dataset: str | None = None) -> CaptionEvaluation:
    """Every caption metric of an ensemble (or one run) on ``split`` of ``dataset`` (default:
    the members' own) — what systems store."""
    result = caption_split(registry, run_ids, split, weights, dataset=dataset)
    missing = [result.names[k] for k in result.captions if k not in result.references]
    if missing:
        raise InputError(f"{len(missing)} clip(s) of split {split!r} have no reference captions (e.g. {missing[0]})")
    return CaptionEvaluation.score(result.captions, result.references, registry.settings.home / "assets")


def caption_logmels(registry: Registry, run_ids: Sequence[str], logmels: Sequence[np.ndarray],
                    weights: Sequence[float] | None = None, batch_size: int = 32) -> list[str]:
    """One caption per log-mel (T, 64) of new audio: each member's encoder makes its frames."""
    members = load_members(registry, run_ids)
    weights = _weights(members, weights)
    out: list[str] = []
    with torch.no_grad():
        for lo in range(0, len(logmels), batch_size):
            mel, lengths = (torch.from_numpy(a) for a in pad_ragged(list(logmels[lo:lo + batch_size])))
            batch = []
            for m, w in zip(members, weights):
                enc = m.encoder(mel, lengths, is_logmel=True)
                batch.append(Member(m.model, enc.frames, enc.frame_lengths, w))
            out.extend(members[0].vocab.decode(ids) for ids in beam_search(
                batch, beam_size=members[0].beam_size, max_tokens=members[0].max_tokens))
    return out


def caption_files(registry: Registry, run_ids: Sequence[str], paths: Sequence[Path],
                  weights: Sequence[float] | None = None) -> list[str]:
    """Captions of audio files (any rate and channel count) through each member's encoder."""
    mels = []
    for path in paths:
        try:
            mels.append(file_logmel(path))
        except Exception as exc:  # unreadable or not audio: name the file
            raise InputError(f"cannot read audio file {shown(path)}: {first_line(exc)}") from exc
    return caption_logmels(registry, run_ids, mels, weights)
