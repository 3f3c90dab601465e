"""--hires_fix, as InvokeAI 2.3 made it: a picture larger than the model's native size is first made at about
the native area with the aspect asked for (where the model composes well: no doubled heads), then enlarged to
-W x -H and refined by img2img at --hires_strength, so that only the last int(steps * strength) steps run at
the large size. The enlarging is `latent` (the first pass's latents, bilinear, as 2.3 did) or `lanczos` (the
decoded picture, Lanczos, then encoded again)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .schedule import plan


@dataclass(frozen=True)
class Passes:
    """The two passes of a hires-fix command: the small jobs, and the size they are enlarged to."""

    first: list            # Jobs at the first-pass size, txt2img
    width: int             # the final size
    height: int

    def describe(self, request, second_schedule) -> str:
        first = self.first[0]
        return (f"hires fix: {first.width}x{first.height} first ({first.schedule.steps} steps), then "
                f"{request.hires_method} x{self.width / first.width:.2f} to {self.width}x{self.height} and "
                f"{second_schedule.steps_run} of {second_schedule.steps} steps at strength "
                f"{request.hires_strength:g}")


def first_size(width: int, height: int, native: tuple[int, int], multiple: int) -> tuple[int, int] | None:
    """The first pass's size: the native area with the aspect of width x height, each side rounded to the
    model's multiple; None when width x height is not larger than that (one pass makes it)."""
    area = native[0] * native[1]
    if width * height <= area:
        return None
    scale = math.sqrt(area / (width * height))
    w, h = (max(multiple, round(side * scale / multiple) * multiple) for side in (width, height))
    if w >= width and h >= height:
        return None
    return min(w, width), min(h, height)


def passes(jobs: list, model) -> Passes | None:
    """The first-pass jobs of a --hires_fix command (None when the size asked for needs one pass)."""
    job = jobs[0]
    size = first_size(job.width, job.height, model.native_size, model.size_multiple)
    if size is None:
        return None
    schedule = plan(job.schedule.sampler, job.schedule.steps, None, model.sampler_config)
    first = [replace(j, width=size[0], height=size[1], schedule=schedule) for j in jobs]
    return Passes(first, job.width, job.height)


def second_jobs(jobs: list, made: list, model) -> list:
    """The refining jobs: each image's first pass (its latents, or its picture) enlarged to the final size, run
    as img2img at --hires_strength."""
    schedule = refining_schedule(jobs, model)
    method, factor = jobs[0].request.hires_method, model.vae_scale_factor
    return [replace(job, schedule=schedule, **_enlarged(method, first, job.width, job.height, factor))
            for job, first in zip(jobs, made)]


def refining_schedule(jobs: list, model):
    """The second pass's schedule: the last int(steps * --hires_strength) steps of the command's."""
    return plan(jobs[0].schedule.sampler, jobs[0].schedule.steps, jobs[0].request.hires_strength,
                model.sampler_config)


def _enlarged(method: str, first, width: int, height: int, factor: int) -> dict:
    """{"init_latents": (1, C, H/f, W/f)} from latents (C, h, w), or {"init_image": picture} from a picture."""
    if method == "latent":
        import torch.nn.functional as F

        return {"init_latents": F.interpolate(first.unsqueeze(0), size=(height // factor, width // factor),
                                              mode="bilinear", align_corners=False)}
    from PIL import Image

    return {"init_image": first.resize((width, height), Image.Resampling.LANCZOS)}
