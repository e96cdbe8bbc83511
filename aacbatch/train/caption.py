"""``--task caption``: a BiGRU + Transformer-decoder captioner on frozen encoder frames.

Inputs are an ``encoded`` feature set (frames of a retrieval-trained CNN14, computed once),
so a step never runs the audio encoder. Targets are PTB-tokenised captions (the metrics'
tokens), truncated to ``max_words``; loss is teacher-forced cross-entropy with label
smoothing. Each epoch decodes the validation clips with beam search and scores CIDEr-D,
which selects the checkpoint; the best checkpoint is then scored on ``eval_splits`` with
every caption metric (METEOR, CIDEr-D, SPICE/SPIDEr/SPIDEr-FL when their assets are
installed, NULL with the reason otherwise) and its captions are stored as predictions.

Per-epoch CIDEr-D skips the tokenizer JVM: references are tokenised once when the task is
built, and generated captions are already vocabulary tokens (PTB tokens), so re-tokenising
them would not change them (``<unk>`` aside, which matches no reference either way). Final scores go through :func:`caption_metrics` as any
user-supplied predictions would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from aacbatch.batches import CachedBatches, Source, epoch_batches
from aacbatch.data.items import load_items
from aacbatch.decode import decode_clips
from aacbatch.errors import InputError
from aacbatch.evaluate.captions import CaptionEvaluation
from aacbatch.evaluate.cider import CiderD
from aacbatch.evaluate.ptb import tokenize
from aacbatch.featurize.sets import cached_set
from aacbatch.models.captioner import Captioner, CaptionerConfig, caption_loss
from aacbatch.models.checkpoints import CheckpointRecord
from aacbatch.models.vocab import Vocabulary
from aacbatch.registry.runs import SplitResult
from aacbatch.train.config import TrainingFields
from aacbatch.train.task import Task


@dataclass(frozen=True)
class CaptionConfig(TrainingFields):
    features: str = ""  # the `encoded` feature set (e.g. encoded-1a2b3c4d), required
    model: dict = field(default_factory=dict)  # CaptionerConfig overrides; {} = the paper's captioner
    epochs: int = 15
    batch_size: int = 32
    lr: float = 5e-4
    captions_per_clip: int = 0  # per epoch: 0 = every caption (paper); n = n random captions per clip
    label_smoothing: float = 0.1
    max_words: int = 20
    min_word_count: int = 1
    vocab_from: tuple[str, ...] = ()  # other datasets whose training captions join the vocabulary
    beam_size: int = 3  # 1 = greedy decoding
    eval_splits: tuple[str, ...] = ("val", "eval")

    def __post_init__(self):
        super().__post_init__()
        for name in ("captions_per_clip", "max_words", "min_word_count", "beam_size"):
            if getattr(self, name) < (0 if name == "captions_per_clip" else 1):
                raise ValueError(f"{name} = {getattr(self, name)!r} is out of range")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing = {self.label_smoothing!r} is out of range: must be in [0, 1)")
        if self.select_metric not in (None, "cider_d"):  # the only metric scored every epoch
            raise ValueError(f"select_metric must be 'cider_d' (the metric scored every epoch), got {self.select_metric!r}")
        if not self.features:
            raise ValueError("features is required: the encoded feature set to caption from "
                             "(aacbatch featurize encoded --from-run RUN_ID; then --set features=encoded-…)")


@dataclass
class SplitData:
    examples: CachedBatches  # one example per (clip, caption) pair
    clip_rows: np.ndarray  # position of the first example of each distinct clip
    clip_ids: list[str]  # registry ids of those clips (predictions are keyed by them)
    references: list[list[str]]  # per clip, its raw reference captions
    reference_tokens: list[list[str]] | None = None  # per clip, PTB-tokenised (filled on first use)


class CaptionTask(Task):
    Config = CaptionConfig

    def __init__(self, registry, dataset: str, info, cfg: CaptionConfig):
        super().__init__(registry, dataset, info, cfg)
        self.encoded = cached_set(registry, dataset, cfg.features)
        identity = self.encoded.store.meta.get("model_identity") or {}
        if self.encoded.store.meta.get("kind") != "encoded":
            raise InputError(f"feature set {cfg.features!r} is a {self.encoded.store.meta.get('kind')} set: captioning "
                             "needs an `encoded` set (aacbatch featurize encoded --from-run RUN_ID)")
        self.encoder_run = identity.get("encoder_run")
        self.vocab, self.targets = self._vocabulary_and_targets()
        try:
            self.model_config = CaptionerConfig(**{"input_dim": identity["frame_dim"], "vocab_size": len(self.vocab),
                                                   **cfg.model})
        except TypeError as exc:
            raise InputError(f"invalid captioner model settings {cfg.model}: {exc}") from exc
        self.model = Captioner(self.model_config)
        self.splits: dict[str, SplitData] = {}

    def _vocabulary_and_targets(self) -> tuple[Vocabulary, dict[int, np.ndarray]]:
        """Vocabulary over the training captions of the dataset and of ``vocab_from``, and the
        dataset's training captions as target rows keyed by caption index (one JVM call)."""
        split = self.cfg.train_split
        datasets = sorted({self.dataset, *self.cfg.vocab_from})  # one block each, in a fixed order: the
        blocks = [load_items(self.registry, d, split).captions for d in datasets]  # tokenizer reads across lines
        tokenised = [[t.split() for t in block] for block in tokenize(*[[c.text for c in b] for b in blocks])]
        vocab = Vocabulary.build([t for block in tokenised for t in block], self.cfg.min_word_count)
        own = datasets.index(self.dataset)
        return vocab, dict(zip((c.idx for c in blocks[own]), vocab.encode(tokenised[own], self.cfg.max_words)))

    def _split(self, split: str) -> SplitData:
        """The split's examples and references, read on first use (any split can be scored)."""
        if split not in self.splits:
            self.splits[split] = self._read_split(split)
        return self.splits[split]

    def _read_split(self, split: str) -> SplitData:
        items = load_items(self.registry, self.dataset, split)
        if not items.captions:
            raise InputError(f"split {split!r} of {self.dataset!r} has no captions to train or score on")
        clips = np.array([c.clip_idx for c in items.captions])
        examples = CachedBatches({"frames": Source(self.encoded.store, "frames", "clip")}, clips,
                                 [c.idx for c in items.captions])
        _, first = np.unique(clips, return_index=True)
        refs, ids = items.references(), {c.idx: c.id for c in items.clips}
        order = [int(clips[r]) for r in first]
        return SplitData(examples, first, [ids[i] for i in order], [refs[i] for i in order])

    # --- task hooks -----------------------------------------------------------------------

    def inputs(self):
        return [self.encoded]

    def record(self) -> dict:
        """The retrieval run whose encoder made the frames (SQL groups captioners by it)."""
        return {"encoder_run": self.encoder_run}

    def check_parent(self, parent: CheckpointRecord) -> None:
        """A captioner's word embeddings only mean something with the parent's vocabulary, and
        it only continues on the frames it learned."""
        self.check_saved(parent, "give both runs the same captions with vocab_from")
        theirs = parent.extras.get("encoder_run")
        if theirs != self.encoder_run:
            raise InputError(f"run {parent.run_id} read frames of encoder run {theirs}, this run reads "
                             f"{self.encoder_run}'s: a captioner only continues on the frames it learned (featurize "
                             f"encoded --from-run {theirs} for this dataset)")

    def check_saved(self, saved: CheckpointRecord, why: str) -> None:
        words = saved.extras.get("vocab")
        if words is not None and list(words) != list(self.vocab.words):
            raise InputError(f"run {saved.run_id}'s vocabulary differs from the one built now ({len(words)} vs "
                             f"{len(self.vocab)} words): {why}")

    def train_batches(self, epoch: int) -> list[np.ndarray]:
        return epoch_batches(self._split(self.cfg.train_split).examples.clips, self.cfg.seed, epoch,
                             self.cfg.batch_size, self.cfg.captions_per_clip)

    def loss(self, batch: np.ndarray):
        b = self._split(self.cfg.train_split).examples[batch]
        tokens = torch.from_numpy(np.stack([self.targets[int(i)] for i in b["caption_idx"]]))
        width = int((tokens != 0).sum(1).max())  # drop all-PAD columns
        tokens = tokens[:, :width]
        logits = self.model(torch.from_numpy(b["frames"]), torch.from_numpy(b["frames_lengths"]), tokens[:, :-1])
        loss = caption_loss(logits, tokens[:, 1:], self.cfg.label_smoothing)
        return loss, {"ce": float(loss.detach())}

    def generate(self, split: str) -> list[str]:
        """Beam-search captions of the split's clips (in ``clip_ids`` order)."""
        data = self._split(split)
        return decode_clips([self.model], [data.examples], data.clip_rows, self.vocab, [1.0],
                            beam_size=self.cfg.beam_size, max_tokens=self.cfg.max_words)

    def evaluate(self, split: str) -> dict[str, float]:
        """Validation CIDEr-D of beam-search captions (no JVM: see the module docstring)."""
        data = self._split(split)
        if data.reference_tokens is None:
            flat = iter(tokenize([r for refs in data.references for r in refs])[0])
            data.reference_tokens = [[next(flat) for _ in refs] for refs in data.references]
        captions = self.generate(split)
        return {"cider_d": CiderD().compute(captions, data.reference_tokens)[0]}

    def final_evaluate(self, split: str, run_dir: Path | None) -> SplitResult:
        """Every caption metric of the best checkpoint on ``split``, with its captions."""
        data = self._split(split)
        scored = CaptionEvaluation.score(dict(zip(data.clip_ids, self.generate(split))),
                                         dict(zip(data.clip_ids, data.references)),
                                         self.registry.settings.home / "assets")
        return SplitResult(scored.metrics, scored.reasons, scored.captions, intervals=scored.intervals,
                           provenance=scored.provenance)

    def describe(self) -> dict:
        return {"vocab": list(self.vocab.words), "encoder_run": self.encoder_run, "features": self.cfg.features}
