"""CNN14 (PANNs) audio encoder, state-dict compatible with the official checkpoints.

Kong et al., "PANNs: Large-Scale Pretrained Audio Neural Networks for Audio Pattern
Recognition" (2020); reference code ``panns_inference.models.Cnn14``. The module names and
buffers mirror the reference key for key, so ``Cnn14_mAP=0.431.pth`` (``{"model": state
dict}``) loads with ``strict=True`` and gives the same outputs. What this version adds:

* the front end is skippable — ``forward(..., is_logmel=True)`` takes the cached log-mels of
  :mod:`aacbatch.audio.logmel`, so training never recomputes the STFT;
* batches of different-length clips: with ``lengths`` every conv sees zeros past the end of
  its clip (as it would for the clip alone) and time pooling ignores padding, so a padded
  clip encodes (in eval mode) like the same clip on its own;
* narrow variants (``width``) for CPU-sized experiments, and frame embeddings for captioning.

Shapes (B batch, n samples, T = 1 + n // 320 frames, M = 64 mel bins, C = channels of the
last block, T' = T // 32)::

    waveform (B, n) ─ spectrogram_extractor ─ logmel_extractor ─► log-mel (B, T, M)
    log-mel ─ bn0 (per mel bin) ─ SpecAugment (train) ─ 6 × ConvBlock ─► (B, C, T', M / 32)
      ─ mean over frequency ─► frames (B, T', C) ─ max + mean over time ─► pooled (B, C)
      ─ dropout ─ relu(fc1) ─► embedding (B, D) ─ sigmoid(fc_audioset) ─► tag_scores (B, K)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aacbatch.errors import InputError
from aacbatch.audio import logmel

PANNS_CHANNELS = (64, 128, 256, 512, 1024, 2048)
POOLED_BLOCKS = 5  # blocks 1-5 halve time and frequency; block 6 keeps the resolution


@dataclass(frozen=True)
class Cnn14Config:
    """Architecture of a CNN14-family encoder; the defaults are the paper's CNN14.

    ``width`` scales every block's channels (64-128-...-2048); ``n_blocks`` keeps the first
    blocks only; ``embed_dim`` is the size of fc1 (the clip embedding), by default the last
    block's channels as in PANNs; ``n_classes`` is the tagging head (527 AudioSet classes).
    """

    width: float = 1.0
    n_blocks: int = 6
    embed_dim: int | None = None
    n_classes: int = 527
    block_dropout: float = 0.2
    pooled_dropout: float = 0.5
    time_stripes: int = 2
    time_stripe_width: int = 64
    freq_stripes: int = 2
    freq_stripe_width: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.n_blocks <= len(PANNS_CHANNELS):
            raise ValueError(f"n_blocks must be in 1..{len(PANNS_CHANNELS)}, got {self.n_blocks}")
        if self.width <= 0:
            raise ValueError(f"width must be positive, got {self.width}")

    @property
    def channels(self) -> tuple[int, ...]:
        """Output channels of each block, e.g. (4, 8, 16, 32, 64, 128) for width 1/16."""
        return tuple(max(1, round(c * self.width)) for c in PANNS_CHANNELS[: self.n_blocks])

    @property
    def embedding_dim(self) -> int:
        return self.embed_dim or self.channels[-1]

    @property
    def time_stride(self) -> int:
        """Mel frames per output frame (32 for the 6-block model)."""
        return 2 ** min(self.n_blocks, POOLED_BLOCKS)


CNN14_CONFIGS: dict[str, Cnn14Config] = {
    "cnn14": Cnn14Config(),
    "cnn14-small": Cnn14Config(width=1 / 4),
    "cnn14-tiny": Cnn14Config(width=1 / 16),
}


@dataclass
class Cnn14Output:
    """Encoder outputs.

    tag_logits (B, K) and tag_scores = sigmoid(tag_logits) (B, K) — the AudioSet tagger;
    embedding (B, D) — clip embedding relu(fc1(pooled)), PANNs' ``embedding``;
    frames (B, T', C) — frame embeddings, zero past ``frame_lengths``;
    frame_lengths (B,) — valid frames per clip (int64).
    """

    tag_logits: Tensor
    tag_scores: Tensor
    embedding: Tensor
    frames: Tensor
    frame_lengths: Tensor


class _FixedConv1d(nn.Module):
    """Strided conv1d with a constant kernel, stored as ``weight`` like ``nn.Conv1d``.

    A buffer, not a parameter: the STFT kernels are never trained, and as buffers they
    stay out of optimisers and parameter counts while keeping the checkpoint key
    ``...conv_real.weight``.
    """

    def __init__(self, weight: Tensor, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.register_buffer("weight", weight)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d(x, self.weight, stride=self.stride)


class _Stft(nn.Module):
    """DFT-times-Hann kernels (513, 1, 1024) for the real and imaginary STFT parts."""

    def __init__(self) -> None:
        super().__init__()
        n = np.arange(logmel.N_FFT)
        k = np.arange(logmel.N_FFT // 2 + 1)
        # Exact phases: reduce k·n modulo N in integers before scaling to radians.
        angle = 2 * np.pi * ((k[:, None] * n[None, :]) % logmel.N_FFT) / logmel.N_FFT
        window = logmel.hann_window()
        real = torch.from_numpy((np.cos(angle) * window).astype(np.float32))[:, None, :]
        imag = torch.from_numpy((-np.sin(angle) * window).astype(np.float32))[:, None, :]
        self.conv_real = _FixedConv1d(real, logmel.HOP)
        self.conv_imag = _FixedConv1d(imag, logmel.HOP)


class Spectrogram(nn.Module):
    """Centred power STFT as a conv1d (torchlibrosa's ``Spectrogram``): (B, n) → (B, T, 513).

    With ``lengths`` each clip is reflect-padded at its own end rather than at the end of the
    batch, so its frames are those of the clip alone.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stft = _Stft()

    def forward(self, waveform: Tensor, lengths: Tensor | None = None) -> Tensor:
        x = _reflect_pad(waveform, lengths, logmel.N_FFT // 2)[:, None, :]
        real = self.stft.conv_real(x)
        imag = self.stft.conv_imag(x)
        return (real**2 + imag**2).transpose(1, 2)


class LogMel(nn.Module):
    """Power spectrum → mel (``melW`` (513, 64)) → dB with ref 1, amin 1e-10, no top_db."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("melW", torch.from_numpy(logmel.mel_filterbank()))

    def forward(self, power: Tensor) -> Tensor:
        return 10.0 * torch.log10(torch.clamp(power @ self.melW, min=logmel.AMIN))


def _reflect_pad(x: Tensor, lengths: Tensor | None, pad: int) -> Tensor:
    """Reflect-pad (B, n) by ``pad`` on both sides; per clip at ``lengths`` when given.

    Mirrors without repeating the edge sample, as ``F.pad(mode="reflect")``; indices past a
    clip's reflected tail are clamped (those frames are masked later anyway).
    """
    if lengths is None:
        return F.pad(x[:, None, :], (pad, pad), mode="reflect")[:, 0, :]
    n = x.shape[-1]
    index = torch.arange(-pad, n + pad, device=x.device).abs()[None, :]
    last = (lengths - 1)[:, None]
    index = torch.where(index > last, 2 * last - index, index).clamp(0, n - 1)
    return torch.gather(x, 1, index)


class SpecAugment(nn.Module):
    """Zero random time and frequency stripes of (B, 1, T, M) inputs in training mode only.

    Per clip: ``time_stripes`` stripes of width uniform in [0, time_width) frames placed
    inside the clip's valid frames, and ``freq_stripes`` of width in [0, freq_width) bins
    (as torchlibrosa's ``SpecAugmentation``, but vectorised, not in place, and aware of
    padding; 0 stripes disables a direction). Draws from torch's global generator, so
    ``torch.manual_seed`` fixes it.
    """

    def __init__(self, time_stripes: int, time_width: int, freq_stripes: int, freq_width: int) -> None:
        super().__init__()
        self.time = (time_stripes, time_width)
        self.freq = (freq_stripes, freq_width)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if not self.training:
            return x
        batch, _, n_time, n_freq = x.shape
        if lengths is None:
            lengths = torch.full((batch,), n_time, device=x.device)
        keep_time = _keep_mask(lengths, n_time, *self.time)
        keep_freq = _keep_mask(torch.full_like(lengths, n_freq), n_freq, *self.freq)
        return x * (keep_time[:, None, :, None] & keep_freq[:, None, None, :])


def _keep_mask(extent: Tensor, size: int, stripes: int, max_width: int) -> Tensor:
    """(B, size) bool: False inside ``stripes`` random stripes per row within ``extent``."""
    batch = extent.shape[0]
    width = torch.randint(0, max_width, (batch, stripes, 1), device=extent.device)
    room = (extent[:, None, None] - width + 1).clamp(min=1)
    start = (torch.rand(batch, stripes, 1, device=extent.device) * room).long()
    pos = torch.arange(size, device=extent.device)
    dropped = (pos >= start) & (pos < start + width)
    return ~dropped.any(dim=1)


class ConvBlock(nn.Module):
    """Two (3×3 conv without bias → BN → ReLU), then 2×2 average pooling if ``pool``.

    ``valid`` (B, 1, T, 1) zeroes padded frames before each conv, so zero-padding of the
    convolution sees the same zeros at a clip's end whether or not the clip is padded.
    """

    def __init__(self, in_channels: int, out_channels: int, pool: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.pool = pool

    def forward(self, x: Tensor, valid: Tensor | None = None) -> Tensor:
        x = F.relu(self.bn1(self.conv1(_zero_invalid(x, valid))))
        x = F.relu(self.bn2(self.conv2(_zero_invalid(x, valid))))
        return F.avg_pool2d(x, kernel_size=2) if self.pool else x


def _zero_invalid(x: Tensor, valid: Tensor | None) -> Tensor:
    return x if valid is None else torch.where(valid, x, 0.0)


def _valid_frames(lengths: Tensor, size: int) -> Tensor:
    """(B, size) bool mask of the first ``lengths[b]`` positions."""
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]


class Cnn14(nn.Module):
    """CNN14 audio encoder and AudioSet tagger (see the module docstring for shapes)."""

    MODEL_FAMILY = "cnn14"  # names the architecture in checkpoints (aacbatch.models.checkpoints)

    def __init__(self, config: Cnn14Config = Cnn14Config()) -> None:
        super().__init__()
        self.config = config
        self.spectrogram_extractor = Spectrogram()
        self.logmel_extractor = LogMel()
        self.spec_augmenter = SpecAugment(
            config.time_stripes, config.time_stripe_width, config.freq_stripes, config.freq_stripe_width
        )
        self.bn0 = nn.BatchNorm2d(logmel.N_MELS)
        in_channels = 1
        for index, channels in enumerate(config.channels, start=1):
            self.add_module(f"conv_block{index}", ConvBlock(in_channels, channels, pool=index <= POOLED_BLOCKS))
            in_channels = channels
        self.fc1 = nn.Linear(in_channels, config.embedding_dim)
        self.fc_audioset = nn.Linear(config.embedding_dim, config.n_classes)
        self._init_weights()

    @property
    def blocks(self) -> list[ConvBlock]:
        return [getattr(self, f"conv_block{i}") for i in range(1, self.config.n_blocks + 1)]

    def _init_weights(self) -> None:
        """PANNs' initialisation: Xavier-uniform convs and linears, zero biases, BN = identity."""
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: Tensor, lengths: Tensor | None = None, *, is_logmel: bool) -> Cnn14Output:
        """Encode waveforms (B, n) at 32 kHz, or log-mels (B, T, 64) if ``is_logmel``.

        ``lengths`` (B,) are valid samples (waveforms) or valid frames (log-mels) per clip;
        None means every clip fills the batch, which is exactly the PANNs computation.
        Clips need at least 32 frames (9920 samples, 0.31 s) to leave one output frame.
        """
        x = x.to(self.bn0.weight.dtype)  # e.g. float16 log-mels from the cache
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device).long().clamp(max=x.shape[1])
        if is_logmel:
            mel, frame_lengths = x, lengths
        else:
            mel = self.logmel_extractor(self.spectrogram_extractor(x, lengths))
            frame_lengths = None if lengths is None else logmel.n_frames(lengths)
        if mel.shape[1] < self.config.time_stride:
            raise ValueError(
                f"CNN14 needs at least {self.config.time_stride} frames per batch, got {mel.shape[1]} "
                f"(pad clips to ≥ {(self.config.time_stride - 1) * logmel.HOP} samples)"
            )

        h = self.bn0(mel[:, None, :, :].transpose(1, 3)).transpose(1, 3)  # BN over mel bins
        h = self.spec_augmenter(h, frame_lengths)
        for block in self.blocks:
            valid = None if frame_lengths is None else _valid_frames(frame_lengths, h.shape[2])[:, None, :, None]
            h = F.dropout(block(h, valid), p=self.config.block_dropout, training=self.training)
            if block.pool and frame_lengths is not None:
                frame_lengths = frame_lengths // 2
        frames = h.mean(dim=3).transpose(1, 2)  # (B, T', C)
        pooled, frame_lengths = _pool_time(frames, frame_lengths)
        pooled = F.dropout(pooled, p=self.config.pooled_dropout, training=self.training)
        embedding = F.relu(self.fc1(pooled))
        logits = self.fc_audioset(embedding)
        frames = _zero_invalid(frames, _valid_frames(frame_lengths, frames.shape[1])[:, :, None])
        return Cnn14Output(logits, torch.sigmoid(logits), embedding, frames, frame_lengths)


def _pool_time(frames: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
    """PANNs pooling, max + mean over valid frames: (B, T', C) → (B, C), and the lengths.

    A clip too short to keep a valid frame after pooling keeps its first frame (length 1).
    """
    batch, n_frames, _ = frames.shape
    if lengths is None:
        lengths = torch.full((batch,), n_frames, dtype=torch.long, device=frames.device)
        return frames.amax(dim=1) + frames.mean(dim=1), lengths
    lengths = lengths.clamp(min=1)
    valid = _valid_frames(lengths, n_frames)[:, :, None]
    peak = torch.where(valid, frames, float("-inf")).amax(dim=1)
    mean = torch.where(valid, frames, 0.0).sum(dim=1) / lengths[:, None].to(frames.dtype)
    return peak + mean, lengths


def resolve_config(name_or_config: str | Cnn14Config) -> Cnn14Config:
    """A variant name of :data:`CNN14_CONFIGS` (or a config, returned as it is) → its config."""
    if isinstance(name_or_config, Cnn14Config):
        return name_or_config
    if name_or_config in CNN14_CONFIGS:
        return CNN14_CONFIGS[name_or_config]
    raise InputError(f"unknown CNN14 variant {name_or_config!r}: choose one of {', '.join(CNN14_CONFIGS)}")
