"""The post-processing models in a command: -tm/--text_mask's mask before the model runs, and after it
-G/--facetool_strength's face restoration then -U/--upscale's enlargement (InvokeAI 2.3's order), on each
picture. The models come from the session's tool cache (models/tools.py); what they were (name, sha256)
goes into the PNG beside the LoRAs and embeddings."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from .errors import ParseError
from .prompt_extras import Used
from .request import GenerationRequest

SUFFIX = ".postprocessed"  # the processed picture's name with --save_original (2.3's)
PLAIN = "lanczos"          # --upscaler's name for --embiggen's enlargement without a model


def enlarges(request: GenerationRequest) -> bool:
    """Whether --embiggen enlarges the picture (and so needs an upscaler, or Lanczos)."""
    return request.embiggen is not None and request.embiggen[0] > 1


@dataclass(frozen=True)
class Chain:
    """The post-processing models a command runs after the model, loaded and checked before it runs."""

    faces: object = None      # -G's face restorer (models.tools.Tool)
    upscaler: object = None   # -U's upscaler, and --embiggen's (when one is configured)

    def named(self, request: GenerationRequest) -> GenerationRequest:
        """The request with -ft and --upscaler naming the stanzas that run (defaults filled in; `lanczos` for
        an --embiggen that enlarges without a model), so that the PNG records which."""
        changes = {}
        if self.upscaler is not None:
            changes["upscaler"] = self.upscaler.name
        elif enlarges(request):
            changes["upscaler"] = PLAIN
        if self.faces is not None:
            changes["facetool"] = self.faces.name
        return replace(request, **changes) if changes else request


def chain(request: GenerationRequest, cache) -> Chain:
    """Load (or take from the cache) the models -G and -U need and check the request against them, before
    anything runs: a one-line error naming the stanza to add when one is missing. -tm's model is looked up
    too (it runs when the init picture is prepared)."""
    from .engine import upscale
    from .models import tools

    faces = cache.get("facetool", request.facetool) if request.facetool_strength else None
    if faces is not None and request.codeformer_fidelity is not None and faces.architecture != "CodeFormer":
        raise ParseError(f"-cf/--codeformer_fidelity is CodeFormer's; {faces.describe()} is not CodeFormer: "
                         "drop -cf or name a CodeFormer stanza with -ft")
    upscaler = None
    if request.upscale is not None:
        upscaler = cache.get("upscaler", request.upscaler)
        upscale.check_scale(request.upscale[0], upscaler)
    elif enlarges(request) and request.upscaler != PLAIN and (
            request.upscaler is not None or cache.manager.registry.of_format("upscaler")):
        upscaler = cache.get("upscaler", request.upscaler)  # embiggen enlarges with it, as 2.3 did with ESRGAN
    if request.text_mask is not None:
        tools.find(cache.manager.registry, "text_mask")
    return Chain(faces, upscaler)


def used(tool) -> Used:
    return Used(tool.entry.format, tool.name, None, tool.sha256(), tool.sha256()[:12])


def text_masker(request: GenerationRequest, cache, say: Callable[[str], None], found: list):
    """-tm's masker for engine.prepare: CLIPSeg on the init picture, once per command (the pictures of a
    command share their init picture); `found` gets the model used. None without -tm."""
    if request.text_mask is None:
        return None
    from .engine import textmask
    from .engine.masks import Mask

    made: dict[bytes, Mask] = {}

    def masker(picture) -> Mask:
        key = picture.tobytes()
        if key not in made:
            tool = cache.get("text_mask")
            if not found:
                found.append(used(tool))
            text, threshold = request.text_mask
            segmented = textmask.segment(tool, picture, text)
            share = segmented.share(threshold)
            if 0 < share < 1:  # all or nothing: the mask's check says what to do
                say(textmask.said(tool, text, share, threshold))
            made[key] = Mask(segmented.selected(threshold), "text")
        return made[key]

    return masker


def postprocess(request: GenerationRequest, images: list, models: Chain, say: Callable[[str], None],
                seeds: list[int] | None = None) -> tuple[list, tuple[Used, ...]]:
    """(the pictures with their faces restored and then enlarged, as the request asks, the models used);
    the pictures as they were when it asks for neither."""
    enlarger = models.upscaler if request.upscale is not None else None
    if models.faces is None and enlarger is None:
        return images, ()
    from .engine import faces, upscale

    steps = []
    fidelity = request.codeformer_fidelity
    if models.faces is not None:
        steps.append(f"faces by {models.faces.describe()} at strength {request.facetool_strength:g}" +
                     (f", fidelity {faces.FIDELITY if fidelity is None else fidelity:g}"
                      if models.faces.architecture == "CodeFormer" else ""))
    if enlarger is not None:
        steps.append(f"enlarged x{request.upscale[0]:g} by {enlarger.describe()} at strength {request.upscale[1]:g}")
    say("postprocessing: " + "; then ".join(steps))
    done = []
    for index, image in enumerate(images):
        if models.faces is not None:
            image, count = faces.restore(image, models.faces, request.facetool_strength, fidelity)
            if count == 0:
                which = f"seed {seeds[index]}" if seeds else f"image {index + 1}"
                say(f"-G/--facetool_strength: no face found in the picture of {which}; left as it was")
        if enlarger is not None:
            image = upscale.upscale(image, enlarger, *request.upscale)
        done.append(image)
    return done, tuple(used(tool) for tool in (models.faces, enlarger) if tool is not None)


def without_postprocessing(request: GenerationRequest) -> GenerationRequest:
    """The command of the picture before -U and -G (what --save_original keeps, and what it records)."""
    return replace(request, upscale=None, upscaler=None, facetool_strength=None, facetool=None,
                   codeformer_fidelity=None, save_original=False)
