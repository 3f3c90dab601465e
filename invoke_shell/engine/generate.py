"""txt2img and img2img on a resident model. `prepare` checks and sizes a request without running the
model; `run` generates. Noise comes from a CPU generator seeded with the request's seed, so a seed gives
the same image on any device, and the same request twice gives the same pixels."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace

from PIL import Image

from ..request import GenerationRequest
from .images import choose_size, load_rgb
from .samplers import make_scheduler
from .schedule import Schedule, compensated_steps, plan

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
    strength = request.strength if image is not None else None
    steps = request.steps
    if request.compensate_steps and strength is not None:
        steps = compensated_steps(request.steps, strength)
    schedule = plan(request.sampler, steps, strength, model.txt2img.scheduler.config)
    resolved = replace(request, width=sizing.record_width, height=sizing.record_height)
    return Job(resolved, schedule, sizing.width, sizing.height, image, sizing.warnings)


MAX_BATCH_PIXELS = 4 * 512 * 512  # images of one command go through the UNet together up to this many pixels


def run(job: Job, model) -> Image.Image:
    """Generate the job's image on `model` (a LoadedModel)."""
    return run_batch([job], model)[0]


def batches(jobs: list[Job]) -> list[list[Job]]:
    """Split the jobs of one command into UNet batches that fit MAX_BATCH_PIXELS."""
    size = max(1, MAX_BATCH_PIXELS // (jobs[0].width * jobs[0].height))
    return [jobs[i:i + size] for i in range(0, len(jobs), size)]


@contextmanager
def _supplied_noise(noise):
    """Make diffusers' img2img pipeline noise the init latents with `noise` instead of drawing its own, so
    that img2img uses the seed's (and the variation chain's) CPU noise exactly as txt2img does."""
    from diffusers.pipelines.stable_diffusion import pipeline_stable_diffusion_img2img as module

    original = module.randn_tensor

    def supplied(shape, generator=None, device=None, dtype=None, layout=None):
        assert tuple(shape) == tuple(noise.shape), (shape, noise.shape)
        return noise.to(device=device, dtype=dtype)

    module.randn_tensor = supplied
    try:
        yield
    finally:
        module.randn_tensor = original


def step_completed(scheduler) -> bool:
    """Whether the model call just made finished a step: second-order samplers finish one every other call;
    PLMS's second call redoes its first step."""
    if hasattr(scheduler, "state_in_first_order"):
        return scheduler.state_in_first_order
    if type(scheduler).__name__ == "PNDMScheduler":
        return scheduler.counter != 1
    return True


@contextmanager
def _watch_start(pipe, on_start):
    """Call `on_start(latents)` with the latents the first step starts from (img2img: the noised init)."""
    if on_start is None:
        yield
        return
    original = pipe.prepare_latents

    def prepare(*args, **kwargs):
        latents = original(*args, **kwargs)
        on_start(latents)
        return latents

    pipe.prepare_latents = prepare  # an instance attribute, removed again below
    try:
        yield
    finally:
        del pipe.prepare_latents


def run_batch(jobs: list[Job], model, on_step=None, on_start=None) -> list[Image.Image]:
    """Generate several images of one command in one pass: the jobs differ only in seed and variation
    chain. Each image's noise and sampler randomness come from its own seed, so image k of a batch matches
    the same seed run alone (up to the rounding of batched matmuls).

    `on_start(latents)` sees the latents before the first step, `on_step(step, latents)` the latents after
    each step actually run (step counts from 1); latents are (N, C, H/f, W/f)."""
    import torch

    from .noise import variation_noise
    from .prompts import conditioning

    req = jobs[0].request
    pipe = model.img2img if jobs[0].init_image is not None else model.txt2img
    pipe.scheduler = make_scheduler(req.sampler, model.txt2img.scheduler.config)
    unet = pipe.unet
    sf = pipe.vae_scale_factor
    shape = (unet.config.in_channels, jobs[0].height // sf, jobs[0].width // sf)
    # (N, 4, H/f, W/f), float32 on the CPU whatever the device and precision
    noise = torch.stack([variation_noise(j.request.seed, j.request.with_variations or (), shape) for j in jobs])
    generators = [torch.Generator(NOISE_DEVICE).manual_seed(j.request.seed) for j in jobs]
    positive, negative = conditioning(model, req.positive_prompt, req.negative_prompt)
    common = dict(prompt_embeds=positive, negative_prompt_embeds=negative,
                  num_inference_steps=jobs[0].schedule.steps, guidance_scale=req.cfg_scale, generator=generators,
                  num_images_per_prompt=len(jobs))
    if on_step is not None:
        steps_done = []
        last_call = jobs[0].schedule.model_calls - 1

        def callback(pipeline, index, timestep, tensors):
            # a second-order sampler's last step has no corrector call: it ends with the run
            if step_completed(pipeline.scheduler) or index == last_call:
                steps_done.append(index)
                on_step(len(steps_done), tensors["latents"])
            return {}

        common["callback_on_step_end"] = callback
    with torch.inference_mode(), _watch_start(pipe, on_start):
        if jobs[0].init_image is not None:
            with _supplied_noise(noise):
                out = pipe(image=jobs[0].init_image, strength=req.strength, **common)
        else:
            out = pipe(height=jobs[0].height, width=jobs[0].width, latents=noise.to(unet.device, unet.dtype),
                       **common)
    return out.images
