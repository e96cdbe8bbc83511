"""CLAP: CNN14 audio encoder + BERT-family text encoder, each with a linear "match" head
into one 1024-d space, cosine similarity and a learnable temperature (open_clip style).

Shapes: log-mels (B, T, 64) with lengths (B,) → audio embeddings (B, 1024); token ids and
masks (B, 30) → text embeddings (B, 1024); cached CLIP image embeddings (B, d_clip) → image
embeddings (B, 1024). All L2-normalised. With a locked text encoder the text side starts
from cached CLS embeddings (B, d_text) instead of tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aacbatch.models.cnn14 import Cnn14, Cnn14Config
from aacbatch.models.text import TextEncoder

MAX_LOGIT_SCALE = 100.0


@dataclass(frozen=True)
class ClapConfig:
    audio: dict  # Cnn14Config fields
    text_dim: int
    text_model: str | None  # local HF directory when the text encoder is trained; None when locked (cached CLS)
    embed_dim: int = 1024
    image_dim: int | None = None  # CLAIP: size of the cached CLIP image embeddings
    init_temperature: float = 0.07


class Clap(nn.Module):
    MODEL_FAMILY = "clap"  # names the architecture in checkpoints (aacbatch.models.checkpoints)

    def __init__(self, config: ClapConfig):
        super().__init__()
        self.config = config
        self.audio = Cnn14(Cnn14Config(**config.audio))
        self.text = None
        if config.text_model is not None:
            self.text = TextEncoder(config.text_model)
        self.audio_head = nn.Linear(self.audio.config.embedding_dim, config.embed_dim)
        self.text_head = nn.Linear(config.text_dim, config.embed_dim)
        self.image_head = nn.Linear(config.image_dim, config.embed_dim) if config.image_dim else None
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config.init_temperature)))

    def scale(self) -> Tensor:
        """exp(logit_scale), clamped at 100 as in CLIP."""
        return self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def encode_audio(self, mel: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T, 64), (B,) → (normalised (B, E) embeddings, (B, K) sigmoid tag scores)."""
        out = self.audio(mel, lengths, is_logmel=True)
        return F.normalize(self.audio_head(out.embedding), dim=-1), out.tag_scores

    def encode_text(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                    cls: Tensor | None = None) -> Tensor:
        """Token ids + mask (trained encoder) or cached CLS (B, d_text) (locked) → (B, E)."""
        if cls is None:
            if self.text is None:
                raise ValueError("this CLAP has a locked text encoder: pass cached CLS embeddings")
            cls = self.text(input_ids, attention_mask)
        return F.normalize(self.text_head(cls.float()), dim=-1)

    def encode_image(self, image: Tensor) -> Tensor:
        return F.normalize(self.image_head(image.float()), dim=-1)
