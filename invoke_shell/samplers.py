"""THE sampler table: one entry per sampler, read by the parser and completion (names), the engine (the
diffusers scheduler class and its overrides), `!help` and the metadata writers and readers (what AUTOMATIC1111,
ComfyUI and InvokeAI 3 call it). Adding a sampler is adding an entry. Pure data: no torch, no diffusers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Sampler:
    name: str                              # ours, as InvokeAI 2.3 spelled it (`-A k_lms`)
    scheduler: str                         # the diffusers scheduler class, built with from_config
    overrides: tuple[tuple[str, Any], ...]  # applied on top of the model's scheduler config
    order: int                             # UNet calls per step (2: second-order; the last step takes 1)
    a1111: str | None                      # A1111's `Sampler:` value; None: it has none (ours is written)
    comfyui: tuple[str, str] | None        # ComfyUI's (sampler_name, scheduler); None: it has none
    invokeai3: str | None                  # InvokeAI 3's scheduler name
    description: str = ""

    @property
    def config_overrides(self) -> dict[str, Any]:
        return dict(self.overrides)


SAMPLER_TABLE: tuple[Sampler, ...] = (
    Sampler("ddim", "DDIMScheduler", (), 1, "DDIM", ("ddim", "normal"), "ddim", "DDIM"),
    Sampler("plms", "PNDMScheduler", (("skip_prk_steps", True),), 1, "PLMS", None, "pndm",
            "PLMS (PNDM without its PRK warm-up)"),
    Sampler("k_lms", "LMSDiscreteScheduler", (), 1, "LMS", ("lms", "normal"), "lms", "LMS (needs scipy)"),
    Sampler("k_euler", "EulerDiscreteScheduler", (), 1, "Euler", ("euler", "normal"), "euler", "Euler"),
    Sampler("k_euler_a", "EulerAncestralDiscreteScheduler", (), 1, "Euler a", ("euler_ancestral", "normal"),
            "euler_a", "Euler ancestral"),
    Sampler("k_heun", "HeunDiscreteScheduler", (), 2, "Heun", ("heun", "normal"), "heun", "Heun (2 calls a step)"),
    Sampler("k_dpm_2", "KDPM2DiscreteScheduler", (), 2, "DPM2", ("dpm_2", "normal"), "kdpm_2",
            "DPM2 (2 calls a step)"),
    Sampler("k_dpm_2_a", "KDPM2AncestralDiscreteScheduler", (), 2, "DPM2 a", ("dpm_2_ancestral", "normal"),
            "kdpm_2_a", "DPM2 ancestral (2 calls a step)"),
    Sampler("k_dpmpp_2", "DPMSolverMultistepScheduler", (("algorithm_type", "dpmsolver++"), ("solver_order", 2)),
            1, "DPM++ 2M", ("dpmpp_2m", "normal"), "dpmpp_2m", "DPM++ 2M"),
)

BY_NAME: dict[str, Sampler] = {s.name: s for s in SAMPLER_TABLE}
NAMES: tuple[str, ...] = tuple(BY_NAME)
# what other programs write -> ours
FROM_A1111: dict[str, str] = {s.a1111: s.name for s in SAMPLER_TABLE if s.a1111}
FROM_COMFYUI: dict[str, str] = {s.comfyui[0]: s.name for s in SAMPLER_TABLE if s.comfyui}
FROM_INVOKEAI3: dict[str, str] = {s.invokeai3: s.name for s in SAMPLER_TABLE if s.invokeai3}


def a1111_name(name: str) -> str:
    """What the A1111 `parameters` text says for our sampler: its A1111 name, else ours."""
    return BY_NAME[name].a1111 or name
