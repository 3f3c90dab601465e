"""Sampler names -> diffusers schedulers (the class and overrides in the sampler table, samplers.py), built
from the model's own scheduler config."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from typing import Any

from ..samplers import BY_NAME

def make_scheduler(sampler: str, config: Any):
    """A fresh scheduler for `sampler` from a model's scheduler config: a copy of one built once per (sampler,
    config), because some constructors precompute tables (k_dpm_2 and k_dpm_2_a ~0.5 s, k_lms and k_heun
    with Karras sigmas ~40 ms) while a copy takes ~1 ms."""
    return copy.deepcopy(_prototype(sampler, json.dumps(config, sort_keys=True)))


@lru_cache(maxsize=32)
def _prototype(sampler: str, config_json: str):
    import diffusers

    entry = BY_NAME[sampler]
    return getattr(diffusers, entry.scheduler).from_config(json.loads(config_json), **entry.config_overrides)
