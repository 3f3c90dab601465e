"""One generation command, from the parsed request to the PNGs, in numbered stages as diffusers numbers
the stages of its pipelines. Each stage is a function of its inputs; the session hands in what it
remembers (the previous command's images), how to get the model and how to speak. The shell's loop and the
batch runner (through the same loop) and `!verify` (stages 3, 5 and 6: `prepare` and `render`) run this code."""

from __future__ import annotations

import os
import secrets
import sys
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Callable

from .errors import ParseError
from .request import GenerationRequest
from .seeds import image_requests
from .switches import SEED_LIMIT


@dataclass(frozen=True)
class Output:
    """One image a command made: where it went and its seed (for `-S -1` and `-I -1`)."""

    path: str
    seed: int


@dataclass(frozen=True)
class Made:
    outputs: tuple[Output, ...]   # the images, in order (not the grid)
    saved: tuple[tuple[str, str], ...]  # (path, canonical command) of every file written, grid included


def generate(parsed: GenerationRequest, session) -> Made:
    """Run one command. `session` has `previous` (the last command's Outputs), `outdir`, `model(precision)`,
    `library` (the LoRA and embedding folders) and `say(line)`."""
    from .engine import adapters
    from .engine import generate as engine
    from .paths import writable_folder
    from .postprocess import chain, postprocess, text_masker

    # 1. Resolve back-references, bare names of pictures in the output folder, the seed, and the
    # post-processing models' names
    request = resolve(parsed, session.previous, parsed.outdir or session.outdir)
    writable_folder(request.outdir or session.outdir)  # before any work: nothing is computed for nothing
    post = chain(request, session.manager.tools)  # -G's and -U's models, loaded and checked before any work
    request = post.named(request)
    # 2. The model, in the command's precision, with the LoRAs and embeddings the prompt names (and no other)
    model = session.model(request.precision)
    used = adapters.apply(model, request.extras, session.library)
    refiner = refiner_for(request, model, session.manager)
    # 3. Prepare: each image's request, sized, with its schedule and mask (-tm: CLIPSeg's); nothing runs yet
    mask_model: list = []  # -tm's CLIPSeg, once it has run
    jobs = prepare(request, parsed.seed is not None, model, text_masker(request, session.manager.tools,
                                                                          session.say, mask_model))
    # 4. Say what will happen
    announce(request, jobs, model, session.say)
    outdir = request.outdir or session.outdir
    recorder = run_recorder(request, jobs, model)
    # 5-6. Denoise and decode, and the image tools' passes; the colours matched to --init_color
    images, jobs, first = render(request, jobs, model, session.say, refiner, recorder, post.upscaler)
    batches = engine.batches(jobs)
    # 6. Postprocess: faces restored (-G), enlarged (-U); the grid
    originals = images if request.save_original else None
    images, tools_used = postprocess(request, images, post, session.say,
                                     [job.request.seed for job in jobs])
    used = tuple(used) + tuple(mask_model)  # what made the picture before -G and -U (all --save_original keeps)
    grid = grid_request(request, jobs)
    # 7. Save the PNGs (and the run's previews and strips)
    prefix, kept, saved = save(images, batches, model, grid, outdir, (used, tools_used), first, originals)
    for path, command in kept + saved:
        session.say(f"{path}: {command}")
    if recorder is not None:
        from .outputs.runview import strip_title

        title = strip_title(jobs[0].schedule, jobs[0].mode)
        write_run_views(recorder, request, images, saved, (outdir, prefix, title), session.say)
    return Made(tuple(Output(path, job.request.seed) for (path, _), job in zip(saved, jobs)), tuple(kept + saved))


def refiner_for(request: GenerationRequest, model, manager):
    """The SDXL refiner `--refiner` names, resident beside the base model; None without --refiner."""
    if request.refiner is None:
        return None
    if model.family.key != "sdxl":
        raise ParseError(f"--refiner works with an SDXL base model; {model.name!r} is {model.family.description}")
    refiner = manager.companion(request.refiner, request.precision)
    if refiner.family.base != "sdxl":
        raise ParseError(f"--refiner {request.refiner}: that is {refiner.family.description}, not an SDXL model")
    return refiner


def resolve(request: GenerationRequest, previous: list[Output], outdir: str | None = None) -> GenerationRequest:
    """Turn back-references (-S -1, -I -1) into the previous command's seed and image, a picture's bare name
    not found here into the one in `outdir` (2.3's rule), and draw a random seed when none is given."""
    from .paths import in_outdir

    seed = request.seed
    if request.seed_reference is not None:
        seed = _previous(previous, request.seed_reference, "-S/--seed").seed
    elif seed is None:
        seed = secrets.randbelow(SEED_LIMIT)
    init_img = request.init_img
    if request.init_img_reference is not None:
        init_img = _previous(previous, request.init_img_reference, "-I/--init_img").path
    elif init_img is not None:
        init_img = in_outdir(init_img, outdir)
    found = {name: in_outdir(getattr(request, name), outdir) for name in ("init_mask", "init_color")
             if getattr(request, name) is not None}
    return replace(request, seed=seed, init_img=init_img, **found)


def _previous(previous: list[Output], reference: int, switch: str) -> Output:
    if not previous:
        raise ParseError(f"{switch} {reference}: there is no previous image in this session yet")
    if -reference > len(previous):
        raise ParseError(f"{switch} {reference}: the previous command made {len(previous)} image(s)")
    return previous[reference]


def prepare(request: GenerationRequest, seeded: bool, model, masker=None) -> list:
    """The engine's Job for each image of the command (seeds by the rule in seeds.py); `masker`: -tm's."""
    from .engine import generate as engine

    return [engine.prepare(r, model, masker) for r in image_requests(request, seeded)]


def announce(request: GenerationRequest, jobs: list, model, say: Callable[[str], None]) -> None:
    """Notes and warnings about the input, the tokens (-t), and how many steps an img2img run takes."""
    for note in jobs[0].notes:
        say(note)
    for warning in jobs[0].warnings:
        say(f"warning: {warning}")
    if request.log_tokenization:
        show_tokens(model, request, say)
    schedule = jobs[0].schedule
    if request.refiner is not None:
        say(f"refiner: {request.refiner} runs the schedule from {request.refiner_start:g} on")
    if schedule.strength is not None:
        note = (f" (--compensate_steps: a {schedule.steps}-step schedule runs the {request.steps} asked for)"
                if request.compensate_steps else "")
        say(f"{jobs[0].mode}: strength {schedule.strength:.2f} x {schedule.steps} steps -> "
            f"{schedule.steps_run} of {schedule.steps} steps from the init image{note}")


def show_tokens(model, request: GenerationRequest, say: Callable[[str], None]) -> None:
    from .engine.prompts import MAX_TOKENS, tokenization

    for label, text in (("prompt", request.positive_prompt), ("negative", request.negative_prompt)):
        if not text:
            continue
        tokens = tokenization(model, text)
        say(f"{label} tokens ({len(tokens.kept)} of {MAX_TOKENS}): {' '.join(tokens.kept)}")
        if tokens.dropped:
            say(f"{label} tokens dropped past {MAX_TOKENS} ({len(tokens.dropped)}): {' '.join(tokens.dropped)}")


def run_recorder(request: GenerationRequest, jobs: list, model):
    """A recorder of step previews when --save_intermediates or --strip asks for them, else None."""
    if not (request.save_intermediates or request.strip):
        return None
    from .engine.preview import preview, projection
    from .outputs.runview import RunRecorder
    from .outputs.save import image_name

    projection(model)  # fitted (once per model) before the run: fitting runs the model itself
    return RunRecorder(lambda latents: preview(model, latents), [image_name(j.request) for j in jobs],
                       jobs[0].schedule.steps_run, request.save_intermediates, keep_all=request.strip)


def render(request: GenerationRequest, jobs: list, model, say: Callable[[str], None], refiner=None, recorder=None,
           upscaler=None) -> tuple[list, list, tuple | None]:
    """Stages 5 and 6 for the prepared jobs, as a command and `!verify` run them: denoise and decode batch by
    batch (--hires_fix: its first pass at the model's size, then the refinement; --embiggen: tile by tile;
    outpainting: then the seam), and match the colours to --init_color; `upscaler`: --embiggen's. (the images,
    the jobs as last run, --hires_fix's first pass (width, height, steps) or None)."""
    from .engine import generate as engine
    from .engine.images import open_image

    reference = open_image(request.init_color, "--init_color") if request.init_color is not None else None
    jobs, first = hires_fix(request, jobs, model, say)
    if request.embiggen is not None:
        images = embiggen(jobs, model, say, upscaler)
    else:
        images = denoise(engine.batches(jobs), model, recorder, refiner)
        images = repaint_seams(jobs, images, model)
    return color_matched(images, reference), jobs, first


def hires_fix(request: GenerationRequest, jobs: list, model, say: Callable[[str], None]) -> tuple[list, tuple | None]:
    """--hires_fix: run the first pass at the model's size; (the refining jobs, (width, height, steps) of the
    first pass). Without it, or when the size asked for needs one pass: (the jobs, None)."""
    if not request.hires_fix or request.is_img2img:  # with -I the picture was the first pass (prepare)
        return jobs, None
    from .engine import generate as engine
    from .engine import hires

    if model.is_inpainting:
        raise ParseError(f"--hires_fix runs on ordinary models; {model.name!r} is an inpainting model")
    passes = hires.passes(jobs, model)
    if passes is None:
        width, height = model.native_size
        say(f"hires fix: {jobs[0].width}x{jobs[0].height} is not larger than the model's {width}x{height}: "
            "one pass makes it")
        return jobs, None
    say(passes.describe(request, hires.refining_schedule(jobs, model)))
    made = denoise(engine.batches(passes.first), model, latent=request.hires_method == "latent")
    first = passes.first[0]
    return hires.second_jobs(jobs, made, model), (first.width, first.height, first.schedule.steps)


def embiggen(jobs: list, model, say: Callable[[str], None], upscaler=None) -> list:
    """--embiggen: each picture enlarged (by `upscaler`, else Lanczos), then refined tile by tile and the tiles
    blended."""
    from .engine import embiggen as tiled
    from .engine import generate as engine

    chosen = jobs[0].request.embiggen_tiles
    say(tiled.describe(jobs[0], model, len(jobs), chosen, upscaler))
    images = []
    for job in jobs:
        big, laid, tile_jobs = tiled.tile_jobs(job, model, chosen, upscaler)
        refined = denoise(engine.batches(tile_jobs), model)
        images.append(tiled.assembled(big, laid, refined, tiled.settings(job.request)[2]))
    return images


def repaint_seams(jobs: list, images: list, model) -> list:
    """Outpainting's second pass: the band around the painted area repainted and blended; else the images."""
    from .engine import generate as engine
    from .engine import outpaint

    if not outpaint.outpainting(jobs[0].request):
        return images
    return denoise(engine.batches(outpaint.seam_jobs(jobs, images, model)), model)


def denoise(batches: list[list], model, recorder=None, refiner=None, latent: bool = False) -> list:
    """The images of the command's UNet batches, in order, with a progress bar on a terminal (`refiner`: the
    SDXL refiner for the end of each schedule; `latent`: each image's latents rather than its picture)."""
    from .engine import generate as engine

    images = []
    for batch in batches:
        with progress_bar(batch[0].schedule, len(batch)) as advance:
            def on_step(step, latents):
                advance()
                if recorder is not None:
                    recorder.on_step(step, latents)

            if recorder is not None:
                recorder.offset = len(images)
            images.extend(engine.run_batch(batch, model, on_step=on_step,
                                           on_start=recorder.on_start if recorder else None, refiner=refiner,
                                           latent=latent))
    return images


def color_matched(images: list, reference) -> list:
    """--init_color: each image's colours matched to the reference picture's; else the images."""
    if reference is None:
        return images
    from .engine.colors import match_colors

    return [match_colors(image, reference) for image in images]


def grid_request(request: GenerationRequest, jobs: list) -> GenerationRequest | None:
    """With -g and several images, the request the grid PNG records (the whole command, first seed)."""
    if not request.grid or len(jobs) < 2:
        return None
    return replace(jobs[0].request, iterations=len(jobs), grid=True, with_variations=request.with_variations,
                   variation_amount=request.variation_amount)


def save(images: list, batches: list[list], model, grid: GenerationRequest | None, outdir: str,
         used: tuple[list, tuple] = ((), ()), first: tuple[int, int, int] | None = None, originals: list | None = None
         ) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]]]:
    """(the command's prefix, [(path, canonical command)] of the pictures from before -U/-G that
    --save_original keeps, the same of the PNGs of the command); `used`: (the LoRA and embedding files the
    images were made with, the post-processing models that ran after); `first`: --hires_fix's first pass
    (width, height, steps)."""
    from .engine import generate as engine
    from .outputs.naming import next_prefix
    from .outputs.save import save_images
    from .postprocess import SUFFIX, without_postprocessing

    prefix = next_prefix(outdir)  # taken once the images exist: a cancelled run leaves no gap
    drawn, tools = used
    made = replace(engine.provenance(model), used=tuple(drawn) + tuple(tools), hires=first)
    kept = []
    if originals is not None:
        plain = [[replace(job, request=without_postprocessing(job.request)) for job in batch] for batch in batches]
        kept = save_images(originals, plain, outdir, model, replace(made, used=tuple(drawn)), prefix=prefix)
    saved = save_images(images, batches, outdir, model, made, grid, prefix=prefix,
                        suffix=SUFFIX if originals is not None else "")
    return prefix, kept, saved


def write_run_views(recorder, request: GenerationRequest, images: list, saved, where: tuple[str, str, str],
                    say: Callable[[str], None]) -> None:
    """The step previews (--save_intermediates) and strips (--strip) of a saved run; `where` is (outdir,
    prefix, the strips' title)."""
    from .outputs.pngio import write_png

    outdir, prefix, title = where
    if request.save_intermediates:
        paths = recorder.write_intermediates(outdir, prefix)
        say(f"{len(paths)} step previews in {os.path.join(outdir, 'intermediates', prefix)}")
    if request.strip:
        for index, ((path, command), image) in enumerate(zip(saved, images)):
            strip_path = path[: -len(".png")] + ".strip.png"
            write_png(strip_path, recorder.strip(index, image, title), {"Dream": command})
            say(f"strip: {strip_path}")


@contextmanager
def progress_bar(schedule, images: int):
    """A progress bar on stderr for the steps actually run, with it/s and time left; nothing unless stderr
    is a terminal. It is drawn only while the model runs, never while the prompt is shown."""
    if not sys.stderr.isatty():
        yield lambda: None
        return
    from tqdm import tqdm

    label = f"{schedule.steps_run}/{schedule.steps} steps" + (f" x {images} images" if images > 1 else "")
    bar = tqdm(total=schedule.steps_run, desc=label, unit="step", leave=False, file=sys.stderr,
               dynamic_ncols=True)
    try:
        yield bar.update
    finally:
        bar.close()
