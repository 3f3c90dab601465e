"""InvokeAI's metadata: 2.x `Dream` command lines and `sd-metadata` JSON (also what this shell writes),
and 3.x+ `invokeai_metadata` JSON."""

from __future__ import annotations

import re
import shlex
from dataclasses import replace

from ...errors import ParseError
from ...prompt_extras import is_lora
from ...request import HIRES_STRENGTH, parse, quote_prompt, split_prompt, to_command
from ...samplers import FROM_INVOKEAI3
from ...switch_values import UPSCALE_STRENGTH
from ...switches import BY_SPELLING, HIRES_METHODS, SAMPLERS, SEAMLESS_AXES, UNSUPPORTED
from .common import (MAX_TEXT_CHARS, Found, as_float, as_int, as_text, clip, command_of, load_json_object,
                     map_sampler, plain_brackets, seamless_axes_of)

# ` # model_id=stable-diffusion-1.5` (and a grid's ` # [seed, ...]`) end InvokeAI 2.x Dream lines
_TRAILER = re.compile(r"\s#\s*(?:model_id=|\[)[^\"']*$")
TRAILER_CHARS = 1000  # the trailer is looked for in the last this many characters (a grid's 64 seeds fit): over
# the whole line the search takes quadratic time
_MODEL_ID = re.compile(r"model_id=([^\s#]+)")
_LOOKS_LIKE_SWITCH = re.compile(r"--?[A-Za-z]")
_SHORT = sorted((s for s in list(BY_SPELLING) + list(UNSUPPORTED) if not s.startswith("--")), key=len, reverse=True)

# InvokeAI 2.x samplers are ours; these two were accepted there and ran the model's default scheduler
INVOKEAI2_SAMPLERS = {name: name for name in SAMPLERS}


def from_dream(line: str) -> tuple[str, list[str], bool]:
    """(command, notes, foreign) from a Dream line. Our parser decides; an InvokeAI 2.x line (unquoted
    prompt, ` # model_id=` trailer, switches we lack) is read leniently: those switches become notes."""
    if len(line) > MAX_TEXT_CHARS:
        raise ParseError(f"the Dream command has {len(line)} characters; at most {MAX_TEXT_CHARS} are read")
    notes: list[str] = []
    trailer = _TRAILER.search(line, max(0, len(line) - TRAILER_CHARS))
    if trailer:
        model = _MODEL_ID.search(trailer.group())
        if model:
            notes.append(f"model: {clip(model.group(1))}")
        line = line[: trailer.start()]
    try:
        return _without_outdir(parse(line), notes), notes, bool(notes)
    except ParseError as exc:
        first = exc
    try:
        return _lenient(line, notes), notes, True
    except ParseError:
        raise first from None


def _without_outdir(request, notes: list[str]) -> str:
    """The canonical command, less any -o/--outdir: a file never chooses where images are written."""
    if request.outdir is not None:
        notes.append(f"-o {clip(request.outdir)} (output folders are not taken from files)")
        request = replace(request, outdir=None)
    return to_command(request)


def _switch_of(token: str) -> tuple[str, bool]:
    """(spelling, supported) for a token that looks like a switch; ParseError for one InvokeAI never had."""
    name = token.partition("=")[0]
    if token.startswith("--"):
        if name in BY_SPELLING or name in UNSUPPORTED:
            return name, name in BY_SPELLING
    else:
        if "=" in token and name in BY_SPELLING:
            return name, True
        for prefix in _SHORT:
            if token.startswith(prefix):
                return prefix, prefix in BY_SPELLING
    raise ParseError(f"unknown switch {token!r}")


def _lenient(line: str, notes: list[str]) -> str:
    prompt, tokens = split_prompt(line)
    groups: list[list[str]] = []
    for token in tokens:
        if _LOOKS_LIKE_SWITCH.match(token):
            groups.append([token])
        elif groups:
            groups[-1].append(token)
        else:
            raise ParseError(f"unexpected {token!r} after the prompt")
    kept: list[str] = []
    for group in groups:
        spelling, supported = _switch_of(group[0])
        if not supported:
            notes.append(clip(" ".join(group)))
            continue
        if BY_SPELLING[spelling].dest == "sampler":
            value = group[0][len(spelling):].lstrip("=") or (group[1] if len(group) > 1 else "")
            if value.lower() not in SAMPLERS:
                notes.append(f"{spelling} {clip(value[:40])} (no such sampler here)")
                continue
        kept.extend(group)
    return _without_outdir(parse(" ".join([quote_prompt(prompt)] + [shlex.quote(t) for t in kept])), notes)


def from_sd_metadata(text: str) -> tuple[str, list[str], bool]:
    """(command, notes, foreign) from InvokeAI 2.x `sd-metadata` (ours adds init_img, strength, fit)."""
    data = load_json_object(text, "sd-metadata")
    found = Found()
    ours = data.get("app_id") == "invoke-shell"
    image = data.get("image")
    if image is None and isinstance(data.get("images"), list) and data["images"]:
        image = data["images"][0]
        if len(data["images"]) > 1:
            found.note(f"grid of {len(data['images'])} images (the first is rebuilt)")
    if not isinstance(image, dict):
        raise ParseError("sd-metadata has no image object")
    prompt = image.get("prompt")
    if isinstance(prompt, list):
        if not 1 <= len(prompt) <= 64 or not all(isinstance(p, dict) for p in prompt):
            raise ParseError(f"sd-metadata prompt should be a list of {{prompt, weight}}, got {len(prompt)} items")
        texts = [as_text(p.get("prompt"), "sd-metadata prompt") for p in prompt]
        if len(texts) == 1:
            prompt = texts[0]
        else:
            weights = [as_float(p.get("weight", 1.0), "sd-metadata prompt weight") for p in prompt]
            prompt = ",".join(f"{t}:{w:g}" for t, w in zip(texts, weights))
            found.note("weighted sub-prompts (kept as text)")
    found.prompt = as_text(prompt, "sd-metadata prompt")
    for key, convert in (("steps", as_int), ("cfg_scale", as_float), ("width", as_int), ("height", as_int)):
        if image.get(key) is not None:
            setattr(found, key, convert(image[key], f"sd-metadata {key}"))
    if image.get("seed") is not None:
        found.set_seed(image["seed"], "sd-metadata seed")
    if image.get("clip_skip") is not None:  # this shell's (A1111's count)
        found.clip_skip = as_int(image["clip_skip"], "sd-metadata clip_skip")
    if image.get("sampler") is not None:
        map_sampler(image["sampler"], INVOKEAI2_SAMPLERS, found, "sampler")
    if image.get("init_img"):
        found.init_img = as_text(image["init_img"], "sd-metadata init_img")
        strength = image.get("strength", image.get("strength_steps"))
        if strength is not None:
            found.strength = as_float(strength, "sd-metadata strength")
        found.fit = image.get("fit") is True
        if image.get("init_mask"):
            found.init_mask = as_text(image["init_mask"], "sd-metadata init_mask")
            found.invert_mask = image.get("invert_mask") is True
    elif image.get("type") == "img2img":
        strength = image.get("strength_steps", image.get("strength"))
        found.note("init image", f"not stored by InvokeAI 2.x (strength {clip_number(strength)})")
    variations = image.get("variations")
    if isinstance(variations, list) and variations:
        if len(variations) > 64 or not all(isinstance(v, dict) for v in variations):
            raise ParseError("sd-metadata variations should be a list of {seed, weight}")
        chain = tuple((as_int(v.get("seed"), "variation seed"), as_float(v.get("weight"), "variation weight"))
                      for v in variations)
        if found.seed is not None:
            found.with_variations = chain
        else:
            found.note("variations", ",".join(f"{seed}:{weight:g}" for seed, weight in chain))
    postprocessing = image.get("postprocessing")
    if isinstance(postprocessing, list) and postprocessing:
        found.note("postprocessing", " ".join(str(p.get("tool")) for p in postprocessing[:8] if isinstance(p, dict)))
    if image.get("init_mask") and not image.get("init_img"):
        found.note("init_mask", image["init_mask"])
    _image_tools(image, found)
    _postprocessing(image, found)
    if image.get("inpaint_replace") not in (None, 0, 0.0, False, "", []):
        found.note("inpaint_replace", image["inpaint_replace"])
    model = data.get("model_id") or data.get("model_weights")
    if model and not ours:
        found.note("model", model)
    return command_of(found), found.notes, not ours


def _image_tools(image: dict, found: Found) -> None:
    """--seamless (2.3 lost it to a bug; this shell records it with its axes), --threshold, --perlin, the
    symmetry switches, and --hires_fix (2.3 recorded the flag; its strength was -f's default)."""
    if image.get("seamless") is True:
        axes = image.get("seamless_axes")
        axes = axes if isinstance(axes, list) and axes else list(SEAMLESS_AXES)
        found.switches.update(seamless_axes_of("x" in axes, "y" in axes))
    for key in ("threshold", "perlin", "h_symmetry_time_pct", "v_symmetry_time_pct"):  # 0 or None: off
        if image.get(key) not in (None, 0, 0.0):
            found.switches[key] = as_float(image[key], f"sd-metadata {key}")
    if image.get("hires_fix") is True:
        strength = image.get("hires_strength", HIRES_STRENGTH)
        method = image.get("hires_method")
        found.switches.update(hires_fix=True, hires_strength=as_float(strength, "sd-metadata hires_strength"),
                              hires_method=method if method in HIRES_METHODS else HIRES_METHODS[0])


def _postprocessing(image: dict, found: Found) -> None:
    """2.3's -G (facetool, facetool_strength; codeformer_fidelity was not stored: its default then) and -U
    (upscale: [scale, strength]); the models run are the stanzas of those names here."""
    strength = image.get("facetool_strength")
    if strength not in (None, 0, 0.0, False):
        found.switches["facetool_strength"] = as_float(strength, "sd-metadata facetool_strength")
        tool = image.get("facetool")
        if isinstance(tool, str) and re.fullmatch(r"[\w.+:/-]{1,200}", tool):
            found.switches["facetool"] = tool
        if image.get("codeformer_fidelity") is not None:
            found.switches["codeformer_fidelity"] = as_float(image["codeformer_fidelity"], "sd-metadata "
                                                                                           "codeformer_fidelity")
    upscale = image.get("upscale")
    if isinstance(upscale, list) and 1 <= len(upscale) <= 2:
        numbers = [as_float(v, "sd-metadata upscale") for v in upscale]
        found.switches["upscale"] = (numbers[0], numbers[1] if len(numbers) == 2 else UPSCALE_STRENGTH)
        if isinstance(image.get("upscaler"), str) and re.fullmatch(r"[\w.+:/-]{1,200}", image["upscaler"]):
            found.switches["upscaler"] = image["upscaler"]
    elif upscale not in (None, [], False):
        found.note("upscale", upscale)


def clip_number(value: object) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "unknown"


def from_invokeai3(text: str) -> tuple[str, list[str], bool]:
    """(command, notes, True) from InvokeAI 3+ `invokeai_metadata` (CoreMetadata JSON)."""
    data = load_json_object(text, "invokeai_metadata")
    found = Found()
    found.prompt = plain_brackets(as_text(data.get("positive_prompt", ""), "positive_prompt"), found, "prompt")
    found.negative = plain_brackets(as_text(data.get("negative_prompt") or "", "negative_prompt"),
                                    found, "negative prompt")
    for key, convert in (("steps", as_int), ("cfg_scale", as_float), ("width", as_int), ("height", as_int)):
        if data.get(key) is not None:
            setattr(found, key, convert(data[key], key))
    if data.get("seed") is not None:
        found.set_seed(data["seed"], "seed")
    scheduler = data.get("scheduler")
    if scheduler is not None:
        name = as_text(scheduler, "scheduler")
        base = name if name in FROM_INVOKEAI3 or not name.endswith("_k") else name[:-2]
        map_sampler(base, FROM_INVOKEAI3, found, "scheduler")  # a `_k` we lack: the plain one, noted
        if found.sampler is not None and base != name:
            found.note("scheduler", f"{name} (Karras sigmas)")
    init = data.get("init_image")
    if isinstance(init, dict):
        init = init.get("image_name")
    if init:
        found.init_img = as_text(init, "init_image")
        if data.get("strength") is not None:
            found.strength = as_float(data["strength"], "strength")
    mode = data.get("generation_mode")
    if isinstance(mode, str) and ("inpaint" in mode or "outpaint" in mode):
        found.note("generation_mode", mode)
    model = data.get("model")
    if isinstance(model, dict):
        model = model.get("name") or model.get("model_name")
    if model:
        found.note("model", model)
    loras = data.get("loras")
    if isinstance(loras, list) and loras:
        _loras(loras[:8], found)
    if data.get("rand_device") not in (None, "cpu"):
        found.note("rand_device", data["rand_device"])
    if data.get("clip_skip") not in (None, 0):  # InvokeAI 3 counts the layers skipped: 1 is A1111's 2
        found.clip_skip = as_int(data["clip_skip"], "clip_skip") + 1
    found.switches.update(seamless_axes_of(data.get("seamless_x"), data.get("seamless_y")))
    for key in ("vae", "cfg_rescale_multiplier", "hrf_enabled",
                "refiner_model", "positive_style_prompt", "negative_style_prompt", "controlnets", "ipAdapters",
                "t2iAdapters", "guidance"):
        if data.get(key) not in (None, 0, 0.0, False, "", [], {}):
            value = data[key]
            if isinstance(value, list):
                value = f"{len(value)}"
            elif isinstance(value, dict):
                value = value.get("name") or value.get("model_name") or "set"
            found.note(key, value)
    return command_of(found), found.notes, True


def _loras(loras: list, found: Found) -> None:
    """InvokeAI 3's `loras` list ({"model" or "lora": {"name"/"model_name"}, "weight"}) as withLora() in the
    prompt; one this shell cannot write (a bad name or weight) is noted."""
    for lora in loras:
        if not isinstance(lora, dict):
            continue
        inner = lora.get("model") or lora.get("lora") or {}
        name = inner.get("name") or inner.get("model_name") if isinstance(inner, dict) else inner
        weight = lora.get("weight", 1)
        written = f"withLora({name},{weight})" if isinstance(weight, (int, float)) else ""
        if isinstance(name, str) and is_lora(written):
            found.prompt = f"{found.prompt} {written}".strip()
        else:
            found.note("lora", f"{name} {weight}")
