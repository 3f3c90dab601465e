"""AUTOMATIC1111's `parameters` text: read (prompt lines, `Negative prompt:`, the `Steps: ...` line) and
written (so other tools show this shell's settings)."""

from __future__ import annotations

import json
import re

from ...errors import ParseError
from ...prompt_extras import is_lora
from ...request import GenerationRequest
from ...samplers import BY_NAME, FROM_A1111, a1111_name, from_a1111
from ...switches import SEAMLESS_AXES
from .common import (MAX_TEXT_CHARS, Found, as_float, as_int, command_of, map_sampler, one_line, plain_brackets,
                     seamless_axes_of)

# A1111's own regex (modules/infotext_utils.py): `Key: value` or `Key: "json string"`, with keys of at most
# 80 characters: unbounded, a long line without a colon takes quadratic time (a 64 kB line: 45 s)
_PARAM = re.compile(r'\s*(\w[\w \-/]{1,79}):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_EXTRA_NETWORK = re.compile(r"<(lora|lyco|hypernet):([^>]{1,200})>")

# keys that describe the file rather than the image, and values that equal what this shell does anyway
PLAIN_A1111 = {name: ours for (name, karras), ours in FROM_A1111.items() if not karras}
_PROVENANCE = {"Version", "User", "Model hash", "VAE hash", "Hashes", "Lora hashes", "TI hashes"}
_SAME_AS_OURS = {("RNG", "CPU"), ("Schedule type", "Automatic"), ("ENSD", "0")}


def from_parameters(text: str) -> tuple[str, list[str], bool]:
    """(command, notes, True) from an AUTOMATIC1111 `parameters` chunk."""
    if len(text) > MAX_TEXT_CHARS:
        raise ParseError(f"the parameters text has {len(text)} characters; at most {MAX_TEXT_CHARS} are read")
    lines = text.replace("\r\n", "\n").split("\n")
    params = settings(lines[-1])
    if params:
        lines = lines[:-1]
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if not in_negative and line.startswith("Negative prompt:"):
            in_negative, line = True, line[len("Negative prompt:"):]
        (negative if in_negative else prompt).append(line)
    found = Found()
    found.prompt = plain_brackets(_embeddings(_networks(one_line(" ".join(prompt)), found), params), found, "prompt")
    found.negative = plain_brackets(one_line(" ".join(negative)), found, "negative prompt")
    _settings(params, found)
    return command_of(found), found.notes, True


def settings(line: str) -> dict[str, str]:
    """The `Key: value` settings of A1111's last `parameters` line (quoted values unquoted); {} when the line
    is no settings line (A1111's rule: fewer than 3 of them, and it belongs to the prompt)."""
    found = _PARAM.findall(line)
    if len(found) < 3:
        return {}
    params: dict[str, str] = {}
    for key, value in found:
        if value.startswith('"'):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        params[key.strip()] = str(value).strip()
    return params


def _networks(prompt: str, found: Found) -> str:
    """`<lora:name:0.8>` is this shell's syntax too and stays in the prompt; the other networks (LyCORIS,
    hypernetworks) and a LoRA written in a way this shell does not take are taken out and noted."""
    def keep_or_note(match: re.Match) -> str:
        if match.group(1) == "lora" and is_lora(match.group(0)):
            return match.group(0)
        found.note(f"<{match.group(1)}:{match.group(2)}>")
        return " "

    return _EXTRA_NETWORK.sub(keep_or_note, prompt)


def _embeddings(prompt: str, params: dict[str, str]) -> str:
    """A1111 names an embedding as a bare word (listed in `TI hashes`); this shell's trigger is `<name>`."""
    for name, _ in hash_pairs(params.get("TI hashes", "")):
        prompt = re.sub(rf"(?<![<\w]){re.escape(name)}(?![>\w])", f"<{name}>", prompt)
    return prompt


def hash_pairs(hashes: str) -> list[tuple[str, str]]:
    """`name: hash, name: hash` (A1111's `Lora hashes` and `TI hashes`) as pairs; malformed parts skipped."""
    pairs = []
    for part in hashes.split(",")[:32]:
        name, colon, digest = part.partition(":")
        name, digest = name.strip(), digest.strip().lower()
        if colon and re.fullmatch(r"[\w.+-]{1,80}", name) and re.fullmatch(r"[0-9a-f]{8,64}", digest):
            pairs.append((name, digest))
    return pairs


def _settings(params: dict[str, str], found: Found) -> None:
    hires = any(key.startswith("Hires") for key in params)
    for key, value in params.items():
        if key == "Steps":
            found.steps = as_int(value, "Steps")
        elif key == "CFG scale":
            found.cfg_scale = as_float(value, "CFG scale")
        elif key == "Seed":
            found.set_seed(value, "Seed")
        elif key == "Size":
            width, x, height = value.partition("x")
            if not x:
                raise ParseError(f"Size should be WxH, got {value[:40]!r}")
            found.width, found.height = as_int(width, "Size width"), as_int(height, "Size height")
        elif key == "Sampler":
            _sampler(value, params.get("Schedule type"), found)
        elif key == "Schedule type" and value == "Karras" and BY_NAME.get(found.sampler or "", None) is not None \
                and BY_NAME[found.sampler].karras:
            continue  # carried by the sampler's `_k`
        elif key == "Init image":  # written by this shell, not by A1111
            found.init_img = value
        elif key == "Denoising strength" and not hires:
            found.strength = as_float(value, "Denoising strength")
        elif key == "Variation seed" and "Variation seed strength" in params:
            found.with_variations = ((as_int(value, "Variation seed"),
                                      as_float(params["Variation seed strength"], "Variation seed strength")),)
        elif key == "Variation seed strength" and found.with_variations is not None:
            continue
        elif key == "Clip skip":
            found.clip_skip = as_int(value, "Clip skip")
        elif key == "Tiling" and value == "True":  # A1111 tiles along both axes
            found.switches.update(seamless_axes_of(True, True))
        elif key == "Model":
            found.note("Model", value)
        elif key == "Model hash" and "Model" not in params:
            found.note("Model hash", value)
        elif key in _PROVENANCE or (key, value) in _SAME_AS_OURS:
            continue
        else:
            found.note(key, value)
    if found.with_variations and (found.seed is None or "Variation seed strength" not in params):
        found.note("Variation seed", found.with_variations[0][0])
        found.with_variations = None
    if found.strength is not None and found.init_img is None:
        found.note("Denoising strength", f"{found.strength:g} (the init image is not in the file; add -I FILE "
                                         f"-f {found.strength:g})")


def _sampler(value: str, schedule: str | None, found: Found) -> None:
    """`DPM++ 2M Karras` (older A1111) or `DPM++ 2M` with `Schedule type: Karras` -> dpmpp_2m_k; a Karras
    schedule with a sampler that has no `_k` entry maps to the plain one and is noted."""
    ours = from_a1111(value, schedule) or (value if value in BY_NAME else None)  # ours: no A1111 name
    if ours is not None:
        found.sampler = ours
        return
    karras = value.endswith(" Karras")
    map_sampler(value[: -len(" Karras")] if karras else value, PLAIN_A1111, found, "Sampler")
    if karras and found.sampler is not None:
        found.note("Schedule type", "Karras")


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False) if any(c in value for c in ",:\n\"") else value


def parameters_text(request: GenerationRequest, *, model_name: str, model_hash: str, version: str,
                    used: tuple = ()) -> str:
    """The A1111 `parameters` text for a request whose seed and size are resolved; `version` is the
    `Version:` value (this shell's: its version, torch's and diffusers', the device and precision); `used`
    the LoRAs and embeddings it ran with (prompt_extras.Used), written as A1111 writes them: `<lora:name:w>`
    in the prompt, `Lora hashes` and `TI hashes`."""
    loras = " ".join(lora.a1111_form() for lora in request.extras.loras)
    prompt = request.positive_prompt
    for embedding in (u for u in used if u.kind == "embedding"):  # A1111 names an embedding as a bare word
        prompt = prompt.replace(f"<{embedding.name}>", embedding.name)
    lines = [f"{prompt} {loras}" if loras else prompt]
    if request.negative_prompt:
        lines.append(f"Negative prompt: {request.negative_prompt}")
    params = [("Steps", str(request.steps)), ("Sampler", a1111_name(request.sampler)),
              ("CFG scale", f"{request.cfg_scale:g}")]
    if request.seed is not None:
        params.append(("Seed", str(request.seed)))
    if request.width is not None and request.height is not None:
        params.append(("Size", f"{request.width}x{request.height}"))
    params += [("Model hash", model_hash[:10]), ("Model", model_name)]
    if request.clip_skip:
        params.append(("Clip skip", str(request.clip_skip)))
    if request.seamless_axes == SEAMLESS_AXES:  # A1111's tiling is both axes; one axis stays in Dream
        params.append(("Tiling", "True"))
    for kind, key in (("lora", "Lora hashes"), ("embedding", "TI hashes")):
        hashes = ", ".join(f"{u.name}: {u.short_hash}" for u in used if u.kind == kind)
        if hashes:
            params.append((key, hashes))
    variations = getattr(request, "with_variations", None)
    if variations and len(variations) == 1:  # A1111 has one sub-seed; a longer chain stays in Dream
        params += [("Variation seed", str(variations[0][0])), ("Variation seed strength", f"{variations[0][1]:g}")]
    if request.is_img2img:
        params += [("Denoising strength", f"{request.strength:g}"), ("Init image", request.init_img)]
    params += [("RNG", "CPU"), ("Version", version)]
    lines.append(", ".join(f"{key}: {_quote(value)}" for key, value in params))
    return "\n".join(lines)
