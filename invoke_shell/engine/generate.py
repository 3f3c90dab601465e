"""txt2img and img2img on a resident model. `prepare` checks and sizes a request without running the
model; `run` generates. Noise comes from a CPU generator seeded with the request's seed, so a seed gives
the same image on any device, and the same request twice gives the same pixels."""

from __future__ import annotations

from dataclasses import dataclass, replace

from PIL import Image

from ..request import GenerationRequest
from .images import choose_size, load_rgb
from .samplers import make_scheduler
from .schedule import Schedule, plan

NOISE_DEVICE = "cpu"


@dataclass(frozen=True)
class Job:
    """A request ready to run: seed and size resolved, the init image read and sized."""

    request: GenerationRequest       # as the canonical command records it
    schedule: Schedule
    width: int                       # the working size
    height: int
    init_image: Image.Image | None
    warnings: tuple[str, ...]


def prepare(request: GenerationRequest, model) -> Job:
    """Resolve size and schedule. `request.seed` must be a real seed and `init_img` a real path."""
    assert request.seed is not None and request.seed >= 0, "resolve the seed before preparing"
    image = load_rgb(request.init_img) if request.is_img2img else None
    sizing = choose_size(request.width, request.height, request.fit, model.native_size, model.size_multiple,
                         image.size if image is not None else None)
    if image is not None and image.size != (sizing.width, sizing.height):
        image = image.resize((sizing.width, sizing.height), Image.Resampling.LANCZOS)
    schedule = plan(request.sampler, request.steps, request.strength if image is not None else None,
                    model.txt2img.scheduler.config)
    resolved = replace(request, width=sizing.record_width, height=sizing.record_height)
    return Job(resolved, schedule, sizing.width, sizing.height, image, sizing.warnings)


def run(job: Job, model) -> Image.Image:
    """Generate the job's image on `model` (a LoadedModel)."""
    import torch

    req = job.request
    generator = torch.Generator(NOISE_DEVICE).manual_seed(req.seed)
    scheduler = make_scheduler(req.sampler, model.txt2img.scheduler.config)
    common = dict(prompt=req.positive_prompt, negative_prompt=req.negative_prompt or None,
                  num_inference_steps=req.steps, guidance_scale=req.cfg_scale, generator=generator)
    with torch.inference_mode():
        if job.init_image is not None:
            pipe = model.img2img
            pipe.scheduler = scheduler
            out = pipe(image=job.init_image, strength=req.strength, **common)
        else:
            pipe = model.txt2img
            pipe.scheduler = scheduler
            unet = pipe.unet
            sf = pipe.vae_scale_factor
            # drawn in float32 on the CPU whatever the device and precision: (1, 4, H/sf, W/sf)
            latents = torch.randn((1, unet.config.in_channels, job.height // sf, job.width // sf),
                                  generator=generator, dtype=torch.float32)
            out = pipe(height=job.height, width=job.width, latents=latents.to(unet.device, unet.dtype), **common)
    return out.images[0]
