"""CLAIP image supervision on tiny random-weight stand-ins (Stable Diffusion + open_clip ViT)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aacbatch.errors import InputError
from aacbatch.models.image_supervision import (
    TINY_CLIP_ARCH,
    ImageEmbedder,
    build_tiny_clip,
    build_tiny_sd_pipeline,
    load_sd_pipeline,
)
from aacbatch.models.text import RANDOM_WEIGHTS_MARKER

GEN = {"steps": 2, "guidance": 7.5, "size": 64}


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, str, Path]:
    root = tmp_path_factory.mktemp("tiny-models")
    sd_dir = build_tiny_sd_pipeline(root / "sd", seed=0)
    arch, checkpoint = build_tiny_clip(root / "clip", seed=0)
    return sd_dir, arch, checkpoint


@pytest.fixture(scope="module")
def embedder(tiny) -> ImageEmbedder:
    return ImageEmbedder(*tiny, **GEN, batch_size=4)


def test_tiny_pipeline_round_trips_and_generates_64px(tiny):
    import open_clip

    sd_dir = tiny[0]
    assert (sd_dir / "model_index.json").is_file() and (sd_dir / RANDOM_WEIGHTS_MARKER).is_file()
    pipe = load_sd_pipeline(sd_dir)
    n_params = {
        name: sum(p.numel() for p in getattr(pipe, name).parameters()) for name in ("unet", "vae", "text_encoder")
    }
    assert 0.5e6 < n_params["unet"] < 1.5e6 and 0.5e6 < n_params["vae"] < 1.5e6 and n_params["text_encoder"] < 2e6
    assert type(pipe.scheduler).__name__ == "DDIMScheduler" and pipe.safety_checker is None
    # the converted BPE vocabulary gives open_clip's ids
    caption = "A dog barks twice, then rain falls on a tin roof!"
    ids = pipe.tokenizer(caption)["input_ids"]
    assert ids == open_clip.tokenize([caption])[0][: len(ids)].tolist()

    generator = torch.Generator().manual_seed(0)
    out = pipe("a dog barks", num_inference_steps=2, height=64, width=64, generator=generator, output_type="np")
    assert out.images.shape == (1, 64, 64, 3)
    assert np.isfinite(out.images).all() and out.images.std() > 0.01


def test_same_seed_builds_identical_weights(tiny, tmp_path):
    sd_dir, arch, checkpoint = tiny
    reference = ImageEmbedder(sd_dir, arch, checkpoint, **GEN).identity()
    _, checkpoint_b = build_tiny_clip(tmp_path / "clip_b", seed=0)
    again = ImageEmbedder(build_tiny_sd_pipeline(tmp_path / "sd_b", seed=0), arch, checkpoint_b, **GEN).identity()
    assert again["stable_diffusion"]["sha256"] == reference["stable_diffusion"]["sha256"]
    assert again["clip"]["sha256"] == reference["clip"]["sha256"]
    _, checkpoint_c = build_tiny_clip(tmp_path / "clip_c", seed=1)
    other = ImageEmbedder(sd_dir, arch, checkpoint_c, **GEN).identity()
    assert other["clip"]["sha256"] != reference["clip"]["sha256"]


def test_embeddings_are_unit_norm_and_reproducible_across_batches(embedder):
    captions = ["a dog barks", "rain falls on a tin roof", "a car passes by", "birds chirp", "people talk"]
    seeds = [11, 12, 13, 14, 15]
    full = embedder.embed(captions, seeds)
    assert full.shape == (5, embedder.embed_dim) == (5, 64) and full.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(full, axis=1), 1.0, atol=1e-5)
    # caption 2 alone, and caption 4 behind other neighbours (another batch split too); float
    # rounding that differs with the batch may move a pixel to the neighbouring uint8 value
    np.testing.assert_allclose(embedder.embed([captions[2]], [seeds[2]])[0], full[2], atol=1e-4)
    np.testing.assert_allclose(embedder.embed(["a cat meows", captions[4]], [99, seeds[4]])[1], full[4], atol=1e-4)


def test_captions_and_seeds_change_the_embedding(embedder):
    emb = embedder.embed(["a dog barks", "a cat meows", "a dog barks"], [7, 7, 8])
    assert np.abs(emb[0] - emb[1]).max() > 1e-3  # same seed, other caption
    assert np.abs(emb[0] - emb[2]).max() > 1e-3  # same caption, other seed


def test_thumbnails(embedder):
    emb, thumbs = embedder.embed(["a dog barks", "a bell rings"], [1, 2], thumbnails=True)
    assert emb.shape == (2, 64)
    assert thumbs.shape == (2, 32, 32, 3) and thumbs.dtype == np.uint8
    assert thumbs.std() > 0


def test_identity_marks_random_weights(embedder, tiny):
    identity = embedder.identity()
    assert identity["random_weights"] is True
    assert identity["stable_diffusion"]["random_weights"] and identity["clip"]["random_weights"]
    assert identity["clip"]["arch"] == TINY_CLIP_ARCH and identity["embed_dim"] == 64
    assert identity["generation"] == {"steps": 2, "guidance": 7.5, "size": 64}
    assert len(identity["stable_diffusion"]["sha256"]) == 64
    identity["random_weights"] = False  # callers get a copy
    assert embedder.identity()["random_weights"] is True


def test_missing_models_and_bad_parameters_are_input_errors(tiny, tmp_path):
    sd_dir, arch, checkpoint = tiny
    with pytest.raises(InputError, match=str(tmp_path / "no-sd")):
        ImageEmbedder(tmp_path / "no-sd", arch, checkpoint, **GEN)
    with pytest.raises(InputError, match="no model_index.json"):
        ImageEmbedder(tmp_path, arch, checkpoint, **GEN)
    with pytest.raises(InputError, match=str(tmp_path / "no-clip.pt")):
        ImageEmbedder(sd_dir, arch, tmp_path / "no-clip.pt", **GEN)
    with pytest.raises(InputError, match="unknown open_clip architecture"):
        ImageEmbedder(sd_dir, "no-such-arch", checkpoint, **GEN)
    with pytest.raises(InputError, match="not a schema"):
        ImageEmbedder(sd_dir, "hf-hub:someone/clip", checkpoint, **GEN)
    with pytest.raises(InputError, match="multiple of 8"):
        ImageEmbedder(sd_dir, arch, checkpoint, steps=2, guidance=7.5, size=60)


def test_embed_checks_its_inputs(embedder):
    assert embedder.embed([], []).shape == (0, 64)
    with pytest.raises(InputError, match="2 captions but 1 seeds"):
        embedder.embed(["a", "b"], [1])
    with pytest.raises(InputError, match="seeds"):
        embedder.embed(["a"], [-1])
