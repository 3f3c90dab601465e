"""Seeing the schedule: !schedule, step compensation, step previews, the strip, the progress bar."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from invoke_shell.engine import generate as engine
from invoke_shell.engine.schedule import compensated_steps, steps_from_image
from invoke_shell.request import parse


@pytest.fixture
def sketch(tmp_path):
    im = Image.new("RGB", (64, 64), (10, 10, 10))
    im.paste((240, 90, 10), (16, 8, 48, 56))
    im.save(tmp_path / "sketch.png")
    return str(tmp_path / "sketch.png")


@pytest.mark.parametrize("wanted,strength,steps", [(20, 0.4, 50), (20, 0.7, 29), (7, 1.0, 7), (5, 0.5, 10),
                                                   (3, 0.33, 10)])
def test_compensation_picks_the_smallest_schedule(wanted, strength, steps):
    assert compensated_steps(wanted, strength) == steps
    assert steps_from_image(steps, strength) >= wanted > steps_from_image(steps - 1, strength)


@pytest.mark.parametrize("line", ['"fire" -s 10 -S 3', '"fire" -s 10 -S 3 -I {sketch} -f 0.7 -A k_heun',
                                  '"fire" -s 12 -S 3 -I {sketch} -f 0.4 -A plms',
                                  '"fire" -s 6 -S 3 -I {sketch} -f 0.5 --compensate_steps -A k_euler_a'])
def test_schedule_command_matches_what_the_engine_runs(shell, model, sketch, line):
    line = line.format(sketch=sketch)
    shell.execute(f"!schedule {line}")
    printed = shell.said
    calls_line = next(l for l in printed if l.startswith("model calls: "))
    timesteps_line = next(l for l in printed if l.startswith("timesteps: "))
    seen = []
    handle = model.txt2img.unet.register_forward_pre_hook(lambda m, args: seen.append(float(args[1])))
    try:
        assert shell.execute(line), shell.said[-1]
    finally:
        handle.remove()
    assert int(calls_line.split()[2]) == len(seen)
    assert timesteps_line == "timesteps: " + " ".join(f"{t:g}" for t in seen)


def test_compensated_run_records_both_numbers(shell, sketch):
    assert shell.execute(f'"fire" -s 20 -S 3 -I {sketch} -f 0.7 --compensate_steps')
    assert shell.said[0] == ("img2img: strength 0.70 x 29 steps -> 20 of 29 steps from the init image "
                             "(--compensate_steps: a 29-step schedule runs the 20 asked for)")
    import json

    from invoke_shell.outputs.pngio import read_text_chunks

    chunks = read_text_chunks(shell.previous[0].path)
    assert "--compensate_steps" in chunks["Dream"]
    meta = json.loads(chunks["sd-metadata"])["image"]
    assert (meta["steps"], meta["schedule_steps"], meta["steps_run"]) == (20, 29, 20)


@pytest.mark.parametrize("steps,strength,sampler,every,expect", [
    (10, None, "k_lms", 3, [3, 6, 9, 10]),
    (10, 0.7, "k_lms", 2, [2, 4, 6, 7]),
    (10, 0.7, "k_heun", 1, [1, 2, 3, 4, 5, 6, 7]),
    (12, 0.5, "plms", 5, [5, 6]),
    (8, 0.5, "k_dpm_2_a", 1, [1, 2, 3, 4]),
])
def test_intermediates_and_strip_frames(shell, sketch, steps, strength, sampler, every, expect):
    init = f" -I {sketch} -f {strength}" if strength else ""
    assert shell.execute(f'"fire" -s {steps} -S 2 -A {sampler}{init} --save_intermediates {every} --strip')
    folder = os.path.join(shell.outdir, "intermediates", "000001")
    assert sorted(os.listdir(folder)) == [f"2.{step:04d}.png" for step in expect]
    steps_run = expect[-1]
    strip = Image.open(os.path.join(shell.outdir, "000001.2.strip.png"))
    frames = steps_run + 2                                    # the start, every step run, the final image
    assert strip.size == (frames * (64 + 2) + 2, 16 + 64 + 12 + 2)
    assert shell.said[-1] == f"strip: {shell.outdir}/000001.2.strip.png"


def test_previews_look_like_the_image(demo_model):
    """On the trained built-in model, the fitted projection of the final latents follows the image: its
    pixels correlate strongly with the image's and hardly at all with another prompt's image."""
    import numpy as np

    from invoke_shell.engine.preview import preview

    model = demo_model
    f = model.vae_scale_factor
    approx, exact = {}, {}
    for prompt in ("a red star on a blue background", "fire"):
        job = engine.prepare(parse(f'"{prompt}" -s 10 -S 8'), model)
        last = {}
        image = engine.run_batch([job], model, on_step=lambda step, latents: last.update(latents=latents.clone()))[0]
        approx[prompt] = np.asarray(preview(model, last["latents"])[0], dtype=float).reshape(-1)
        exact[prompt] = np.asarray(image.resize((64 // f, 64 // f), Image.Resampling.BOX)
                                   .resize((64, 64), Image.Resampling.NEAREST), dtype=float).reshape(-1)
    star, fire = approx
    for prompt, other in ((star, fire), (fire, star)):
        assert np.corrcoef(approx[prompt], exact[prompt])[0, 1] > 0.7, prompt
        assert np.corrcoef(approx[prompt], exact[other])[0, 1] < 0.3, prompt


def test_progress_bar_only_on_a_terminal(shell, monkeypatch):
    import sys

    fake = io.StringIO()
    monkeypatch.setattr(sys, "stderr", fake)
    assert shell.execute('"fire" -s 4 -S 1')
    assert fake.getvalue() == ""                        # not a terminal: no bar
    monkeypatch.setattr(fake, "isatty", lambda: True, raising=False)
    assert shell.execute('"fire" -s 4 -S 1')
    assert "4/4 steps" in fake.getvalue() and "step/s" in fake.getvalue()
