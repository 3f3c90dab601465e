"""Which device the models run on: --device, or the best there is (CUDA, then MPS, then the CPU)."""

from __future__ import annotations

from ..errors import ModelError


def pick_device(requested: str) -> str:
    import torch

    if requested != "auto":
        if requested == "cuda" and not torch.cuda.is_available():
            raise ModelError("--device cuda: no CUDA device is available")
        if requested == "mps" and not torch.backends.mps.is_available():
            raise ModelError("--device mps: MPS is not available")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"
