"""--fnformat: an image's file name from a template with InvokeAI 2.3's placeholders. Nothing here imports
torch."""

from __future__ import annotations

import re
import string
from dataclasses import fields

from .errors import ParseError
from .switch_values import shown_value

NAME_PLACEHOLDERS = ("prefix", "seed", "model_id")


def file_name(request, prefix: str, model_id: str) -> str:
    """An image's file name from --fnformat (InvokeAI 2.3's placeholders: {prefix}, {seed}, {model_id} and any
    switch's long name); characters a file name cannot hold become _."""
    seed = request.with_variations[-1][0] if request.with_variations else request.seed
    values = {"prefix": prefix, "seed": seed, "model_id": model_id}
    for field in fields(request):
        values.setdefault(field.name, getattr(request, field.name))
    values["prompt"] = request.positive_prompt
    try:
        for _, field_name, _, _ in string.Formatter().parse(request.fnformat):
            if field_name is not None and field_name not in values:
                raise KeyError(field_name)
        name = request.fnformat.format(**values)
    except KeyError as exc:
        raise ParseError(f"--fnformat: no placeholder {{{exc.args[0]}}}; use {{prefix}}, {{seed}}, {{model_id}} or a "
                         "switch's long name such as {steps}") from None
    except (ValueError, IndexError, TypeError) as exc:
        raise ParseError(f"--fnformat {shown_value(request.fnformat)}: {exc}") from None
    stem = re.sub(r"[/\\\x00-\x1f:*?\"<>|]", "_", name[: -len(".png")])
    return stem[:200] + ".png"
