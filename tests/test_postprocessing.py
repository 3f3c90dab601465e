"""Upscaling (-U), face restoration (-G, -ft, -cf), --save_original, text masks (-tm, !mask) and !fix with
them, on random-weight models of the real architectures (an RRDBNet ESRGAN, GFPGAN, CodeFormer, a tiny
CLIPSeg) named by a models.yaml beside the demo model, typed as a user types them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from postprocessing_models import build, drawn_face
from recording import recording_shell


@pytest.fixture(scope="module")
def root(tmp_path_factory, cache_dir):
    folder = tmp_path_factory.mktemp("postprocessing")
    build(folder)
    drawn_face(128).save(folder / "face.png")
    return folder


@pytest.fixture(scope="module")
def manager(root):
    from invoke_shell.models.manager import ModelManager
    from invoke_shell.models.registry import load_registry

    manager = ModelManager(load_registry(root / "models.yaml"), device="cpu", precision="float32")
    manager.activate("demo")
    return manager


@pytest.fixture
def shell(manager, tmp_path):
    return recording_shell(manager, tmp_path / "out", "demo")


def run(shell, line: str) -> list[str]:
    before = len(shell.said)
    assert shell.execute(line), shell.said[before:]
    said = shell.said[before:]
    assert not any(s.startswith(("error", "unexpected")) for s in said), said
    return said


def refused(shell, line: str) -> str:
    before = len(shell.said)
    shell.execute(line)
    said = shell.said[before:]
    assert len(said) == 1 and said[0].startswith("error: "), said
    return said[0]


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(float)


def metadata(path) -> dict:
    return json.loads(Image.open(path).text["sd-metadata"])["image"]


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def written(shell) -> list[str]:
    return sorted(n for n in os.listdir(shell.outdir) if not n.startswith(".")) if os.path.isdir(shell.outdir) else []


# -U/--upscale

def test_upscale_enlarges_by_the_scale_asked_and_records_the_model(shell, root):
    said = run(shell, '"fire" -s 6 -S 3 -U 2')
    assert "postprocessing: enlarged x2 by realesrgan-x4 (ESRGAN x4) at strength 0.75" in said
    path = shell.previous[-1].path
    assert Image.open(path).size == (128, 128)  # the demo model draws 64 x 64
    assert Image.open(path).text["Dream"].endswith("-U 2.0 0.75 --upscaler realesrgan-x4")
    meta = metadata(path)
    assert meta["upscale"] == [2.0, 0.75] and meta["upscaler"] == "realesrgan-x4"
    assert meta["upscaler_model"] == [{"name": "realesrgan-x4", "sha256": sha256(root / "weights/RealESRGAN_x4plus.pth"),
                                       "short_hash": sha256(root / "weights/RealESRGAN_x4plus.pth")[:12]}]


def test_the_strength_blends_the_models_picture_with_a_plain_enlargement(shell, manager):
    import torch
    from invoke_shell.engine.upscale import to_image, to_tensor

    run(shell, '"fire" -s 6 -S 3')
    plain = Image.open(shell.previous[-1].path).convert("RGB")
    run(shell, '"fire" -s 6 -S 3 -U 3 0.4 --upscaler realesrgan-x4')
    made = pixels(shell.previous[-1].path)
    assert made.shape == (192, 192, 3)
    descriptor = manager.tools.get("upscaler", "realesrgan-x4").model  # the model itself, on the whole picture
    with torch.inference_mode():
        model_picture = to_image(descriptor(to_tensor(plain))).resize((192, 192), Image.Resampling.LANCZOS)
    expected = Image.blend(plain.resize((192, 192), Image.Resampling.LANCZOS), model_picture, 0.4)
    assert np.abs(made - np.asarray(expected).astype(float)).max() <= 1


def test_tiles_give_the_picture_of_one_pass():
    """A model that reads only its own pixel (nearest x4): tiles with their overlap and edge padding add up to
    exactly the whole picture's output, whatever the tile size and the architecture's size rules."""
    import torch
    import torch.nn.functional as F
    from invoke_shell.engine.upscale import run_tiled

    class Needs:
        minimum, multiple_of, square = 8, 8, False

    picture = torch.rand(1, 3, 45, 70)
    whole = F.interpolate(picture, scale_factor=4, mode="nearest")
    for tile in (16, 20, 64):
        tiled = run_tiled(lambda x: F.interpolate(x, scale_factor=4, mode="nearest"), picture, 4, Needs, tile=tile)
        assert torch.equal(tiled, whole), tile


def test_a_scale_beyond_the_model_is_refused_before_anything_runs(shell):
    line = refused(shell, '"fire" -s 6 -S 3 -U 4 --upscaler realesrgan-x2')
    assert line == ("error: -U/--upscale 4: realesrgan-x2 (ESRGAN x2) enlarges 2 times at most; give -U 2 or less, "
                    "or another upscaler (--upscaler NAME)")
    assert written(shell) == []


def test_save_original_keeps_the_picture_from_before(shell):
    run(shell, '"fire" -s 6 -S 3')
    plain = pixels(shell.previous[-1].path)
    said = run(shell, '"fire" -s 6 -S 3 -U 2 --upscaler realesrgan-x2 --save_original')
    original, processed = [line.split(": ")[0] for line in said if ".png: " in line]
    assert original.endswith("000002.3.png") and processed.endswith("000002.3.postprocessed.png")
    assert np.array_equal(pixels(original), plain)
    assert Image.open(original).text["Dream"] == '"fire" -s 6 -S 3 -W 64 -H 64 -C 7.5 -A k_lms'
    assert Image.open(processed).size == (128, 128)
    assert "-U 2.0 0.75 --upscaler realesrgan-x2 --save_original" in Image.open(processed).text["Dream"]
    assert shell.previous[-1].path == processed  # -I -1 takes the processed one


def test_a_switch_whose_model_is_not_configured_names_the_stanza_to_add(tmp_path, manager):
    from invoke_shell.models.manager import ModelManager
    from invoke_shell.models.registry import BUILTIN

    bare = recording_shell(ModelManager(BUILTIN, device="cpu", precision="float32"), tmp_path / "out", "demo")
    said = bare.said
    drawn_face(64).save(tmp_path / "face.png")
    for line, stanza in (('"fire" -U 2', "realesrgan-x4: {format: upscaler, path: weights/RealESRGAN_x4plus.pth}"),
                         ('"fire" -G 0.5', "gfpgan: {format: facetool, path: weights/GFPGANv1.4.pth}"),
                         ('"fire" -G 0.5 -ft codeformer', "codeformer: {format: facetool, path: weights/codeformer.pth}"),
                         (f'"fire" -I {tmp_path / "face.png"} -tm hat',
                          "clipseg: {format: text_mask, path: weights/clipseg-rd64-refined}")):
        said.clear()
        bare.execute(line)
        assert len(said) == 1 and said[0].startswith("error: ") and stanza in said[0], said
        assert "docs/postprocessing.md" in said[0]
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


# -G/--facetool_strength, -ft, -cf

def face_box(path):
    from invoke_shell.engine.faces import crop_box, detect

    image = Image.open(path).convert("RGB")
    faces = detect(image)
    assert faces, "the drawn face is found"
    return crop_box(faces[0], image.width, image.height)


def test_faces_are_restored_inside_their_square_and_nothing_else_changes(shell, root):
    run(shell, f'"a face" -s 6 -S 3 -I {root / "face.png"} -f 0.2')
    plain_path = shell.previous[-1].path
    said = run(shell, f'"a face" -s 6 -S 3 -I {root / "face.png"} -f 0.2 -G 0.8')
    assert "postprocessing: faces by gfpgan (GFPGAN) at strength 0.8" in said
    assert not any("no face found" in line for line in said)
    restored, plain = pixels(shell.previous[-1].path), pixels(plain_path)
    box = face_box(plain_path)
    inside = np.zeros(plain.shape[:2], bool)
    inside[box.top:box.top + box.size, box.left:box.left + box.size] = True
    assert np.array_equal(restored[~inside], plain[~inside])
    assert np.abs(restored[inside] - plain[inside]).mean() > 1
    assert Image.open(shell.previous[-1].path).text["Dream"].endswith("-G 0.8 -ft gfpgan")
    assert metadata(shell.previous[-1].path)["facetool_model"][0]["name"] == "gfpgan"


def test_codeformer_takes_the_fidelity_and_gfpgan_refuses_it(shell, root):
    refusal = refused(shell, f'!fix {root / "face.png"} -G 1 -cf 0.5')
    assert refusal == ("error: -cf/--codeformer_fidelity is CodeFormer's; gfpgan (GFPGAN) is not CodeFormer: drop -cf "
                       "or name a CodeFormer stanza with -ft")
    made = []
    for fidelity in ("0.0", "1.0"):
        said = run(shell, f'!fix {root / "face.png"} -G 1 -ft codeformer -cf {fidelity}')
        assert f"postprocessing: faces by codeformer (CodeFormer) at strength 1, fidelity {float(fidelity):g}" in said
        made.append(pixels(shell.previous[-1].path))
    assert np.abs(made[0] - made[1]).mean() > 0.1


def test_a_picture_without_a_face_says_so_and_is_saved(shell):
    said = run(shell, '"fire" -s 6 -S 3 -G 0.5')
    assert "-G/--facetool_strength: no face found in the picture of seed 3; left as it was" in said
    assert os.path.exists(shell.previous[-1].path)


# -tm/--text_mask and !mask

def clipseg_selection(root, picture: Image.Image, text: str, threshold: float) -> np.ndarray:
    """CLIPSeg run here straight through transformers, as 2.3's txt2mask ran it: True where TEXT is."""
    import torch
    from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

    folder = str(root / "weights" / "clipseg-rd64-refined")
    model, processor = CLIPSegForImageSegmentation.from_pretrained(folder), CLIPSegProcessor.from_pretrained(folder)
    square = Image.new("RGB", (352, 352))
    scale = 352 / max(picture.size)
    square.paste(picture.resize((int(picture.width * scale), int(picture.height * scale)), Image.Resampling.LANCZOS))
    with torch.no_grad():
        logits = model(**processor(text=[text], images=[square], padding=True, return_tensors="pt")).logits
    chosen = (torch.sigmoid(logits)[0] >= threshold).numpy().astype(np.uint8) * 255
    side = max(picture.size)
    return np.asarray(Image.fromarray(chosen).resize((side, side), Image.Resampling.NEAREST))[
        :picture.height, :picture.width] > 127


def test_mask_writes_what_clipseg_returns_at_the_threshold(shell, root):
    drawn: list[str] = []
    shell.draw, shell.preview = drawn.append, "blocks"  # as in a terminal: the mask is drawn beside the picture
    said = run(shell, f'!mask {root / "face.png"} -tm "a face" 0.52')
    assert len(drawn) == 1 and "\u2580" in drawn[0]
    names = sorted(written(shell))
    assert names == ["000001.face.a_face.deselected.png", "000001.face.a_face.masked.png",
                     "000001.face.a_face.selected.png", "invoke_log.txt"]
    assert any("text mask: clipseg (CLIPSeg) finds 'a face' in" in line for line in said)
    mask = np.asarray(Image.open(os.path.join(shell.outdir, "000001.face.a_face.masked.png")))
    expected = clipseg_selection(root, Image.open(root / "face.png").convert("RGB"), "a face", 0.52)
    assert 0 < expected.mean() < 1, "the random CLIPSeg selects part of the picture at this threshold"
    assert np.array_equal(mask == 0, expected)  # black: repaint
    selected = Image.open(os.path.join(shell.outdir, "000001.face.a_face.selected.png"))
    assert selected.mode == "RGBA" and selected.size == (128, 128)


def test_text_mask_inpaints_with_the_mask_mask_writes(shell, root):
    """-tm gives the same pixels as -M with the mask !mask wrote for the same text and threshold."""
    run(shell, f'!mask {root / "face.png"} -tm "a face" 0.52')
    mask = os.path.join(shell.outdir, "000001.face.a_face.masked.png")
    said = run(shell, f'"a red circle" -s 6 -S 3 -I {root / "face.png"} -f 0.8 -tm "a face" 0.52')
    assert "inpaint: strength 0.80 x 6 steps -> 4 of 6 steps from the init image" in said
    by_text = shell.previous[-1].path
    run(shell, f'"a red circle" -s 6 -S 3 -I {root / "face.png"} -f 0.8 -M {mask}')
    assert np.array_equal(pixels(by_text), pixels(shell.previous[-1].path))
    meta = metadata(by_text)
    assert meta["type"] == "inpaint" and meta["mask"] == "text" and meta["text_mask"] == ["a face", 0.52]
    assert meta["text_mask_model"][0]["sha256"] == sha256(root / "weights/clipseg-rd64-refined/model.safetensors") \
        or len(meta["text_mask_model"][0]["sha256"]) == 64


def test_a_threshold_that_selects_nothing_says_so(shell, root):
    line = refused(shell, f'"x" -s 6 -S 3 -I {root / "face.png"} -tm "a face" 1.0')
    assert "-tm/--text_mask: CLIPSeg's mask selects nothing; give a lower threshold" in line


# !fix with -U/-G, !fetch, !verify, command files

def test_fix_processes_the_picture_and_the_png_rebuilds_and_replays(shell, root, tmp_path):
    run(shell, f'"a face" -s 6 -S 3 -I {root / "face.png"} -f 0.2')
    source = shell.previous[-1].path
    said = run(shell, f"!fix {os.path.basename(source)} -G 0.5 -U 2 --upscaler realesrgan-x2")
    fixed = shell.previous[-1].path
    assert fixed.endswith("000002.3.postprocessed.png") and Image.open(fixed).size == (256, 256)
    command = Image.open(fixed).text["Dream"]
    assert command == Image.open(source).text["Dream"] + " -G 0.5 -ft gfpgan -U 2.0 0.75 --upscaler realesrgan-x2"
    steps = metadata(fixed)["postprocessing"]
    assert [(s["tool"], s["model"], s["dream_command"]) for s in steps] == [
        ("gfpgan", "gfpgan", Image.open(source).text["Dream"]),
        ("upscale", "realesrgan-x2", Image.open(source).text["Dream"])]
    assert steps[1]["sha256"] == sha256(root / "weights/RealESRGAN_x2plus.safetensors")
    assert f"{fixed}: {command}" in said
    # !fetch rebuilds the command, which replays to the same pixels (from a command file too)
    run(shell, f"!fetch {fixed} {tmp_path / 'again.txt'}")
    run(shell, f"!replay {tmp_path / 'again.txt'}")
    assert np.array_equal(pixels(shell.previous[-1].path), pixels(fixed))
    said = run(shell, f"!verify {fixed}")
    assert f"{fixed}: identical" in said


def test_fix_on_a_picture_from_elsewhere(shell, root):
    said = run(shell, f"!fix {root / 'face.png'} -U 4 1")
    fixed = shell.previous[-1].path
    assert fixed.endswith("000001.face.postprocessed.png") and Image.open(fixed).size == (512, 512)
    record = json.loads(Image.open(fixed).text["invoke-shell-fix"])
    assert record["postprocessing"][0]["tool"] == "upscale" and record["source_sha256"] == sha256(root / "face.png")
    assert any("(the source records no command)" in line for line in said)


def test_verify_replays_a_postprocessed_picture(shell):
    run(shell, '"fire" -s 6 -S 3 -U 2 -n 2 -g')
    grid = shell.said[-1].split(": ")[0]
    assert grid.endswith(".grid.png") and Image.open(grid).size == (256, 128)
    said = run(shell, f"!verify {grid}")
    assert f"{grid}: identical" in said


def test_fetch_turns_invokeai_2_3_records_into_the_switches():
    from invoke_shell.outputs.readers.invokeai import from_sd_metadata

    text = json.dumps({"model": "stable diffusion", "model_id": "stable-diffusion-1.5", "app_id": "invoke-ai/InvokeAI",
                       "app_version": "2.3.5", "image": {
                           "prompt": [{"prompt": "a portrait", "weight": 1.0}], "seed": 42, "steps": 30,
                           "cfg_scale": 7.5, "width": 512, "height": 512, "sampler": "k_lms", "type": "txt2img",
                           "facetool": "codeformer", "facetool_strength": 0.7, "upscale": [4, 0.5]}})
    command = from_sd_metadata(text)[0]
    assert command.endswith("-G 0.7 -ft codeformer -U 4.0 0.5"), command


# the models: weights only, recognised on import, listed by kind, cached

class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_payloads_are_refused_and_run_nothing(shell, root, tmp_path, manager):
    import torch
    from invoke_shell.models.registry import ModelEntry

    marker = tmp_path / "ran"
    torch.save({"params_ema": {"x": Payload(marker)}}, tmp_path / "evil.pth")
    folder = tmp_path / "evil-clipseg"
    shutil.copytree(root / "weights" / "clipseg-rd64-refined", folder)
    os.remove(folder / "model.safetensors")
    torch.save({"x": Payload(marker)}, folder / "pytorch_model.bin")
    registry = manager.registry
    try:
        manager.set_registry(registry.with_entry(ModelEntry("evil", "", "upscaler", path=str(tmp_path / "evil.pth")))
                             .with_entry(ModelEntry("evil-face", "", "facetool", path=str(tmp_path / "evil.pth")))
                             .with_entry(ModelEntry("evil-mask", "", "text_mask", path=str(folder), default=True)))
        for line in ('"fire" -s 6 -U 2 --upscaler evil', '"fire" -s 6 -G 0.5 -ft evil-face',
                     f'!mask {root / "face.png"} -tm hat'):
            message = refused(shell, line)
            assert "refusing to load" in message and "posix.system" in message or "os.system" in message, message
    finally:
        manager.set_registry(registry)
    assert not marker.exists()
    assert written(shell) == []


def test_import_model_recognises_each_kind_and_writes_its_stanza(shell, root, tmp_path, manager):
    import yaml

    from invoke_shell.models.registry import load_registry

    conf = tmp_path / "models.yaml"
    conf.write_text("demo:\n  format: diffusers\n  path: builtin:demo\n")
    registry = manager.registry
    try:
        manager.set_registry(load_registry(conf))
        weights = root / "weights"
        for path, name, said_kind in ((weights / "RealESRGAN_x4plus.pth", "up4", "up4: up4 (ESRGAN x4), an upscaler"),
                                      (weights / "codeformer.safetensors", "cf", "cf: cf (CodeFormer), a face restorer"),
                                      (weights / "clipseg-rd64-refined", "seg", "seg: seg (CLIPSeg), a text-mask")):
            said = run(shell, f"!import_model {path} --name {name} --description mine --default")
            assert any(line.startswith(said_kind) for line in said), said
        stanzas = yaml.safe_load(conf.read_text())
        assert {n: (s["format"], s.get("default")) for n, s in stanzas.items()} == {
            "demo": ("diffusers", None), "up4": ("upscaler", True), "cf": ("facetool", True), "seg": ("text_mask", True)}
        said = run(shell, "!models")
        assert said[0].startswith("demo ") and "upscalers:" in said and "face restorers:" in said
        assert any(line.startswith("  up4 ") and "(default)" in line for line in said)
        run(shell, '"fire" -s 6 -S 3 -U 4')  # the imported default
        assert Image.open(shell.previous[-1].path).size == (256, 256)
    finally:
        manager.set_registry(registry)


def test_post_processing_models_are_cached_least_recently_used_first(manager):
    from invoke_shell.models.tools import ToolCache

    cache = ToolCache(manager, most=2)
    for name in ("realesrgan-x4", "realesrgan-x2", "realesrgan-x4"):
        cache.get("upscaler", name)
    assert cache.loads == 2 and cache.cached_names() == ["realesrgan-x2", "realesrgan-x4"]
    cache.get("text_mask")
    assert cache.cached_names() == ["realesrgan-x4", "clipseg"] and cache.loads == 3


def test_switch_and_the_startup_default_are_diffusion_models(shell, manager):
    assert manager.registry.default().name == "demo"  # realesrgan-x4 and gfpgan are marked default too
    line = refused(shell, "!switch gfpgan")
    assert line == ("error: !switch gfpgan: that is a post-processing model (format: facetool); !switch takes a "
                    "model that draws")


# InvokeAI 2.3's documentation: every line that uses -U, -G, -ft, -cf, -tm, !mask or !fix, verbatim (v2.3.5's
# docs/features/*.md and the Docker page); <prompt> is the docs' own placeholder. The pictures they name are put
# where they say (an absolute /path/to/... under the test's folder: the one change made to a line).
DOC_LINES = [
    ("POSTPROCESS", '"superman dancing with a panda bear" -U 2 0.6 -G 0.4'),
    ("POSTPROCESS", '"a man wearing a pineapple hat" -I path/to/your/file.png -U 2 0.5 -G 0.6'),
    ("POSTPROCESS", "<prompt> -G 0.8 -ft codeformer"),
    ("POSTPROCESS", "<prompt> -G 1.0 -ft codeformer -cf 0.9"),
    ("POSTPROCESS", "<prompt> -G 1.0 -ft codeformer -cf 0.1"),
    ("POSTPROCESS", "!fix ./outputs/img-samples/000044.2945021133.png -G 0.8 -U 2"),
    ("CLI", "a piece of cake -I /path/to/breakfast.png -tm bagel"),
    ("CLI", "a piece of cake -I /path/to/breakfast.png -tm bagel 0.6"),
    ("CLI", "!fix 0000045.4829112.png -G1 -U4 -ft codeformer"),
    ("CLI", "!fix 0000045.4829112.png -G0.8 -ft gfpgan"),
    ("INPAINTING", "a baseball -I /path/to/still_life.png -tm orange"),
    ("INPAINTING", "a baseball -I /path/to/breakfast.png -tm orange 0.6"),
    ("INPAINTING", "!mask ./test-pictures/curly.png -tm hair 0.5"),
    ("INPAINTING", "medusa with cobras -I ./test-pictures/curly.png -tm hair -C20"),
    ("OUTPAINTING", "!fix images/curly.png --outcrop top 128 right 64 bottom 64"),
    ("OUTPAINTING", '!fix images/vacation.png --outcrop top 128 --new_prompt "family vacation"'),
    ("OUTPAINTING", "!fix images/curly.png --out_direction top 64"),
    ("EMBIGGEN", "!fix ./outputs/000002.seed.png -embiggen_tiles 1 2 3"),
    ("OTHER", "a cute child playing hopscotch -G0.5"),
    ("OTHER", "a cute child playing hopscotch -G1.0 -s100 -S -1"),
    ("PROMPTS", "a smiling dog eating a hotdog -I 000025.2182095108.png -tm cat"),
    ("INSTALL_DOCKER", '"woman closeup highly detailed"  --steps 150 --seed -1 -G 0.75'),
]
PICTURES = ("path/to/your/file.png", "/path/to/breakfast.png", "/path/to/still_life.png", "./test-pictures/curly.png",
            "images/curly.png", "images/vacation.png", "./outputs/img-samples/000044.2945021133.png",
            "./outputs/000002.seed.png")
IN_OUTDIR = ("0000045.4829112.png", "000025.2182095108.png")  # bare names: 2.3 took them from the output folder


def test_every_invokeai_documentation_line_runs(manager, root, tmp_path, monkeypatch):
    from invoke_shell.request import Defaults

    monkeypatch.chdir(tmp_path)
    shell = recording_shell(manager, tmp_path / "outputs", "demo", defaults=Defaults(steps=8))
    run(shell, f'"a face" -s 6 -S 3 -I {root / "face.png"} -f 0.2')  # a picture with its command, as 2.3's were
    made = shell.previous[-1].path
    for name in PICTURES:
        target = tmp_path / name.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(made, target)
    for name in IN_OUTDIR:
        shutil.copy(made, tmp_path / "outputs" / name)
    for page, line in DOC_LINES:
        typed = line.replace("<prompt>", "a portrait").replace(" /path/to/", f" {tmp_path}/path/to/")
        said = run(shell, typed)
        assert any(".png" in s for s in said), (page, line, said)


def test_spandrel_loads_beside_a_cpu_torch_and_leaves_torchvision_as_it_found_it():
    """The environment the shell runs in has no broken torchvision: either none (the stand-in serves spandrel's
    import and is removed after) or one that imports; transformers' image processors work after spandrel."""
    import subprocess
    import sys

    script = """
import importlib.util, sys
installed = importlib.util.find_spec("torchvision") is not None
if installed:
    import torchvision  # a torchvision that is there must import
from invoke_shell.models.spandrel_import import spandrel
ids = {a.architecture.id for a in spandrel().MAIN_REGISTRY.architectures()}
assert {"ESRGAN", "GFPGAN", "RestoreFormer", "CodeFormer"} <= ids, ids
assert installed or "torchvision" not in sys.modules, "the stand-in was left behind"
from transformers import CLIPSegProcessor, ViTImageProcessor
print("ok", installed)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok")


def test_a_23_root_s_own_files_are_named_in_the_stanza_to_add(tmp_path, root):
    from invoke_shell.models.manager import ModelManager
    from invoke_shell.models.registry import load_registry

    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "models.yaml").write_text("demo:\n  format: diffusers\n  path: builtin:demo\n")
    (tmp_path / "models" / "realesrgan").mkdir(parents=True)
    shutil.copy(root / "weights" / "RealESRGAN_x4plus.pth", tmp_path / "models/realesrgan/realesr-general-x4v3.pth")
    shell = recording_shell(ModelManager(load_registry(tmp_path / "configs" / "models.yaml"), device="cpu",
                                         precision="float32"), tmp_path / "outputs", "demo")
    said = shell.said
    shell.execute('"fire" -s 4 -U 2')
    assert said == [f"error: -U/--upscale needs an upscaler, and {tmp_path / 'configs' / 'models.yaml'} has none; "
                    "InvokeAI 2.3 left one in its root; add: realesrgan-x4: {format: upscaler, path: "
                    "../models/realesrgan/realesr-general-x4v3.pth} (see docs/postprocessing.md)"]
    shell.execute(f"!import_model {tmp_path / 'models/realesrgan/realesr-general-x4v3.pth'} --name realesrgan "
                  "--description 'from 2.3'")
    said.clear()
    shell.execute('"fire" -s 4 -S 1 -U 2')
    assert "postprocessing: enlarged x2 by realesrgan (ESRGAN x4) at strength 0.75" in said


def test_embiggen_enlarges_with_the_upscaler_and_records_it(shell, root):
    said = run(shell, f'"a face" -s 6 -S 3 -I {root / "face.png"} --embiggen 2 0.6')
    assert any(line.startswith("embiggen: 128x128 x2 -> 256x256 by realesrgan-x4 (ESRGAN x4) blended with Lanczos "
                               "at 0.6, ") for line in said), said
    path = shell.previous[-1].path
    assert "--embiggen 2.0 0.6 --upscaler realesrgan-x4" in Image.open(path).text["Dream"]
    assert f"{path}: identical" in run(shell, f"!verify {path}")


def test_embiggen_tiles_alone_redo_tiles_of_the_picture_at_its_size(shell, root):
    said = run(shell, f'"a face" -s 6 -S 3 -I {root / "face.png"} -embiggen_tiles 1 2 3')
    assert any(line.startswith("embiggen: 128x128 x1 -> 128x128 by Lanczos, tiles 1, 2, 3 of 9") for line in said), said
    made, source = pixels(shell.previous[-1].path), pixels(root / "face.png")
    assert made.shape == source.shape
    assert np.array_equal(made[100:], source[100:])  # the bottom row of tiles is left as it was
    assert np.abs(made[:40] - source[:40]).mean() > 1  # the top row is repainted


def test_model_commands_on_a_post_processing_stanza(shell, root, tmp_path, manager):
    import yaml

    from invoke_shell.models.registry import load_registry

    conf = tmp_path / "models.yaml"
    shutil.copy(root / "models.yaml", conf)
    (tmp_path / "weights").symlink_to(root / "weights")
    registry = manager.registry
    try:
        manager.set_registry(load_registry(conf))
        run(shell, '"fire" -s 4 -S 1 -U 2')  # realesrgan-x4 is cached now
        run(shell, "!edit_model realesrgan-x4 --path weights/RealESRGAN_x2plus.safetensors")
        assert yaml.safe_load(conf.read_text())["realesrgan-x4"]["path"] == "weights/RealESRGAN_x2plus.safetensors"
        said = run(shell, '"fire" -s 4 -S 1 -U 2')  # the stanza as it is now, not the cached x4
        assert "postprocessing: enlarged x2 by realesrgan-x4 (ESRGAN x2) at strength 0.75" in said
        assert refused(shell, "!convert_model gfpgan").startswith("error: !convert_model: 'gfpgan' is a post-processing")
        run(shell, "!del_model codeformer --yes")
        assert "codeformer" not in yaml.safe_load(conf.read_text())
    finally:
        manager.set_registry(registry)


def test_fetch_and_verify_name_a_post_processing_model_that_changed(shell, root, manager):
    from dataclasses import replace

    run(shell, '"fire" -s 6 -S 3 -U 2 --upscaler realesrgan-x2')
    path = shell.previous[-1].path
    registry = manager.registry
    swapped = replace(registry.get("realesrgan-x2"), path=str(root / "weights" / "RealESRGAN_x4plus.pth"))
    try:
        manager.set_registry(registry.with_entry(swapped, replacing="realesrgan-x2"))
        note = (f"note: upscaler realesrgan-x2 here ({root / 'weights' / 'RealESRGAN_x4plus.pth'}) is not the file "
                f"the image was made with (sha256 {sha256(root / 'weights/RealESRGAN_x4plus.pth')[:12]} here, "
                f"{sha256(root / 'weights/RealESRGAN_x2plus.safetensors')[:12]} in the image)")
        assert note in run(shell, f"!fetch {path}")
        verdict = next(line for line in run(shell, f"!verify {path}") if line.startswith(path))
        assert verdict.startswith(f"{path}: differs") and note.removeprefix("note: ") in verdict, verdict
        manager.set_registry(registry.without("realesrgan-x2"))
        verdict = next(line for line in run(shell, f"!verify {path}") if line.startswith(path))
        assert verdict.startswith(f"{path}: not verified: -U/--upscale: no model named 'realesrgan-x2'"), verdict
    finally:
        manager.set_registry(registry)


def test_gfpgan_draws_the_noise_its_file_stores_so_a_command_repeats(manager, root):
    """GFPGAN's decoder injects noise; real weights give it a strength (random-init weights have 0). The same
    picture restored twice is the same picture, where fresh noise on each call would differ."""
    import torch
    from invoke_shell.engine.faces import restore
    from invoke_shell.engine.upscale import to_tensor
    from invoke_shell.models.tools import load

    tool = load(manager.registry.get("gfpgan"))  # a copy of its own: the cached one stays as the file has it
    with torch.no_grad():
        for name, parameter in tool.model.model.named_parameters():
            if name.endswith("noise_strength") or name.endswith(".weight") and parameter.numel() == 1:
                parameter.fill_(0.1)
    face = Image.open(root / "face.png").convert("RGB")
    first, second = (np.asarray(restore(face, tool, 1.0)[0]) for _ in range(2))
    assert np.array_equal(first, second)
    x = to_tensor(face.resize((512, 512))) * 2 - 1
    with torch.inference_mode():
        fresh = [tool.model.model(x, randomize_noise=True)[0] for _ in range(2)]
    assert not torch.equal(*fresh), "the noise weights were set: fresh noise would change the picture"


def test_fix_on_a_processed_picture_records_what_was_done_not_a_command(shell, root):
    run(shell, '"fire" -s 6 -S 3 -U 2')
    said = run(shell, f"!fix {shell.previous[-1].path} -U 2")
    assert any(line.startswith("note: ") and "post-processed already" in line for line in said), said
    fixed = shell.previous[-1].path
    assert Image.open(fixed).size == (256, 256) and "Dream" not in Image.open(fixed).text
    record = json.loads(Image.open(fixed).text["invoke-shell-fix"])
    assert [step["tool"] for step in record["postprocessing"]] == ["upscale"]
    assert record["postprocessing"][0]["dream_command"].endswith("-U 2.0 0.75 --upscaler realesrgan-x4")


def test_fix_on_a_picture_another_program_made_carries_the_command(shell, root, tmp_path):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a cat\nSteps: 6, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 128x128")
    Image.open(root / "face.png").save(tmp_path / "a1111.png", pnginfo=info)
    run(shell, f"!fix {tmp_path / 'a1111.png'} -U 2")
    fixed = shell.previous[-1].path
    assert fixed.endswith("000001.5.postprocessed.png")
    assert Image.open(fixed).text["Dream"].endswith("-U 2.0 0.75 --upscaler realesrgan-x4")
    assert "fetched" in run(shell, f"!fetch {fixed}")[0]


def test_post_processing_switches_that_would_do_nothing_are_refused(shell, root):
    assert refused(shell, '"fire" -G 0 -ft codeformer') == ("error: -ft/--facetool shapes face restoration: add "
                                                           "-G/--facetool_strength STRENGTH (above 0)")
    assert refused(shell, f"!fix {root / 'face.png'} -G 0") == ("error: !fix: -G/--facetool_strength 0 restores "
                                                               "nothing: give a strength above 0, or -U SCALE")
    assert refused(shell, f'"x" -I {root / "face.png"} --embiggen_tiles 1 --upscaler realesrgan-x2').startswith(
        "error: --upscaler names the model -U/--upscale (or --embiggen SCALE, above 1) enlarges with")
    assert refused(shell, '"fire" -U 2 --upscaler lanczos').startswith("error: --upscaler lanczos is --embiggen's")


def test_an_embiggen_without_a_model_records_lanczos_and_replays(shell, root):
    from PIL.PngImagePlugin import PngInfo

    said = run(shell, f'"a face" -s 6 -S 3 -I {root / "face.png"} --embiggen 1.5 --upscaler lanczos')
    assert any("by Lanczos (--upscaler lanczos: no upscaler model, so the upscale strength 0.75 has nothing to "
               "blend)" in line for line in said), said
    path = shell.previous[-1].path
    command = Image.open(path).text["Dream"]
    assert "--embiggen 1.5 --upscaler lanczos" in command
    assert f"{path}: identical" in run(shell, f"!verify {path}")
    older = os.path.join(shell.outdir, "older.png")  # as made before embiggen recorded its upscaler
    info = PngInfo()
    info.add_text("Dream", command.replace(" --upscaler lanczos", ""))
    Image.open(path).save(older, pnginfo=info)
    assert ("note: this --embiggen records no upscaler (it was made before they were recorded, by Lanczos); add "
            "--upscaler lanczos to replay it as it was made") in run(shell, f"!fetch {older}")


def test_save_original_keeps_the_text_mask_model_in_both_records(shell, root):
    said = run(shell, f'"x" -s 6 -S 3 -I {root / "face.png"} -f 0.5 -tm "a face" 0.52 -U 2 --save_original')
    original, processed = [line.split(": ")[0] for line in said if ".png: " in line]
    assert metadata(original)["text_mask_model"] == metadata(processed)["text_mask_model"]
    assert "upscaler_model" not in metadata(original) and "upscaler_model" in metadata(processed)
