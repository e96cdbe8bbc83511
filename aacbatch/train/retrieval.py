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
from aacbatch.batches import CachedBatches, MixedBatches, Source
from aacbatch.data.corpus import member_items
from aacbatch.data.items import Items, index_spans, load_items
from aacbatch.errors import InputError
from aacbatch.evaluate.retrieval import retrieval_scores
from aacbatch.evaluate.scored import score_retrieval
from aacbatch.featurize.sets import member_sets
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

    def __init__(self, registry, corpus, info, cfg: RetrievalConfig):
        super().__init__(registry, corpus, info, cfg)
        self.use_tags, self.use_images = info.uses_tags, info.uses_images
        text_key = "tokens" if cfg.text == "finetune" else "text_emb"
        kinds = ["mel", text_key] + ["tags"] * self.use_tags + ["images"] * self.use_images
        datasets = list(dict.fromkeys([*corpus.datasets, self.dataset]))  # training members, then the val set
        self.member_sets = {k: member_sets(registry, datasets, getattr(cfg, k)) for k in kinds}
        self.sets = {k: sets[self.dataset] for k, sets in self.member_sets.items()}  # the model's dims come from these
        self.model = Clap(self._model_config(registry))
        if self._audio_state is not None:  # start from the tagger (AudioSet-pretraining stand-in)
            self.model.audio.load_state_dict(self._audio_state)
        self.splits = {s: self._examples(load_items(registry, self.dataset, s), self.dataset)
                       for s in {cfg.val_split, *cfg.eval_splits} | ({cfg.train_split} if not corpus.mixed else set())}
        if corpus.mixed:
            self.splits[cfg.train_split] = self._mixture_examples()

    def _mixture_examples(self) -> MixedBatches:
        """The union of every member's training split, each read through its own feature sets."""
        members = member_items(self.registry, self.corpus, self.cfg.train_split)
        parts = [self._examples(m.items, m.dataset) for m in members]
        self.member_counts = {m.dataset: (len(p), m.n_duplicates) for m, p in zip(members, parts)}
        return MixedBatches(parts, [m.weight for m in members], *index_spans(m.items for m in members))

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

    def _examples(self, items: Items, dataset: str) -> CachedBatches:
        sets = {k: member[dataset].store for k, member in self.member_sets.items()}
        sources = {"mel": Source(sets["mel"], "mel", "clip")}
        if self.cfg.text == "finetune":
            sources["input_ids"] = Source(sets["tokens"], "input_ids", "caption")
            sources["attention_mask"] = Source(sets["tokens"], "attention_mask", "caption")
        else:
            sources["cls"] = Source(sets["text_emb"], "cls", "caption")
        if self.use_tags:
            sources["tags"] = Source(sets["tags"], "scores", "clip")
        if self.use_images:
            sources["images"] = Source(sets["images"], "embedding", "caption")
        return CachedBatches(sources, [c.clip_idx for c in items.captions], [c.idx for c in items.captions])

    # --- task hooks -----------------------------------------------------------------------

    def inputs(self):
        return [s for sets in self.member_sets.values() for s in sets.values()]

    def train_batches(self, epoch: int) -> list[np.ndarray]:
        return self.epoch_batches(self.splits[self.cfg.train_split], epoch, "mel", self.cfg.captions_per_clip,
                                  min_size=2)

    def fetch(self, batch: np.ndarray, epoch: int) -> dict[str, np.ndarray]:
        return self.splits[self.cfg.train_split].read(batch, self.crop(epoch))

    def _text(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.cfg.text == "finetune":
            return self.model.encode_text(b["input_ids"], b["attention_mask"])
        return self.model.encode_text(cls=b["cls"])

    def loss(self, b: dict[str, torch.Tensor]):
        """Loss of a global batch; under DDP this rank holds only its slice (see
        :mod:`aacbatch.train.distributed`). The temperature is applied to the local audio (and
        image) embeddings before gathering, so its gradient, like every other, reaches each
        rank only through that rank's own examples."""
        clips = distributed.gather(b["clip_idx"])
        audio, tag_scores = self.model.encode_audio(b["mel"], b["mel_lengths"])
        scale = self.model.scale()
        text = distributed.gather(self._text(b))
        loss = info_nce(distributed.gather(scale * audio), text, 1.0, clips)
        logs = {"contrastive": float(loss.detach())}
        if self.use_tags:
            weight = distributed.share(len(b["clip_idx"]))  # per-example mean over the global batch
            reg = weight * tag_regression(tag_scores, b["tags"].float(), self.cfg.tag_loss)
            loss = loss + self.cfg.tag_lambda * reg
            logs["tag"] = distributed.sum_value(float(reg.detach()))
        if self.use_images:
            image = distributed.gather(scale * self.model.encode_image(b["images"]))
            img = info_nce(image, text, 1.0, clips, symmetric=False)
            loss = loss + self.cfg.image_lambda * img
            logs["image"] = float(img.detach())
        logs["loss"] = logs["contrastive"] + self.cfg.tag_lambda * logs.get("tag", 0.0) + self.cfg.image_lambda * logs.get("image", 0.0)
        return loss, logs

    def similarity(self, split: str, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(captions × clips) cosine similarities of a split (whole clips), each caption's clip
        column, clip ids."""
        data = self.splits[split]
        clips, first = np.unique(data.clips, return_index=True)
        audio = []
        for lo in range(0, len(first), batch_size):
            b = self.tensors(data[first[lo:lo + batch_size]])
            audio.append(self.model.encode_audio(b["mel"], b["mel_lengths"])[0])
        text = [self._text(self.tensors(data[np.arange(lo, min(lo + batch_size, len(data)))]))
                for lo in range(0, len(data), batch_size)]
        sim = (torch.cat(text) @ torch.cat(audio).T).float().cpu().numpy()
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
