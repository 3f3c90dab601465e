"""-U/--upscale SCALE [STRENGTH]: a picture enlarged by an upscaler model (models/tools.py), tile by tile so
that a large picture fits in memory, brought to exactly SCALE times its size, and blended with a plain Lanczos
enlargement by STRENGTH as InvokeAI 2.3 blended (1: the model's picture alone)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import ParseError

TILE = 256     # input pixels per tile side (2.3's --esrgan_bg_tile was 400, for a 4x model in float16)
OVERLAP = 16   # pixels of context each tile reads beyond its edges, so that no seam shows
STRENGTH = 0.75  # 2.3's default for -U's second number


def to_tensor(image: Image.Image, device: str = "cpu"):
    import torch

    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).to(device)


def to_image(tensor) -> Image.Image:
    array = tensor.squeeze(0).permute(1, 2, 0).float().clamp(0, 1).cpu().numpy()
    return Image.fromarray((array * 255.0 + 0.5).astype(np.uint8))


def _fitted(run, piece, requirements):
    """`run` on a piece padded (by repeating its edges) to the sizes the architecture needs, cropped back."""
    import torch.nn.functional as F

    height, width = piece.shape[-2:]
    multiple, minimum = max(1, requirements.multiple_of), max(1, requirements.minimum)
    h, w = max(height, minimum), max(width, minimum)
    h, w = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    if requirements.square:
        h = w = max(h, w)
    if (h, w) != (height, width):
        piece = F.pad(piece, (0, w - width, 0, h - height), mode="replicate")
    out = run(piece)
    scale = out.shape[-1] // w
    return out[..., : height * scale, : width * scale]


def run_tiled(run, tensor, scale: int, requirements, tile: int = TILE, overlap: int = OVERLAP):
    """The model's output for the whole picture, computed tile by tile: each tile reads `overlap` pixels
    around it and only its own part of the output is kept."""
    import torch

    _, channels, height, width = tensor.shape
    if height <= tile and width <= tile:
        return _fitted(run, tensor, requirements)
    out = torch.zeros((1, channels, height * scale, width * scale), dtype=tensor.dtype, device=tensor.device)
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            y0, x0 = max(top - overlap, 0), max(left - overlap, 0)
            y1, x1 = min(bottom + overlap, height), min(right + overlap, width)
            piece = _fitted(run, tensor[..., y0:y1, x0:x1], requirements)
            dy, dx = (top - y0) * scale, (left - x0) * scale
            out[..., top * scale: bottom * scale, left * scale: right * scale] = \
                piece[..., dy: dy + (bottom - top) * scale, dx: dx + (right - left) * scale]
    return out


def check_scale(scale: float, tool) -> None:
    if scale > tool.scale:
        raise ParseError(f"-U/--upscale {scale:g}: {tool.describe()} enlarges {tool.scale} times at most; "
                         f"give -U {tool.scale} or less, or another upscaler (--upscaler NAME)")


def upscale(image: Image.Image, tool, scale: float, strength: float = STRENGTH, tile: int = TILE) -> Image.Image:
    """`image` enlarged `scale` times by the upscaler `tool`, blended with Lanczos by `strength`."""
    import torch

    check_scale(scale, tool)
    descriptor = tool.model
    with torch.inference_mode():
        big = run_tiled(descriptor, to_tensor(image, tool.device), tool.scale, descriptor.size_requirements, tile)
    result = to_image(big)
    target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if result.size != target:
        result = result.resize(target, Image.Resampling.LANCZOS)
    if strength < 1:
        result = Image.blend(image.convert("RGB").resize(target, Image.Resampling.LANCZOS), result, strength)
    return result


def enlarge(image: Image.Image, size: tuple[int, int], tool, strength: float) -> Image.Image:
    """`image` brought to `size` by the upscaler (at the whole factor that covers it, as far as the model
    goes; 2.3's embiggen used ESRGAN so), blended with Lanczos by `strength`, then Lanczos to the exact size."""
    import math

    factor = min(tool.scale, max(1, math.ceil(max(size[0] / image.width, size[1] / image.height))))
    big = upscale(image, tool, factor, strength)
    return big if big.size == size else big.resize(size, Image.Resampling.LANCZOS)
