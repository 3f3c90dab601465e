"""The seed's noise: drawn in float32 from a CPU generator, so a seed means the same noise on any device and
at any precision; variations fold other seeds' noise in by spherical interpolation (InvokeAI's scheme)."""

from __future__ import annotations

import torch


def seed_noise(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Standard normal noise for one image, (C, H/f, W/f), from `seed`."""
    return torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)


def slerp(t: float, a: torch.Tensor, b: torch.Tensor, dot_threshold: float = 0.9995) -> torch.Tensor:
    """Spherical interpolation from a (t=0) to b (t=1); linear where the two are nearly parallel."""
    a64, b64 = a.double(), b.double()
    dot = torch.sum(a64 * b64) / (a64.norm() * b64.norm())
    if abs(float(dot)) > dot_threshold:
        out = (1 - t) * a64 + t * b64
    else:
        theta = torch.acos(dot)
        sin_theta = torch.sin(theta)
        out = torch.sin((1 - t) * theta) / sin_theta * a64 + torch.sin(t * theta) / sin_theta * b64
    return out.to(torch.float32)


def variation_noise(seed: int, chain: tuple[tuple[int, float], ...], shape: tuple[int, ...]) -> torch.Tensor:
    """The seed's noise folded with each (sub-seed, weight) of the chain in turn."""
    noise = seed_noise(seed, shape)
    for sub_seed, weight in chain:
        noise = slerp(weight, noise, seed_noise(sub_seed, shape))
    return noise
