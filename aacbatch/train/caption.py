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

from aacbatch.batches import CachedBatches, MixedBatches, Source
from aacbatch.data.corpus import MemberItems, member_items
from aacbatch.data.items import Items, index_spans, load_items
from aacbatch.decode import decode_clips
from aacbatch.errors import InputError
from aacbatch.evaluate.captions import CaptionEvaluation
from aacbatch.evaluate.cider import CiderD
from aacbatch.evaluate.ptb import tokenize
from aacbatch.featurize.sets import CachedSet, member_sets
from aacbatch.models.captioner import Captioner, CaptionerConfig, caption_loss
from aacbatch.models.checkpoints import CheckpointRecord
from aacbatch.models.vocab import Vocabulary
from aacbatch.registry.runs import SplitResult
from aacbatch.train import distributed
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
        if self.max_seconds is not None:
            raise ValueError("max_seconds crops log-mels; a captioner reads encoded frames of whole clips: unset it")
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

    def __init__(self, registry, corpus, info, cfg: CaptionConfig):
        super().__init__(registry, corpus, info, cfg)
        self.encoded_sets = member_sets(registry, list(dict.fromkeys([*corpus.datasets, self.dataset])), cfg.features)
        self.encoded = self.encoded_sets[self.dataset]
        identity = self.encoded.store.meta.get("model_identity") or {}
        if self.encoded.store.meta.get("kind") != "encoded":
            raise InputError(f"feature set {cfg.features!r} is a {self.encoded.store.meta.get('kind')} set: captioning "
                             "needs an `encoded` set (aacbatch featurize encoded --from-run RUN_ID)")
        self.encoder_run = identity.get("encoder_run")
        self.members = (member_items(registry, corpus, cfg.train_split) if corpus.mixed else
                        [MemberItems(self.dataset, 1.0, load_items(registry, self.dataset, cfg.train_split), 0)])
        self.mixture = self._mixture() if corpus.mixed else None
        self.vocab, self.targets = self._vocabulary_and_targets()
        try:
            self.model_config = CaptionerConfig(**{"input_dim": identity["frame_dim"], "vocab_size": len(self.vocab),
                                                   **cfg.model})
        except TypeError as exc:
            raise InputError(f"invalid captioner model settings {cfg.model}: {exc}") from exc
        self.model = Captioner(self.model_config)
        self.splits: dict[str, SplitData] = {}

    def _mixture(self) -> MixedBatches:
        """The union of every member's training examples, each read from its own frames."""
        parts = [self._examples(m.items, self.encoded_sets[m.dataset]) for m in self.members]
        self.member_counts = {m.dataset: (len(p), m.n_duplicates) for m, p in zip(self.members, parts)}
        return MixedBatches(parts, [m.weight for m in self.members], *index_spans(m.items for m in self.members))

    def _vocabulary_and_targets(self) -> tuple[Vocabulary, dict[int, np.ndarray]]:
        """Vocabulary over the training captions of every training dataset and of ``vocab_from``
        (their ``train_split``), and the training captions as target rows keyed by caption
        index — numbered over the mixture for several datasets (one JVM call)."""
        captions = {m.dataset: m.items.captions for m in self.members}
        for other in self.cfg.vocab_from:
            captions.setdefault(other, load_items(self.registry, other, self.cfg.train_split).captions)
        datasets = sorted(captions)  # one block each, in a fixed order: the tokenizer reads across lines
        blocks = [captions[d] for d in datasets]
        tokenised = [[t.split() for t in block] for block in tokenize(*[[c.text for c in b] for b in blocks])]
        vocab = Vocabulary.build([t for block in tokenised for t in block], self.cfg.min_word_count)
        targets = {}
        for m, member in enumerate(self.members):
            shift = int(self.mixture.shifts["caption_idx"][m]) if self.mixture is not None else 0
            own = datasets.index(member.dataset)
            targets.update(zip((shift + c.idx for c in blocks[own]), vocab.encode(tokenised[own], self.cfg.max_words)))
        return vocab, targets

    def _split(self, split: str) -> SplitData:
        """The split's examples and references, read on first use (any split can be scored)."""
        if split not in self.splits:
            self.splits[split] = self._read_split(split)
        return self.splits[split]

    def _read_split(self, split: str) -> SplitData:
        items = load_items(self.registry, self.dataset, split)
        if not items.captions:
            raise InputError(f"split {split!r} of {self.dataset!r} has no captions to train or score on")
        examples = self._examples(items, self.encoded)
        clips = examples.clips
        _, first = np.unique(clips, return_index=True)
        refs, ids = items.references(), {c.idx: c.id for c in items.clips}
        order = [int(clips[r]) for r in first]
        return SplitData(examples, first, [ids[i] for i in order], [refs[i] for i in order])

    @staticmethod
    def _examples(items: Items, encoded: CachedSet) -> CachedBatches:
        """One example per (clip, caption) pair of ``items``, frames read from ``encoded``."""
        return CachedBatches({"frames": Source(encoded.store, "frames", "clip")},
                             np.array([c.clip_idx for c in items.captions], dtype=np.int64), [c.idx for c in items.captions])

    def _training(self) -> CachedBatches | MixedBatches:
        return self.mixture if self.mixture is not None else self._split(self.cfg.train_split).examples

    # --- task hooks -----------------------------------------------------------------------

    def inputs(self):
        return list(self.encoded_sets.values())

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
        return self.epoch_batches(self._training(), epoch, "frames", self.cfg.captions_per_clip)

    def fetch(self, batch: np.ndarray, epoch: int) -> dict[str, np.ndarray]:
        """Frames and target tokens (all-PAD columns dropped) of the examples ``batch``."""
        b = self._training()[batch]
        tokens = np.stack([self.targets[int(i)] for i in b["caption_idx"]])
        return {**b, "tokens": tokens[:, :int((tokens != 0).sum(1).max())]}

    def loss(self, b: dict[str, torch.Tensor]):
        """Cross-entropy averaged over the global batch's target tokens (under DDP: this rank's
        share of it, weighted by its token count)."""
        tokens = b["tokens"]
        logits = self.model(b["frames"], b["frames_lengths"], tokens[:, :-1])
        weight = distributed.share(int((tokens[:, 1:] != 0).sum()))
        loss = weight * caption_loss(logits.float(), tokens[:, 1:], self.cfg.label_smoothing)
        return loss, {"ce": distributed.sum_value(float(loss.detach()))}

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
