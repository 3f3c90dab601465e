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


PERLIN_CELLS = 8  # InvokeAI 2.3's rand_perlin_2d(shape, (8, 8)): 8 x 8 gradient cells over the latent grid


def perlin_noise(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Perlin (gradient) noise for one image, (C, H/f, W/f), one plane per channel, from `seed` (a generator of
    its own, so the seed's Gaussian noise is the same with or without it): 8 x 8 random unit gradients on a
    grid over the plane, blended with Perlin's fade curve; about in [-1, 1]."""
    import math

    channels, height, width = shape
    generator = torch.Generator("cpu").manual_seed(seed)
    ys = torch.linspace(0, PERLIN_CELLS, height + 1, dtype=torch.float64)[:-1]
    xs = torch.linspace(0, PERLIN_CELLS, width + 1, dtype=torch.float64)[:-1]
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    y0, x0 = y.floor().long(), x.floor().long()
    fy, fx = y - y0, x - x0

    def fade(t):
        return 6 * t**5 - 15 * t**4 + 10 * t**3

    planes = []
    for _ in range(channels):
        angles = 2 * math.pi * torch.rand((PERLIN_CELLS + 1, PERLIN_CELLS + 1), generator=generator,
                                          dtype=torch.float64)
        gx, gy = torch.cos(angles), torch.sin(angles)

        def dot(dy, dx):
            return gx[y0 + dy, x0 + dx] * (fx - dx) + gy[y0 + dy, x0 + dx] * (fy - dy)

        top = torch.lerp(dot(0, 0), dot(0, 1), fade(fx))
        bottom = torch.lerp(dot(1, 0), dot(1, 1), fade(fx))
        planes.append(math.sqrt(2) * torch.lerp(top, bottom, fade(fy)))
    return torch.stack(planes).to(torch.float32)


def with_perlin(noise: torch.Tensor, seed: int, amount: float | None) -> torch.Tensor:
    """InvokeAI 2.3's --perlin: (1 - amount) x the seed's noise + amount x Perlin noise."""
    if not amount:
        return noise
    return (1 - amount) * noise + amount * perlin_noise(seed, tuple(noise.shape))
