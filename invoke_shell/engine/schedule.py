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
    sigmas: tuple[float, ...] | None = None  # k-samplers' noise levels from the first call on (one more: the end)

    @property
    def model_calls(self) -> int:
        return len(self.timesteps)


def compensated_steps(wanted: int, strength: float) -> int:
    """The smallest schedule that runs at least `wanted` steps from the init image at `strength`."""
    for steps in range(wanted, 1001):
        if steps_from_image(steps, strength) >= wanted:
            return steps
    raise ParseError(f"--compensate_steps: no schedule of at most 1000 steps runs {wanted} steps at -f {strength}")


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
    sigmas = getattr(scheduler, "sigmas", None)
    sigmas = tuple(float(x) for x in sigmas[start:]) if sigmas is not None else None
    return Schedule(sampler, steps, strength, run, timesteps, order, sigmas)


def describe(schedule: Schedule, asked_steps: int | None = None) -> list[str]:
    """Lines saying what a command will do, for `!schedule`."""
    s = schedule
    if s.strength is None:
        lines = [f"{s.sampler}: txt2img, {s.steps} steps from noise"]
    else:
        lines = [f"{s.sampler}: img2img at strength {s.strength:.2f}: a {s.steps}-step schedule, the last "
                 f"{s.steps_run} steps run from the init image (int({s.steps} x {s.strength}) = {s.steps_run})"]
        if asked_steps is not None and asked_steps != s.steps:
            lines.append(f"--compensate_steps: -s {asked_steps} asked for {asked_steps} steps from the image, "
                         f"so the schedule has {s.steps}")
    extra = ""
    if s.order == 2:
        extra = f" ({s.sampler} is second-order: two calls a step, one for the last)"
    elif s.model_calls == s.steps_run + 1:
        extra = f" ({s.sampler} makes one extra call at the start)"
    lines.append(f"model calls: {s.model_calls}{extra}")
    lines.append("timesteps: " + " ".join(f"{t:g}" for t in s.timesteps))
    if s.sigmas is not None:
        lines.append("sigmas: " + " ".join(f"{x:.4g}" for x in s.sigmas))
    return lines
