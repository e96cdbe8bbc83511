"""Using trained captioners: captions for a split, for audio files or log-mels, ensembles,
and the scoring shared by training, ``aacbatch caption`` and caption systems.

A caption run's best checkpoint holds everything needed to use it: the captioner config
and weights, its vocabulary, the encoded feature set it read and the retrieval run whose
frozen encoder made those features. Members of an ensemble may read different encoders
(that is the point of captioning systems S1 and S4) but must share the vocabulary, since
decoding averages their per-step distributions over the same words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from aacbatch.errors import InputError
from aacbatch.registry.store import Registry


@dataclass(frozen=True)
class CaptionEvaluation:
    """Corpus metrics (None where an asset is missing), why, and the captions (clip id → text)."""

    metrics: dict[str, float | None]
    reasons: dict[str, str]
    captions: dict[str, str]

    @classmethod
    def score(cls, captions: dict[str, str], references: dict[str, list[str]], assets_dir: Path) -> "CaptionEvaluation":
        from aacbatch.evaluate.captions import caption_metrics

        empty = [k for k, v in captions.items() if not v.strip()]
        if empty:  # a model can emit END first; score it as the empty caption it is, visibly
            raise InputError(f"the captioner produced an empty caption for {len(empty)} clip(s) (e.g. {empty[0]}): "
                             "train it longer or check its inputs")
        scores = caption_metrics(captions, references, assets_dir=assets_dir)
        return cls(scores.corpus, scores.reasons, captions)


@dataclass
class CaptionModel:
    """A caption run's best checkpoint, loaded for inference."""

    run_id: str
    dataset: str
    model: object  # aacbatch.models.captioner.Captioner, in eval mode
    vocab: object  # aacbatch.models.vocab.Vocabulary
    features: str  # its encoded feature set
    encoder_run: str | None
    beam_size: int  # decoding settings of the run's config
    max_tokens: int  # max_words: END counts as a token, so a caption never exceeds max_words words
    registry: Registry

    @classmethod
    def load(cls, registry: Registry, run_id: str) -> "CaptionModel":
        import json

        import torch

        from aacbatch.models.captioner import Captioner, CaptionerConfig
        from aacbatch.models.vocab import Vocabulary
        from aacbatch.registry.lookup import checkpoint_of
        from aacbatch.train.runs import get_run

        run = get_run(registry, run_id)
        config = json.loads(run.config_json)
        ckpt = torch.load(checkpoint_of(registry, run.id, ("caption",)), map_location="cpu", weights_only=True)
        model = Captioner(CaptionerConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
        return cls(run.id, config["dataset"], model.eval(), Vocabulary(tuple(ckpt["vocab"])), ckpt["features"],
                   ckpt["encoder_run"], config["beam_size"], config["max_words"], registry)

    @cached_property
    def encoder(self):
        """The frozen CNN14 whose frames this captioner reads (for new audio)."""
        from aacbatch.models.cnn14 import load_tagger
        from aacbatch.registry.lookup import checkpoint_of

        if self.encoder_run is None:
            raise InputError(f"caption run {self.run_id} was trained on features of a checkpoint file, not a run: "
                             "caption its dataset's splits instead of new audio")
        return load_tagger(checkpoint_of(self.registry, self.encoder_run, ("clap", "clap_tag", "claip", "claip_tag",
                                                                            "tagger"))).eval()


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


def decode_clips(models: Sequence, readers: Sequence, rows: np.ndarray, vocab, weights: Sequence[float], *,
                 beam_size: int = 3, max_tokens: int = 20, batch_size: int = 64) -> list[str]:
    """Beam-search captions of the examples at ``rows``: model ``k`` reads its frames from
    ``readers[k]`` (a :class:`~aacbatch.batches.CachedBatches` with a ``frames`` source)."""
    import torch

    from aacbatch.decode import Member, beam_search

    out: list[str] = []
    for lo in range(0, len(rows), batch_size):
        batches = [r[rows[lo:lo + batch_size]] for r in readers]
        members = [Member(m, torch.from_numpy(b["frames"]), torch.from_numpy(b["frames_lengths"]), w)
                   for m, b, w in zip(models, batches, weights)]
        out.extend(vocab.decode(ids) for ids in beam_search(members, beam_size=beam_size, max_tokens=max_tokens))
    return out


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
                  batch_size: int = 64) -> SplitCaptions:
    """Captions of every clip of ``split`` by one run or an ensemble. Every member reads its
    own cached encoded features; decoding uses the first member's beam size and length limit."""
    from aacbatch.batches import CachedBatches, Source
    from aacbatch.featurize.items import load_items
    from aacbatch.featurize.sets import cached_set

    members = load_members(registry, run_ids)
    weights = _weights(members, weights)
    datasets = {m.dataset for m in members}
    if len(datasets) > 1:
        raise InputError(f"caption runs {', '.join(m.run_id for m in members)} were trained on different datasets "
                         f"({', '.join(sorted(datasets))}): an ensemble captions one dataset's split")
    dataset = members[0].dataset
    items = load_items(registry, dataset, split)
    clips = [c.idx for c in items.clips]
    readers = [CachedBatches({"frames": Source(cached_set(registry, dataset, m.features).store, "frames", "clip")}, clips)
               for m in members]
    texts = decode_clips([m.model for m in members], readers, np.arange(len(clips)), members[0].vocab, weights,
                         beam_size=members[0].beam_size, max_tokens=members[0].max_tokens, batch_size=batch_size)
    ids, refs = {c.idx: c.id for c in items.clips}, items.references()
    return SplitCaptions({ids[i]: t for i, t in zip(clips, texts)}, {ids[i]: refs[i] for i in clips if i in refs},
                         {c.id: c.name for c in items.clips})


def evaluate_ensemble(registry: Registry, run_ids: Sequence[str], weights: Sequence[float] | None,
                      split: str) -> CaptionEvaluation:
    """Every caption metric of an ensemble (or one run) on ``split`` — what systems store."""
    result = caption_split(registry, run_ids, split, weights)
    missing = [result.names[k] for k in result.captions if k not in result.references]
    if missing:
        raise InputError(f"{len(missing)} clip(s) of split {split!r} have no reference captions (e.g. {missing[0]})")
    return CaptionEvaluation.score(result.captions, result.references, registry.settings.home / "assets")


def caption_logmels(registry: Registry, run_ids: Sequence[str], logmels: Sequence[np.ndarray],
                    weights: Sequence[float] | None = None, batch_size: int = 32) -> list[str]:
    """One caption per log-mel (T, 64) of new audio: each member's encoder makes its frames."""
    import torch

    from aacbatch.batches import pad_ragged
    from aacbatch.decode import Member, beam_search

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
    from aacbatch.data.audio import load_mono
    from aacbatch.featurize import logmel

    from aacbatch.featurize.mel import MIN_SAMPLES

    mels = []
    for path in paths:
        try:
            wave, rate = load_mono(Path(path))
        except Exception as exc:  # unreadable or not audio: name the file
            raise InputError(f"cannot read audio file {path}: {exc}") from exc
        wave = logmel.resample(wave, rate)
        wave = np.pad(wave, (0, max(0, MIN_SAMPLES - len(wave))))  # as the mel feature kind pads short clips
        mels.append(logmel.log_mel(wave))
    return caption_logmels(registry, run_ids, mels, weights)
