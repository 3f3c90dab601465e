"""Outpainting, as InvokeAI 2.3 did it for -c/--outcrop, -D/--out_direction and --force_outpaint: the canvas
grows by what was asked (or the init image's transparent areas are taken as the new area); the new area is
filled with tiles cut at random from the picture (2.3's "tile" infill, seeded by the command's seed), so that
inpainting starts from the picture's own colours and textures rather than from black; the new area is
inpainted; then a band around the seam is repainted at --seam_strength for --seam_steps steps and blended
over --seam_blur pixels. Outside the mask and the seam band the picture keeps its pixels exactly."""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image, ImageFilter

SIDES = ("top", "bottom", "left", "right")
# 2.3's defaults for 512 px pictures (seam 96, blur 16, tile 32), scaled to the model's own size here
SEAM_SIZE_512, SEAM_BLUR_512, TILE_SIZE_512 = 96, 16, 32
SEAM_STRENGTH = 0.7
SEAM_STEPS = 10


@dataclass(frozen=True)
class Seams:
    """The seam switches, resolved: 2.3's values scaled from 512 px to the model's native width."""

    size: int
    blur: int
    strength: float
    steps: int
    tile: int

    @classmethod
    def of(cls, request, native_width: int) -> Seams:
        def scaled(value, at_512):
            return value if value is not None else max(1, round(at_512 * native_width / 512))

        return cls(scaled(request.seam_size, SEAM_SIZE_512), scaled(request.seam_blur, SEAM_BLUR_512),
                   request.seam_strength if request.seam_strength is not None else SEAM_STRENGTH,
                   request.seam_steps if request.seam_steps is not None else SEAM_STEPS,
                   scaled(request.tile_size, TILE_SIZE_512))


def extents(request, image_size: tuple[int, int], multiple: int) -> dict[str, int]:
    """{side: pixels} to grow: -c's sides, or -D's direction (pixels: as given, else half the picture's side
    across that direction, floored to the model's multiple)."""
    if request.outcrop is not None:
        return dict(request.outcrop)
    side, pixels = request.out_direction
    if pixels is None:
        across = image_size[1] if side in ("top", "bottom") else image_size[0]
        pixels = max(multiple, across // 2 // multiple * multiple)
    return {side: pixels}


def grow(image: Image.Image, grown: dict[str, int]) -> tuple[Image.Image, Image.Image]:
    """(the canvas with `image` placed, the mask: 255 over the new area)."""
    top, bottom, left, right = (grown.get(side, 0) for side in SIDES)
    size = (image.width + left + right, image.height + top + bottom)
    canvas = Image.new("RGB", size)
    canvas.paste(image.convert("RGB"), (left, top))
    mask = Image.new("L", size, 255)
    mask.paste(0, (left, top, left + image.width, top + image.height))
    return canvas, mask


def tile_filled(canvas: Image.Image, mask: Image.Image, tile: int, seed: int) -> Image.Image:
    """The masked area filled with `tile`-pixel squares cut at random from the unmasked area (2.3's tile
    infill); the mean colour of the unmasked area where no whole square is unmasked."""
    rng = random.Random(seed)
    filled = canvas.copy()
    keep = mask.point(lambda v: 255 if v < 128 else 0)
    sources = [(x, y) for y in range(0, canvas.height - tile + 1, tile) for x in range(0, canvas.width - tile + 1, tile)
               if keep.crop((x, y, x + tile, y + tile)).getextrema()[0] == 255]
    if not sources:
        mean = tuple(int(v) for v in _mean_colour(canvas, keep))
        filled.paste(mean, mask=mask)
        return filled
    for y in range(0, canvas.height, tile):
        for x in range(0, canvas.width, tile):
            box = (x, y, min(x + tile, canvas.width), min(y + tile, canvas.height))
            region = mask.crop(box)
            if region.getextrema()[1] == 0:
                continue
            sx, sy = rng.choice(sources)
            piece = canvas.crop((sx, sy, sx + box[2] - x, sy + box[3] - y))
            filled.paste(piece, (x, y), region)
    return filled


def _mean_colour(canvas: Image.Image, keep: Image.Image) -> tuple[float, float, float]:
    from PIL import ImageStat

    if keep.getextrema()[1] == 0:
        return (127, 127, 127)
    return tuple(ImageStat.Stat(canvas, keep).mean[:3])


def seam_band(mask: Image.Image, size: int) -> Image.Image:
    """255 within about size/2 pixels of the mask's edge, on both sides of it: where a box blur of the mask
    (radius size/2, linear time whatever the size) is neither all repainted nor all kept."""
    blurred = mask.filter(ImageFilter.BoxBlur(max(1, size // 2)))
    return blurred.point(lambda v: 255 if 0 < v < 255 else 0)


def outpainting(request) -> bool:
    return request.outcrop is not None or request.out_direction is not None or request.force_outpaint


def outpainted(job, model):
    """The job with its canvas grown (or its transparent areas taken as the new area), the new area filled
    from the picture and masked for painting."""
    from dataclasses import replace

    from ..errors import ImageError
    from .masks import Mask

    request = job.request
    seams = Seams.of(request, model.native_size[0])
    picture = job.init_image
    if request.force_outpaint and job.mask is None:
        raise ImageError("--force_outpaint: the init image has no transparent areas to paint; grow it with "
                         "-c/--outcrop SIDE N instead")
    canvas, mask, note = picture, job.mask.image if job.mask is not None else None, "its transparent areas"
    if request.outcrop is not None or request.out_direction is not None:
        grown = extents(request, picture.size, model.size_multiple)
        switch = "-c/--outcrop" if request.outcrop is not None else "-D/--out_direction"
        for side, pixels in grown.items():
            if pixels % model.size_multiple:
                lower = pixels // model.size_multiple * model.size_multiple
                raise ImageError(f"{switch} {side} {pixels}: this model's pictures grow in multiples of "
                                 f"{model.size_multiple} pixels; give {lower or model.size_multiple} or "
                                 f"{lower + model.size_multiple}")
        canvas, new = grow(picture, grown)
        if mask is not None:  # the picture's own transparent areas are painted too
            new.paste(mask, (grown.get("left", 0), grown.get("top", 0)), mask)
        mask = new
        note = ", ".join(f"{side} {pixels}" for side, pixels in grown.items())
        note = f"{picture.width}x{picture.height} -> {canvas.width}x{canvas.height} ({note})"
    filled = tile_filled(canvas, mask, seams.tile, request.seed)
    notes = job.notes + (f"outpainting: {note}; the new area filled from the picture, painted at strength "
                         f"{request.strength:g}, then the seam repainted ({seams.size} px at {seams.strength:g}, "
                         f"{seams.steps} steps, blended over {seams.blur} px)",)
    return replace(job, init_image=filled, mask=Mask(mask, "outpaint"), width=canvas.width, height=canvas.height,
                   notes=notes, warnings=tuple(w for w in job.warnings if "erased" not in w))


def seam_jobs(jobs: list, images: list, model) -> list:
    """The seam's repaint: each painted picture, a band around the painted area's edge, at --seam_strength for
    --seam_steps steps, blended over --seam_blur pixels."""
    from dataclasses import replace

    from .masks import Mask
    from .schedule import plan

    seams = Seams.of(jobs[0].request, model.native_size[0])
    band = Mask(seam_band(jobs[0].mask.image, seams.size), "seam")
    schedule = plan(jobs[0].schedule.sampler, seams.steps, seams.strength, model.sampler_config)
    return [replace(job, init_image=image, mask=band, schedule=schedule, blur=seams.blur)
            for job, image in zip(jobs, images)]
