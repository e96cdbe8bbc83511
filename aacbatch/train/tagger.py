"""``--task tagger``: a CNN14 variant trained on a dataset's tags (BCE), reported by mAP.

Offline it stands in for AudioSet pretraining: its checkpoint is CLAP-TAG's frozen teacher
(the ``tags`` feature kind) and the initial audio encoder of CLAP. With real data, start
from the official PANNs weights instead (``init_checkpoint``) or skip this task entirely.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from aacbatch.batches import CachedBatches, Source
from aacbatch.data.items import load_items
from aacbatch.errors import InputError
from aacbatch.evaluate.tagging import mean_average_precision
from aacbatch.featurize.sets import cached_set
from aacbatch.models.checkpoints import create_cnn14, load_panns_checkpoint
from aacbatch.models.cnn14 import CNN14_CONFIGS, Cnn14Config
from aacbatch.train import distributed
from aacbatch.train.config import TrainingFields
from aacbatch.train.task import Task


@dataclass(frozen=True)
class TaggerConfig(TrainingFields):
    model: str = "cnn14-tiny"
    mel: str = "mel"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    eval_splits: tuple[str, ...] = ("val",)
    init_checkpoint: str | None = None  # PANNs-layout file to start from (must match model's head)
    block_dropout: float = 0.2  # PANNs' value; narrow demo variants learn faster with less
    pooled_dropout: float = 0.5


def tag_labels(dataset_meta: str, clips) -> list[str]:
    """The dataset's ordered tag vocabulary (``labels.txt``) or the sorted union of clip tags."""
    labels = json.loads(dataset_meta or "{}").get("tag_labels")
    if labels:
        return list(labels)
    found = sorted({t for c in clips if c.tags for t in c.tags.split(";")})
    if not found:
        raise InputError("the dataset has no tags to train a tagger on (tags.csv / MACS tags / a tags column)")
    return found


def multi_hot(clips, labels: list[str]) -> np.ndarray:
    index = {l: k for k, l in enumerate(labels)}
    out = np.zeros((len(clips), len(labels)), dtype=np.float32)
    for i, clip in enumerate(clips):
        for tag in (clip.tags or "").split(";"):
            if tag in index:
                out[i, index[tag]] = 1.0
    return out


class TaggerTask(Task):
    Config = TaggerConfig

    def __init__(self, registry, corpus, info, cfg: TaggerConfig):
        super().__init__(registry, corpus, info, cfg)
        dataset = self.dataset
        self.mel_set = mel_set = cached_set(registry, dataset, cfg.mel)
        everything = load_items(registry, dataset)
        self.labels = tag_labels(everything.dataset_meta, everything.clips)
        if cfg.model not in CNN14_CONFIGS:
            raise InputError(f"unknown model {cfg.model!r}: choose one of {', '.join(CNN14_CONFIGS)}")
        self.model_config = Cnn14Config(**{**asdict(CNN14_CONFIGS[cfg.model]), "n_classes": len(self.labels),
                                           "block_dropout": cfg.block_dropout, "pooled_dropout": cfg.pooled_dropout})
        self.model = create_cnn14(self.model_config)
        if cfg.init_checkpoint:
            load_panns_checkpoint(self.model, cfg.init_checkpoint)
        self.splits = {}
        for split in {cfg.train_split, cfg.val_split, *cfg.eval_splits}:
            clips = load_items(registry, dataset, split).clips
            self.splits[split] = (CachedBatches({"mel": Source(mel_set.store, "mel", "clip")}, [c.idx for c in clips]),
                                  multi_hot(clips, self.labels))

    def inputs(self):
        return [self.mel_set]

    def train_batches(self, epoch: int) -> list[np.ndarray]:
        return self.epoch_batches(self.splits[self.cfg.train_split][0], epoch, "mel")

    def fetch(self, batch: np.ndarray, epoch: int) -> dict[str, np.ndarray]:
        data, targets = self.splits[self.cfg.train_split]
        return {**data.read(batch, self.crop(epoch)), "targets": targets[batch]}

    def loss(self, b: dict[str, torch.Tensor]):
        """BCE averaged over the global batch (under DDP: this rank's share of it)."""
        out = self.model(b["mel"], b["mel_lengths"], is_logmel=True)
        weight = distributed.share(len(b["clip_idx"]))
        loss = weight * F.binary_cross_entropy_with_logits(out.tag_logits.float(), b["targets"])
        return loss, {"bce": distributed.sum_value(float(loss.detach()))}

    def evaluate(self, split: str) -> dict[str, float]:
        """mAP over the split's whole clips."""
        data, targets = self.splits[split]
        scores = []
        for lo in range(0, len(data), 64):
            b = self.tensors(data[np.arange(lo, min(lo + 64, len(data)))])
            scores.append(self.model(b["mel"], b["mel_lengths"], is_logmel=True).tag_scores.float().cpu().numpy())
        return {"mAP": mean_average_precision(targets, np.concatenate(scores))}

    def describe(self) -> dict:
        return {"labels": self.labels}
