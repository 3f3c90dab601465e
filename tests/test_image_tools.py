"""InvokeAI 2.3's image switches on the demo model, typed as a user types them: --seamless, --hires_fix, and
the small ones. Each is checked by the pixel property that defines it, its record in the PNG, and a replay of
what !fetch rebuilds."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def demo(cache_dir):
    from invoke_shell.models.manager import ModelManager
    from invoke_shell.models.registry import BUILTIN

    manager = ModelManager(BUILTIN, device="cpu", precision="float32")
    manager.activate("demo")
    return manager


@pytest.fixture
def shell(demo, tmp_path):
    from recording import recording_shell

    return recording_shell(demo, tmp_path / "out", "demo")


def run(shell, line: str) -> np.ndarray:
    before = len(shell.said)
    assert shell.execute(line), shell.said[before:]
    assert not any(s.startswith(("error", "unexpected")) for s in shell.said[before:]), shell.said[before:]
    return np.asarray(Image.open(shell.previous[-1].path)).astype(float)


def refused(shell, line: str) -> str:
    before = len(shell.said)
    shell.execute(line)
    said = shell.said[before:]
    assert len(said) == 1, said
    return said[0]


def wrap_ratios(picture: np.ndarray) -> tuple[float, float]:
    """How much the picture jumps across its left/right and its top/bottom edges, as a multiple of how much it
    changes between neighbouring columns (rows) inside: about 1 where the edges continue each other."""
    inner_x = np.abs(np.diff(picture, axis=1)).mean()
    inner_y = np.abs(np.diff(picture, axis=0)).mean()
    return (np.abs(picture[:, 0] - picture[:, -1]).mean() / inner_x,
            np.abs(picture[0] - picture[-1]).mean() / inner_y)


def fetched_and_replayed(shell, tmp_path) -> tuple[str, np.ndarray]:
    """!fetch the last PNG into a command file, replay it: (the fetched command, the replayed pixels)."""
    path = shell.previous[-1].path
    out = tmp_path / "fetched.txt"
    before = len(shell.said)
    assert shell.execute(f"!fetch {path} {out}"), shell.said[before:]
    command = out.read_text().strip().splitlines()[-1]
    return command, run(shell, command)


SEAMLESS_SEEDS = (3, 11, 27, 40)
SQUARES = "many small yellow squares on a purple background"  # a picture whose content reaches every edge


def test_seamless_pictures_tile_along_the_axes_asked_for(shell):
    ratios = {}
    for name, switches in (("plain", ""), ("both", "--seamless"), ("x", "--seamless_axes x"),
                           ("y", "--seamless --seamless_axes=y")):
        ratios[name] = np.mean([wrap_ratios(run(shell, f'"{SQUARES}" -s 12 -S {seed} -W 96 -H 96 {switches}'))
                                for seed in SEAMLESS_SEEDS], axis=0)
    plain, both, x_only, y_only = (ratios[k] for k in ("plain", "both", "x", "y"))
    # measured on the demo model: plain 4.6 and 4.3; x,y 1.0 and 1.2; x 1.4 (and 6.3); y 0.6 (and 2.8)
    assert plain[0] > 3 and plain[1] > 3, f"an ordinary picture jumps at its edges: {plain}"
    assert both[0] < 1.6 and both[1] < 1.6, f"--seamless: the edges continue each other: {both}"
    assert x_only[0] < 1.6 and x_only[1] > 2.5, f"x: left/right continue, top/bottom do not: {x_only}"
    assert y_only[1] < 1.6 and y_only[0] > 2.5, f"y: top/bottom continue, left/right do not: {y_only}"


def test_seamless_models_see_the_picture_as_a_torus(demo):
    """What makes the edges continue: inside --seamless the UNet and the VAE shift with the picture, wrapping
    around, along the axes asked for (a picture made from noise rolled sideways is the picture rolled)."""
    import torch

    from invoke_shell.engine.seamless import seamless

    pipe = demo.active.txt2img
    x = torch.randn(1, pipe.unet.config.in_channels, 24, 24, generator=torch.Generator().manual_seed(0))
    text = torch.randn(1, 77, pipe.unet.config.cross_attention_dim, generator=torch.Generator().manual_seed(1))

    def shift_error(axes, dim):
        with torch.no_grad(), seamless([pipe.unet, pipe.vae], axes):
            unet = pipe.unet(x, 500, encoder_hidden_states=text).sample
            rolled = pipe.unet(torch.roll(x, 8, dims=dim), 500, encoder_hidden_states=text).sample
            picture = pipe.vae.decode(x).sample
            rolled_picture = pipe.vae.decode(torch.roll(x, 2, dims=dim)).sample
        return max(float((torch.roll(unet, 8, dims=dim) - rolled).abs().max()),
                   float((torch.roll(picture, 2 * pipe.vae_scale_factor, dims=dim) - rolled_picture).abs().max()))

    assert shift_error(("x",), 3) < 1e-4 and shift_error(("y",), 2) < 1e-4
    assert shift_error(("x", "y"), 2) < 1e-4 and shift_error(("x", "y"), 3) < 1e-4
    assert shift_error(("x",), 2) > 0.1 and shift_error(None, 3) > 0.1


def test_seamless_leaves_nothing_behind_and_replays(shell, tmp_path):
    before = run(shell, '"fire" -s 8 -S 5')
    tiled = run(shell, '"fire" -s 8 -S 5 --seamless_axes x')
    command = shell.previous[-1]
    assert not np.array_equal(before, tiled)
    assert np.array_equal(before, run(shell, '"fire" -s 8 -S 5')), "the next plain command is bit-identical"
    shell.previous = [command]
    fetched, replayed = fetched_and_replayed(shell, tmp_path)
    assert "--seamless --seamless_axes x" in fetched
    assert np.array_equal(tiled, replayed)


@pytest.mark.parametrize("line, said", [
    ('"fire" --seamless_axes z', "--seamless_axes must be x, y or several of them joined by commas, got 'z'"),
    ('"fire" --seamless_axes x,x', "--seamless_axes must be x, y or several of them joined by commas, got 'x,x'"),
    ('"fire" --seamless yes', "unexpected 'yes' after the switches"),
])
def test_seamless_mistakes_are_one_line(shell, line, said):
    assert said in refused(shell, line)


def unet_calls(shell, line: str) -> tuple[np.ndarray, int]:
    calls = []
    hook = shell.manager.active.txt2img.unet.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        picture = run(shell, line)
    finally:
        hook.remove()
    return picture, len(calls)


def test_hires_fix_makes_the_model_size_first_then_refines_at_the_size_asked(shell, tmp_path):
    import json

    from invoke_shell.outputs.pngio import read_text_chunks

    before = len(shell.said)
    picture, calls = unet_calls(shell, '"fire" -s 10 -S 4 -W 128 -H 128 --hires_fix')
    assert picture.shape == (128, 128, 3)
    assert ("hires fix: 64x64 first (10 steps), then latent x2.00 to 128x128 and 7 of 10 steps at strength 0.75"
            in shell.said[before:])
    assert calls == 10 + 7, "the first pass's steps, then the last int(10 * 0.75) at the large size"
    image = json.loads(read_text_chunks(shell.previous[-1].path)["sd-metadata"])["image"]
    assert image["hires_fix"] is True and image["hires_method"] == "latent" and image["hires_strength"] == 0.75
    assert image["hires"] == {"first_width": 64, "first_height": 64, "first_steps": 10}
    assert image["steps_run"] == 7
    fetched, replayed = fetched_and_replayed(shell, tmp_path)
    assert "--hires_fix --hires_strength 0.75 --hires_method latent" in fetched
    assert np.array_equal(picture, replayed)
    direct, direct_calls = unet_calls(shell, '"fire" -s 10 -S 4 -W 128 -H 128')
    assert direct_calls == 10 and not np.array_equal(picture, direct)


def test_hires_fix_by_lanczos_and_other_aspects(shell):
    latent = run(shell, '"fire" -s 6 -S 2 -W 192 -H 96 --hires_strength 0.5')
    before = len(shell.said)
    lanczos = run(shell, '"fire" -s 6 -S 2 -W 192 -H 96 --hires_method lanczos --hires_strength 0.5')
    assert latent.shape == lanczos.shape == (96, 192, 3)
    assert "hires fix: 88x48 first (6 steps), then lanczos x2.18 to 192x96 and 3 of 6 steps at strength 0.5" \
        in shell.said[before:], "the model's area (64 x 64) with the aspect asked for, in multiples of 8"
    assert not np.array_equal(latent, lanczos)
    assert np.array_equal(lanczos, run(shell, '"fire" -s 6 -S 2 -W 192 -H 96 --hires_method lanczos '
                                              '--hires_strength 0.5'))


def test_hires_fix_at_the_model_size_is_one_pass(shell):
    plain = run(shell, '"fire" -s 6 -S 9')
    before = len(shell.said)
    fixed = run(shell, '"fire" -s 6 -S 9 --hires_fix')
    assert "hires fix: 64x64 is not larger than the model's 64x64: one pass makes it" in shell.said[before:]
    assert np.array_equal(plain, fixed)


def test_hires_fix_with_several_images_refines_each(shell):
    run(shell, '"fire" -s 6 -S 30 -n 2 -W 96 -H 96 --hires_fix')
    pair = [np.asarray(Image.open(out.path)) for out in shell.previous]
    alone = run(shell, '"fire" -s 6 -S 31 -W 96 -H 96 --hires_fix')
    assert not np.array_equal(pair[0], pair[1])
    assert np.abs(pair[1].astype(float) - alone).max() <= 2, "image k of a batch is its seed alone"


@pytest.mark.parametrize("line, said", [
    ('"fire" --hires_strength 0', "--hires_strength must be in (0, 1], got 0.0"),
    ('"fire" --hires_method nearest', "--hires_method must be one of latent, lanczos; got 'nearest'"),
    ('"fire" -I x.png --hires_fix -f 0.5 --hires_strength 0.6', "with -I/--init_img, --hires_fix refines the "
                                                                "picture at --hires_strength 0.6, and -f/--strength "
                                                                "says 0.5: give one of them"),
    ('"fire" --hires_fix --strip', "--hires_fix runs two passes; not with --refiner, --strip"),
])
def test_hires_mistakes_are_one_line(shell, line, said):
    assert said in refused(shell, line)


def first_unet_input(shell, line: str):
    """The latents of the first UNet call of a one-image command (guidance batches them twice)."""
    seen = []
    unet = shell.manager.active.txt2img.unet
    hook = unet.register_forward_pre_hook(lambda module, args: seen.append(args[0][0].clone()) if not seen else None)
    try:
        run(shell, line)
    finally:
        hook.remove()
    return seen[0]


def roughness(latents) -> float:
    """How much neighbouring latent values differ, relative to their spread: about 1.13 for white noise."""
    return float((latents[..., 1:] - latents[..., :-1]).abs().mean() / latents.std())


def test_perlin_mixes_smooth_noise_into_the_start(shell, tmp_path):
    plain = first_unet_input(shell, '"fire" -s 6 -S 8 -W 128 -H 128')
    mixed = first_unet_input(shell, '"fire" -s 6 -S 8 -W 128 -H 128 --perlin 0.6')
    pure = first_unet_input(shell, '"fire" -s 6 -S 8 -W 128 -H 128 --perlin 1')
    assert 1.0 < roughness(plain) < 1.25
    assert roughness(pure) < 0.75 and roughness(pure) < roughness(mixed) < roughness(plain)
    picture = run(shell, '"fire" -s 6 -S 8 --perlin 0.3')
    fetched, replayed = fetched_and_replayed(shell, tmp_path)
    assert "--perlin 0.3" in fetched and np.array_equal(picture, replayed)


def decoded_latents(shell, line: str):
    """The latents the VAE decodes (scaled back as the sampler left them)."""
    seen = []
    vae = shell.manager.active.txt2img.vae
    first = vae.post_quant_conv if vae.post_quant_conv is not None else vae.decoder
    hook = first.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    try:
        picture = run(shell, line)
    finally:
        hook.remove()
    return seen[-1] * vae.config.scaling_factor, picture


def test_threshold_keeps_the_latents_within_it(shell, tmp_path):
    plain, plain_picture = decoded_latents(shell, '"fire" -s 10 -S 6 -C 30')
    assert float(plain.abs().max()) > 2.0, "a high -C scale drives latents far out"
    held, picture = decoded_latents(shell, '"fire" -s 10 -S 6 -C 30 --threshold 1.5')
    assert float(held.abs().max()) <= 1.5 + 1e-5
    assert not np.array_equal(picture, plain_picture)
    fetched, replayed = fetched_and_replayed(shell, tmp_path)
    assert "--threshold 1.5" in fetched and np.array_equal(picture, replayed)


def test_symmetry_mirrors_the_picture(shell, tmp_path):
    def asymmetry(picture, axis):
        return float(np.abs(picture - np.flip(picture, axis=axis)).mean())

    # measured on the demo model: 12.3 levels left-right for the plain picture, 3.9 mirrored at 0.8 (the demo's
    # VAE is not mirror-symmetric: exactly mirrored latents decode 4 levels apart)
    plain = run(shell, '"fire" -s 10 -S 12 -W 96 -H 96')
    h = run(shell, '"fire" -s 10 -S 12 -W 96 -H 96 --h_symmetry_time_pct 0.8')
    v = run(shell, '"fire" -s 10 -S 12 -W 96 -H 96 --v_symmetry_time_pct 0.8')
    assert asymmetry(h, 1) < asymmetry(plain, 1) / 2.5, "left-right symmetric"
    assert asymmetry(v, 0) < asymmetry(plain, 0) / 2.5, "top-bottom symmetric"
    assert asymmetry(h, 0) > asymmetry(h, 1) * 2 and asymmetry(v, 1) > asymmetry(v, 0) * 2, "only the axis asked"
    both = run(shell, '"fire" -s 10 -S 12 -W 96 -H 96 --h_symmetry_time_pct 0.3 --v_symmetry_time_pct 0.6')
    fetched, replayed = fetched_and_replayed(shell, tmp_path)
    assert "--h_symmetry_time_pct 0.3 --v_symmetry_time_pct 0.6" in fetched and np.array_equal(both, replayed)


def test_symmetry_mirrors_the_latents_once_at_its_step():
    import torch

    from invoke_shell.engine.effects import Effects
    from invoke_shell.request import parse

    effects = Effects(parse('"fire" -s 10 --h_symmetry_time_pct 0.3 --v_symmetry_time_pct 0.55'), [1])
    latents = torch.randn(1, 4, 6, 8, generator=torch.Generator().manual_seed(0))
    seen = []
    for step in range(1, 11):
        latents = effects.after_step(step, 10, latents)
        seen.append((torch.equal(latents, latents.flip(3)), torch.equal(latents, latents.flip(2))))
        latents = latents + 0.01 * torch.randn(latents.shape, generator=torch.Generator().manual_seed(step))
    assert seen[:2] == [(False, False)] * 2 and seen[2] == (True, False), "left onto right after step 3 of 10"
    assert seen[5] == (False, True) and not any(any(s) for s in seen[3:5] + seen[6:]), "top onto bottom after step 6, once each"


def test_karras_max_gives_karras_sigmas_below_n_steps(shell, tmp_path):
    twin = run(shell, '"fire" -s 8 -S 14 -A lms_k')
    before = len(shell.said)
    below = run(shell, '"fire" -s 8 -S 14 -A k_lms --karras_max 9')
    assert "--karras_max 9: 8 steps, fewer than 9: k_lms runs with Karras sigmas (lms_k)" in shell.said[before:]
    assert np.array_equal(twin, below)
    fetched, replayed = fetched_and_replayed(shell, tmp_path)
    assert "-A k_lms --karras_max 9" in fetched and np.array_equal(below, replayed)
    assert np.array_equal(run(shell, '"fire" -s 8 -S 14 -A k_lms --karras_max 8'),
                          run(shell, '"fire" -s 8 -S 14 -A k_lms')), "8 steps are not fewer than 8"


def test_init_color_matches_the_colours_of_an_image(shell, tmp_path):
    reference = run(shell, '"a green circle on a blue background" -s 10 -S 3')
    reference_path = shell.previous[-1].path
    plain = run(shell, '"fire" -s 8 -S 21')
    matched = run(shell, f'"fire" -s 8 -S 21 --init_color {reference_path}')

    def distance(a, b):  # between the mean colours
        return float(np.linalg.norm(a.reshape(-1, 3).mean(axis=0) - b.reshape(-1, 3).mean(axis=0)))

    # measured: the fire's mean colour is 180 levels from the blue picture's, matched 23
    assert distance(plain, reference) > 100 and distance(matched, reference) < distance(plain, reference) / 4
    fetched, replayed = fetched_and_replayed(shell, tmp_path)
    assert f"--init_color {reference_path}" in fetched and np.array_equal(matched, replayed)
    assert "--init_color: " in refused(shell, f'"fire" --init_color {tmp_path / "none.png"}')


def test_fnformat_names_the_files(shell):
    import os

    run(shell, '"a red fire [smoke]" -s 3 -S 77 -A k_euler --fnformat {prefix}-{sampler}-{steps}-{seed}-{prompt}.png')
    assert os.path.basename(shell.previous[-1].path) == "000001-k_euler-3-77-a red fire.png"
    run(shell, '"fire" -s 3 -S 77 --fnformat {model_id}.{seed}.png')
    assert os.path.basename(shell.previous[-1].path) == "demo.77.png"
    assert "--fnformat: no placeholder {colour}" in refused(shell, '"fire" --fnformat {colour}.png')
    assert "--fnformat must be a file name ending in .png" in refused(shell, '"fire" --fnformat a/{seed}.png')


def test_individual_turns_a_launch_grid_off(demo, tmp_path):
    import os

    from invoke_shell.request import Defaults
    from invoke_shell.shell import Shell

    said: list[str] = []
    shell = Shell(demo, outdir=str(tmp_path / "out"), say=said.append, model="demo", defaults=Defaults(grid=True))
    shell.execute('"fire" -s 2 -S 1 -n 2')
    assert any(path.endswith(".grid.png") for path in os.listdir(tmp_path / "out")), "--grid at launch"
    shell.execute('"fire" -s 2 -S 1 -n 2 -i')
    assert sum(path.endswith(".grid.png") for path in os.listdir(tmp_path / "out")) == 1, "-i: no grid this time"
    shell.said = said
    assert "-i/--individual asks for no grid and -g/--grid for one" in refused(shell, '"fire" -n 2 -i -g')


def test_outcrop_grows_the_canvas_and_keeps_the_picture(shell, tmp_path):
    picture = run(shell, '"a red star on a blue background" -s 10 -S 7')
    init = shell.previous[-1].path
    before = len(shell.said)
    grown = run(shell, f'"a red star on a blue background" -s 10 -S 7 -I {init} -c top 16 right 24')
    assert grown.shape == (64 + 16, 64 + 24, 3), "the canvas grows by exactly what was asked"
    said = "\n".join(shell.said[before:])
    assert "outpainting: 64x64 -> 88x80 (top 16, right 24)" in said and "-f 0.9" in shell.said[-1]
    # the seam band (12 px at the demo's size, 2.3's 96 at 512) and the blend (2 px, three radii) are
    # repainted; beyond them every pixel of the picture is kept
    kept = grown[16:, :64]
    assert np.array_equal(kept[6 + 6:, :64 - 12], picture[6 + 6:, :64 - 12])
    new = grown[:16]
    assert new.std() > 3 and not np.array_equal(new, np.zeros_like(new)), "the new area is painted"
    fetched, replayed = fetched_and_replayed(shell, tmp_path)
    assert "-c top 16 right 24" in fetched and np.array_equal(grown, replayed)


def test_out_direction_grows_half_the_picture(shell):
    run(shell, '"fire" -s 6 -S 2')
    init = shell.previous[-1].path
    assert run(shell, f'"fire" -s 6 -S 2 -I {init} -D right').shape == (64, 96, 3)
    assert run(shell, f'"fire" -s 6 -S 2 -I {init} -D bottom 8 -f 0.8').shape == (72, 64, 3)


def test_force_outpaint_paints_the_transparent_area_from_the_picture(shell, tmp_path):
    run(shell, '"a red star on a blue background" -s 10 -S 7')
    holed = Image.open(shell.previous[-1].path).convert("RGBA")
    alpha = Image.new("L", holed.size, 255)
    alpha.paste(0, (40, 0, 64, 64))  # the right part erased
    holed.putalpha(alpha)
    holed.save(tmp_path / "holed.png")
    original = np.asarray(holed.convert("RGB")).astype(float)
    painted = run(shell, f'"a red star on a blue background" -s 10 -S 7 -I {tmp_path / "holed.png"} -f 0.9 '
                         '--force_outpaint --seam_size 8 --seam_blur 1')
    assert np.array_equal(painted[:, :40 - 4 - 3], original[:, :40 - 4 - 3]), "the opaque part is kept"
    assert painted[:, 44:].std() > 3, "the erased part is painted"
    assert "--force_outpaint: the init image has no transparent areas" in refused(
        shell, f'"fire" -s 2 -I {shell.previous[-1].path} --force_outpaint')


def test_outcrop_on_a_9_channel_inpainting_model(tmp_path, cache_dir):
    from invoke_shell.models.builtin import build_tiny
    from invoke_shell.models.manager import ModelManager
    from invoke_shell.models.registry import ModelEntry, Registry
    from invoke_shell.shell import Shell

    build_tiny(tmp_path / "inpainting", seed=1, in_channels=9)
    registry = Registry((ModelEntry("inp", "", "diffusers", path=str(tmp_path / "inpainting"), default=True),), None)
    said: list[str] = []
    shell = Shell(ModelManager(registry, device="cpu", precision="float32"), outdir=str(tmp_path / "out"),
                  say=said.append, model="inp")
    shell.said = said
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    grown = run(shell, f'"fire" -s 6 -S 2 -I {tmp_path / "p.png"} -c left 32')
    assert grown.shape == (64, 96, 3)
    original = np.asarray(Image.open(tmp_path / "p.png")).astype(float)
    assert np.array_equal(grown[:, 32 + 12:], original[:, 12:]), "beyond the seam the picture is kept"
    assert grown[:, :20].std() > 3, "the new area is painted"


@pytest.mark.parametrize("line, said", [
    ('"fire" -I {init} -c top 12', "-c/--outcrop top 12: this model's pictures grow in multiples of 8 pixels; "
                                   "give 8 or 16"),
    ('"fire" -c top 16', "-c/--outcrop, -D/--out_direction and --force_outpaint paint around a picture"),
    ('"fire" -I {init} -c top 16 -D left', "-c/--outcrop and -D/--out_direction both grow the canvas"),
    ('"fire" -I {init} -c up 16', "-c/--outcrop: the side must be one of top, bottom, left, right; got 'up'"),
    ('"fire" --seam_size 8', "--seam_size shapes outpainting"),
])
def test_outpainting_mistakes_are_one_line(shell, line, said):
    run(shell, '"fire" -s 2 -S 1')
    assert said in refused(shell, line.format(init=shell.previous[-1].path))


def test_embiggen_enlarges_and_refines_tile_by_tile(shell, tmp_path):
    run(shell, '"a red star on a blue background" -s 10 -S 7')
    init = shell.previous[-1].path
    before = len(shell.said)
    big = run(shell, f'"a red star on a blue background" -s 10 -S 7 -I {init} --embiggen 2.5')
    assert big.shape == (160, 160, 3), "64 x 2.5"
    assert ("embiggen: 64x64 x2.5 -> 160x160 by Lanczos (--upscaler lanczos: no upscaler model, so the upscale "
            "strength 0.75 has nothing to blend), 9 tiles of 64x64 overlapping 16 px, each 4 of 10 steps at strength "
            "0.4") in shell.said[before:]
    lanczos = np.asarray(Image.open(init).resize((160, 160), Image.Resampling.LANCZOS)).astype(float)
    assert np.abs(big - lanczos).mean() > 2, "every tile is refined"
    fetched, replayed = fetched_and_replayed(shell, tmp_path)
    assert "-f 0.4 --embiggen 2.5 --upscaler lanczos" in fetched and np.array_equal(big, replayed)


def test_embiggen_tiles_refines_only_those_tiles(shell):
    run(shell, '"a red star on a blue background" -s 10 -S 7')
    init = shell.previous[-1].path
    some = run(shell, f'"a red star on a blue background" -s 10 -S 7 -I {init} -embiggen 2.5 -embiggen_tiles 2 9')
    lanczos = np.asarray(Image.open(init).resize((160, 160), Image.Resampling.LANCZOS)).astype(float)
    # tiles of 64 start at 0, 48 and 96 on each axis: tile 2 is (48, 0)-(112, 64), tile 9 (96, 96)-(160, 160)
    changed = np.abs(some - lanczos).sum(-1) > 0
    outside = np.ones((160, 160), bool)
    outside[0:64, 48:112] = outside[96:160, 96:160] = False
    assert not changed[outside].any(), "the other tiles stay as the enlarged picture"
    assert changed[8:56, 56:104].mean() > 0.5 and changed[104:152, 104:152].mean() > 0.5
    assert "--embiggen_tiles 12: the enlarged picture has 9 tiles" in refused(
        shell, f'"fire" -s 10 -S 7 -I {init} --embiggen 2.5 --embiggen_tiles 12')


@pytest.mark.parametrize("line, said", [
    ('"fire" --embiggen 2', "--embiggen enlarges a picture: add -I/--init_img"),
    ('"fire" -I x.png --embiggen 9', "--embiggen: the scale must be in [1, 8], got 9.0"),
    ('"fire" -I x.png --embiggen 2 1 0.2 4', "--embiggen takes at most 3 numbers"),
    ('"fire" -I x.png --embiggen_strength 0.3', "--embiggen_tiles and --embiggen_strength shape --embiggen"),
])
def test_embiggen_mistakes_are_one_line(shell, line, said):
    assert said in refused(shell, line)


def test_hires_fix_on_an_init_picture_enlarges_and_refines_it(shell, tmp_path):
    run(shell, '"fire" -s 10 -S 4')
    init = shell.previous[-1].path
    before = len(shell.said)
    picture, calls = unet_calls(shell, f'"fire" -s 10 -S 4 -I {init} -W 128 -H 128 --hires_fix')
    said = shell.said[before:]
    assert picture.shape == (128, 128, 3) and calls == 7
    assert "hires fix: the init picture 64x64 is the first pass, enlarged by lanczos to 128x128, then refined" in said
    assert "-f 0.75 --hires_fix --hires_strength 0.75 --hires_method lanczos" in said[-1]
    assert "--hires_fix with -I/--init_img enlarges the picture: give -W/-H larger than its 64x64" in refused(
        shell, f'"fire" -s 10 -I {init} --hires_fix')
    assert "--hires_method lanczos" in refused(shell, f'"fire" -I {init} -W 128 --hires_method latent')


def test_fix_works_on_a_picture_with_its_own_prompt_and_seed(shell, tmp_path):
    import json

    from invoke_shell.outputs.pngio import read_text_chunks

    original = run(shell, '"a red star on a blue background" -s 10 -S 7 -C 6')
    made = shell.previous[-1].path
    dream = read_text_chunks(made)["Dream"]
    before = len(shell.said)
    grown = run(shell, f"!fix {made} -c top 16")
    said = shell.said[before:]
    assert said[0] == (f'!fix runs: "a red star on a blue background" -s 10 -S 7 -C 6.0 -A k_lms -I {made} -c top 16')
    assert grown.shape == (80, 64, 3) and np.array_equal(grown[16 + 12:], original[12:])
    meta = json.loads(read_text_chunks(shell.previous[-1].path)["sd-metadata"])["image"]
    assert meta["postprocessing"] == [{"tool": "outcrop", "dream_command": dream}]
    fetched, replayed = fetched_and_replayed(shell, tmp_path)
    assert f"-I {made} -f 0.9 -c top 16" in fetched and np.array_equal(grown, replayed)
    assert run(shell, f"!fix {made} --embiggen 2").shape == (128, 128, 3)
    assert run(shell, f"!fix {made} --hires_fix -W 96 -H 96").shape == (96, 96, 3)
    run(shell, f'!fix {made} --new_prompt "fire" -c left 8')
    assert '"fire" -s 10 -S 7' in shell.said[-1] and "-c left 8" in shell.said[-1]


def test_fix_mistakes_are_one_line(shell, tmp_path):
    run(shell, '"fire" -s 2 -S 1')
    made = shell.previous[-1].path
    Image.new("RGB", (64, 64), (9, 9, 9)).save(tmp_path / "bare.png")
    assert "!fix needs a picture and what to do" in refused(shell, "!fix")
    for name in ("!fix", "!show", "!diff"):
        assert f"{name}: cannot split the line into words (no closing quotation): check the quotes" in refused(
            shell, f'{name} "{made} -c top 8')
    assert f"!fix {made}: say what to do: -c/--outcrop" in refused(shell, f"!fix {made}")
    assert "to redraw it, use !fetch" in refused(shell, f"!fix {made} -s 5")
    assert "records no command to work from; give --new_prompt" in refused(shell, f"!fix {tmp_path / 'bare.png'} -c top 8")
    assert "-c/--outcrop: the side must be one of" in refused(shell, f"!fix {made} -c up 8")
    assert len(run(shell, f'!fix {tmp_path / "bare.png"} --new_prompt "fire" -S 3 -D top')) == 96


def test_verify_replays_every_tool(shell, tmp_path):
    """!verify runs a PNG's command through the same stages as the shell, the tools' passes included."""
    run(shell, '"a red star on a blue background" -s 6 -S 7')
    init = shell.previous[-1].path
    made = []
    for line in ('"fire" -s 6 -S 3 -W 96 -H 96 --hires_fix', f'"fire" -s 6 -S 3 -I {init} -c right 16',
                 f'"fire" -s 6 -S 3 -I {init} --embiggen 1.5', f'"fire" -s 6 -S 3 --init_color {init}',
                 '"fire" -s 6 -S 3 --seamless --threshold 1.5 --h_symmetry_time_pct 0.5 --perlin 0.2'):
        run(shell, line)
        made.append(shell.previous[-1].path)
    before = len(shell.said)
    assert shell.execute("!verify " + " ".join(made)), shell.said[before:]
    assert shell.said[-1] == "verify: 5 of 5 identical", shell.said[before:]


def test_completion_knows_the_new_switches():
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from invoke_shell.command_set import default_commands
    from invoke_shell.completion import ShellCompleter

    def texts(text):
        completer = ShellCompleter(default_commands())
        return sorted(c.text for c in completer.get_completions(Document(text), CompleteEvent()))

    assert texts('"fire" --hires') == ["--hires_fix", "--hires_method", "--hires_strength"]
    assert texts('"fire" -I a.png -c ') == ["bottom", "left", "right", "top"]
    assert texts('"fire" --hires_method l') == ["lanczos", "latent"]
    assert texts('"fire" --seamless_axes ') == ["x", "y"]
    assert "!fix" in texts("!f") and "!dream" in texts("!d")


def test_outpainting_several_images_each_from_its_own_canvas(shell):
    """Each image of `-n 2` is painted from its own tile-filled canvas, at --seam_strength for the seam, and
    equals its seed run alone."""
    run(shell, '"a red star on a blue background" -s 6 -S 7')
    init = shell.previous[-1].path
    picture, calls = unet_calls(shell, f'"fire" -s 10 -S 10 -I {init} -c top 16 --seam_strength 0.3 --seam_steps 10')
    assert calls == 9 + 3, "int(10 x 0.9) for the new area, int(10 x 0.3) for the seam"
    run(shell, f'"fire" -s 10 -S 10 -n 2 -I {init} -c top 16')
    pair = [np.asarray(Image.open(o.path)).astype(float) for o in shell.previous]
    alone = run(shell, f'"fire" -s 10 -S 11 -I {init} -c top 16')
    assert np.array_equal(pair[1], alone)


def test_review_findings_are_one_line_or_work(shell, tmp_path, demo):
    """What a review of the image tools found: each now works or is one line."""
    from invoke_shell.request import Defaults
    from invoke_shell.shell import Shell

    run(shell, '"a red star on a blue background" -s 4 -S 7')
    made = shell.previous[-1].path
    # embiggen's tile size from -W/-H not on the model's grid: floored to it (at least two multiples)
    assert run(shell, f'"fire" -s 4 -S 7 -I {made} --embiggen 1.5 -W 36 -H 36').shape == (96, 96, 3)
    assert run(shell, f'"fire" -s 4 -S 7 -I {made} --embiggen 1.5 -W 8 -H 8').shape == (96, 96, 3)
    (tmp_path / "notes.txt").write_text("not a picture")
    shell.draw = lambda text: None  # as in a terminal
    assert "!show: " in refused(shell, f"!show {tmp_path / 'notes.txt'}")
    (tmp_path / "file").write_text("x")
    assert "!diff --save " in refused(shell, f"!diff {made} {made} --save {tmp_path / 'file' / 'x.png'}")
    assert "is one of the two pictures" in refused(shell, f"!diff {made} {made} --save {made}")
    assert "a placeholder takes at most a width of 1 to 2 digits" in refused(
        shell, '"fire" --fnformat {prompt:>2000000000}.png')
    # !fix --new_prompt on a picture without metadata takes the session's defaults
    Image.new("RGB", (64, 64), (9, 9, 9)).save(tmp_path / "bare.png")
    said: list[str] = []
    quick = Shell(demo, outdir=str(tmp_path / "out2"), say=said.append, model="demo", defaults=Defaults(steps=3))
    assert quick.execute(f'!fix {tmp_path / "bare.png"} --new_prompt "fire" -S 2 -D top'), said
    assert said[0].startswith('!fix runs: "fire" -s 3 -C 7.5 -A k_lms'), said[0]
