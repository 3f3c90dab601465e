"""The built-in model, made on this machine without any download.

`builtin:demo` is a small text-to-image model trained by this project on procedural 64 x 64 pictures
(shapes in colours, and fire), shipped inside the package as an ordinary diffusers folder
(invoke_shell/data/builtin; `python -m invoke_shell.toymodel.train` reproduces it).

`builtin:tiny` is a tiny Stable Diffusion pipeline with deterministic random weights built from configs
(it draws noise; it exists so the shell and its tests run anywhere). It is written once as an ordinary
diffusers folder under the cache directory and then loaded through the same code path as a user's model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..paths import cache_dir  # noqa: F401  (built-in models live there; callers found it here before)

PREFIX = "builtin:"
SHIPPED = Path(__file__).resolve().parent.parent / "data" / "builtin"
TINY_VERSION = "tiny-v1"  # bump when build_tiny changes, so old caches are not reused


def is_builtin(path: str) -> bool:
    return path.startswith(PREFIX)


def resolve(path: str) -> Path:
    """The diffusers folder behind a `builtin:NAME` path, made first if needed."""
    from ..errors import ModelError

    name = path[len(PREFIX):]
    if name == "tiny":
        return ensure_tiny(cache_dir() / TINY_VERSION)
    if name == "demo":
        if not (SHIPPED / "model_index.json").is_file():
            raise ModelError(f"the built-in demo model is missing from {SHIPPED}; reinstall invoke-shell")
        return SHIPPED
    raise ModelError(f"unknown built-in model {path!r}; the built-in models are: builtin:demo, builtin:tiny")


def ensure_tiny(folder: Path) -> Path:
    """Build the tiny model into `folder` unless it is there; atomic, so concurrent shells are safe."""
    if (folder / "model_index.json").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        build_tiny(tmp)
        try:
            os.rename(tmp, folder)
        except OSError:  # another process finished first
            if not (folder / "model_index.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _byte_tokenizer():
    """A CLIP tokenizer over bytes alone (514 tokens, no merges): tiny and needs no vocabulary file."""
    from transformers import CLIPTokenizer

    # GPT-2/CLIP's printable mapping of the 256 byte values
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    extra = [b for b in range(256) if b not in printable]
    chars = [chr(b) for b in printable] + [chr(256 + i) for i in range(len(extra))]
    vocab = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=[], model_max_length=77)


def build_tiny(folder: Path, seed: int = 0, in_channels: int = 4) -> None:
    """Write the tiny pipeline (deterministic weights for `seed`) as a diffusers folder; `in_channels=9`
    makes it an inpainting model (latents + mask + masked-image latents)."""
    import torch
    from diffusers import AutoencoderKL, LMSDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = _byte_tokenizer()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=8, in_channels=in_channels, layers_per_block=1, block_out_channels=(32, 64), norm_num_groups=8,
            cross_attention_dim=32, attention_head_dim=4,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
        vae = AutoencoderKL(
            latent_channels=4, sample_size=64, layers_per_block=1, norm_num_groups=8,
            block_out_channels=(8, 16, 32, 32),  # 4 levels: vae_scale_factor 8, like SD
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    # the DDIM/PNDM keys ride along in the config so every sampler built from it behaves
    scheduler = LMSDiscreteScheduler.from_config(dict(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        steps_offset=1, clip_sample=False, set_alpha_to_one=False, skip_prk_steps=True))
    pipe = StableDiffusionPipeline(
        unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)


def build_tiny_xl(folder: Path, seed: int = 0, in_channels: int = 4, refiner: bool = False) -> None:
    """A tiny Stable Diffusion XL pipeline (deterministic random weights for `seed`) as a diffusers folder:
    SDXL's topology (two CLIP text encoders, the second with a projection for the pooled embedding; a UNet with
    `text_time` conditioning on the pooled text and the size/crop ids; linear projections) at toy widths. For
    the tests; it draws noise. `refiner`: the refiner's topology instead (the second text encoder alone, an
    aesthetic score in place of the target size, an img2img pipeline)."""
    import torch
    from diffusers import (AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLImg2ImgPipeline,
                           StableDiffusionXLPipeline, UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = _byte_tokenizer()
    tokenizer_2 = _byte_tokenizer()
    tokenizer_2.pad_token = "!"  # SDXL's second tokenizer pads with "!" (OpenCLIP's id 0)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=8, in_channels=in_channels, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
            projection_class_embeddings_input_dim=(5 if refiner else 6) * 8 + 48,
            cross_attention_dim=48 if refiner else 32 + 48, norm_num_groups=8)
        vae = AutoencoderKL(
            latent_channels=4, sample_size=64, layers_per_block=1, norm_num_groups=8,
            block_out_channels=(8, 16, 32, 32), down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4)
        # the two encoders differ in width (32 and 48) as SDXL's do (768 and 1280): single-file loading tells
        # them apart by it
        common = dict(vocab_size=len(tokenizer), intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                      max_position_embeddings=77, hidden_act="gelu", bos_token_id=tokenizer.bos_token_id,
                      eos_token_id=tokenizer.eos_token_id)
        text_encoder = CLIPTextModel(CLIPTextConfig(**common, hidden_size=32, projection_dim=32,
                                                    pad_token_id=tokenizer.pad_token_id))
        text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**common, hidden_size=48, projection_dim=48,
                                                                    pad_token_id=tokenizer_2.pad_token_id))
    scheduler = EulerDiscreteScheduler.from_config(dict(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        steps_offset=1, timestep_spacing="leading", clip_sample=False, set_alpha_to_one=False, skip_prk_steps=True))
    if refiner:
        pipe = StableDiffusionXLImg2ImgPipeline(
            vae=vae, text_encoder=None, text_encoder_2=text_encoder_2, tokenizer=None, tokenizer_2=tokenizer_2,
            unet=unet, scheduler=scheduler, requires_aesthetics_score=True, force_zeros_for_empty_prompt=False)
    else:
        pipe = StableDiffusionXLPipeline(
            vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer,
            tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler, force_zeros_for_empty_prompt=True)
    pipe.save_pretrained(folder)
