"""The built-in demo model's architecture (a miniature VAE, UNet and CLIP text encoder), its scheduler, and
how a trained model is written as a diffusers folder. Used by the training script (train.py)."""

from __future__ import annotations

import copy
import json
import os


def make_vae():
    from diffusers import AutoencoderKL
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=64,
        block_out_channels=(16, 32, 64), layers_per_block=1, norm_num_groups=8,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3)


def make_unet():
    from diffusers import UNet2DConditionModel
    return UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64, 128), norm_num_groups=16, attention_head_dim=8,
        cross_attention_dim=64,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"))


def make_text_encoder(tok):
    from transformers import CLIPTextConfig, CLIPTextModel
    cfg = CLIPTextConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, projection_dim=64,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return CLIPTextModel(cfg)


def make_scheduler():
    from diffusers import LMSDiscreteScheduler
    s = LMSDiscreteScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                             beta_schedule="scaled_linear", steps_offset=1, use_karras_sigmas=True)
    # keys other samplers read when the shell builds them with Cls.from_config(pipe.scheduler.config)
    s.register_to_config(clip_sample=False, set_alpha_to_one=False, skip_prk_steps=True)
    return s


def build_pipeline(unet, vae, te, tok):
    from diffusers import StableDiffusionPipeline
    return StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=te, tokenizer=tok, scheduler=make_scheduler(),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def save_folder(out: str, unet, vae, te, tok, meta: dict) -> None:
    """UNet and VAE stored float16, the text encoder float32 (transformers loads the dtype it finds)."""
    unet16 = copy.deepcopy(unet).half()
    vae16 = copy.deepcopy(vae).half()
    te32 = copy.deepcopy(te).float()
    pipe = build_pipeline(unet16, vae16, te32, tok)
    tmp = out.rstrip("/") + ".partial"
    if os.path.exists(tmp):
        import shutil
        shutil.rmtree(tmp)
    pipe.save_pretrained(tmp, safe_serialization=True)
    with open(os.path.join(tmp, "training.json"), "w") as f:
        json.dump(meta, f, indent=1)
    if os.path.exists(out):
        import shutil
        shutil.rmtree(out)
    os.replace(tmp, out)
