"""Sampler names (InvokeAI's) -> diffusers schedulers, built from the model's own scheduler config."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
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
    """A fresh scheduler for `sampler` from a model's scheduler config: a copy of one built once per (sampler,
    config), because some constructors precompute tables (k_dpm_2 and k_dpm_2_a ~0.5 s, k_lms and k_heun
    with Karras sigmas ~40 ms) while a copy takes ~1 ms."""
    return copy.deepcopy(_prototype(sampler, json.dumps(config, sort_keys=True)))


@lru_cache(maxsize=32)
def _prototype(sampler: str, config_json: str):
    import diffusers

    class_name, overrides = SCHEDULERS[sampler]
    return getattr(diffusers, class_name).from_config(json.loads(config_json), **overrides)
