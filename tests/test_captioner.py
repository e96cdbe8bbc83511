"""Captioner (BiGRU → Transformer decoder) and batched beam-search / ensemble decoding."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from aacbatch.decode import Ensemble, Member, beam_search, greedy
from aacbatch.models.captioner import END, PAD, START, Captioner, CaptionerConfig, caption_loss

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = dict(gru_hidden=16, gru_layers=2, d_model=16, n_heads=2, ff_dim=32, decoder_layers=2, max_positions=24)
# Four clips and their captions (word ids ≥ 4), of different lengths.
CAPTIONS = [[4, 5, 6], [7, 8], [9, 5, 4, 10, 11], [6]]


def tiny_captioner(seed: int, input_dim: int = 8, vocab_size: int = 12) -> Captioner:
    torch.manual_seed(seed)
    return Captioner(CaptionerConfig(input_dim=input_dim, vocab_size=vocab_size, **TINY)).eval()


def random_frames(n_clips: int, n_frames: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, dim) frames and lengths between T/3 and T (the first clip is full length)."""
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(n_clips, n_frames, dim, generator=g)
    lengths = torch.randint(n_frames // 3, n_frames + 1, (n_clips,), generator=g)
    lengths[0] = n_frames
    return frames, lengths


def close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-5) -> None:
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=0, atol=atol)


def caption_batch(captions: list[list[int]]) -> torch.Tensor:
    """``START w… END PAD…`` rows (B, 2 + longest)."""
    width = 2 + max(map(len, captions))
    return torch.tensor([[START, *c, END] + [PAD] * (width - len(c) - 2) for c in captions])


def test_encoder_memory_of_valid_frames_does_not_depend_on_padding():
    model = tiny_captioner(0)
    frames, lengths = random_frames(4, 10, 8, seed=1)
    lengths = torch.tensor([10, 4, 7, 1])
    memory, mask = model.encode(frames, lengths)
    assert memory.shape == (4, 10, 16) and mask.dtype == torch.bool
    assert mask.sum(dim=1).tolist() == [0, 6, 3, 9] and not mask[1, :4].any() and mask[1, 4:].all()
    garbage = frames.clone()
    garbage[mask] = 1e3  # what sits in the padding must not matter (a plain BiGRU would read it backwards)
    memory_garbage, _ = model.encode(garbage, lengths)
    for i, n in enumerate(lengths.tolist()):
        alone, _ = model.encode(frames[i : i + 1, :n], lengths[i : i + 1])
        close(memory[i, :n], alone[0])
        close(memory_garbage[i, :n], alone[0])
    with pytest.raises(ValueError, match="1..10"):
        model.encode(frames, torch.tensor([10, 0, 3, 3]))


def test_decoder_logits_ignore_padding_of_frames_and_tokens():
    model = tiny_captioner(0)
    frames, lengths = random_frames(3, 9, 8, seed=2)
    tokens = caption_batch([[4, 5], [6], [7, 8, 9, 10]])  # (3, 6)
    logits = model(frames, lengths, tokens)
    assert logits.shape == (3, 6, 12)
    for i in range(3):
        n_tokens = int((tokens[i] != PAD).sum())
        n = int(lengths[i])
        alone = model(frames[i : i + 1, :n], lengths[i : i + 1], tokens[i : i + 1, :n_tokens])
        close(logits[i, :n_tokens], alone[0])
    # causal: changing token 2 changes logits from position 2 on, never before
    changed = tokens.clone()
    changed[:, 2] = 11
    logits_changed = model(frames, lengths, changed)
    close(logits_changed[:, :2], logits[:, :2])
    assert (logits_changed[:, 2] - logits[:, 2]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="max_positions=24"):
        model(frames, lengths, torch.full((3, 25), 4))


def test_caption_loss_is_label_smoothed_cross_entropy_over_non_pad_targets():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 7, generator=g)
    targets = torch.tensor([[4, 5, END, PAD], [6, END, PAD, PAD]])
    log_p = torch.log_softmax(logits, dim=-1)
    valid = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    nll = -sum(log_p[b, t, targets[b, t]] for b, t in valid) / 5
    uniform = -sum(log_p[b, t].mean() for b, t in valid) / 5
    assert abs(float(caption_loss(logits, targets, label_smoothing=0.0)) - float(nll)) < 1e-6
    assert abs(float(caption_loss(logits, targets)) - float(0.9 * nll + 0.1 * uniform)) < 1e-6


@pytest.fixture(scope="module")
def overfit() -> tuple[Captioner, torch.Tensor, torch.Tensor, float]:
    """A tiny captioner trained (100 Adam steps, no dropout) to map 4 random clips to their 4 captions."""
    torch.manual_seed(0)
    config = CaptionerConfig(
        input_dim=8, vocab_size=12, gru_hidden=32, gru_layers=1, d_model=32, n_heads=4, ff_dim=64, decoder_layers=1,
        gru_dropout=0.0, decoder_dropout=0.0,
    )
    model = Captioner(config)
    frames, lengths = random_frames(4, 6, 8, seed=3)
    tokens = caption_batch(CAPTIONS)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.enable_grad():
        for _ in range(100):
            loss = caption_loss(model(frames, lengths, tokens[:, :-1]), tokens[:, 1:], label_smoothing=0.0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval(), frames, lengths, loss.item()


def test_overfit_captioner_is_reproduced_by_beam_search_and_greedy(overfit):
    model, frames, lengths, loss = overfit
    assert loss < 0.01
    member = Member(model, frames, lengths)
    assert beam_search([member], beam_size=3) == CAPTIONS
    assert greedy([member]) == CAPTIONS
    # a clip's caption does not depend on the other clips in its batch
    order = [2, 0, 3, 1]
    assert beam_search([Member(model, frames[order], lengths[order])]) == [CAPTIONS[i] for i in order]


def test_batched_beam_search_equals_clip_by_clip_and_beam_one_equals_greedy():
    model = tiny_captioner(2)  # a random model whose captions differ in length and content across clips
    frames, lengths = random_frames(4, 12, 8, seed=4)
    batched = beam_search([Member(model, frames, lengths)], beam_size=3, max_tokens=10)
    one_by_one = [
        beam_search([Member(model, frames[i : i + 1], lengths[i : i + 1])], beam_size=3, max_tokens=10)[0]
        for i in range(4)
    ]
    assert batched == one_by_one
    assert all(PAD not in c and START not in c and END not in c and len(c) <= 10 for c in batched)
    assert len(set(map(len, batched))) > 1 and min(map(len, batched)) < 10  # some end early, some later
    single = greedy([Member(model, frames, lengths)], max_tokens=10)
    assert beam_search([Member(model, frames, lengths)], beam_size=1, max_tokens=10) == single


def _sequence_score(model: Captioner, frames, lengths, words: tuple[int, ...], max_tokens: int,
                    length_norm: bool) -> float:
    """Teacher-forced score of one generated sequence (END appended unless it hit max_tokens)."""
    generated = list(words) if len(words) == max_tokens else [*words, END]
    tokens = torch.tensor([[START, *generated]])
    log_p = torch.log_softmax(model(frames, lengths, tokens[:, :-1])[0], dim=-1)
    total = float(log_p[torch.arange(len(generated)), torch.tensor(generated)].sum())
    return total / len(generated) if length_norm else total


@pytest.mark.parametrize("length_norm", [True, False])
def test_wide_beam_finds_the_exhaustive_best_by_normalised_score(length_norm):
    """Vocabulary of 2 words (UNK is one) + END and at most 4 tokens: 2+4+8 hypotheses end
    with END (never before the first word) and 16 run out of tokens, so beam 64 is exhaustive and must return the best one
    by (length-normalised) log-prob, END counted as a token."""
    model = tiny_captioner(2, vocab_size=5)
    frames, lengths = random_frames(3, 5, 8, seed=5)
    members = [Member(model, frames, lengths)]
    best = []
    with torch.no_grad():
        for i in range(3):
            args = (model, frames[i : i + 1], lengths[i : i + 1])
            sequences = [s for n in range(1, 5) for s in itertools.product((3, 4), repeat=n)]  # ≥ 1 word
            scores = {s: _sequence_score(*args, s, 4, length_norm) for s in sequences}
            best.append(list(max(scores, key=scores.get)))
    assert beam_search(members, beam_size=64, max_tokens=4, length_norm=length_norm) == best
    if length_norm:  # normalising matters here: the unnormalised search picks another caption
        assert beam_search(members, beam_size=64, max_tokens=4, length_norm=False) != best


def test_ensemble_of_one_and_of_a_model_with_itself_equal_the_model():
    model = tiny_captioner(1)
    frames, lengths = random_frames(4, 12, 8, seed=4)
    alone = [Member(model, frames, lengths)]
    twice = [Member(model, frames, lengths), Member(model, frames, lengths)]
    prefixes = torch.tensor([[START, 4, 5]] * 4)
    expected = torch.log_softmax(model(frames, lengths, prefixes)[:, -1], dim=-1)
    expected[:, [PAD, START]] = float("-inf")
    close(Ensemble([Member(model, frames, lengths, weight=2.5)]).log_probs(prefixes), expected)
    assert torch.equal(Ensemble(twice).log_probs(prefixes), Ensemble(alone).log_probs(prefixes))
    assert beam_search(twice, max_tokens=10) == beam_search(alone, max_tokens=10)
    assert greedy(twice, max_tokens=10) == greedy(alone, max_tokens=10)


def test_ensemble_of_two_models_averages_their_log_softmax():
    """Members with different input sizes and frame counts; weights 1 and 3 → 1/4 and 3/4."""
    a, b = tiny_captioner(3, input_dim=8), tiny_captioner(4, input_dim=5)
    frames_a, lengths_a = random_frames(3, 12, 8, seed=6)
    frames_b, lengths_b = random_frames(3, 7, 5, seed=7)
    members = [Member(a, frames_a, lengths_a, weight=1.0), Member(b, frames_b, lengths_b, weight=3.0)]
    start = torch.full((3, 1), START)
    with torch.no_grad():
        expected = 0.25 * torch.log_softmax(a(frames_a, lengths_a, start)[:, 0], dim=-1) + 0.75 * torch.log_softmax(
            b(frames_b, lengths_b, start)[:, 0], dim=-1
        )
    expected[:, [PAD, START, END]] = float("-inf")  # END too: no empty captions
    close(Ensemble(members).log_probs(start), expected)
    first = greedy(members, max_tokens=1)
    assert [c[0] if c else END for c in first] == expected.argmax(dim=-1).tolist()


def test_bad_members_are_rejected():
    frames, lengths = random_frames(2, 6, 8, seed=8)
    small, large = tiny_captioner(0, vocab_size=12), tiny_captioner(0, vocab_size=13)
    with pytest.raises(ValueError, match=r"vocab sizes \[12, 13\]"):
        beam_search([Member(small, frames, lengths), Member(large, frames, lengths)])
    with pytest.raises(ValueError, match="same clips"):
        greedy([Member(small, frames, lengths), Member(small, frames[:1], lengths[:1])])
    with pytest.raises(ValueError, match="max_tokens must be in 1..24"):
        beam_search([Member(small, frames, lengths)], max_tokens=25)
    with pytest.raises(ValueError, match="training mode"):
        greedy([Member(small.train(), frames, lengths)])


def test_a_caption_has_at_least_one_word():
    """Even a model that puts all its mass on END first still says something."""
    torch.manual_seed(0)
    model = Captioner(CaptionerConfig(input_dim=4, vocab_size=6, gru_hidden=8, gru_layers=1, d_model=8, n_heads=2,
                                      ff_dim=16, decoder_layers=1)).eval()
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.weight[END] = 0.0
    bias = torch.zeros(6)
    bias[END] = 50.0
    model.classifier.register_forward_hook(lambda module, inputs, out: out + bias)
    member = Member(model, torch.randn(2, 3, 4), torch.tensor([3, 2]))
    for out in (beam_search([member], beam_size=3, max_tokens=5), greedy([member], max_tokens=5)):
        assert [len(ids) for ids in out] == [1, 1]
