"""What each PNG carries: the `Dream` command and `sd-metadata` JSON in InvokeAI 2.x's schema, and an
AUTOMATIC1111 `parameters` text so that other tools show our settings."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from .. import __version__
from ..errors import ImageError
from ..request import GenerationRequest, to_command
from .pngio import read_text_chunks
from .provenance import Provenance
from .readers.a1111 import parameters_text

APP_ID = "invoke-shell"
MAX_SOURCE_CHARS = 4000  # an init PNG's Dream command copied into `postprocessing`


@dataclass(frozen=True)
class Batch:
    """The images that went through the model together with one image: their commands, and its index."""

    commands: tuple[str, ...]
    index: int


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def postprocessing(request: GenerationRequest) -> list[dict] | None:
    """2.3's `postprocessing` list: the tools a command ran on its init picture (!fix, or -I with them), each
    with the Dream command the init PNG records (None for a picture without one)."""
    if not request.is_img2img:
        return None
    tools = [name for name, on in (("outcrop", request.outcrop or request.out_direction),
                                   ("outpaint", request.force_outpaint), ("embiggen", request.embiggen),
                                   ("hires_fix", request.hires_fix)) if on]
    if not tools:
        return None
    try:
        source = read_text_chunks(request.init_img).get("Dream")
    except ImageError:  # not a PNG, or unreadable: the tool is still recorded
        source = None
    if source is not None and len(source) > MAX_SOURCE_CHARS:  # text from a file: kept within bounds
        source = source[:MAX_SOURCE_CHARS]
    return [{"tool": tool, "dream_command": source} for tool in tools]


def sd_metadata(request: GenerationRequest, *, model_name: str, model_hash: str, steps_run: int,
                made: Provenance, schedule_steps: int | None = None, mask_source: str | None = None,
                batch: Batch | None = None) -> dict:
    """InvokeAI 2.x's `sd-metadata` for one image, plus what InvokeAI lost or never had: the init image
    and strength (a bug dropped them there), the steps actually run, what decides the pixels beyond the
    command (precision, device, noise device; the library versions at the top level), and, for an image
    that went through the model with others, that batch (their commands and its place among them), since
    batched matrix products round differently from a lone image's."""
    provenance = made.to_json()
    versions = provenance.pop("versions")
    image = {
        "type": "img2img" if request.is_img2img else "txt2img",
        "prompt": [{"prompt": request.prompt, "weight": 1.0}],
        "seed": request.seed,
        "variations": [{"seed": seed, "weight": weight}
                       for seed, weight in getattr(request, "with_variations", None) or ()],
        "steps": request.steps,
        "cfg_scale": request.cfg_scale,
        "threshold": request.threshold or 0,
        "perlin": request.perlin or 0,
        "h_symmetry_time_pct": request.h_symmetry_time_pct,
        "v_symmetry_time_pct": request.v_symmetry_time_pct,
        "width": request.width,
        "height": request.height,
        "sampler": request.sampler,
        "seamless": request.seamless,
        "seamless_axes": list(request.seamless_axes or ()),
        "hires_fix": request.hires_fix,
        **({"hires_strength": request.hires_strength, "hires_method": request.hires_method} if request.hires_fix
           else {}),
        "postprocessing": postprocessing(request),
        **({"facetool": request.facetool, "facetool_strength": request.facetool_strength,
            **({"codeformer_fidelity": request.codeformer_fidelity} if request.codeformer_fidelity is not None
               else {})} if request.facetool_strength else {}),
        **({"upscale": list(request.upscale), "upscaler": request.upscaler} if request.upscale is not None else {}),
        "steps_run": steps_run,
        "schedule_steps": schedule_steps if schedule_steps is not None else request.steps,
        "compensate_steps": request.compensate_steps,
        "clip_skip": request.clip_skip or 1,
        **provenance,
    }
    if made.family.startswith("sdxl"):  # the micro-conditioning diffusers gives SDXL: the image size, no crop
        image["size_conditioning"] = {"original_size": [request.height, request.width],
                                      "target_size": [request.height, request.width], "crops_coords_top_left": [0, 0]}
    if batch is not None:
        image["batch"] = {"commands": list(batch.commands), "index": batch.index}
    if request.is_img2img:
        image.update(init_img=request.init_img, strength=request.strength, strength_steps=request.strength,
                     fit=request.fit, orig_hash=file_sha256(request.init_img))
    if mask_source is not None:  # inpainting: the mask file and its hash, or the init image's transparency
        image.update(type="inpaint", mask=mask_source, invert_mask=request.invert_mask)
        if request.text_mask is not None:
            image.update(text_mask=list(request.text_mask))
        if request.init_mask is not None:
            image.update(init_mask=request.init_mask, mask_hash=file_sha256(request.init_mask))
    return {"model": "stable diffusion", "model_id": model_name, "model_hash": model_hash,
            "app_id": APP_ID, "app_version": __version__, "versions": versions, "image": image}


def png_chunks(request: GenerationRequest, *, model_name: str, model_hash: str, steps_run: int,
               made: Provenance, schedule_steps: int | None = None, mask_source: str | None = None,
               batch: Batch | None = None) -> dict[str, str]:
    """The text chunks for one image: `Dream`, `sd-metadata`, and A1111's `parameters`."""
    meta = sd_metadata(request, model_name=model_name, model_hash=model_hash, steps_run=steps_run,
                       made=made, schedule_steps=schedule_steps, mask_source=mask_source, batch=batch)
    return {"Dream": to_command(request), "sd-metadata": json.dumps(meta),
            "parameters": parameters_text(request, model_name=model_name, model_hash=model_hash,
                                          version=made.version_text(), used=made.used)}
