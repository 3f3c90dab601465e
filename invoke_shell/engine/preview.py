"""Cheap previews of latents: a linear map from latent channels to RGB (no VAE decode per step).

The map for a model is fitted once by least squares on the VAE encodings of a few images the model itself
generates, and cached under the cache folder by the model's content hash, so it works for any model."""

from __future__ import annotations

import json
import logging

from PIL import Image

from ..atomic import write_atomic

log = logging.getLogger(__name__)

# varied colours, so that the fit sees the whole range a model draws (any model: they are just prompts)
FIT_PROMPTS = ["", "fire", "a photo", "a red circle on a blue background", "a yellow square on a green background",
               "a white star on a black background", "a purple triangle on an orange background",
               "a black square on a white background"]


def _cache_file(model):
    from ..paths import cache_dir

    return cache_dir() / "previews" / f"{model.content_hash()}.json"


def projection(model):
    """Fit or load the model's projection; call before a run (fitting runs the model), not during one.

    (weights (C+1, 3), as a torch tensor) mapping [latent channels, 1] -> RGB in [-1, 1]."""
    import torch

    cached = getattr(model, "_preview_projection", None)
    if cached is not None:
        return cached
    path = _cache_file(model)
    try:
        weights = torch.tensor(json.loads(path.read_text()), dtype=torch.float32)
    except (OSError, ValueError):
        weights = _fit(model)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(weights.tolist()))
        except OSError:  # a read-only cache only costs the next run the fitting again
            log.info("could not keep the latent preview in %s", path.parent, exc_info=True)
    model._preview_projection = weights
    return weights


def _fit(model):
    """Least squares on generated images and their VAE latents (mean), at the latent grid."""
    import torch
    import torch.nn.functional as F

    from .samplers import make_scheduler

    pipe = model.txt2img
    pipe.scheduler = make_scheduler("k_euler", model.sampler_config)  # every run sets its own again
    width, height = model.native_size
    with torch.inference_mode():
        # one image at a time: batched kernels may round differently from run to run, single ones do not
        images = torch.cat([pipe(prompt=prompt, num_inference_steps=10, height=height, width=width, output_type="pt",
                                 generator=torch.Generator("cpu").manual_seed(i)).images
                            for i, prompt in enumerate(FIT_PROMPTS)])  # (P, 3, H, W)
        pixels = (images * 2 - 1).to(pipe.vae.device, pipe.vae.dtype)
        latents = torch.cat([pipe.vae.encode(p[None]).latent_dist.mean for p in pixels]) * pipe.vae.config.scaling_factor
    latents = latents.float().cpu()                                     # (P, C, h, w)
    small = F.interpolate(images.float(), size=latents.shape[-2:], mode="area") * 2 - 1  # (P, 3, h, w)
    x = torch.cat([latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1]),
                   torch.ones(latents.shape[0] * latents.shape[2] * latents.shape[3], 1)], dim=1)
    y = small.permute(0, 2, 3, 1).reshape(-1, 3)
    weights = torch.linalg.lstsq(x, y).solution                        # (C+1, 3)
    weights = torch.round(weights * 1e4) / 1e4  # a stable map: run-to-run float noise does not reach previews
    log.info("fitted the latent preview for %s", model.name)
    return weights


def preview(model, latents) -> list[Image.Image]:
    """RGB previews of latents (N, C, h, w), scaled up to the image size (nearest neighbour)."""
    import torch

    weights = projection(model)
    x = latents.detach().float().cpu()
    rgb = torch.einsum("nchw,cd->nhwd", x, weights[:-1]) + weights[-1]
    rgb = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    factor = model.vae_scale_factor
    return [Image.fromarray(a).resize((a.shape[1] * factor, a.shape[0] * factor), Image.Resampling.NEAREST)
            for a in rgb]
