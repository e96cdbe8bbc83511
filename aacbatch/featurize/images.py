"""``images``: CLAIP's third modality — per caption, a Stable Diffusion image embedded by a
frozen CLIP ViT, stored as (n_captions, d) float16 (optionally with 32×32 thumbnails).

Real use: a diffusers ``StableDiffusionPipeline`` folder (``sd``) and an open_clip
checkpoint (``clip_arch`` + ``clip_checkpoint``) from local paths. Offline (tests, demo):
``sd = "tiny"`` / ``clip_checkpoint = "tiny"`` build random-weight stand-ins from configs
under ``$AACBATCH_HOME/models``; the feature set records that identity, and every run and
report built on it is marked as depending on random weights. Each caption's image is seeded
from (``seed``, caption index), so it does not depend on which block or batch it falls in.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from aacbatch.cache import ArraySpec
from aacbatch.featurize.kinds import FeatureKind, OnBad
from aacbatch.models import image_supervision as im

TINY = "tiny"


def _stand_in(folder: Path, build) -> Path:
    """Build a random-weight model folder once; concurrent shards never see it half-written
    (built under a private name, then renamed into place; the loser of a race discards its copy)."""
    if not folder.is_dir():
        tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        build(tmp)
        try:
            tmp.rename(folder)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


class ImagesKind(FeatureKind):
    item = "caption"

    @dataclass(frozen=True)
    class Params:
        sd: str = TINY  # StableDiffusionPipeline folder, or "tiny" (random-weight stand-in)
        clip_arch: str = ""  # open_clip architecture of clip_checkpoint (ignored for "tiny")
        clip_checkpoint: str = TINY  # open_clip checkpoint file, or "tiny"
        steps: int = 2
        guidance: float = 1.0
        size: int = 64
        seed: int = 0
        batch_size: int = 8
        thumbnails: bool = False
        dtype: str = "float16"

    @cached_property
    def embedder(self) -> im.ImageEmbedder:
        models = Path(self.context.settings.home) / "models"  # local even when the cache is a URL
        sd = _stand_in(models / "tiny-sd", im.build_tiny_sd_pipeline) if self.params.sd == TINY else Path(self.params.sd)
        if self.params.clip_checkpoint == TINY:
            arch = im.TINY_CLIP_ARCH
            checkpoint = _stand_in(models / "tiny-clip", im.build_tiny_clip) / "open_clip_model.safetensors"
        else:
            arch, checkpoint = self.params.clip_arch, Path(self.params.clip_checkpoint)
        return im.ImageEmbedder(sd, arch, checkpoint, steps=self.params.steps, guidance=self.params.guidance,
                                size=self.params.size, batch_size=self.params.batch_size)

    def identity(self) -> dict:
        return self.embedder.identity()

    def arrays(self) -> dict[str, ArraySpec]:
        arrays = {"embedding": ArraySpec((self.embedder.embed_dim,), self.params.dtype)}
        if self.params.thumbnails:
            arrays["thumbnail"] = ArraySpec((32, 32, 3), "uint8")
        return arrays

    def compute(self, items: list, on_bad: OnBad) -> dict[str, np.ndarray]:
        seeds = [self.params.seed * 2**32 + c.idx for c in items]
        out = self.embedder.embed([c.text for c in items], seeds, thumbnails=self.params.thumbnails)
        if self.params.thumbnails:
            embedding, thumbs = out
            return {"embedding": embedding, "thumbnail": thumbs}
        return {"embedding": out}
