"""The retrieval family: text-to-audio retrieval from caches (every catalog task of family
``retrieval`` is this class; its ``losses`` say which terms join symmetric InfoNCE):

* no extra loss (CLAP): symmetric InfoNCE between audio and caption embeddings;
* ``tag`` (CLAP-TAG): + λ·MAE or MSLE between the trained encoder's tag scores and the cached
  teacher scores (feature kind ``tags``) — keeps the encoder's tagging knowledge;
* ``image`` (CLAIP): + image→text InfoNCE with cached CLIP embeddings of Stable-Diffusion
  images of each caption (feature kind ``images``); both terms: CLAIP-TAG.

An example is a (caption, clip) pair. Validation scores text→audio and audio→text R@1/5/10
and mAP@10 over the split's captions and clips; the best epoch by ``select_metric`` is kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from transformers import AutoConfig

from aacbatch import catalog
from aacbatch.batches import CachedBatches, Source, epoch_batches
from aacbatch.data.items import load_items
from aacbatch.errors import InputError
from aacbatch.evaluate.retrieval import retrieval_scores
from aacbatch.evaluate.scored import score_retrieval
from aacbatch.featurize.sets import cached_set
from aacbatch.losses import TAG_LOSSES, info_nce, tag_regression
from aacbatch.models.checkpoints import audio_encoder, read_checkpoint
from aacbatch.models.clap import Clap, ClapConfig
from aacbatch.models.cnn14 import CNN14_CONFIGS
from aacbatch.models.text import default_text_model_dir, model_identity
from aacbatch.registry.runs import SplitResult, checkpoint_file
from aacbatch.train import distributed
from aacbatch.train.config import TrainingFields
from aacbatch.train.task import Task


@dataclass(frozen=True)
class RetrievalConfig(TrainingFields):
    audio_init: str = ""  # tagger run id or PANNs checkpoint path ("" = random CNN14 of `audio_model`)
    audio_model: str = "cnn14-tiny"  # architecture when audio_init is a PANNs file or empty
    text: str = "finetune"  # "finetune" (tokens → trained encoder) or "locked" (cached CLS embeddings)
    text_model: str = "default"  # local HF directory for "finetune" ("default": all-MiniLM-L6-v2)
    mel: str = "mel"
    tokens: str = "tokens"
    text_emb: str = "text_emb"
    tags: str = "tags"
    images: str = "images"
    tag_loss: str = "mse_log"  # clap_tag/claip_tag: "mae" or "mse_log" (MSLE)
    tag_lambda: float = 1.0
    image_lambda: float = 1.0
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-4
    captions_per_clip: int = 0  # per epoch: 0 = every caption (paper); n = n random captions per clip
    eval_splits: tuple[str, ...] = ("val", "eval")

    RUN_FIELDS: ClassVar[dict[str, str]] = {"audio_init": "teacher"}  # field → catalog role of the run it names

    def __post_init__(self):
        super().__post_init__()
        for name in ("captions_per_clip", "tag_lambda", "image_lambda"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} = {getattr(self, name)!r} is out of range: must be >= 0")
        if self.text not in ("finetune", "locked"):
            raise ValueError(f"text must be 'finetune' or 'locked', got {self.text!r}")
        if self.tag_loss not in TAG_LOSSES:
            raise ValueError(f"tag_loss must be one of {', '.join(TAG_LOSSES)}, got {self.tag_loss!r}")


class RetrievalTask(Task):
    Config = RetrievalConfig

    def __init__(self, registry, dataset: str, info, cfg: RetrievalConfig):
        super().__init__(registry, dataset, info, cfg)
        self.use_tags, self.use_images = info.uses_tags, info.uses_images
        self.sets = {"mel": cached_set(registry, dataset, cfg.mel)}
        text_key = "tokens" if cfg.text == "finetune" else "text_emb"
        self.sets[text_key] = cached_set(registry, dataset, getattr(cfg, text_key))
        if self.use_tags:
            self.sets["tags"] = cached_set(registry, dataset, cfg.tags)
        if self.use_images:
            self.sets["images"] = cached_set(registry, dataset, cfg.images)
        self.model = Clap(self._model_config(registry))
        if self._audio_state is not None:  # start from the tagger (AudioSet-pretraining stand-in)
            self.model.audio.load_state_dict(self._audio_state)
        self.splits = {s: self._examples(registry, dataset, s) for s in {cfg.train_split, cfg.val_split, *cfg.eval_splits}}

    def _model_config(self, registry) -> ClapConfig:
        cfg = self.cfg
        audio = None
        if cfg.audio_init:
            _, path = checkpoint_file(registry, cfg.audio_init, catalog.tasks_where(teacher=True), "run given as audio_init=")
            audio = audio_encoder(read_checkpoint(path), cfg.audio_model)
            audio_cfg = asdict(audio.config)
        elif cfg.audio_model in CNN14_CONFIGS:
            audio_cfg = asdict(CNN14_CONFIGS[cfg.audio_model])
        else:
            raise InputError(f"unknown audio_model {cfg.audio_model!r}: choose one of {', '.join(CNN14_CONFIGS)}")
        if self.use_tags:
            n_teacher = self.sets["tags"].store.meta["arrays"]["scores"]["tail"][0]
            if audio_cfg["n_classes"] != n_teacher:
                raise InputError(f"the audio encoder tags {audio_cfg['n_classes']} classes but the teacher scores have "
                                 f"{n_teacher}: initialise audio_init from the teacher (or a tagger with its labels)")
        if cfg.text == "finetune":
            text_model = str(default_text_model_dir() if cfg.text_model == "default" else cfg.text_model)
            made_with = (self.sets["tokens"].store.meta["model_identity"] or {}).get("sha256")
            if made_with != model_identity(text_model)["sha256"]:
                raise InputError(f"feature set {cfg.tokens!r} was tokenised with another model than text_model "
                                 f"({text_model}): featurize tokens with --set model={text_model} or change text_model")
            text_dim = AutoConfig.from_pretrained(text_model, local_files_only=True).hidden_size
        else:
            text_model = None
            text_dim = self.sets["text_emb"].store.meta["arrays"]["cls"]["tail"][0]
        image_dim = self.sets["images"].store.meta["arrays"]["embedding"]["tail"][0] if self.use_images else None
        config = ClapConfig(audio=audio_cfg, text_dim=text_dim, text_model=text_model, image_dim=image_dim)
        self._audio_state = audio.state_dict() if audio is not None else None
        return config

    def _examples(self, registry, dataset: str, split: str) -> CachedBatches:
        items = load_items(registry, dataset, split)
        sources = {"mel": Source(self.sets["mel"].store, "mel", "clip")}
        if self.cfg.text == "finetune":
            sources["input_ids"] = Source(self.sets["tokens"].store, "input_ids", "caption")
            sources["attention_mask"] = Source(self.sets["tokens"].store, "attention_mask", "caption")
        else:
            sources["cls"] = Source(self.sets["text_emb"].store, "cls", "caption")
        if self.use_tags:
            sources["tags"] = Source(self.sets["tags"].store, "scores", "clip")
        if self.use_images:
            sources["images"] = Source(self.sets["images"].store, "embedding", "caption")
        return CachedBatches(sources, [c.clip_idx for c in items.captions], [c.idx for c in items.captions])

    # --- task hooks -----------------------------------------------------------------------

    def inputs(self):
        return list(self.sets.values())

    def train_batches(self, epoch: int) -> list[np.ndarray]:
        return epoch_batches(self.splits[self.cfg.train_split].clips, self.cfg.seed, epoch, self.cfg.batch_size,
                             self.cfg.captions_per_clip, min_size=2)

    def _text(self, b: dict) -> torch.Tensor:
        if self.cfg.text == "finetune":
            return self.model.encode_text(torch.from_numpy(b["input_ids"]), torch.from_numpy(b["attention_mask"]))
        return self.model.encode_text(cls=torch.from_numpy(b["cls"]))

    def loss(self, batch: np.ndarray):
        """Loss of a global batch; under DDP this rank encodes only its slice (see
        :mod:`aacbatch.train.distributed`). The temperature is applied to the local audio (and
        image) embeddings before gathering, so its gradient, like every other, reaches each
        rank only through that rank's own examples."""
        b = self.splits[self.cfg.train_split][distributed.local_slice(batch)]
        clips = distributed.gather(torch.from_numpy(b["clip_idx"]))
        audio, tag_scores = self.model.encode_audio(torch.from_numpy(b["mel"]), torch.from_numpy(b["mel_lengths"]))
        scale = self.model.scale()
        text = distributed.gather(self._text(b))
        loss = info_nce(distributed.gather(scale * audio), text, 1.0, clips)
        logs = {"contrastive": float(loss.detach())}
        if self.use_tags:
            weight = distributed.share(len(b["clip_idx"]))  # per-example mean over the global batch
            reg = weight * tag_regression(tag_scores, torch.from_numpy(b["tags"]).float(), self.cfg.tag_loss)
            loss = loss + self.cfg.tag_lambda * reg
            logs["tag"] = distributed.sum_value(float(reg.detach()))
        if self.use_images:
            image = distributed.gather(scale * self.model.encode_image(torch.from_numpy(b["images"])))
            img = info_nce(image, text, 1.0, clips, symmetric=False)
            loss = loss + self.cfg.image_lambda * img
            logs["image"] = float(img.detach())
        logs["loss"] = logs["contrastive"] + self.cfg.tag_lambda * logs.get("tag", 0.0) + self.cfg.image_lambda * logs.get("image", 0.0)
        return loss, logs

    def similarity(self, split: str, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(captions × clips) cosine similarities of a split, each caption's clip column, clip ids."""
        data = self.splits[split]
        clips, first = np.unique(data.clips, return_index=True)
        audio = []
        for lo in range(0, len(first), batch_size):
            b = data[first[lo:lo + batch_size]]
            audio.append(self.model.encode_audio(torch.from_numpy(b["mel"]), torch.from_numpy(b["mel_lengths"]))[0])
        text = [self._text(data[np.arange(lo, min(lo + batch_size, len(data)))]) for lo in range(0, len(data), batch_size)]
        sim = (torch.cat(text) @ torch.cat(audio).T).numpy()
        return sim, np.searchsorted(clips, data.clips), clips

    def evaluate(self, split: str) -> dict[str, float]:
        sim, relevant, _ = self.similarity(split)
        return retrieval_scores(sim, relevant)

    def final_evaluate(self, split: str, run_dir: Path | None) -> SplitResult:
        """Scores of ``split`` and its similarity matrix (rows: caption idx, columns: clip idx),
        saved as .npz for systems to ensemble."""
        sim, relevant, clips = self.similarity(split)
        scored = score_retrieval(sim, relevant, [str(c) for c in clips])
        artifacts = {}
        if run_dir is not None:
            artifacts["similarity"] = path = run_dir / f"similarity-{split}.npz"
            np.savez_compressed(path, similarity=sim.astype(np.float32), caption_idx=self.splits[split].captions,
                                clip_idx=clips, relevant=relevant)
        return SplitResult(scored.metrics, artifacts=artifacts, intervals=scored.intervals,
                           provenance=scored.provenance)
