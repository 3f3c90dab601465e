"""--embiggen SCALE [UPSCALE_STRENGTH] [OVERLAP], as InvokeAI 2.3 made it: the init picture enlarged SCALE
times (by the upscaler model, blended with Lanczos by UPSCALE_STRENGTH; Lanczos alone when none is
configured), then refined tile by tile by img2img at the model's size (or -W x -H), the tiles overlapping by
OVERLAP of a tile and blended there with linear ramps, so the model adds detail at its own scale everywhere.
Tiles are numbered from 1, left to right, top to bottom (2.3's numbering); --embiggen_tiles N ... refines only
those, leaving the rest of the enlarged picture as it is (alone, without --embiggen: the picture at its own
size, 2.3's way to redo tiles of a picture embiggen made)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from ..errors import ImageError


UPSCALE_STRENGTH = 0.75  # 2.3's defaults for the second and third numbers
OVERLAP = 0.25
TILE_STRENGTH = 0.4      # 2.3's --embiggen_strength default


@dataclass(frozen=True)
class Tile:
    number: int                      # from 1, left to right, top to bottom
    box: tuple[int, int, int, int]   # (left, top, right, bottom) in the enlarged picture
    shared: tuple[bool, bool, bool, bool]  # whether its left, top, right, bottom edge overlaps another tile


def settings(request) -> tuple[float, float, float]:
    """(scale, upscale strength, overlap) from --embiggen's one to three numbers."""
    numbers = tuple(request.embiggen) + (UPSCALE_STRENGTH, OVERLAP)[len(request.embiggen) - 1:]
    return numbers[0], numbers[1], numbers[2]


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    """Where tiles start along one side: evenly spread from 0 to length - tile, overlapping by at least
    `overlap`, on the 8-pixel grid."""
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    step = (length - tile) / (count - 1)
    return [min(length - tile, round(i * step / 8) * 8) for i in range(count)]


def tiles(size: tuple[int, int], tile: tuple[int, int], overlap: float) -> list[Tile]:
    width, height = size
    xs = _starts(width, min(tile[0], width), max(8, int(tile[0] * overlap)))
    ys = _starts(height, min(tile[1], height), max(8, int(tile[1] * overlap)))
    tw, th = min(tile[0], width), min(tile[1], height)
    found = []
    for row, y in enumerate(ys):
        for col, x in enumerate(xs):
            found.append(Tile(len(found) + 1, (x, y, x + tw, y + th),
                              (col > 0, row > 0, col < len(xs) - 1, row < len(ys) - 1)))
    return found


def enlarged_size(size: tuple[int, int], scale: float, multiple: int) -> tuple[int, int]:
    """A picture's size SCALE times, floored to the model's multiple."""
    return tuple(max(multiple, int(side * scale) // multiple * multiple) for side in size)


def enlarged(picture: Image.Image, scale: float, multiple: int) -> Image.Image:
    return picture.resize(enlarged_size(picture.size, scale, multiple), Image.Resampling.LANCZOS)


def tile_size(request, model) -> tuple[int, int]:
    """-W x -H (else the model's size), floored to the model's multiple, at least two multiples a side."""
    multiple = model.size_multiple
    sides = (request.width or model.native_size[0], request.height or model.native_size[1])
    return tuple(max(2 * multiple, side // multiple * multiple) for side in sides)


def layout(job, model) -> tuple[tuple[int, int], list[Tile]]:
    """(the enlarged picture's size, all its tiles), without enlarging it."""
    scale, _, overlap = settings(job.request)
    size = enlarged_size(job.init_image.size, scale, model.size_multiple)
    return size, tiles(size, tile_size(job.request, model), overlap)


def checked(job, model):
    """The job, once its --embiggen_tiles are known to be tiles of its enlarged picture."""
    count = len(layout(job, model)[1])
    missing = [n for n in job.request.embiggen_tiles or () if n > count]
    if missing:
        raise ImageError(f"--embiggen_tiles {missing[0]}: the enlarged picture has {count} tiles, numbered 1 "
                         f"to {count} left to right, top to bottom")
    return job


def tile_jobs(job, model, chosen: tuple[int, ...] | None, upscaler=None) -> tuple[Image.Image, list[Tile], list]:
    """(the enlarged picture, its tiles to refine, one img2img Job per tile, on the job's schedule: its
    strength is --embiggen_strength, else -f); `upscaler`: the model that enlarges it, else Lanczos."""
    size, laid = layout(job, model)
    if upscaler is not None and size != job.init_image.size:
        from .upscale import enlarge

        big = enlarge(job.init_image, size, upscaler, settings(job.request)[1])
    else:
        big = job.init_image.resize(size, Image.Resampling.LANCZOS)
    if chosen:
        laid = [t for t in laid if t.number in chosen]
    jobs = [replace(job, init_image=big.crop(t.box), width=t.box[2] - t.box[0], height=t.box[3] - t.box[1],
                    mask=None) for t in laid]
    return big, laid, jobs


def ramp(tile: Tile, overlap_x: int, overlap_y: int) -> np.ndarray:
    """(H, W) weights of a refined tile over what lies under it: 1 inside, falling linearly to 0 across the
    overlap along each edge it shares with another tile."""
    left, top, right, bottom = tile.box
    w, h = right - left, bottom - top
    wx, wy = np.ones(w), np.ones(h)
    sides = ((tile.shared[0], wx, overlap_x, False), (tile.shared[2], wx, overlap_x, True),
             (tile.shared[1], wy, overlap_y, False), (tile.shared[3], wy, overlap_y, True))
    for shared, weights, overlap, reverse in sides:
        if shared and overlap:
            edge = np.linspace(0, 1, overlap + 2)[1:-1]
            if reverse:
                weights[-overlap:] = np.minimum(weights[-overlap:], edge[::-1])
            else:
                weights[:overlap] = np.minimum(weights[:overlap], edge)
    return wy[:, None] * wx[None, :]


def assembled(big: Image.Image, laid: list[Tile], refined: list[Image.Image], overlap: float) -> Image.Image:
    """The enlarged picture with the refined tiles laid over it in order, blended across the overlaps."""
    out = np.asarray(big.convert("RGB"), dtype=np.float64).copy()
    for tile, image in zip(laid, refined):
        left, top, right, bottom = tile.box
        weights = ramp(tile, int((right - left) * overlap), int((bottom - top) * overlap))[..., None]
        under = out[top:bottom, left:right]
        out[top:bottom, left:right] = under * (1 - weights) + np.asarray(image, dtype=np.float64) * weights
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))


def describe(job, model, count: int, chosen: tuple[int, ...] | None, upscaler=None) -> str:
    request = job.request
    scale, upscale_strength, overlap = settings(request)
    (width, height), laid = layout(job, model)
    tile = laid[0].box
    which = f"tiles {', '.join(map(str, chosen))} of {len(laid)}" if chosen else f"{len(laid)} tiles"
    how = (f"{upscaler.describe()} blended with Lanczos at {upscale_strength:g}" if upscaler is not None and
           (width, height) != job.init_image.size else "Lanczos" if scale <= 1 else
           f"Lanczos (--upscaler lanczos: no upscaler model, so the upscale strength {upscale_strength:g} has "
           "nothing to blend)" if request.upscaler == "lanczos" else
           f"Lanczos (no upscaler configured; the upscale strength {upscale_strength:g} waits for one)")
    return (f"embiggen: {job.init_image.width}x{job.init_image.height} x{scale:g} -> {width}x{height} by {how}, "
            f"{which} "
            f"of {tile[2] - tile[0]}x{tile[3] - tile[1]} overlapping {int((tile[2] - tile[0]) * overlap)} px, each "
            f"{job.schedule.steps_run} of {job.schedule.steps} steps at strength {job.schedule.strength:g}"
            + (f" ({count} pictures)" if count > 1 else ""))
