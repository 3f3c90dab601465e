"""Saving the images of one command: one prefix, the metadata chunks, atomic writes, the log lines."""

from __future__ import annotations

import json
import math
import os

from PIL import Image

from ..fnformat import file_name
from ..request import to_command
from .log import append_log
from .metadata import Batch, png_chunks
from .naming import next_prefix
from .pngio import write_png
from .provenance import Provenance


def _free_name(outdir: str, stem: str) -> str:
    path = os.path.join(outdir, f"{stem}.png")
    n = 1
    while os.path.exists(path):  # same prefix and seed twice in one command
        path = os.path.join(outdir, f"{stem}-{n}.png")
        n += 1
    return path


def image_name(request) -> str:
    """The seed part of an image's file name: its seed, or a variation's last sub-seed."""
    return str(request.with_variations[-1][0] if request.with_variations else request.seed)


def save_images(images, batches, outdir: str, model, made: Provenance, grid_request=None, prefix: str | None = None,
                suffix: str = "") -> list[tuple[str, str]]:
    """Write each image of one command as `<prefix>.<seed>.png` (a variation: its sub-seed; --fnformat: its
    template), plus a grid
    `<prefix>.<first seed>.grid.png` when `grid_request` is given. `batches` are the command's jobs as they
    went through the model together; `made` is what they were made with; `suffix` goes before `.png` (the
    processed pictures of --save_original). Returns [(path, canonical command)]."""
    prefix = prefix or next_prefix(outdir)
    jobs = [job for batch in batches for job in batch]
    commands = [to_command(job.request) for job in jobs]
    places, start = [], 0  # (the commands of the image's batch, its index there)
    for batch in batches:
        places += [(tuple(commands[start:start + len(batch)]), index) for index in range(len(batch))]
        start += len(batch)
    saved, metas = [], []
    for image, job, command, (together, index) in zip(images, jobs, commands, places):
        request = job.request
        chunks = png_chunks(request, model_name=model.name, model_hash=model.content_hash(),
                            steps_run=job.schedule.steps_run, schedule_steps=job.schedule.steps,
                            made=made, mask_source=job.mask.source if job.mask is not None else None,
                            batch=Batch(together, index) if len(together) > 1 else None)
        metas.append({k: v for k, v in json.loads(chunks["sd-metadata"])["image"].items() if k != "batch"})
        stem = file_name(request, prefix, model.name)[: -len(".png")] if request.fnformat else \
            f"{prefix}.{image_name(request)}"
        path = _free_name(outdir, stem + suffix)
        write_png(path, image, chunks, request.png_compression)
        append_log(outdir, path, command)
        saved.append((path, command))
    if grid_request is not None:
        command = to_command(grid_request)
        chunks = png_chunks(grid_request, model_name=model.name, model_hash=model.content_hash(),
                            steps_run=jobs[0].schedule.steps_run, schedule_steps=jobs[0].schedule.steps,
                            made=made)
        meta = json.loads(chunks["sd-metadata"])
        del meta["image"]
        meta["images"] = metas  # InvokeAI's grid form: one entry per image
        chunks["sd-metadata"] = json.dumps(meta)
        path = _free_name(outdir, f"{prefix}.{jobs[0].request.seed}.grid")
        write_png(path, make_grid(images), chunks, grid_request.png_compression)
        append_log(outdir, path, command)
        saved.append((path, command))
    return saved


def make_grid(images: list[Image.Image]) -> Image.Image:
    """InvokeAI's layout: floor(sqrt(n)) rows, as many columns as needed."""
    rows = max(1, math.isqrt(len(images)))
    cols = math.ceil(len(images) / rows)
    w, h = images[0].size
    grid = Image.new("RGB", (cols * w, rows * h))
    for i, image in enumerate(images):
        grid.paste(image, ((i % cols) * w, (i // cols) * h))
    return grid
