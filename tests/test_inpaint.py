"""Inpainting through the shell on the tiny models: -M masks, transparent init images, --invert_mask,
--fit, the schedule, the metadata round trip, bad masks, and a 9-channel inpainting model."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from invoke_shell.engine import generate as engine
from invoke_shell.outputs.metadata import file_sha256
from invoke_shell.outputs.pngio import read_text_chunks
from invoke_shell.request import parse

HOLE = (16, 16, 48, 48)  # the repainted square of every test mask (x0, y0, x1, y1)
BAND = 4                 # pixels either side of the mask edge that the blurred paste-back may touch


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def keep_region(size=(64, 64), hole=HOLE, band=BAND) -> np.ndarray:
    """True where a pixel is outside the hole by more than the blur band."""
    keep = np.ones((size[1], size[0]), bool)
    x0, y0, x1, y1 = hole
    keep[max(0, y0 - band):y1 + band, max(0, x0 - band):x1 + band] = False
    return keep


@pytest.fixture
def files(tmp_path):
    """An init picture, the same picture with a transparent hole, a mask file and its inverse."""
    rng = np.random.RandomState(0)
    init = Image.fromarray((rng.rand(64, 64, 3) * 255).astype("uint8"))
    init.save(tmp_path / "init.png")
    mask = Image.new("L", (64, 64), 255)      # white = keep
    mask.paste(0, HOLE)                       # black = repaint
    mask.save(tmp_path / "mask.png")
    Image.eval(mask, lambda v: 255 - v).save(tmp_path / "inverse.png")
    holed = init.convert("RGBA")
    holed.putalpha(mask)                      # transparent = repaint
    holed.save(tmp_path / "holed.png")
    erased = holed.copy()
    erased.paste((0, 0, 0, 0), HOLE)          # what many editors leave under the transparent pixels
    erased.save(tmp_path / "erased.png")
    return {name: str(tmp_path / f"{name}.png") for name in ("init", "mask", "inverse", "holed", "erased")}


def outputs(shell) -> list[str]:
    return sorted(os.listdir(shell.outdir)) if os.path.isdir(shell.outdir) else []


def test_masked_pixels_change_and_the_rest_is_kept(shell, files):
    assert shell.execute(f'"fire" -s 10 -S 3 -I {files["init"]} -f 0.7 -M {files["mask"]}')
    out, init = pixels(shell.previous[0].path), pixels(files["init"])
    keep = keep_region()
    assert (out[keep] == init[keep]).all(), "pixels outside the mask and its blur band are the original's"
    x0, y0, x1, y1 = HOLE
    inside = np.abs(out[y0 + BAND:y1 - BAND, x0 + BAND:x1 - BAND] - init[y0 + BAND:y1 - BAND, x0 + BAND:x1 - BAND])
    assert (inside.sum(-1) > 0).mean() > 0.95, "the masked area is repainted"
    assert "inpaint: strength 0.70 x 10 steps -> 7 of 10 steps from the init image" in shell.said


def test_transparent_init_image_is_its_own_mask(shell, files):
    assert shell.execute(f'"fire" -s 10 -S 3 -I {files["init"]} -f 0.7 -M {files["mask"]}')
    from_file = pixels(shell.previous[0].path)
    shell.said.clear()
    assert shell.execute(f'"fire" -s 10 -S 3 -I {files["holed"]} -f 0.7')
    assert (pixels(shell.previous[0].path) == from_file).all()
    assert shell.said[0] == "the init image has transparent areas: inpainting them (its transparency is the mask)"
    assert not any(line.startswith("warning") for line in shell.said), "its colours were not erased"


def test_erased_colours_under_transparency_are_warned(shell, files):
    assert shell.execute(f'"fire" -s 6 -S 3 -I {files["erased"]} -f 0.7')
    warnings = [line for line in shell.said if line.startswith("warning:")]
    assert len(warnings) == 1 and "erased" in warnings[0]


def test_invert_mask(shell, files):
    assert shell.execute(f'"fire" -s 8 -S 4 -I {files["init"]} -f 0.8 -M {files["mask"]}')
    plain = pixels(shell.previous[0].path)
    assert shell.execute(f'"fire" -s 8 -S 4 -I {files["init"]} -f 0.8 -M {files["inverse"]} --invert_mask')
    assert (pixels(shell.previous[0].path) == plain).all()
    # inverting the real mask repaints the border and keeps the centre
    assert shell.execute(f'"fire" -s 8 -S 4 -I {files["init"]} -f 0.8 -M {files["mask"]} --invert_mask')
    out, init = pixels(shell.previous[0].path), pixels(files["init"])
    x0, y0, x1, y1 = HOLE
    centre = (slice(y0 + BAND, y1 - BAND), slice(x0 + BAND, x1 - BAND))
    assert (out[centre] == init[centre]).all()
    assert (np.abs(out[:y0 - BAND] - init[:y0 - BAND]).sum(-1) > 0).mean() > 0.95


def test_fit_sizes_the_mask_like_the_image(shell, files, tmp_path):
    wide = Image.open(files["init"]).resize((128, 96))
    wide.save(tmp_path / "wide.png")
    small = Image.new("L", (64, 48), 255)       # half the image's size, the same aspect
    small.paste(0, (16, 12, 48, 36))
    small.save(tmp_path / "small.png")
    line = f'"fire" -s 6 -S 5 -I {tmp_path / "wide.png"} -f 0.7 -M {tmp_path / "small.png"}'
    assert not shell.execute(line), "a mask of another size needs --fit"
    assert shell.said[-1] == ("error: -M/--init_mask: the mask is 64x48 but the init image is 128x96; "
                              "give a mask of the same size, or --fit to fit both into -W x -H")
    assert shell.execute(line + " --fit -W 64 -H 64")
    out = pixels(shell.previous[0].path)
    assert out.shape == (48, 64, 3)             # 128x96 fitted into 64x64
    fitted = np.asarray(wide.resize((64, 48), Image.Resampling.LANCZOS)).astype(int)
    keep = keep_region((64, 48), (16, 12, 48, 36))
    assert (out[keep] == fitted[keep]).all()
    assert (np.abs(out[16:32, 24:40] - fitted[16:32, 24:40]).sum(-1) > 0).all()


def unet_calls(model, job) -> int:
    calls = []
    handle = model.txt2img.unet.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        engine.run(job, model)
    finally:
        handle.remove()
    return len(calls)


@pytest.mark.parametrize("sampler,steps,strength", [("k_lms", 10, 0.7), ("k_heun", 10, 0.4), ("ddim", 30, 0.7)])
def test_steps_and_model_calls_as_in_img2img(model, files, sampler, steps, strength):
    base = f'"fire" -s {steps} -S 7 -A {sampler} -I {files["init"]} -f {strength}'
    img2img = engine.prepare(parse(base), model)
    inpaint = engine.prepare(parse(base + f' -M {files["mask"]}'), model)
    assert inpaint.mode == "inpaint" and img2img.mode == "img2img"
    assert inpaint.schedule == img2img.schedule
    assert inpaint.schedule.steps_run == int(steps * strength)
    assert unet_calls(model, inpaint) == unet_calls(model, img2img) == inpaint.schedule.model_calls


def test_metadata_round_trip(shell, files):
    line = f'"fire" -s 6 -S 9 -I {files["init"]} -f 0.6 -M {files["inverse"]} --invert_mask'
    assert shell.execute(line)
    path = shell.previous[0].path
    chunks = read_text_chunks(path)
    image = json.loads(chunks["sd-metadata"])["image"]
    assert image["type"] == "inpaint" and image["mask"] == "file" and image["invert_mask"] is True
    assert image["init_mask"] == files["inverse"] and image["mask_hash"] == file_sha256(files["inverse"])
    assert f"-M {files['inverse']} --invert_mask" in chunks["Dream"]
    assert shell.execute(f"!fetch {path}")       # as a user gets it back: on the next prompt line
    command = shell.prefill
    assert parse(command) == parse(chunks["Dream"])
    # without the Dream line, sd-metadata alone rebuilds the same command
    from invoke_shell.outputs.readers.invokeai import from_sd_metadata
    assert from_sd_metadata(chunks["sd-metadata"])[0] == chunks["Dream"]
    # and replaying it makes the same picture
    assert shell.execute(command)
    assert (pixels(shell.previous[0].path) == pixels(path)).all()


def test_fetch_says_when_an_input_file_changed_or_is_gone(shell, files, tmp_path):
    """The image records the sha256 of its init image and mask; !fetch compares them with the files now."""
    assert shell.execute(f'"fire" -s 2 -S 9 -I {files["init"]} -f 0.5 -M {files["mask"]}')
    path = shell.previous[0].path
    start = len(shell.said)
    assert shell.execute(f"!fetch {path}")
    assert not [line for line in shell.said[start:] if line.startswith("note:")]   # both files as they were

    init = Image.open(files["init"])
    init.putpixel((0, 0), (0, 0, 0) if init.getpixel((0, 0)) != (0, 0, 0) else (255, 255, 255))
    init.save(files["init"])
    os.remove(files["mask"])
    start = len(shell.said)
    assert shell.execute(f"!fetch {path}")
    assert shell.said[start + 1].startswith("made with: float32 on cpu")
    assert shell.said[start + 2:] == [
        f"note: -I/--init_img {files['init']} has changed since the image was made (its sha256 differs), so "
        f"the command will not draw the same picture",
        f"note: -M/--init_mask {files['mask']} is not there; the command needs it"]
    assert parse(shell.prefill) == parse(read_text_chunks(path)["Dream"])   # the command itself is unchanged

    listing = tmp_path / "cmds.txt"
    assert shell.execute(f"!fetch {shell.outdir}/*.png {listing}")
    lines = listing.read_text().splitlines()
    assert lines[1:3] == ["# " + line for line in shell.said[start + 2:start + 4]] and lines[3] == shell.prefill


@pytest.mark.parametrize("make,message", [
    (lambda d: Image.new("L", (64, 64), 255).save(d / "m.png"),
     "error: -M/--init_mask: the mask keeps every pixel, so there is nothing to repaint (transparent or black "
     "areas are repainted; --invert_mask flips that)"),
    (lambda d: Image.new("L", (64, 64), 0).save(d / "m.png"),
     "error: -M/--init_mask: the mask repaints every pixel; drop the mask for plain img2img (or --invert_mask "
     "if the white areas were meant to be kept)"),
    (lambda d: Image.new("RGBA", (64, 64), (0, 0, 0, 255)).save(d / "m.png"),
     "error: -M/--init_mask: the mask keeps every pixel"),
    (lambda d: (d / "m.png").write_bytes(b"\x89PNG\r\n\x1a\n not really"),
     "error: -M/--init_mask: {dir}/m.png is not an image Pillow can read"),
    (lambda d: Image.new("L", (32, 32), 0).save(d / "m.png"),
     "error: -M/--init_mask: the mask is 32x32 but the init image is 64x64"),
    (lambda d: None, "error: -M/--init_mask: no such file: {dir}/m.png"),
])
def test_bad_masks_get_one_line(shell, files, tmp_path, make, message):
    make(tmp_path)
    assert not shell.execute(f'"fire" -s 5 -S 1 -I {files["init"]} -f 0.7 -M {tmp_path / "m.png"}')
    assert len(shell.said) == 1 and shell.said[0].startswith(message.format(dir=tmp_path)), shell.said
    assert outputs(shell) == []


def test_invert_mask_without_any_mask_is_refused(shell, files):
    assert not shell.execute(f'"fire" -s 5 -S 1 -I {files["init"]} -f 0.7 --invert_mask')
    assert shell.said == ["error: --invert_mask: there is no mask to invert: give -M/--init_mask, or an init "
                          "image with transparent areas"]


@pytest.fixture(scope="module")
def inpainting_model(tmp_path_factory, cache_dir):
    """A tiny 9-channel inpainting model in a diffusers folder, named in a registry like a user's."""
    from invoke_shell.models.builtin import build_tiny
    from invoke_shell.models.manager import ModelManager
    from invoke_shell.models.registry import ModelEntry, Registry

    folder = tmp_path_factory.mktemp("models") / "tiny-inpainting"
    build_tiny(folder, seed=1, in_channels=9)
    registry = Registry((ModelEntry("tiny-inpainting", "", "diffusers", path=str(folder), default=True),), None)
    manager = ModelManager(registry, device="cpu", precision="float32")
    manager.activate("tiny-inpainting")
    return manager


def test_nine_channel_model_inpaints_and_still_does_the_rest(inpainting_model, files, tmp_path):
    from invoke_shell.shell import Shell

    said: list[str] = []
    shell = Shell(inpainting_model, outdir=str(tmp_path / "out"), say=said.append, model="tiny-inpainting")
    model = inpainting_model.active
    assert model.is_inpainting
    seen = []
    handle = model.txt2img.unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[1]))
    try:
        assert shell.execute(f'"fire" -s 6 -S 2 -I {files["init"]} -f 0.7 -M {files["mask"]}'), said
        out, init = pixels(shell.previous[0].path), pixels(files["init"])
        keep = keep_region()
        assert (out[keep] == init[keep]).all()
        assert shell.execute('"fire" -s 6 -S 2'), said                                   # txt2img
        assert shell.execute(f'"fire" -s 6 -S 2 -I {files["init"]} -f 0.5'), said        # img2img
    finally:
        handle.remove()
    assert set(seen) == {9}, "every UNet call gets latents + mask + masked-image latents"
    assert len(seen) == 4 + 6 + 3
    assert len([name for name in os.listdir(tmp_path / "out") if name.endswith(".png")]) == 3
