"""--fnformat: an image's file name from a template with InvokeAI 2.3's placeholders. Nothing here imports
torch."""

from __future__ import annotations

import re
import string
from dataclasses import fields

from .errors import ParseError
from .switch_values import shown_value

NAME_PLACEHOLDERS = ("prefix", "seed", "model_id")
MAX_STEM_BYTES = 200  # file systems allow 255 bytes a name; room for "-N" and ".png"
_SPEC = re.compile(r"(0?[1-9][0-9]?d?)?")  # {seed:010d}, {steps:3}: widths only, below 100


def file_name(request, prefix: str, model_id: str) -> str:
    """An image's file name from --fnformat (InvokeAI 2.3's placeholders: {prefix}, {seed}, {model_id} and any
    switch's long name); characters a file name cannot hold become _."""
    seed = request.with_variations[-1][0] if request.with_variations else request.seed
    values = {"prefix": prefix, "seed": seed if seed is not None else 0, "model_id": model_id}  # 0: checked unseeded
    for field in fields(request):
        values.setdefault(field.name, getattr(request, field.name))
    values["prompt"] = request.positive_prompt
    try:
        for _, field_name, spec, conversion in string.Formatter().parse(request.fnformat):
            if field_name is not None and field_name not in values:
                raise KeyError(field_name)
            if field_name is not None and (conversion or not _SPEC.fullmatch(spec or "")):
                shown = field_name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
                raise ParseError(f"--fnformat: {{{shown}}}: a placeholder takes at most a width of 1 to 2 "
                                 "digits (with 0 to pad), as {seed:010d}")
        name = request.fnformat.format(**values)
    except KeyError as exc:
        raise ParseError(f"--fnformat: no placeholder {{{exc.args[0]}}}; use {{prefix}}, {{seed}}, {{model_id}} or a "
                         "switch's long name such as {steps}") from None
    except (ValueError, IndexError, TypeError) as exc:
        raise ParseError(f"--fnformat {shown_value(request.fnformat)}: {exc}") from None
    stem = re.sub(r"[/\\\x00-\x1f:*?\"<>|]", "_", name[: -len(".png")])
    return stem.encode("utf-8")[:MAX_STEM_BYTES].decode("utf-8", errors="ignore") + ".png"
