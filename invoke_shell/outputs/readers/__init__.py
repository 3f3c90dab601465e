"""Readers for the PNG metadata families: InvokeAI 2.x and this shell (`Dream`, `sd-metadata`),
InvokeAI 3+ (`invokeai_metadata`), AUTOMATIC1111 (`parameters`), ComfyUI (`prompt`).

Each reader takes the chunk's text and returns (canonical command, notes, foreign): the command is
`to_command(parse(text))`, the notes name the settings that have no equivalent here. Readers raise
ParseError with one line; they never execute anything from the file."""

from __future__ import annotations

from . import a1111, comfyui, invokeai

# (chunk, what the error messages call it, family label, reader), tried in this order
FAMILIES = (
    ("Dream", "Dream command", "InvokeAI 2.x", invokeai.from_dream),
    ("sd-metadata", "sd-metadata", "InvokeAI 2.x", invokeai.from_sd_metadata),
    ("invokeai_metadata", "invokeai_metadata", "InvokeAI 3+", invokeai.from_invokeai3),
    ("parameters", "AUTOMATIC1111 parameters", "AUTOMATIC1111", a1111.from_parameters),
    ("prompt", "ComfyUI prompt graph", "ComfyUI", comfyui.from_prompt),
)
