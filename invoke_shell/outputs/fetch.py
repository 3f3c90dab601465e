"""Rebuilding a command from a PNG's metadata. Text from the file is parsed as data, never executed."""

from __future__ import annotations

import json

from ..errors import ParseError
from ..request import parse, to_command
from .pngio import read_text_chunks


def command_from_png(path: str) -> str:
    """The canonical command that made the image at `path` (from its `Dream` chunk, else `sd-metadata`)."""
    chunks = read_text_chunks(path)
    if "Dream" in chunks:
        try:
            return to_command(parse(chunks["Dream"]))
        except ParseError as exc:
            raise ParseError(f"{path}: its Dream command does not parse: {exc}") from None
    if "sd-metadata" in chunks:
        return to_command(parse(_command_from_sd_metadata(path, chunks["sd-metadata"])))
    raise ParseError(f"{path} carries no invoke metadata (no Dream or sd-metadata chunk)")


def _command_from_sd_metadata(path: str, text: str) -> str:
    from ..request import quote_prompt

    try:
        data = json.loads(text)
        image = data["image"] if "image" in data else data["images"][0]
        prompt = image["prompt"]
        if isinstance(prompt, list):
            prompt = ",".join(p["prompt"] if len(prompt) == 1 else f"{p['prompt']}:{p['weight']}" for p in prompt)
        parts = [quote_prompt(str(prompt)), f"-s {int(image['steps'])}", f"-S {int(image['seed'])}",
                 f"-C {float(image['cfg_scale'])}", f"-A {image['sampler']}"]
        for key, switch in (("width", "-W"), ("height", "-H")):
            if image.get(key):
                parts.append(f"{switch} {int(image[key])}")
        if image.get("init_img"):
            parts.append(f"-I {quote_prompt(str(image['init_img']))} -f {float(image.get('strength', 0.75))}")
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ParseError(f"{path}: its sd-metadata is not in InvokeAI's format ({type(exc).__name__}: {exc})") from None
    return " ".join(parts)
