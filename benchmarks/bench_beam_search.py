"""Beam-search captions/s on CPU for the paper-size captioner (report only, no target).

Paper sizes: CNN14 frames (2048-d, 31 frames ≈ a 10 s clip), vocabulary 5000, BiGRU 3 × 256,
decoder 2 × 256; beam 3, at most 20 tokens. Random weights rarely emit END, so nearly every
hypothesis runs the full 20 steps — the slow end of real decoding. Also measured: greedy,
a two-member ensemble, and the same beam search clip by clip (what batching saves).
"""

from __future__ import annotations

import time

import torch

from aacbatch.decode import Member, beam_search, greedy
from aacbatch.models.captioner import Captioner, CaptionerConfig
from result import result

BATCH, FRAMES, INPUT_DIM, VOCAB, BEAM, MAX_TOKENS = 64, 31, 2048, 5000, 3, 20
ONE_BY_ONE = 8  # clips decoded singly, enough for a rate


def captions_per_second(decode, n_clips: int) -> tuple[float, float]:
    """(captions/s, mean caption length) of one timed call after a warm-up call."""
    decode()
    t0 = time.perf_counter()
    captions = decode()
    seconds = time.perf_counter() - t0
    return n_clips / seconds, sum(map(len, captions)) / len(captions)


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    models = [Captioner(CaptionerConfig(input_dim=INPUT_DIM, vocab_size=VOCAB)).eval() for _ in range(2)]
    frames = torch.randn(BATCH, FRAMES, INPUT_DIM)
    lengths = torch.full((BATCH,), FRAMES)
    member = Member(models[0], frames, lengths)
    n_params = sum(p.numel() for p in models[0].parameters()) / 1e6
    print(f"captioner {n_params:.1f} M params; batch {BATCH} x {FRAMES} frames x {INPUT_DIM}, vocab {VOCAB}, "
          f"beam {BEAM}, max {MAX_TOKENS} tokens, 2 threads")

    rate, length = captions_per_second(lambda: beam_search([member], BEAM, MAX_TOKENS), BATCH)
    print(f"beam search, batched: {rate:.1f} captions/s (mean length {length:.1f} tokens)")
    result(f"beam search captions/s (paper-size captioner, beam {BEAM}, batch {BATCH}, 2 threads)", rate)

    single, _ = captions_per_second(
        lambda: [beam_search([Member(models[0], frames[i : i + 1], lengths[i : i + 1])], BEAM, MAX_TOKENS)
                 for i in range(ONE_BY_ONE)],
        ONE_BY_ONE,
    )
    print(f"beam search, clip by clip: {single:.1f} captions/s → batching is {rate / single:.1f}x faster")
    result("beam search, batched vs clip by clip", rate / single)

    ensemble = [Member(m, frames, lengths) for m in models]
    rate2, _ = captions_per_second(lambda: beam_search(ensemble, BEAM, MAX_TOKENS), BATCH)
    print(f"beam search, 2-member ensemble: {rate2:.1f} captions/s")
    result(f"beam search captions/s, 2-member ensemble (batch {BATCH})", rate2)

    rate_greedy, _ = captions_per_second(lambda: greedy([member], MAX_TOKENS), BATCH)
    print(f"greedy, batched: {rate_greedy:.1f} captions/s")
    result(f"greedy captions/s (batch {BATCH})", rate_greedy)


if __name__ == "__main__":
    main()
