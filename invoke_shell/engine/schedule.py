"""Which timesteps a command runs: a pure function of (sampler, steps, strength) and the model's
scheduler config, printable and testable without a model. Mirrors diffusers' img2img `get_timesteps`,
which slices by the scheduler's `order` (second-order samplers take two model calls per step)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ParseError
from .samplers import make_scheduler


def steps_from_image(steps: int, strength: float) -> int:
    """Steps img2img actually runs: `min(int(steps * strength), steps)`, as InvokeAI 2.3 and diffusers."""
    return min(int(steps * strength), steps)


@dataclass(frozen=True)
class Schedule:
    sampler: str
    steps: int                   # the schedule's length (-s)
    strength: float | None       # None for txt2img
    steps_run: int               # steps actually taken
    timesteps: tuple[float, ...]  # one entry per model (UNet) call
    order: int

    @property
    def model_calls(self) -> int:
        return len(self.timesteps)


def zero_step_advice(steps: int, strength: float) -> str:
    """The message for a command that would run no step, naming an -f and an -s that would work."""
    min_f = next(x / 100 for x in range(1, 101) if steps_from_image(steps, x / 100) >= 1)
    min_s = next((n for n in range(steps, 1001) if steps_from_image(n, strength) >= 1), None)
    fix = f"use -f {min_f} or more" + (f", or -s {min_s} or more" if min_s else "")
    return (f"-f {strength} with -s {steps} runs 0 steps from the init image "
            f"(int({steps} x {strength}) = 0): {fix}")


def plan(sampler: str, steps: int, strength: float | None, scheduler_config: Any) -> Schedule:
    """The schedule a command will run. Raises ParseError when img2img would run 0 steps."""
    scheduler = make_scheduler(sampler, scheduler_config)
    scheduler.set_timesteps(steps)
    order = scheduler.order
    if strength is None:
        run, start = steps, 0
    else:
        run = steps_from_image(steps, strength)
        if run == 0:
            raise ParseError(zero_step_advice(steps, strength))
        start = (steps - run) * order
    timesteps = tuple(float(t) for t in scheduler.timesteps[start:])
    return Schedule(sampler, steps, strength, run, timesteps, order)
