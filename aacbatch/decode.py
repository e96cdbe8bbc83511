"""Caption decoding: batched beam search and greedy search over an ensemble of captioners.

An ensemble is a list of :class:`Member` s — each a captioner with its *own* input frames
(members may be trained on features of different encoders, so frame sizes and counts differ)
and a weight. Per step the members' next-token **log-softmax** distributions are averaged
with the weights normalised to sum 1; one member is the plain model.

Batching: the B clips × K hypotheses advance together as N = B·K decoder rows. Each member's
memory is encoded once and repeated per hypothesis; each step re-runs the decoder on the
whole prefix (at most ``max_tokens`` ≈ 20 tokens) and classifies only the last position;
rows of finished hypotheses are left out. That re-run also re-projects the memory's
cross-attention keys/values every step, which dominates at short prefixes: a key/value cache
would be the next speed-up (``benchmarks/bench_beam_search.py`` measures the rate).

Beam search (length-normalised, "shrinking" beam): at step t every live hypothesis of a clip
is extended by every token; of the clip's best K candidates, those ending in END are
finished and leave the beam, the others stay live, so a clip has at most K live + finished
hypotheses and stops when all K have finished. A hypothesis that never emits END is
finished at ``max_tokens``. The result is the finished hypothesis with the best score:
sum of token log-probs / number of tokens (END counted), or the plain sum without
``length_norm``. With K = 1 this is exactly greedy search. PAD and START are never generated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from aacbatch.models.captioner import END, PAD, START, Captioner
from aacbatch.models.vocab import Vocabulary


@dataclass(frozen=True)
class Member:
    model: Captioner  # in eval mode
    frames: Tensor  # (B, T_m, d_m) this member's own input features for the B clips
    lengths: Tensor  # (B,)
    weight: float = 1.0


class Ensemble:
    """The members' memories, encoded once and repeated ``repeats`` times per clip.

    Row ``b * repeats + k`` of every member's memory belongs to clip b, so a batch of
    prefixes (B·repeats, t) is scored by all members at once.
    """

    def __init__(self, members: Sequence[Member], repeats: int = 1):
        if not members:
            raise ValueError("an ensemble needs at least one member")
        vocab_sizes = [m.model.config.vocab_size for m in members]
        if len(set(vocab_sizes)) > 1:
            raise ValueError(f"ensemble members must share one vocabulary, got vocab sizes {vocab_sizes}")
        n_clips = [len(m.frames) for m in members]
        if len(set(n_clips)) > 1 or any(len(m.lengths) != n for m, n in zip(members, n_clips)):
            raise ValueError(f"every member needs frames and lengths for the same clips, got {n_clips} clips")
        weights = torch.tensor([float(m.weight) for m in members], dtype=torch.float64)
        if not (torch.isfinite(weights).all() and (weights > 0).all()):
            raise ValueError(f"ensemble weights must be positive, got {weights.tolist()}")
        for i, m in enumerate(members):
            if m.model.training:
                raise ValueError(f"ensemble member {i} is in training mode: call model.eval() "
                                 "(dropout makes decoding random)")
        self.models = [m.model for m in members]
        self.weights = (weights / weights.sum()).tolist()
        self.vocab_size = vocab_sizes[0]
        self.n_clips = n_clips[0]
        self.memories = []
        for m in members:
            memory, mask = m.model.encode(m.frames, m.lengths)
            self.memories.append((memory.repeat_interleave(repeats, dim=0), mask.repeat_interleave(repeats, dim=0)))

    def log_probs(self, prefixes: Tensor, rows: Tensor | None = None) -> Tensor:
        """prefixes (N, t) int64 starting with START → weighted mean of the members' next-token
        log-softmax (N, V), with PAD and START at -inf so they are never chosen, and END too
        at the first step: a caption has at least one word (an empty one is no caption, and
        the caption metrics refuse it).

        ``rows`` (B·repeats,) bool selects which memory rows the N prefixes belong to (default:
        all), so finished hypotheses cost nothing.
        """
        total = None
        for model, weight, (memory, mask) in zip(self.models, self.weights, self.memories):
            if rows is not None:
                memory, mask = memory[rows], mask[rows]
            states = model.decode_states(prefixes, memory, mask)[:, -1]
            term = weight * torch.log_softmax(model.classifier(states).float(), dim=-1)
            total = term if total is None else total + term
        total[:, PAD] = float("-inf")
        total[:, START] = float("-inf")
        if prefixes.shape[1] == 1:
            total[:, END] = float("-inf")
        return total


def _check_max_tokens(members: Sequence[Member], max_tokens: int) -> None:
    # The last step feeds START + (max_tokens - 1) tokens to the decoder.
    limit = min((m.model.config.max_positions for m in members), default=max_tokens)
    if not 1 <= max_tokens <= limit:
        raise ValueError(f"max_tokens must be in 1..{limit} (the members' max_positions), got {max_tokens}")


def _strip(row: Tensor) -> list[int]:
    """Token ids of one generated row (without START) up to, not including, END."""
    ids = row.tolist()
    return ids[: ids.index(END)] if END in ids else ids


@torch.no_grad()
def greedy(members: Sequence[Member], max_tokens: int = 20) -> list[list[int]]:
    """Most likely next token at every step, for B clips at once; per clip the token ids
    without START/END/PAD (at most ``max_tokens`` tokens, END included)."""
    _check_max_tokens(members, max_tokens)
    ensemble = Ensemble(members)
    device = ensemble.memories[0][0].device
    tokens = torch.full((ensemble.n_clips, 1), START, dtype=torch.long, device=device)
    done = torch.zeros(ensemble.n_clips, dtype=torch.bool, device=device)
    for _ in range(max_tokens):
        if done.all():
            break
        best = torch.full_like(done, PAD, dtype=torch.long)
        best[~done] = ensemble.log_probs(tokens[~done], rows=~done).argmax(dim=-1)
        tokens = torch.cat([tokens, best[:, None]], dim=1)
        done |= best == END
    return [_strip(row) for row in tokens[:, 1:]]


@torch.no_grad()
def beam_search(
    members: Sequence[Member], beam_size: int = 3, max_tokens: int = 20, length_norm: bool = True
) -> list[list[int]]:
    """Batched beam search over B clips; returns per clip the best token ids (no START/END/PAD).

    Live hypotheses sit in a (B, K) grid of slots with cumulative log-probs ``scores``
    (-inf = empty slot); the best finished hypothesis per clip is kept in ``best_*``.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    _check_max_tokens(members, max_tokens)
    ensemble = Ensemble(members, repeats=beam_size)
    n_clips, k, vocab = ensemble.n_clips, beam_size, ensemble.vocab_size
    device = ensemble.memories[0][0].device
    clip_rows = torch.arange(n_clips, device=device)[:, None]

    tokens = torch.full((n_clips * k, 1), START, dtype=torch.long, device=device)
    scores = torch.full((n_clips, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live start per clip, so the first step does not pick K copies
    n_finished = torch.zeros(n_clips, dtype=torch.long, device=device)
    best_score = torch.full((n_clips,), float("-inf"), device=device)
    best_tokens = torch.full((n_clips, max_tokens), PAD, dtype=torch.long, device=device)

    def finish(candidates: Tensor, finished: Tensor, sequences: Tensor, n_tokens: int) -> None:
        """Keep, per clip, the best ``finished`` (B, K) slot if it beats the stored best;
        ``candidates`` (B, K) are summed log-probs, ``sequences`` (B·K, n_tokens) the tokens after START."""
        normalised = candidates / n_tokens if length_norm else candidates
        normalised = normalised.masked_fill(~finished, float("-inf"))
        top, slot = normalised.max(dim=1)
        better = top > best_score
        best_score[better] = top[better]
        picked = sequences.view(n_clips, k, n_tokens)[clip_rows[:, 0], slot]  # (B, n_tokens)
        best_tokens[better] = PAD
        best_tokens[better, :n_tokens] = picked[better]

    for step in range(max_tokens):
        live = torch.isfinite(scores).view(-1)
        log_probs = torch.full((n_clips * k, vocab), float("-inf"), device=device)
        log_probs[live] = ensemble.log_probs(tokens[live], rows=live)
        candidates = scores[:, :, None] + log_probs.view(n_clips, k, vocab)
        top, index = candidates.view(n_clips, k * vocab).topk(k, dim=1)  # (B, K), best first
        # A clip keeps at most K - (finished so far) hypotheses: finished ones use up beam slots.
        allowed = torch.arange(k, device=device)[None, :] < (k - n_finished)[:, None]
        chosen = allowed & torch.isfinite(top)
        parent, word = index // vocab, index % vocab
        sequences = torch.cat([tokens.view(n_clips, k, -1)[clip_rows, parent], word[:, :, None]], dim=2)
        tokens = sequences.view(n_clips * k, -1)
        ends = chosen & (word == END)
        finish(top, ends, tokens[:, 1:], step + 1)
        n_finished += ends.sum(dim=1)
        scores = top.masked_fill(~chosen | ends, float("-inf"))
        if not torch.isfinite(scores).any():
            break
    else:
        # Hypotheses still live after max_tokens tokens finish without END.
        finish(scores, torch.isfinite(scores), tokens[:, 1:], max_tokens)
    return [_strip(row) for row in best_tokens]


def decode_clips(models: Sequence[Captioner], readers: Sequence, rows: np.ndarray, vocab: Vocabulary,
                 weights: Sequence[float], *, beam_size: int = 3, max_tokens: int = 20,
                 batch_size: int = 64) -> list[str]:
    """Beam-search captions of the examples at ``rows``: model ``k`` reads its frames from
    ``readers[k]`` (a :class:`~aacbatch.batches.CachedBatches` with a ``frames`` source)."""
    out: list[str] = []
    for lo in range(0, len(rows), batch_size):
        batches = [r[rows[lo:lo + batch_size]] for r in readers]
        members = [Member(m, torch.from_numpy(b["frames"]), torch.from_numpy(b["frames_lengths"]), w)
                   for m, b, w in zip(models, batches, weights)]
        out.extend(vocab.decode(ids) for ids in beam_search(members, beam_size=beam_size, max_tokens=max_tokens))
    return out
