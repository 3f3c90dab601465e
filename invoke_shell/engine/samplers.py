"""Sampler names (InvokeAI's) -> diffusers schedulers, built from the model's own scheduler config."""

from __future__ import annotations

from typing import Any

# name -> (diffusers scheduler class, overrides applied on top of the model's config)
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {}),
    "plms": ("PNDMScheduler", {"skip_prk_steps": True}),  # PLMS proper; the PRK warm-up is PNDM's
    "k_lms": ("LMSDiscreteScheduler", {}),
    "k_euler": ("EulerDiscreteScheduler", {}),
    "k_euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "k_heun": ("HeunDiscreteScheduler", {}),
    "k_dpm_2": ("KDPM2DiscreteScheduler", {}),
    "k_dpm_2_a": ("KDPM2AncestralDiscreteScheduler", {}),
    "k_dpmpp_2": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
}


def make_scheduler(sampler: str, config: Any):
    """A fresh scheduler for `sampler` from a model's scheduler config (cheap: no weights)."""
    import diffusers

    class_name, overrides = SCHEDULERS[sampler]
    cls = getattr(diffusers, class_name)
    return cls.from_config(config, **overrides)
