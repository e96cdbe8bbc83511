"""Audio captioner: frozen-encoder frames → BiGRU → Transformer decoder → next-word logits.

The retrieval-trained audio encoder is frozen and its frame embeddings are cached (the
``encoded`` feature set), so this module starts from frames, not audio. A bidirectional GRU
(``E_AC`` in the paper) gives every frame context from the whole clip; a small Transformer
decoder attends to those frames while it predicts the caption word by word.

Shapes (B clips, T frames, d = input_dim, H = gru_hidden, D = d_model, L tokens, V vocab)::

    frames (B, T, d), lengths (B,) ─ BiGRU (packed) ─► (B, T, 2H) ─ Linear ─► memory (B, T, D)
    tokens (B, L) ─ embedding · √D + sinusoid ─► (B, L, D)
      ─ TransformerDecoder(causal, memory + token padding masks) ─► states (B, L, D)
      ─ Linear(D, V, bias=False) ─► logits (B, L, V)

Padding never leaks: the GRU runs on packed sequences, so a clip's valid frames encode the
same alone as padded in a batch, and the decoder masks padded frames and PAD tokens.
Token convention (shared with the vocabulary and :mod:`aacbatch.decode`): ``PAD, START,
END, UNK = 0, 1, 2, 3``; a caption is ``START w1 … wn END PAD …``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from aacbatch.models.vocab import PAD, START, END, UNK  # noqa: F401  (re-exported for decoding)


@dataclass(frozen=True)
class CaptionerConfig:
    """Architecture of a captioner; the defaults are the paper's (the technical report's captioner)."""

    input_dim: int  # d of the frozen encoder frames (2048 for paper CNN14; e.g. 128 for cnn14-tiny)
    vocab_size: int
    gru_hidden: int = 256
    gru_layers: int = 3
    gru_dropout: float = 0.5
    d_model: int = 256
    n_heads: int = 4
    ff_dim: int = 1024
    decoder_layers: int = 2
    decoder_dropout: float = 0.2
    max_positions: int = 32  # sinusoidal table size (>= max tokens + 1)


def sinusoidal_positions(n_positions: int, dim: int) -> Tensor:
    """Fixed (n_positions, dim) table of "Attention is all you need": sin on even, cos on odd channels."""
    position = torch.arange(n_positions, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(n_positions, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return table


class Captioner(nn.Module):
    MODEL_FAMILY = "captioner"  # names the architecture in checkpoints (aacbatch.models.checkpoints)

    def __init__(self, config: CaptionerConfig):
        super().__init__()
        self.config = config
        self.gru = nn.GRU(
            config.input_dim,
            config.gru_hidden,
            num_layers=config.gru_layers,
            batch_first=True,
            bidirectional=True,
            # torch warns about (and ignores) dropout between layers when there is one layer
            dropout=config.gru_dropout if config.gru_layers > 1 else 0.0,
        )
        self.memory_proj = nn.Linear(2 * config.gru_hidden, config.d_model)
        self.embedding = nn.Embedding(config.vocab_size, config.d_model, padding_idx=PAD)
        # Not persistent: derived from the config, so checkpoints stay free of it.
        self.register_buffer("positions", sinusoidal_positions(config.max_positions, config.d_model), persistent=False)
        self.embed_dropout = nn.Dropout(config.decoder_dropout)
        layer = nn.TransformerDecoderLayer(
            config.d_model, config.n_heads, config.ff_dim, config.decoder_dropout, batch_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, config.decoder_layers)
        self.classifier = nn.Linear(config.d_model, config.vocab_size, bias=False)

    def encode(self, frames: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T, input_dim) float, (B,) int64 valid frames → memory (B, T, d_model),
        key padding mask (B, T) bool (True = padding).

        Memory rows past a clip's length are not meaningful; the mask hides them from the decoder.
        """
        n_frames = frames.shape[1]
        if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > n_frames):
            raise ValueError(f"frame lengths must be in 1..{n_frames}, got {lengths.tolist()}")
        packed = pack_padded_sequence(frames.float(), lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=n_frames)
        mask = torch.arange(n_frames, device=frames.device)[None, :] >= lengths.to(frames.device)[:, None]
        return self.memory_proj(out), mask

    def decode_states(self, tokens: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        """tokens (B, L) int64 → decoder states (B, L, d_model) before the classifier.

        Separate from :meth:`decode` so step-wise decoding can classify the last position only.
        """
        n_tokens = tokens.shape[1]
        if n_tokens > self.config.max_positions:
            raise ValueError(f"{n_tokens} tokens exceed max_positions={self.config.max_positions} of this captioner")
        x = self.embedding(tokens) * math.sqrt(self.config.d_model) + self.positions[:n_tokens]
        causal = torch.ones(n_tokens, n_tokens, dtype=torch.bool, device=tokens.device).triu(1)
        return self.decoder(
            self.embed_dropout(x),
            memory,
            tgt_mask=causal,
            tgt_is_causal=True,
            tgt_key_padding_mask=tokens == PAD,
            memory_key_padding_mask=memory_mask,
        )

    def decode(self, tokens: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        """tokens (B, L) int64 starting with START (PAD after the end) → logits (B, L, vocab)."""
        return self.classifier(self.decode_states(tokens, memory, memory_mask))

    def forward(self, frames: Tensor, lengths: Tensor, tokens: Tensor) -> Tensor:
        """Teacher forcing: frames (B, T, d), lengths (B,), input tokens (B, L) → logits (B, L, vocab)."""
        memory, memory_mask = self.encode(frames, lengths)
        return self.decode(tokens, memory, memory_mask)


def caption_loss(logits: Tensor, targets: Tensor, label_smoothing: float = 0.1) -> Tensor:
    """Teacher-forced CE over non-PAD targets. logits (B, L, V), targets (B, L) = tokens
    shifted left (next token; PAD ignored).

    Mean over the non-PAD target tokens of the batch, so long captions weigh by their length.
    """
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=PAD, label_smoothing=label_smoothing
    )
