"""The engine on the built-in tiny model: model calls counted at the UNet, determinism, sizes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from invoke_shell.engine import generate as engine
from invoke_shell.engine.images import choose_size
from invoke_shell.errors import ImageError, ParseError
from invoke_shell.request import parse
from invoke_shell.samplers import BY_NAME
from invoke_shell.switches import SAMPLERS


@pytest.fixture
def sketch(tmp_path):
    path = tmp_path / "sketch.png"
    im = Image.new("RGB", (64, 64), (20, 40, 200))
    im.paste((220, 30, 20), (16, 16, 48, 48))
    im.save(path)
    return str(path)


def unet_timesteps(model, job):
    """Run the job, returning the timestep of every UNet call (and the image)."""
    calls = []

    def hook(module, args, kwargs):
        t = args[1] if len(args) > 1 else kwargs["timestep"]
        calls.append(float(t))

    handle = model.txt2img.unet.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        image = engine.run(job, model)
    finally:
        handle.remove()
    return calls, image


# (steps, strength, steps run); test_schedule.py checks longer schedules for every sampler without a model
CASES = [(10, 0.7, 7), (10, 0.4, 4), (29, 0.7, 20)]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_unet_calls_for_every_sampler(model, sketch, sampler):
    """Steps actually run, counted as UNet calls: img2img runs exactly the planned timesteps, which are
    the tail of the txt2img schedule of the same length (order-aware for second-order samplers)."""
    for steps, strength, run in CASES:
        txt = engine.prepare(parse(f'"fire" -s {steps} -S 7 -W 32 -H 32 -A {sampler}'), model)
        img = engine.prepare(parse(f'"fire" -s {steps} -S 7 -W 32 -H 32 -A {sampler} -I {sketch} -f {strength}'), model)
        assert img.schedule.steps_run == run
        txt_calls, _ = unet_timesteps(model, txt)
        img_calls, _ = unet_timesteps(model, img)
        assert txt_calls == list(txt.schedule.timesteps)
        assert img_calls == list(img.schedule.timesteps)
        assert img_calls == txt_calls[len(txt_calls) - len(img_calls):]
        per_step = BY_NAME[sampler].order
        assert len(img_calls) == per_step * run - (per_step - 1) + (sampler == "plms")


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_draws_and_differs(model, sampler):
    job = engine.prepare(parse(f'"fire" -s 4 -S 3 -A {sampler}'), model)
    image = engine.run(job, model)
    assert image.size == (64, 64)
    assert np.asarray(image).std() > 0


def test_same_command_same_pixels_and_seed_matters(model, sketch):
    for line in ['"fire" -s 6 -S 11', f'"fire" -s 6 -S 11 -I {sketch} -f 0.6']:
        a = engine.run(engine.prepare(parse(line), model), model)
        b = engine.run(engine.prepare(parse(line), model), model)
        c = engine.run(engine.prepare(parse(line.replace("-S 11", "-S 12")), model), model)
        assert np.array_equal(np.asarray(a), np.asarray(b))
        assert not np.array_equal(np.asarray(a), np.asarray(c))   # the seed matters in img2img too


def test_zero_step_img2img_is_refused_before_running(model, sketch):
    with pytest.raises(ParseError, match="runs 0 steps"):
        engine.prepare(parse(f'"fire" -s 10 -S 1 -I {sketch} -f 0.05'), model)


@pytest.mark.parametrize("w,h,fit,image,expect", [
    (None, None, False, None, (64, 64, 64, 64)),            # txt2img: the model's native size
    (100, 70, False, None, (96, 64, 96, 64)),               # floored to multiples of 8
    (None, None, False, (200, 120), (200, 120, 200, 120)),  # img2img: the image's own size
    (128, 128, False, (200, 120), (128, 128, 128, 128)),    # -W/-H: resized to that size
    (96, None, False, (200, 100), (96, 48, 96, 48)),        # one side: the other follows the aspect
    (128, 128, True, (200, 100), (128, 64, 128, 128)),      # --fit inside the box; the box is recorded
    (None, None, True, (30, 60), (32, 64, 64, 64)),         # --fit into the native size
])
def test_choose_size(w, h, fit, image, expect):
    s = choose_size(w, h, fit, (64, 64), 8, image)
    assert (s.width, s.height, s.record_width, s.record_height) == expect
    assert bool(s.warnings) == ((s.width, s.height) != _unfloored(w, h, fit, image))


def _unfloored(w, h, fit, image):
    if image is None:
        return (w or 64, h or 64)
    if fit:
        scale = min((w or 64) / image[0], (h or 64) / image[1])
        return (round(image[0] * scale), round(image[1] * scale))
    if w and h:
        return (w, h)
    if w:
        return (w, round(image[1] * w / image[0]))
    return image


def test_init_image_exif_rotation_is_applied(model, tmp_path):
    im = Image.new("RGB", (64, 32), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    path = tmp_path / "rotated.jpg"
    im.save(path, exif=exif)
    job = engine.prepare(parse(f'"fire" -s 2 -S 1 -I {path} -f 0.5'), model)
    assert job.init_image.size == (32, 64)
    assert (job.request.width, job.request.height) == (32, 64)


@pytest.mark.parametrize("make,message", [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: p.write_bytes(b"not an image at all"), "not an image"),
    (lambda p: p.write_bytes(b""), "not an image"),
])
def test_bad_init_images(model, tmp_path, make, message):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(ImageError, match=message):
        engine.prepare(parse(f'"fire" -S 1 -I {path}'), model)
