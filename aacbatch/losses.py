"""Training objectives of the CLAP family (the technical report's losses).

* :func:`info_nce` — symmetric InfoNCE ``½·(CE(sim/τ, rows) + CE(sim/τ, cols))`` where items
  of the same clip inside a batch are not treated as negatives of each other (several
  captions of one clip may share a batch);
* :func:`tag_regression` — CLAP-TAG's ``MAE = mean|s_tr − s_pre|`` or
  ``MSLE = mean (log(1+s_tr) − log(1+s_pre))²`` between the trained encoder's sigmoid tag
  scores and the frozen teacher's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

TAG_LOSSES = ("mae", "mse_log")


def same_clip_mask(row_clips: Tensor, col_clips: Tensor) -> Tensor:
    """(R, C) True where row and column come from the same clip but are not the pair itself."""
    same = row_clips[:, None] == col_clips[None, :]
    eye = torch.zeros_like(same)
    eye[torch.arange(min(same.shape)), torch.arange(min(same.shape))] = True
    return same & ~eye


def info_nce(a: Tensor, b: Tensor, logit_scale: Tensor, clips: Tensor, symmetric: bool = True) -> Tensor:
    """InfoNCE between L2-normalised (B, D) embeddings ``a`` and ``b`` whose row i is a pair.

    ``clips`` (B,) gives each pair's clip; same-clip off-diagonal logits are masked out.
    ``symmetric=False`` keeps only the a→b direction (CLAIP's image→text term).
    """
    logits = logit_scale * a @ b.T
    logits = logits.masked_fill(same_clip_mask(clips, clips), float("-inf"))
    target = torch.arange(len(a), device=a.device)
    loss = F.cross_entropy(logits, target)
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(logits.T, target))
    return loss


def tag_regression(student: Tensor, teacher: Tensor, kind: str) -> Tensor:
    """MAE or MSLE between (B, K) sigmoid tag scores of the trained encoder and the teacher."""
    if kind == "mae":
        return (student - teacher).abs().mean()
    if kind == "mse_log":
        return (torch.log1p(student) - torch.log1p(teacher)).pow(2).mean()
    raise ValueError(f"tag_loss must be one of {TAG_LOSSES}, got {kind!r}")
