"""Stable Diffusion XL base, run from a diffusers folder: a tiny SDXL (SDXL's topology at toy widths, built by
the project as builtin:tiny is) loaded from models.yaml with no network, through the shell as a user types."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from invoke_shell.models.builtin import build_tiny_xl
from test_singlefile import _open_clip_to_ldm
from test_singlefile import _unet_to_ldm as sd_unet_to_ldm
from test_singlefile import _vae_to_ldm


@pytest.fixture(scope="module")
def xl(tmp_path_factory, cache_dir):
    from invoke_shell.models.manager import ModelManager
    from invoke_shell.models.registry import load_registry

    root = tmp_path_factory.mktemp("xl")
    build_tiny_xl(root / "tiny-xl")
    (root / "models.yaml").write_text("xl:\n  description: a tiny SDXL\n  format: diffusers\n  path: tiny-xl\n"
                                      "  default: true\n")
    manager = ModelManager(load_registry(str(root / "models.yaml")), device="cpu", precision="float32")
    return manager, root


@pytest.fixture
def shell(xl, tmp_path):
    from invoke_shell.models.library import Library
    from invoke_shell.shell import Shell

    manager, root = xl
    said: list[str] = []
    sh = Shell(manager, outdir=str(tmp_path / "out"), say=said.append, library=Library([tmp_path / "loras"], []))
    sh.said = said
    return sh


def run(shell, line: str) -> np.ndarray:
    before = len(shell.said)
    assert shell.execute(line), shell.said[before:]
    return np.asarray(Image.open(shell.previous[-1].path))


def test_txt2img_is_sdxl_and_repeats_exactly(shell):
    first = run(shell, '"a red fire [smoke]" -s 4 -S 1')
    model = shell.manager.active
    assert model.family.key == "sdxl" and type(model.txt2img).__name__ == "StableDiffusionXLPipeline"
    assert type(model.img2img).__name__ == "StableDiffusionXLImg2ImgPipeline"
    assert first.shape == (64, 64, 3), "the model's own size (its UNet's sample size)"
    assert np.array_equal(first, run(shell, '"a red fire [smoke]" -s 4 -S 1'))
    assert not np.array_equal(first, run(shell, '"(a red)1.4 fire [smoke]" -s 4 -S 1')), "compel's weighting reaches it"


def test_size_conditioning_is_recorded(shell):
    import json

    from invoke_shell.outputs.pngio import read_text_chunks

    run(shell, '"fire" -s 2 -S 1 -W 64 -H 48')
    image = json.loads(read_text_chunks(shell.previous[-1].path)["sd-metadata"])["image"]
    assert image["size_conditioning"] == {"original_size": [48, 64], "target_size": [48, 64],
                                          "crops_coords_top_left": [0, 0]}


def test_same_pixels_as_diffusers_own_pipeline(shell, xl):
    import torch
    from diffusers import StableDiffusionXLPipeline

    from invoke_shell.engine.samplers import make_scheduler

    ours = run(shell, '"fire" -s 4 -S 3 -A k_lms')
    raw = StableDiffusionXLPipeline.from_pretrained(xl[1] / "tiny-xl", dtype=torch.float32, local_files_only=True)
    raw.scheduler = make_scheduler("k_lms", shell.manager.active.sampler_config)  # the table's k_lms
    raw.set_progress_bar_config(disable=True)
    theirs = raw("fire", negative_prompt="", num_inference_steps=4, height=64, width=64, guidance_scale=7.5,
                 generator=torch.Generator("cpu").manual_seed(3)).images[0]
    assert np.array_equal(ours, np.asarray(theirs))


def test_the_pooled_embedding_comes_from_the_pass_that_encoded_the_prompt(shell):
    """A plain prompt's pooled embedding is taken from the conditioning pass (the second encoder runs once per
    prompt, as in diffusers' encode_prompt), bit for bit what compel's own second pass gives; a weighted prompt,
    whose encoded tokens differ from its raw text's, still gets compel's pass."""
    from invoke_shell.engine.prompts import _compel, encode

    model = shell.manager.activate("xl")
    provider = _compel(model).second.conditioning_provider
    passes = []
    hook = model.txt2img.text_encoder_2.register_forward_pre_hook(lambda *_: passes.append(1))
    try:
        for positive, negative, most in [("a red fire", "smoke", 2), ("a red fire", "", 2),
                                         ("(a red)1.4 fire", "smoke", 5)]:
            passes.clear()
            encoded = encode(model, positive, negative)
            assert len(passes) <= most, (positive, len(passes))
            for text, pooled in [(positive, encoded.pooled), (negative, encoded.negative_pooled)]:
                assert torch.equal(pooled, provider.get_pooled_embeddings([text])), text
    finally:
        hook.remove()


def test_img2img_runs_the_truncated_schedule(shell):
    calls = []
    run(shell, '"fire" -s 4 -S 5')
    init = shell.previous[-1].path
    unet = shell.manager.active.txt2img.unet
    hook = unet.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        before = len(shell.said)
        picture = run(shell, f'"ice" -s 10 -S 5 -I {init} -f 0.7 -A k_euler')
    finally:
        hook.remove()
    assert "img2img: strength 0.70 x 10 steps -> 7 of 10 steps from the init image" in shell.said[before:]
    assert len(calls) == 7
    assert np.array_equal(picture, run(shell, f'"ice" -s 10 -S 5 -I {init} -f 0.7 -A k_euler'))


def test_inpainting_keeps_the_unmasked_area(shell, tmp_path):
    run(shell, '"fire" -s 4 -S 6')
    init = shell.previous[-1].path
    mask = Image.new("RGBA", (64, 64), (255, 255, 255, 255))
    mask.paste((0, 0, 0, 0), (16, 16, 48, 48))
    mask.save(tmp_path / "mask.png")
    painted = run(shell, f'"ice" -s 4 -S 6 -I {init} -f 0.9 -M {tmp_path / "mask.png"}')
    original = np.asarray(Image.open(init))
    assert np.array_equal(painted[:6], original[:6]), "far from the mask the init image is kept"
    assert not np.array_equal(painted[24:40, 24:40], original[24:40, 24:40])


def test_a_9_channel_sdxl_inpainting_model_inpaints(xl, tmp_path):
    """An SDXL inpainting UNet (latents + mask + masked-image latents) from models.yaml: diffusers'
    StableDiffusionXLInpaintPipeline runs it; the unmasked area is kept and the command repeats exactly."""
    from invoke_shell.models.library import Library
    from invoke_shell.models.manager import ModelManager
    from invoke_shell.models.registry import load_registry
    from invoke_shell.shell import Shell

    build_tiny_xl(tmp_path / "xl-inpaint", seed=3, in_channels=9)
    (tmp_path / "models.yaml").write_text("xli:\n  description: tiny SDXL inpainting\n  format: diffusers\n"
                                          "  path: xl-inpaint\n  default: true\n")
    manager = ModelManager(load_registry(str(tmp_path / "models.yaml")), device="cpu", precision="float32")
    said: list[str] = []
    sh = Shell(manager, outdir=str(tmp_path / "out"), say=said.append, library=Library([], []))
    sh.said = said
    init = tmp_path / "init.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(init)
    mask = Image.new("L", (64, 64), 255)
    mask.paste(0, (16, 16, 48, 48))
    mask.save(tmp_path / "mask.png")
    line = f'"ice" -s 4 -S 6 -I {init} -f 0.9 -M {tmp_path / "mask.png"}'
    painted = run(sh, line)
    assert manager.active.is_inpainting and type(manager.active.inpaint).__name__ == "StableDiffusionXLInpaintPipeline"
    original = np.asarray(Image.open(init))
    assert np.array_equal(painted[:6], original[:6]), "far from the mask the init image is kept"
    assert not np.array_equal(painted[24:40, 24:40], original[24:40, 24:40])
    assert np.array_equal(painted, run(sh, line))


def test_batches_and_variations(shell):
    run(shell, '"fire" -s 3 -S 9 -n 2')
    assert [o.seed for o in shell.previous] == [9, 10]
    run(shell, '"fire" -s 3 -S 9 -v 0.3 -n 2')
    assert len(shell.previous) == 2


def test_what_does_not_run_on_sdxl_yet_is_one_line(shell, tmp_path):
    from invoke_shell.toymodel.adapters import lora_layers, write_lora

    for line, message in (('"fire" -s 2 --clip_skip 2', "--clip_skip: SDXL models already read the prompt"),
                          ('"a red circle.swap(square)" -s 2', ".swap() runs on Stable Diffusion 1.x and 2.x"),
                          ('"a <missing> fire" -s 2', "no embedding named 'missing'")):
        before = len(shell.said)
        assert not shell.execute(line)
        assert any(message in said for said in shell.said[before:]), shell.said[before:]
    folder = tmp_path / "loras"
    folder.mkdir(exist_ok=True)
    pipe = shell.manager.active.txt2img
    write_lora(lora_layers(pipe.unet, pipe.text_encoder, seed=1), folder / "xl_style.safetensors", "kohya")
    plain = run(shell, '"fire" -s 3 -S 2')
    styled = run(shell, '"fire withLora(xl_style,0.8)" -s 3 -S 2')
    assert not np.array_equal(plain, styled)
    assert np.array_equal(run(shell, '"fire" -s 3 -S 2'), plain)


# ---------------------------------------------------------------- the refiner


@pytest.fixture(scope="module")
def with_refiner(xl):
    from invoke_shell.models.registry import load_registry

    manager, root = xl
    build_tiny_xl(root / "tiny-refiner", seed=1, refiner=True)
    (root / "models.yaml").write_text((root / "models.yaml").read_text()
                                      + "ref:\n  description: a tiny SDXL refiner\n  format: diffusers\n  path: tiny-refiner\n")
    manager.set_registry(load_registry(str(root / "models.yaml")))
    return manager, root


def test_the_refiner_takes_over_at_refiner_start(shell, with_refiner):
    import torch
    from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline

    from invoke_shell.engine.samplers import make_scheduler

    manager, root = with_refiner
    base_alone = run(shell, '"fire" -s 10 -S 4 -A k_euler')
    calls = {"base": 0, "ref": 0}
    before = len(shell.said)
    refined = run(shell, '"fire" -s 10 -S 4 -A k_euler --refiner ref --refiner_start 0.7')
    assert "refiner: ref runs the schedule from 0.7 on" in shell.said[before:]
    assert manager.active.name == "xl" and manager.cached("ref").family.key == "sdxl-refiner"
    assert not np.array_equal(refined, base_alone)
    hooks = [manager.active.txt2img.unet.register_forward_pre_hook(lambda *_: calls.__setitem__("base", calls["base"] + 1)),
             manager.cached("ref").txt2img.unet.register_forward_pre_hook(lambda *_: calls.__setitem__("ref", calls["ref"] + 1))]
    try:
        again = run(shell, '"fire" -s 10 -S 4 -A k_euler --refiner ref --refiner_start 0.7')
    finally:
        for hook in hooks:
            hook.remove()
    assert np.array_equal(refined, again) and calls == {"base": 7, "ref": 3}
    # what diffusers' documentation writes for the base + refiner hand-off gives the same pixels
    base = StableDiffusionXLPipeline.from_pretrained(root / "tiny-xl", dtype=torch.float32, local_files_only=True)
    refiner = StableDiffusionXLImg2ImgPipeline.from_pretrained(root / "tiny-refiner", dtype=torch.float32,
                                                               local_files_only=True)
    for pipe, model in ((base, manager.active), (refiner, manager.cached("ref"))):
        pipe.scheduler = make_scheduler("k_euler", model.sampler_config)
        pipe.set_progress_bar_config(disable=True)
    latents = base("fire", negative_prompt="", num_inference_steps=10, guidance_scale=7.5, height=64, width=64,
                   denoising_end=0.7, output_type="latent", generator=torch.Generator("cpu").manual_seed(4)).images
    theirs = refiner("fire", negative_prompt="", image=latents, num_inference_steps=10, guidance_scale=7.5,
                     denoising_start=0.7, generator=torch.Generator("cpu").manual_seed(4)).images[0]
    assert np.array_equal(refined, np.asarray(theirs))


def test_refiner_mistakes_are_one_line(shell, with_refiner):
    for line, message in (('"fire" -s 4 --refiner_start 0.5', "--refiner_start needs --refiner NAME"),
                          ('"fire" -s 4 --refiner nope', "unknown model 'nope'"),
                          ('"fire" -s 4 --refiner ref --refiner_start 1.5', "--refiner_start must be in (0, 1)"),
                          ('"fire" -s 4 --refiner xl', "refiner")):
        before = len(shell.said)
        ok = shell.execute(line)
        if message == "refiner":  # the base as its own refiner: an SDXL img2img model, allowed by diffusers
            assert ok, shell.said[before:]
            continue
        assert not ok and any(message in said for said in shell.said[before:]), shell.said[before:]
    before = len(shell.said)
    assert not shell.execute("!switch ref") or not shell.execute('"fire" -s 2')
    assert any("is an SDXL refiner: it refines a picture" in said for said in shell.said[before:]), shell.said[before:]
    shell.execute("!switch xl")


# ---------------------------------------------------------------- a single file, as SDXL fine-tunes are shared


def _unet_to_ldm(sd):
    """The tiny SDXL UNet (2 levels, 1 layer each) in LDM names."""
    return sd_unet_to_ldm(sd, 2, 1)


def _clip_to_ldm(sd, prefix):
    return {prefix + "text_model." + k.removeprefix("text_model."): v for k, v in sd.items()}

def xl_to_ldm(pipe):
    """The tiny SDXL in the original (LDM / SAI) single-file key layout, as SDXL fine-tunes are shared."""
    out = _unet_to_ldm(pipe.unet.state_dict())
    out.update(_vae_to_ldm(pipe.vae.state_dict(), 4, 1))
    out.update(_clip_to_ldm(pipe.text_encoder.state_dict(), "conditioner.embedders.0.transformer."))
    out.update(_open_clip_to_ldm(pipe.text_encoder_2.state_dict(), pipe.text_encoder_2.config.num_hidden_layers,
                                "conditioner.embedders.1.model."))
    return {k: v.contiguous() for k, v in out.items()}


def test_a_single_sdxl_file_loads_and_draws_what_its_folder_draws(xl, tmp_path):
    import shutil

    import torch
    from diffusers import StableDiffusionXLPipeline
    from safetensors.torch import save_file

    from invoke_shell.models.manager import ModelManager
    from invoke_shell.models.registry import load_registry
    from invoke_shell.models.singlefile import detect_family
    from invoke_shell.shell import Shell

    manager, root = xl
    folder = root / "tiny-xl"
    pipe = StableDiffusionXLPipeline.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
    save_file(xl_to_ldm(pipe), str(tmp_path / "tiny-xl.safetensors"))
    config = tmp_path / "config"  # the folder's configs, no weights (a user's config: for a non-standard size)
    shutil.copytree(folder, config, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    assert detect_family(tmp_path / "tiny-xl.safetensors") == "sdxl"
    (tmp_path / "models.yaml").write_text("file:\n  weights: tiny-xl.safetensors\n  config: config\n  default: true\n"
                                          f"folder:\n  format: diffusers\n  path: {folder}\n")
    files = ModelManager(load_registry(str(tmp_path / "models.yaml")), device="cpu", precision="float32")
    said: list[str] = []
    shell = Shell(files, outdir=str(tmp_path / "out"), say=said.append)
    shell.said = said
    from_file = run(shell, '"fire [smoke]" -s 4 -S 2')
    assert files.active.family.key == "sdxl" and type(files.active.txt2img).__name__ == "StableDiffusionXLPipeline"
    assert shell.execute("!switch folder")
    assert np.array_equal(from_file, run(shell, '"fire [smoke]" -s 4 -S 2'))


def test_models_shows_the_family(shell):
    run(shell, '"fire" -s 2 -S 1')
    before = len(shell.said)
    assert shell.execute("!models")
    assert any(line.startswith("xl ") and "[sdxl] float32" in line for line in shell.said[before:]), shell.said[before:]


def test_a_single_refiner_file_loads_and_refines_as_its_folder_does(with_refiner, tmp_path):
    import shutil

    from diffusers import StableDiffusionXLImg2ImgPipeline
    from safetensors.torch import save_file

    from invoke_shell.models.singlefile import detect_family

    manager, root = with_refiner
    folder = root / "tiny-refiner"
    pipe = StableDiffusionXLImg2ImgPipeline.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
    ldm = _unet_to_ldm(pipe.unet.state_dict())
    ldm.update(_vae_to_ldm(pipe.vae.state_dict(), 4, 1))
    ldm.update(_open_clip_to_ldm(pipe.text_encoder_2.state_dict(), pipe.text_encoder_2.config.num_hidden_layers,
                                 "conditioner.embedders.0.model."))
    save_file({k: v.contiguous() for k, v in ldm.items()}, str(root / "tiny-refiner.safetensors"))
    shutil.copytree(folder, root / "refiner-config", ignore=shutil.ignore_patterns("*.safetensors", "*.bin"),
                    dirs_exist_ok=True)
    assert detect_family(root / "tiny-refiner.safetensors") == "sdxl-refiner"
    from invoke_shell.models.registry import load_registry

    (root / "models.yaml").write_text((root / "models.yaml").read_text() + "ref-file:\n  weights: "
                                      "tiny-refiner.safetensors\n  config: refiner-config\n")
    manager.set_registry(load_registry(str(root / "models.yaml")))
    from invoke_shell.shell import Shell

    said: list[str] = []
    shell = Shell(manager, outdir=str(tmp_path / "out"), say=said.append, model="xl")
    shell.said = said
    from_folder = run(shell, '"fire" -s 10 -S 4 -A k_euler --refiner ref --refiner_start 0.7')
    from_file = run(shell, '"fire" -s 10 -S 4 -A k_euler --refiner ref-file --refiner_start 0.7')
    assert manager.cached("ref-file").family.key == "sdxl-refiner"
    assert np.array_equal(from_folder, from_file)
