"""The schedule as data: steps run, timesteps and model calls, without running a model."""

from __future__ import annotations

import pytest

from invoke_shell.engine.schedule import plan, steps_from_image, zero_step_advice
from invoke_shell.errors import ParseError
from invoke_shell.samplers import BY_NAME
from invoke_shell.switches import SAMPLERS

LMS_CONFIG = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                  steps_offset=1, clip_sample=False, set_alpha_to_one=False, skip_prk_steps=True)

TABLE = [(10, 0.7, 7), (10, 0.4, 4), (50, 0.4, 20), (30, 0.7, 21), (29, 0.7, 20), (50, 0.75, 37), (10, 1.0, 10)]


@pytest.mark.parametrize("steps,strength,run", TABLE)
def test_steps_from_image(steps, strength, run):
    assert steps_from_image(steps, strength) == run


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("steps,strength,run", TABLE)
def test_img2img_runs_the_tail_of_the_txt2img_schedule(sampler, steps, strength, run):
    full = plan(sampler, steps, None, LMS_CONFIG)
    part = plan(sampler, steps, strength, LMS_CONFIG)
    assert part.steps_run == run
    assert part.timesteps == full.timesteps[len(full.timesteps) - len(part.timesteps):]
    # one model call per step; second-order samplers two per step but the last; PLMS one extra at the start
    extra = (run - 1) * (BY_NAME[sampler].order - 1) + (sampler == "plms")
    assert part.model_calls == run + extra


def test_zero_steps_is_refused_with_a_fix():
    with pytest.raises(ParseError) as info:
        plan("k_lms", 10, 0.05, LMS_CONFIG)
    assert str(info.value) == ("-f 0.05 with -s 10 runs 0 steps from the init image (int(10 x 0.05) = 0): "
                               "use -f 0.1 or more, or -s 20 or more")
    assert "-s" not in zero_step_advice(1, 0.0001).split(":")[1]  # no -s up to 1000 would do
