"""txt2img and img2img on a resident model. `prepare` checks and sizes a request without running the
model; `run` generates. Noise comes from a CPU generator seeded with the request's seed, so a seed gives
the same image on any device, and the same request twice gives the same pixels."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace

from PIL import Image

from ..errors import ImageError
from ..request import GenerationRequest
from ..samplers import with_karras_max
from . import masks, outpaint
from .images import choose_size, flatten, open_image
from .masks import Mask
from .samplers import make_scheduler
from .schedule import Schedule, compensated_steps, plan
from .seamless import seamless

NOISE_DEVICE = "cpu"


def provenance(model):
    """What the images `model` makes now depend on beyond their commands, as the PNGs record it."""
    from ..outputs.provenance import Provenance

    return replace(Provenance.here(model.pick.dtype, model.device, NOISE_DEVICE), family=model.family.key)


@dataclass(frozen=True)
class Job:
    """A request ready to run: seed and size resolved, the init image (and mask) read and sized."""

    request: GenerationRequest       # as the canonical command records it
    schedule: Schedule
    width: int                       # the working size
    height: int
    init_image: Image.Image | None   # RGB at the working size
    warnings: tuple[str, ...]
    mask: Mask | None = None         # inpainting: 255 = repaint, at the working size
    notes: tuple[str, ...] = ()      # what the user should know, not a problem
    init_latents: object = None      # --hires_fix's second pass: (1, C, H/f, W/f) latents to start from
    blur: int | None = None          # the paste-back edge's blur radius (None: from the size)

    @property
    def mode(self) -> str:
        if self.mask is not None:
            return "inpaint"
        return "img2img" if self.init_image is not None or self.init_latents is not None else "txt2img"


def prepare(request: GenerationRequest, model, masker=None) -> Job:
    """Resolve size, mask and schedule. `request.seed` must be a real seed and `init_img` a real path;
    `masker(picture)` gives -tm/--text_mask's Mask of the init picture."""
    assert request.seed is not None and request.seed >= 0, "resolve the seed before preparing"
    if model.family.key == "sdxl-refiner" and not request.is_img2img:
        raise ImageError(f"model {model.name!r} is an SDXL refiner: it refines a picture; give -I/--init_img, or "
                         f"use it as --refiner {model.name} with an SDXL base model")
    image = open_image(request.init_img) if request.is_img2img else None
    mask, notes, warnings = _mask(request, image, masker)
    embiggen = request.embiggen is not None  # its -W x -H are the tiles' size: the picture keeps its own
    sizing = choose_size(None if embiggen else request.width, None if embiggen else request.height, request.fit,
                         model.native_size, model.size_multiple, image.size if image is not None else None)
    if image is not None and request.hires_fix:  # the picture is the first pass, enlarged to -W x -H
        notes += (_enlarging(image.size, (sizing.width, sizing.height)),)
    if image is not None:
        image = flatten(image) if mask is None else image.convert("RGB")  # inpainting keeps the colours
        if image.size != (sizing.width, sizing.height):
            image = image.resize((sizing.width, sizing.height), Image.Resampling.LANCZOS)
    if mask is not None:
        mask = masks.check(mask.sized((sizing.width, sizing.height)), request.invert_mask)
    strength = request.strength if image is not None else None
    if embiggen and request.embiggen_strength is not None:
        strength = request.embiggen_strength
    steps = request.steps
    if request.compensate_steps and strength is not None:
        steps = compensated_steps(request.steps, strength)
    sampler = with_karras_max(request.sampler, steps, request.karras_max)
    if sampler != request.sampler:
        notes += (f"--karras_max {request.karras_max}: {steps} steps, fewer than {request.karras_max}: "
                  f"{request.sampler} runs with Karras sigmas ({sampler})",)
    schedule = plan(sampler, steps, strength, model.sampler_config)
    resolved = request if embiggen else replace(request, width=sizing.record_width, height=sizing.record_height)
    job = Job(resolved, schedule, sizing.width, sizing.height, image, sizing.warnings + warnings, mask, notes)
    if outpaint.outpainting(request):
        return outpaint.outpainted(job, model)
    if embiggen:
        from . import embiggen as tiled

        return tiled.checked(job, model)
    return job


def _enlarging(picture: tuple[int, int], size: tuple[int, int]) -> str:
    """The note of --hires_fix on an init picture; ImageError when -W x -H does not enlarge it."""
    if size[0] <= picture[0] and size[1] <= picture[1]:
        raise ImageError(f"--hires_fix with -I/--init_img enlarges the picture: give -W/-H larger than its "
                         f"{picture[0]}x{picture[1]}")
    return (f"hires fix: the init picture {picture[0]}x{picture[1]} is the first pass, enlarged by lanczos to "
            f"{size[0]}x{size[1]}, then refined")


def _mask(request: GenerationRequest, image: Image.Image | None, masker=None
          ) -> tuple[Mask | None, tuple[str, ...], tuple[str, ...]]:
    """The inpainting mask of a request: -M's file (the init image's size unless --fit), or -tm's (from
    `masker`), else the init image's transparency; with the notes and warnings to show."""
    if image is None:
        return None, (), ()
    if request.text_mask is not None:
        if masker is None:
            raise ImageError("-tm/--text_mask: no text-mask model was handed to the engine")
        return masker(image), (), ()
    if request.init_mask is not None:
        mask = masks.read_mask(request.init_mask)
        if mask.image.size != image.size and not request.fit:
            raise ImageError(f"{masks.MASK_SWITCH}: the mask is {mask.image.width}x{mask.image.height} but the "
                             f"init image is {image.width}x{image.height}; give a mask of the same size, or "
                             "--fit to fit both into -W x -H")
        return mask, (), ()  # sized once, to the working size, by prepare
    alpha = masks.from_alpha(image)
    if alpha is None:
        if request.invert_mask:
            raise ImageError("--invert_mask: there is no mask to invert: give -M/--init_mask, or an init "
                             "image with transparent areas")
        return None, (), ()
    notes = ("the init image has transparent areas: inpainting them (its transparency is the mask)",)
    warnings = ()
    if masks.erased_under(image, alpha):
        warnings = ("the colours under the transparent areas were erased (one flat colour): the repainted "
                    "area starts from that colour; a strength near 1 ignores it",)
    return masks.Mask(alpha, "alpha"), notes, warnings


MAX_BATCH_PIXELS = 4 * 512 * 512  # images of one command go through the UNet together up to this many pixels


def run(job: Job, model) -> Image.Image:
    """Generate the job's image on `model` (a LoadedModel)."""
    return run_batch([job], model)[0]


def batches(jobs: list[Job]) -> list[list[Job]]:
    """Split the jobs of one command into UNet batches that fit MAX_BATCH_PIXELS. Jobs with an init picture go
    together only when they share it and its mask (the inpainting pipeline takes one of each for a batch):
    outpainting's tile-filled canvases, its seam passes and embiggen's tiles differ from job to job."""
    size = max(1, MAX_BATCH_PIXELS // (jobs[0].width * jobs[0].height))
    out: list[list[Job]] = []
    for job in jobs:
        last = out[-1] if out else None
        if last is not None and len(last) < size and _same_inputs(last[0], job):
            last.append(job)
        else:
            out.append([job])
    return out


def _same_inputs(a: Job, b: Job) -> bool:
    """Whether two jobs can share a UNet batch: no init picture (txt2img, hires fix's latents), or the same
    picture and mask."""
    if a.init_image is None or b.init_image is None:
        return a.init_image is None and b.init_image is None and (a.mask is None) == (b.mask is None)
    if (a.mask is None) != (b.mask is None) or a.blur != b.blur:
        return False
    same_mask = a.mask is None or a.mask.image.tobytes() == b.mask.image.tobytes()
    return same_mask and a.init_image.tobytes() == b.init_image.tobytes()


@contextmanager
def _supplied_noise(pipe, noise):
    """Make a diffusers img2img or inpainting pipeline start from `noise` (added to the init latents, or
    alone at full strength) instead of drawing its own, so that they use the seed's (and the variation
    chain's) CPU noise exactly as txt2img does."""
    import sys

    module = sys.modules[type(pipe).__module__]
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
        on_start(latents[0] if isinstance(latents, tuple) else latents)  # inpainting returns (latents, noise, ...)
        return latents

    pipe.prepare_latents = prepare  # an instance attribute, removed again below
    try:
        yield
    finally:
        del pipe.prepare_latents


def run_batch(jobs: list[Job], model, on_step=None, on_start=None, refiner=None, latent: bool = False) -> list:
    """Generate several images of one command in one pass: the jobs differ only in seed and variation
    chain. Each image's noise and sampler randomness come from its own seed, so image k of a batch matches
    the same seed run alone (up to the rounding of batched matmuls).

    `on_start(latents)` sees the latents before the first step, `on_step(step, latents)` the latents after
    each step actually run (step counts from 1); latents are (N, C, H/f, W/f). `refiner` (an SDXL refiner,
    with --refiner) takes the latents over at --refiner_start of the schedule (diffusers' denoising_end and
    denoising_start). `latent`: the latents (C, H/f, W/f) of each image instead of its picture."""
    import torch

    from . import swap as swaps
    from .effects import Effects
    from .noise import variation_noise, with_perlin
    from .prompts import encode

    job = jobs[0]
    req = job.request
    pipe = pipeline_for(job, model)
    pipe.scheduler = make_scheduler(job.schedule.sampler, model.sampler_config)
    if hasattr(pipe.scheduler, "noise_sampler_seed"):  # DPM++ SDE: each image's Brownian noise from its seed
        pipe.scheduler.noise_sampler_seed = [j.request.seed for j in jobs]
    sf = pipe.vae_scale_factor
    shape = (pipe.vae.config.latent_channels, job.height // sf, job.width // sf)
    # (N, 4, H/f, W/f), float32 on the CPU whatever the device and precision
    noise = torch.stack([with_perlin(variation_noise(j.request.seed, j.request.with_variations or (), shape),
                                     j.request.seed, req.perlin) for j in jobs])
    generators = [torch.Generator(NOISE_DEVICE).manual_seed(j.request.seed) for j in jobs]
    # without guidance (-C 1) diffusers never reads the negative embeddings: don't compute them
    guided = req.cfg_scale > 1
    encoded = encode(model, req.positive_prompt, req.negative_prompt if guided else None, req.clip_skip,
                     req.skip_normalize)
    positive = encoded.positive
    swap = swaps.plan(encoded.swap, positive.shape[1], guided) if encoded.swap is not None else None
    common = dict(**encoded.pipeline_kwargs(), num_inference_steps=job.schedule.steps, guidance_scale=req.cfg_scale,
                  generator=generators, num_images_per_prompt=len(jobs))
    if latent:
        common["output_type"] = "latent"
    effects = Effects(req, [j.request.seed for j in jobs])
    if on_step is not None or effects.active:
        steps_done = []
        last_call = job.schedule.model_calls - 1

        def callback(pipeline, index, timestep, tensors):
            # a second-order sampler's last step has no corrector call: it ends with the run
            if not (step_completed(pipeline.scheduler) or index == last_call):
                return {}
            steps_done.append(index)
            latents = tensors["latents"]
            if effects.active:
                latents = effects.after_step(len(steps_done), job.schedule.steps_run, latents)
            if on_step is not None:
                on_step(len(steps_done), latents)
            return {"latents": latents} if effects.active else {}

        common["callback_on_step_end"] = callback
    tiled = [pipe.unet, pipe.vae] + ([refiner.img2img.unet, refiner.img2img.vae] if refiner is not None else [])
    with torch.inference_mode(), _watch_start(pipe, on_start), swaps.swapping(pipe.unet, swap, job.schedule.model_calls), \
            seamless(tiled, req.seamless_axes):
        if pipe is model.inpaint:
            # an inpainting (9-channel) model runs every command here: txt2img repaints a blank picture
            blank = job.init_image is None
            image = Image.new("RGB", (job.width, job.height), (127, 127, 127)) if blank else job.init_image
            mask = job.mask.image if job.mask is not None else Image.new("L", image.size, 255)
            with _supplied_noise(pipe, noise):
                out = pipe(image=image, mask_image=mask, strength=1.0 if blank else job.schedule.strength,
                           height=job.height, width=job.width, **common)
        elif job.mode == "img2img":
            with _supplied_noise(pipe, noise):
                out = pipe(image=start_latents(pipe, jobs, generators, positive.dtype),
                           strength=job.schedule.strength, **common)
        elif refiner is not None:
            latents = pipe(height=job.height, width=job.width, latents=noise.to(pipe.unet.device, pipe.unet.dtype),
                           denoising_end=req.refiner_start, output_type="latent", **common).images
            out = refine(refiner, latents, job, generators, common.get("callback_on_step_end"))
        else:
            out = pipe(height=job.height, width=job.width, latents=noise.to(pipe.unet.device, pipe.unet.dtype),
                       **common)
    images = out.images
    if latent:
        return list(images)
    if job.mask is not None:
        images = [paste_back(pipe, job, image) for image in images]
    return images


def refine(refiner, latents, job: Job, generators, callback=None):
    """The end of the schedule on an SDXL refiner: from --refiner_start on, the latents as the base left them
    (no noise added), the prompt encoded by the refiner's own text encoder."""
    from .prompts import encode

    req = job.request
    pipe = refiner.img2img
    pipe.scheduler = make_scheduler(job.schedule.sampler, refiner.sampler_config)
    encoded = encode(refiner, req.positive_prompt, req.negative_prompt if req.cfg_scale > 1 else None,
                     None, req.skip_normalize)
    return pipe(image=latents, denoising_start=req.refiner_start, num_inference_steps=job.schedule.steps,
                guidance_scale=req.cfg_scale, generator=generators, num_images_per_prompt=len(latents),
                callback_on_step_end=callback, **encoded.pipeline_kwargs())


def start_latents(pipe, jobs: list[Job], generators, dtype):
    """The scaled latents each image's img2img starts from, (N, C, H/f, W/f): its init latents (hires fix's
    second pass), or its init image encoded (once for all the images that share it) and sampled with the
    image's generator. diffusers would encode the image once per image of the batch; this consumes each
    generator as diffusers does."""
    import torch

    if jobs[0].init_latents is not None:
        return torch.cat([job.init_latents for job in jobs]).to(pipe._execution_device, dtype)
    posteriors = {}
    samples = []
    for job, generator in zip(jobs, generators):
        if id(job.init_image) not in posteriors:
            pixels = pipe.image_processor.preprocess(job.init_image).to(pipe._execution_device, dtype)  # (1, 3, H, W)
            posteriors[id(job.init_image)] = pipe.vae.encode(pixels).latent_dist
        samples.append(posteriors[id(job.init_image)].sample(generator=generator))
    return pipe.vae.config.scaling_factor * torch.cat(samples)


def pipeline_for(job: Job, model):
    """Masked commands, and every command on an inpainting model, run the inpainting pipeline (which blends
    re-noised init latents outside the mask at each step for an ordinary 4-channel model)."""
    if job.mask is not None or model.is_inpainting:
        return model.inpaint
    return model.img2img if job.mode == "img2img" else model.txt2img


def mask_blur(width: int, height: int) -> int:
    """Gaussian blur radius of the paste-back edge: 1 px at 64, 4 px at 512."""
    return max(1, round(min(width, height) / 128))


def paste_back(pipe, job: Job, image: Image.Image) -> Image.Image:
    """Keep the init image's pixels outside the mask, through a slightly blurred edge so no seam shows.
    Pixels further than about 3 blur radii from the mask keep the original exactly."""
    radius = job.blur if job.blur is not None else mask_blur(job.width, job.height)
    edge = pipe.mask_processor.blur(job.mask.image, blur_factor=radius)
    return pipe.image_processor.apply_overlay(edge, job.init_image, image)
