"""Saving one generated image: a unique name, the metadata chunks, an atomic write, the log line."""

from __future__ import annotations

import os

from ..request import to_command
from .log import append_log
from .metadata import png_chunks
from .naming import next_prefix
from .pngio import write_png


def save_image(image, job, outdir: str, model) -> tuple[str, str]:
    """Write `image` for `job` (an engine Job) into `outdir`; returns (path, canonical command)."""
    from ..engine.generate import NOISE_DEVICE

    request = job.request
    command = to_command(request)
    chunks = png_chunks(request, model_name=model.name, model_hash=model.content_hash(),
                        steps_run=job.schedule.steps_run, noise_device=NOISE_DEVICE)
    path = os.path.join(outdir, f"{next_prefix(outdir)}.{request.seed}.png")
    write_png(path, image, chunks)
    append_log(outdir, path, command)
    return path, command
