"""CLAIP's image modality: a Stable Diffusion picture of each caption, embedded by a frozen CLIP.

CLAIP adds an image→text contrastive term whose images are generated from the training
captions. Both models are frozen, so the images and their CLIP embeddings are computed once
(the ``images`` feature set); this module is that computation:

    caption, seed ─ StableDiffusionPipeline ─► image (size, size, 3) uint8
      ─ open_clip val transform ─► pixels (3, S, S) ─ encode_image ─ L2 norm ─► (d,) float32

* Reproducible per caption: each caption's initial latent (and any noise a stochastic
  scheduler adds later; DDIM and PNDM add none) comes from its own CPU generator seeded with
  the caption's seed, so an image does not depend on which captions share its batch or on the
  device, up to float rounding (which can move a pixel to the neighbouring uint8 value:
  embeddings then agree to ~1e-5).
* Offline: models load from local folders/files only. :func:`build_tiny_sd_pipeline` and
  :func:`build_tiny_clip` write random-weight stand-ins with the real file layouts for tests
  and the demo; they leave :data:`~aacbatch.models.text.RANDOM_WEIGHTS_MARKER` next to the
  weights so every feature set built from them reports ``random_weights: true``.
* torch, diffusers, transformers and open_clip are imported only here (and lazily where a
  function needs them), never by the CLI at start-up.
"""

from __future__ import annotations

import copy
import gzip
import importlib.util
import json
import tempfile
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from aacbatch.errors import InputError, first_line
from aacbatch.hashing import content_sha256
from aacbatch.models.text import RANDOM_WEIGHTS_MARKER, has_random_weights, local_model_folder, quiet_hub_libraries

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline
    from open_clip import CLIP
    from transformers import CLIPTokenizer

TINY_CLIP_ARCH = "aacbatch-tiny-vit"
TINY_CLIP_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8, "mlp_ratio": 2.0},
    # open_clip's CLIP always has a text tower; only its vocabulary (the CLIP BPE) is fixed.
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
TINY_SD_SIZE = 64
THUMBNAIL_SIZE = 32
# Pipeline components never used for embedding (NSFW filter and its preprocessor, IP-adapter
# image encoder): not loaded and not part of the identity.
_UNUSED_SD_COMPONENTS = ("safety_checker", "feature_extractor", "image_encoder")
_CLIP_CONTEXT = 77
_SOT, _EOT = "<|startoftext|>", "<|endoftext|>"


# ---------------------------------------------------------------------------------------
# Offline stand-ins
# ---------------------------------------------------------------------------------------


def clip_bpe_tokenizer() -> CLIPTokenizer:
    """A Hugging Face ``CLIPTokenizer`` made from open_clip's bundled BPE vocabulary.

    Same ids as ``open_clip.tokenize`` and as Stable Diffusion's own tokenizer, with nothing
    downloaded. The vocabulary goes through ``vocab.json`` + ``merges.txt`` and
    ``from_pretrained`` because transformers 5 ignores ``vocab_file=`` arguments.
    """
    from open_clip.tokenizer import bytes_to_unicode, default_bpe
    from transformers import CLIPTokenizer

    # Line 0 is a header; the rest of the 49152 - 256 - 2 entries are merges, as open_clip reads it.
    merges = gzip.open(default_bpe()).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    byte_symbols = list(bytes_to_unicode().values())
    vocab = byte_symbols + [s + "</w>" for s in byte_symbols] + ["".join(m.split()) for m in merges] + [_SOT, _EOT]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}), encoding="utf-8")
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
        return CLIPTokenizer.from_pretrained(tmp, model_max_length=_CLIP_CONTEXT, local_files_only=True)


def build_tiny_sd_pipeline(out_dir: str | Path, seed: int = 0) -> Path:
    """Write a random-weight Stable Diffusion pipeline (64×64 images) to ``out_dir``.

    Same components, folder layout and VAE factor (8) as a real SD 1.x checkpoint, so the code
    path is the real one: CLIP text encoder (2 layers, d 32, ~1.6 M params, CLIP BPE
    tokenizer), UNet (~1 M) on 8×8 latents with cross-attention at its 4×4 level, VAE (~1 M,
    four levels: 64×64 images), DDIM scheduler with SD's betas. Small latents keep it cheap
    on CPU (with a factor-2 VAE, i.e. 32×32 latents, an image costs ~6× more). The same seed
    writes identical weights.
    """
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    out = Path(out_dir)
    tokenizer = clip_bpe_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=_CLIP_CONTEXT,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )
        unet = UNet2DConditionModel(
            sample_size=TINY_SD_SIZE // 8,
            in_channels=4,
            out_channels=4,
            layers_per_block=1,
            block_out_channels=(32, 64),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=8,
            norm_num_groups=8,
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(16, 32, 64, 64),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=8,
            sample_size=TINY_SD_SIZE,
        )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(out)
    _write_random_weights_marker(out, "build_tiny_sd_pipeline", seed)
    return out


def build_tiny_clip(out_dir: str | Path, seed: int = 0) -> tuple[str, Path]:
    """Write a random-weight open_clip ViT (32×32 input, d 64) to ``out_dir``.

    Writes ``<arch>.json`` (open_clip model config) beside the checkpoint
    ``open_clip_model.safetensors``; :func:`load_clip` registers such a config, so the pair
    loads like any built-in architecture. Returns ``(arch, checkpoint)``.
    """
    import open_clip
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{TINY_CLIP_ARCH}.json").write_text(json.dumps(TINY_CLIP_CONFIG, indent=2) + "\n", encoding="utf-8")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.CLIP(**TINY_CLIP_CONFIG)
    checkpoint = out / "open_clip_model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(checkpoint))
    _write_random_weights_marker(out, "build_tiny_clip", seed)
    return TINY_CLIP_ARCH, checkpoint


def _write_random_weights_marker(folder: Path, builder: str, seed: int) -> None:
    marker = {"random_weights": True, "builder": f"{__name__}.{builder}", "seed": seed}
    (folder / RANDOM_WEIGHTS_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------
# Loading real (or stand-in) models from local files
# ---------------------------------------------------------------------------------------


def load_sd_pipeline(sd_dir: str | Path, device: torch.device | str = "cpu") -> StableDiffusionPipeline:
    """A diffusers ``StableDiffusionPipeline`` from a local folder, without safety checker; in
    float16 on a GPU (the paper generates 512² images: fp16 halves memory and doubles speed)."""
    device = torch.device(device)
    path = _check_sd_dir(sd_dir)
    from diffusers import StableDiffusionPipeline

    unused = dict.fromkeys(_UNUSED_SD_COMPONENTS)
    # Without accelerate, diffusers falls back to a full random init before loading (and warns).
    low_memory = importlib.util.find_spec("accelerate") is not None
    try:
        quiet_hub_libraries()
        pipe = StableDiffusionPipeline.from_pretrained(
            path, local_files_only=True, requires_safety_checker=False, low_cpu_mem_usage=low_memory,
            dtype=torch.float16 if device.type == "cuda" else torch.float32, **unused
        )
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"cannot load a Stable Diffusion pipeline from {path}: {first_line(exc)}") from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_clip(arch: str, checkpoint: str | Path, device: str = "cpu") -> tuple[CLIP, Callable]:
    """An open_clip model (eval mode) and its inference transform, from a local checkpoint.

    ``arch`` is an open_clip architecture name (e.g. ``ViT-B-32-quickgelu`` for OpenAI's
    weights) or one defined by a ``<arch>.json`` beside the checkpoint.
    """
    import open_clip

    checkpoint, _ = _check_clip(arch, checkpoint)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            arch, pretrained=str(checkpoint), device=device, pretrained_image=False, pretrained_text=False
        )
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise InputError(f"cannot load open_clip {arch} from {checkpoint}: {first_line(exc)}") from exc
    return model.eval(), preprocess


def _check_sd_dir(sd_dir: str | Path) -> Path:
    return local_model_folder(sd_dir, "model_index.json", "diffusers pipeline")


def _check_clip(arch: str, checkpoint: str | Path) -> tuple[Path, dict]:
    """Validate the checkpoint path and make ``arch`` known to open_clip, without any download.

    Returns the resolved checkpoint and the architecture's open_clip config.
    """
    import open_clip

    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise InputError(f"CLIP checkpoint {path} does not exist: pass a local open_clip checkpoint file")
    if ":" in arch:  # hf-hub:/local-dir: schemas fetch configs or ignore the checkpoint
        raise InputError(f"CLIP architecture {arch!r}: give an open_clip architecture name, not a schema")
    if (path.parent / f"{arch}.json").is_file():
        open_clip.add_model_config(path.parent / f"{arch}.json")
    config = open_clip.get_model_config(arch)
    if config is None:
        raise InputError(f"unknown open_clip architecture {arch!r} (not built in, no {arch}.json beside {path})")
    if "hf_model_name" in config.get("text_cfg", {}):
        raise InputError(f"open_clip architecture {arch!r} needs a Hugging Face hub text tower: not usable offline")
    return path.resolve(), config


# ---------------------------------------------------------------------------------------
# The feature computation
# ---------------------------------------------------------------------------------------


class ImageEmbedder:
    """Caption → Stable Diffusion image → L2-normalised CLIP image embedding.

    Cheap to construct (paths are checked, no model is loaded): :meth:`identity` and
    :attr:`embed_dim` are available at once, e.g. to fingerprint a feature set in a parent
    process; the models load on the first :meth:`embed`. Generation parameters have no
    defaults on purpose: they belong in the feature spec, which is fingerprinted.
    """

    def __init__(
        self,
        sd_dir: str | Path,
        clip_arch: str,
        clip_checkpoint: str | Path,
        *,
        steps: int,
        guidance: float,
        size: int,
        device: torch.device | str = "cpu",
        batch_size: int = 8,
    ) -> None:
        if steps < 1 or batch_size < 1:
            raise InputError(f"image generation needs steps >= 1 and batch_size >= 1 (got {steps}, {batch_size})")
        if size < 8 or size % 8:
            raise InputError(f"image size must be a positive multiple of 8 (got {size})")
        self.sd_dir = _check_sd_dir(sd_dir).resolve()
        self.clip_arch = clip_arch
        self.clip_checkpoint, clip_config = _check_clip(clip_arch, clip_checkpoint)
        self.embed_dim = int(clip_config["embed_dim"])
        self.steps, self.guidance, self.size = int(steps), float(guidance), int(size)
        self.device = device
        self.batch_size = batch_size

    @cached_property
    def _pipe(self) -> StableDiffusionPipeline:
        return load_sd_pipeline(self.sd_dir, self.device)

    @cached_property
    def _clip(self) -> tuple[CLIP, Callable]:
        return load_clip(self.clip_arch, self.clip_checkpoint, self.device)

    def embed(
        self, captions: list[str], seeds: list[int], *, thumbnails: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Embeddings (n, d) float32, unit norm; with ``thumbnails`` also (n, 32, 32, 3) uint8.

        ``seeds[i]`` seeds caption i's image; derive it from a stable caption id (not from a
        batch position) so a resumed or resharded job regenerates the same image.
        """
        if len(captions) != len(seeds):
            raise InputError(f"embed: {len(captions)} captions but {len(seeds)} seeds")
        if not all(isinstance(c, str) for c in captions):
            raise InputError("embed: every caption must be a string")
        if not all(isinstance(s, (int, np.integer)) and 0 <= s < 2**63 for s in seeds):
            raise InputError("embed: seeds must be integers in [0, 2**63)")
        embeddings = np.zeros((len(captions), self.embed_dim), np.float32)
        thumbs = np.zeros((len(captions), THUMBNAIL_SIZE, THUMBNAIL_SIZE, 3), np.uint8) if thumbnails else None
        for start in range(0, len(captions), self.batch_size):
            batch = slice(start, start + self.batch_size)
            images = self._generate(captions[batch], seeds[batch])
            embeddings[batch] = self._encode(images)
            if thumbnails:
                thumbs[batch] = _thumbnails(images)
        return (embeddings, thumbs) if thumbnails else embeddings

    @torch.inference_mode()
    def _generate(self, captions: list[str], seeds: list[int]) -> np.ndarray:
        """(n, size, size, 3) uint8 images, rounded as diffusers' own PIL output."""
        generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        out = self._pipe(
            prompt=list(captions),
            num_inference_steps=self.steps,
            guidance_scale=self.guidance,
            height=self.size,
            width=self.size,
            generator=generators,
            output_type="np",
        )
        return (np.asarray(out.images) * 255).round().astype(np.uint8)

    @torch.inference_mode()
    def _encode(self, images: np.ndarray) -> np.ndarray:
        """(n, H, W, 3) uint8 → (n, d) float32 unit-norm CLIP image embeddings."""
        from PIL import Image

        model, preprocess = self._clip
        pixels = torch.stack([preprocess(Image.fromarray(image)) for image in images]).to(self.device)
        return F.normalize(model.encode_image(pixels).float(), dim=-1).cpu().numpy()

    @cached_property
    def _identity(self) -> dict[str, Any]:
        sd_files = _sd_files(self.sd_dir)
        clip_files = [self.clip_checkpoint]
        arch_config = self.clip_checkpoint.parent / f"{self.clip_arch}.json"
        if arch_config.is_file():
            clip_files.append(arch_config)
        sd_random = has_random_weights(self.sd_dir)
        clip_random = has_random_weights(self.clip_checkpoint.parent)
        return {
            "stable_diffusion": {
                "name": self.sd_dir.name,
                "path": str(self.sd_dir),
                "sha256": content_sha256(self.sd_dir, sd_files),
                "random_weights": sd_random,
            },
            "clip": {
                "arch": self.clip_arch,
                "checkpoint": str(self.clip_checkpoint),
                "sha256": content_sha256(self.clip_checkpoint.parent, clip_files),
                "random_weights": clip_random,
            },
            "generation": {"steps": self.steps, "guidance": self.guidance, "size": self.size},
            "embed_dim": self.embed_dim,
            "random_weights": sd_random or clip_random,
        }

    def identity(self) -> dict[str, Any]:
        """Model names, content hashes, generation parameters and ``random_weights``.

        Hashes are computed once per embedder (a real SD folder is several GB).
        Fingerprints should leave out the ``path``/``checkpoint`` entries, which are for people.
        """
        return copy.deepcopy(self._identity)


def _sd_files(path: Path) -> list[Path]:
    """``model_index.json`` and every file of the components the pipeline loads."""
    index = json.loads((path / "model_index.json").read_text(encoding="utf-8"))
    files = [path / "model_index.json"]
    for name, value in index.items():
        if name.startswith("_") or name in _UNUSED_SD_COMPONENTS or not isinstance(value, list) or value[0] is None:
            continue
        files += [f for f in (path / name).rglob("*") if f.is_file() and not f.name.startswith(".")]
    return files


def _thumbnails(images: np.ndarray) -> np.ndarray:
    """(n, H, W, 3) uint8 → (n, 32, 32, 3) uint8, area-averaged for inspection."""
    from PIL import Image

    size = (THUMBNAIL_SIZE, THUMBNAIL_SIZE)
    return np.stack([np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX)) for image in images])
