"""InvokeAI 2.3's changes to the latents between steps: --threshold (latent thresholding: values beyond the
threshold are redrawn below it, with a looser threshold over the first 20% of the run) and
--h_symmetry_time_pct / --v_symmetry_time_pct (at that fraction of the run the left half is mirrored onto the
right, or the top onto the bottom). As 2.3 did, after a step; unlike 2.3, each image of a batch on its own,
with the random values drawn from a generator seeded by its seed, so a command repeats exactly and image k
of a batch matches its seed alone."""

from __future__ import annotations

THRESHOLD_WARMUP = 0.2  # 2.3's warm-up: over the first 20% of the run the threshold falls from 6x to 1x
THRESHOLD_SCALE = 0.7   # 2.3's: a value beyond the threshold is redrawn below 0.7 x the extreme (at least 1)


class Effects:
    """The effects a request asks for, applied to each completed step's latents (N, C, H/f, W/f)."""

    def __init__(self, request, seeds: list[int]):
        import torch

        self.threshold = request.threshold or None
        self.symmetry = ((3, request.h_symmetry_time_pct), (2, request.v_symmetry_time_pct))
        self.generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
        self.done_before = 0.0

    @property
    def active(self) -> bool:
        return self.threshold is not None or any(pct is not None for _, pct in self.symmetry)

    def after_step(self, done: int, total: int, latents):
        """The latents after step `done` of `total`, changed as the request asks (a new tensor)."""
        import torch

        through = done / total
        if self.threshold is not None:
            latents = torch.stack([self._thresholded(one, generator, through)
                                   for one, generator in zip(latents, self.generators)])
        for dim, pct in self.symmetry:
            if pct is not None and self.done_before < pct <= through:
                latents = mirrored(latents, dim)
        self.done_before = through
        return latents

    def _thresholded(self, latents, generator, through: float):
        threshold = self.threshold
        if through < THRESHOLD_WARMUP:
            threshold = threshold * (1 + 5 * (1 - through / THRESHOLD_WARMUP))
        high, low = float(latents.max()), float(latents.min())
        if high <= threshold and low >= -threshold:
            return latents
        latents = latents.clone()
        if high > threshold:
            limit = min(max(high * THRESHOLD_SCALE, 1.0), threshold)
            _redraw(latents, latents > limit, limit, generator)
        if low < -threshold:
            limit = max(min(low * THRESHOLD_SCALE, -1.0), -threshold)
            _redraw(latents, latents < limit, limit, generator)
        return latents


def _redraw(latents, where, limit: float, generator) -> None:
    """Replace the values `where` by uniform draws between 0 and `limit`, in place."""
    import torch

    drawn = torch.rand(int(where.sum()), generator=generator, dtype=torch.float32)
    latents[where] = (drawn * limit).to(latents.device, latents.dtype)


def mirrored(latents, dim: int):
    """The first half along `dim` kept, the second half the first's mirror image (2.3's symmetry)."""
    import torch

    size = latents.shape[dim]
    flipped = torch.flip(latents, dims=[dim])
    return torch.cat([latents.narrow(dim, 0, size // 2), flipped.narrow(dim, size // 2, size - size // 2)], dim=dim)
