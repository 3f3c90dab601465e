"""Reading the PNG metadata families back into commands (fixtures built here from the published formats),
`!fetch GLOB OUTFILE` + `!replay`, the A1111 `parameters` chunk we write, and hostile metadata."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from invoke_shell.errors import ParseError
from invoke_shell.outputs.fetch import NoMetadata, read_png
from invoke_shell.outputs.metadata import png_chunks
from invoke_shell.outputs.pngio import read_text_chunks, write_png
from invoke_shell.outputs.provenance import Provenance
from invoke_shell.request import parse, to_command

MADE = Provenance("float32", "cpu", "cpu", "2.13.0", "0.42.1")


def png(folder, name: str, chunks: dict[str, str]) -> str:
    path = os.path.join(str(folder), name)
    write_png(path, Image.new("RGB", (8, 8), (10, 20, 30)), chunks)
    return path


def sd_meta(image: dict, **top) -> str:
    data = {"model": "stable diffusion", "model_id": "stable-diffusion-1.5", "model_hash": "abc123",
            "app_id": "invoke-ai/InvokeAI", "app_version": "2.3.5", **top}
    if "images" not in top:
        data["image"] = image
    return json.dumps(data)


INVOKE2_IMAGE = {"type": "txt2img", "prompt": [{"prompt": "a cat [dog]", "weight": 1.0}], "seed": 42,
                 "variations": [], "steps": 30, "cfg_scale": 7.0, "threshold": 0, "perlin": 0, "width": 512,
                 "height": 768, "sampler": "k_euler_a", "seamless": False, "hires_fix": False,
                 "postprocessing": None}

COMFY = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 8566257, "steps": 20, "cfg": 8, "sampler_name": "euler_ancestral",
                                               "scheduler": "normal", "denoise": 1, "model": ["10", 0],
                                               "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 640, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "beautiful scenery", "clip": ["10", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["10", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "detail.safetensors", "strength_model": 0.8,
                                                  "strength_clip": 1.0, "model": ["4", 0], "clip": ["4", 1]}},
}

COMFY_IMG2IMG = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 1102676403634909, "steps": 12, "cfg": 6.5, "sampler_name": "dpmpp_2m",
                                               "scheduler": "karras", "denoise": 0.6, "model": ["4", 0],
                                               "positive": ["11", 0], "negative": ["7", 0], "latent_image": ["12", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.ckpt"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": ["13", 0], "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
    "11": {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["6", 0], "conditioning_2": ["6", 0]}},
    "12": {"class_type": "VAEEncode", "inputs": {"pixels": ["14", 0], "vae": ["4", 2]}},
    "13": {"class_type": "PrimitiveString", "inputs": {"value": "a [red] fox"}},
    "14": {"class_type": "LoadImage", "inputs": {"image": "example.png", "upload": "image"}},
    "15": {"class_type": "CLIPSetLastLayer", "inputs": {"stop_at_clip_layer": -2, "clip": ["4", 1]}},
}

INVOKE3 = {"generation_mode": "img2img", "positive_prompt": "a castle", "negative_prompt": "blurry", "width": 512,
           "height": 512, "seed": 123, "rand_device": "cpu", "cfg_scale": 7.5, "cfg_rescale_multiplier": 0, "steps": 30,
           "scheduler": "dpmpp_2m_k", "clip_skip": 0, "strength": 0.6, "init_image": "3f2a.png",
           "model": {"key": "k1", "hash": "blake3:00", "name": "sd-1.5", "base": "sd-1", "type": "main"},
           "loras": [{"model": {"key": "k2", "name": "detail", "base": "sd-1"}, "weight": 0.7}]}


CASES = [
    # this shell's own Dream line: our parser is the authority, nothing to add
    ("ours", {"Dream": '"fire" -s 3 -S 5 -W 64 -H 64 -C 7.5 -A k_lms'},
     '"fire" -s 3 -S 5 -W 64 -H 64 -C 7.5 -A k_lms', "", ""),
    # InvokeAI 2.x Dream only: unquoted prompt, model_id trailer
    ("invoke2 dream", {"Dream": "a cat [dog] -s 30 -S 42 -W 512 -H 768 -C 7.0 -A k_euler_a # model_id=stable-diffusion-1.5"},
     '"a cat [dog]" -s 30 -S 42 -W 512 -H 768 -C 7.0 -A k_euler_a', "InvokeAI 2.x",
     "not carried over: model: stable-diffusion-1.5"),
    # InvokeAI 2.x switches we lack become notes; the rest is kept, -I/-f and the post-processing included
    ("invoke2 unsupported", {"Dream": "a cat -s 30 -S 42 -W 512 -H 512 -C 7.5 -I init.png -A k_lms -f 0.6 -G 0.8 "
                                      "-ft gfpgan -U 2 0.75 -r 0.5 --seamless # model_id=sd-1.5"},
     '"a cat" -s 30 -S 42 -W 512 -H 512 -C 7.5 -A k_lms -I init.png -f 0.6 -G 0.8 -ft gfpgan -U 2.0 0.75 --seamless '
     "--seamless_axes x,y",
     "InvokeAI 2.x", "not carried over: model: sd-1.5, -r 0.5"),
    ("invoke2 sampler", {"Dream": "a cat -s 30 -S 1 -C 7.5 -A k_dpmpp_2_a # model_id=x"},
     '"a cat" -s 30 -S 1 -C 7.5 -A k_lms', "InvokeAI 2.x",
     "not carried over: model: x, -A k_dpmpp_2_a (no such sampler here)"),
    # the compact spelling of older dream.py lines
    ("compact", {"Dream": '"a cat" -s50 -S42 -W512 -H512 -C7.5 -Ak_lms'},
     '"a cat" -s 50 -S 42 -W 512 -H 512 -C 7.5 -A k_lms', "", ""),
    # InvokeAI 2.x sd-metadata only
    ("invoke2 sd-metadata", {"sd-metadata": sd_meta(INVOKE2_IMAGE)},
     '"a cat [dog]" -s 30 -S 42 -W 512 -H 768 -C 7.0 -A k_euler_a', "InvokeAI 2.x",
     "not carried over: model: stable-diffusion-1.5"),
    ("invoke2 img2img lost init", {"sd-metadata": sd_meta(dict(INVOKE2_IMAGE, type="img2img", strength_steps=0.6,
                                                              orig_hash="ff00"))},
     '"a cat [dog]" -s 30 -S 42 -W 512 -H 768 -C 7.0 -A k_euler_a', "InvokeAI 2.x",
     "not carried over: init image: not stored by InvokeAI 2.x (strength 0.6), model: stable-diffusion-1.5"),
    ("invoke2 grid", {"sd-metadata": sd_meta({}, images=[
        dict(INVOKE2_IMAGE, seed=7, width=None, height=None, postprocessing=[{"tool": "gfpgan"}], facetool_strength=0.8),
        dict(INVOKE2_IMAGE, seed=8)])},
     '"a cat [dog]" -s 30 -S 7 -C 7.0 -A k_euler_a -G 0.8', "InvokeAI 2.x",
     "not carried over: grid of 2 images (the first is rebuilt), postprocessing: gfpgan, model: stable-diffusion-1.5"),
    ("invoke2 blend", {"sd-metadata": sd_meta(dict(INVOKE2_IMAGE, prompt=[{"prompt": "blue sphere", "weight": 0.25},
                                                                           {"prompt": "red cube", "weight": 0.75}]))},
     '"blue sphere:0.25,red cube:0.75" -s 30 -S 42 -W 512 -H 768 -C 7.0 -A k_euler_a', "InvokeAI 2.x",
     "not carried over: weighted sub-prompts (kept as text), model: stable-diffusion-1.5"),
    # both chunks: Dream wins (sd-metadata lost the init image)
    ("invoke2 both", {"Dream": "a cat -s 30 -S 42 -W 512 -H 512 -C 7.5 -I in.png -A k_lms -f 0.5 # model_id=m",
                      "sd-metadata": sd_meta(INVOKE2_IMAGE)},
     '"a cat" -s 30 -S 42 -W 512 -H 512 -C 7.5 -A k_lms -I in.png -f 0.5', "InvokeAI 2.x", "not carried over: model: m"),
    # a Dream line no reader accepts falls back to sd-metadata
    ("broken dream", {"Dream": '"x" -s 5; rm -rf /', "sd-metadata": sd_meta(INVOKE2_IMAGE)},
     '"a cat [dog]" -s 30 -S 42 -W 512 -H 768 -C 7.0 -A k_euler_a', "InvokeAI 2.x",
     "not carried over: model: stable-diffusion-1.5"),
    ("invoke3", {"invokeai_metadata": json.dumps(INVOKE3)},
     '"a castle withLora(detail,0.7) [blurry]" -s 30 -S 123 -W 512 -H 512 -C 7.5 -A dpmpp_2m_k -I 3f2a.png -f 0.6',
     "InvokeAI 3+", "not carried over: model: sd-1.5"),
    ("invoke3 unmapped", {"invokeai_metadata": json.dumps({"positive_prompt": "a castle", "seed": 1, "steps": 20,
                                                           "cfg_scale": 7, "scheduler": "dpmpp_3m", "rand_device": "cuda",
                                                           "seamless_x": True})},
     '"a castle" -s 20 -S 1 -C 7.0 -A k_lms --seamless --seamless_axes x', "InvokeAI 3+",
     "not carried over: scheduler: dpmpp_3m (no equivalent; k_lms used), rand_device: cuda"),
    ("a1111 negative denoise", {"parameters": "a cat, (masterpiece:1.2)\nwith a hat\nNegative prompt: dog, blurry\n"
                                              "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x768, "
                                              "Model hash: 45dee52b, Model: v1-5, Denoising strength: 0.7, Clip skip: 2, "
                                              "Version: v1.9.4"},
     '"a cat, (masterpiece:1.2) with a hat [dog, blurry]" -s 20 -S 965400086 -W 512 -H 768 -C 7.0 -A k_euler_a '
     '--clip_skip 2',
     "AUTOMATIC1111", "not carried over: Model: v1-5, Denoising strength: 0.7 (the init image is not "
                      "in the file; add -I FILE -f 0.7)"),
    ("a1111 hires", {"parameters": 'a cat <lora:detail:0.8>\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1, '
                                   'Size: 512x512, Denoising strength: 0.5, Hires upscale: 2, Hires upscaler: Latent, '
                                   'Lora hashes: "detail: abc, x: def"'},
     '"a cat <lora:detail:0.8>" -s 20 -S 1 -W 512 -H 512 -C 7.0 -A dpmpp_2m_k', "AUTOMATIC1111",
     "not carried over: Denoising strength: 0.5, Hires upscale: 2, Hires upscaler: Latent"),
    ("a1111 plain", {"parameters": "a [cat]\nSteps: 10, Sampler: DPM fast, CFG scale: 5.5, Seed: 3, Size: 64x64"},
     '"a (cat)" -s 10 -S 3 -W 64 -H 64 -C 5.5 -A k_lms', "AUTOMATIC1111",
     "not carried over: [ ] in the prompt (turned into ( )), Sampler: DPM fast (no equivalent; k_lms used)"),
    ("comfy", {"prompt": json.dumps(COMFY), "workflow": "{}"},
     '"beautiful scenery [text, watermark]" -s 20 -S 8566257 -W 512 -H 640 -C 8.0 -A k_euler_a', "ComfyUI",
     "not carried over: LoraLoader: detail.safetensors 0.8, model: v1-5-pruned-emaonly.safetensors"),
    ("comfy img2img", {"prompt": json.dumps(COMFY_IMG2IMG)},
     '"a (red) fox" -s 12 -C 6.5 -A dpmpp_2m_k -I example.png -f 0.6 --clip_skip 2', "ComfyUI",
     "not carried over: seed: 1102676403634909 (outside [0, 2^32): a random seed is used), "
     "[ ] in the prompt (turned into ( )), model: sd15.ckpt, other nodes: ConditioningCombine"),
]


@pytest.mark.parametrize("name,chunks,command,family,notes", CASES, ids=[c[0] for c in CASES])
def test_families(tmp_path, name, chunks, command, family, notes):
    rebuilt = read_png(png(tmp_path, "x.png", chunks))
    assert rebuilt.command == command
    assert to_command(parse(rebuilt.command)) == command
    assert rebuilt.family == family
    assert rebuilt.notes_line == notes


def test_variations_from_sd_metadata(tmp_path):
    image = dict(INVOKE2_IMAGE, variations=[{"seed": 11, "weight": 0.1}, {"seed": 12, "weight": 0.2}])
    rebuilt = read_png(png(tmp_path, "x.png", {"sd-metadata": sd_meta(image)}))
    if "-V" in rebuilt.command:
        assert rebuilt.command.endswith("-V 11:0.1,12:0.2")
    else:  # a switch table without -V: the chain is named, not dropped
        assert "variations: 11:0.1,12:0.2" in rebuilt.notes_line


def _request(line: str):
    return parse(line)


@pytest.mark.parametrize("line", [
    '"fire [smoke, ash]" -s 3 -S 5 -W 64 -H 64 -C 7.5 -A k_euler_a',
    '"a, b: c" -s 2 -S 0 -W 64 -H 32 -C 12.0 -A k_dpmpp_2',
])
def test_our_pngs_read_back_from_each_chunk_alone(tmp_path, line):
    request = _request(line)
    chunks = png_chunks(request, model_name="tiny", model_hash="0123456789abcdef", steps_run=3, made=MADE)
    assert set(chunks) == {"Dream", "sd-metadata", "parameters"}
    for key in chunks:
        rebuilt = read_png(png(tmp_path, f"{key}.png", {key: chunks[key]}))
        assert rebuilt.command == to_command(request), key
        # the recorded precision: the chunks that record it give it, the Dream line alone does not
        assert rebuilt.replay_command("bfloat16") == to_command(request) + (
            "" if key == "Dream" else " --precision float32"), key
        assert rebuilt.replay_command("float32") == rebuilt.replay_command(None if key == "Dream" else "float32")
        assert rebuilt.made == (None if key == "Dream" else MADE), key
        assert rebuilt.notes_line == ("not carried over: Model: tiny" if key == "parameters" else ""), key


def test_parameters_chunk_is_a1111s_layout(tmp_path):
    init = png(tmp_path, "init.png", {})
    request = _request(f'"fire [smoke]" -s 3 -S 5 -W 64 -H 64 -C 7.5 -A k_euler_a -I {init} -f 0.5')
    text = png_chunks(request, model_name="tiny", model_hash="0123456789abcdef", steps_run=1,
                      made=MADE)["parameters"]
    from invoke_shell import __version__
    assert text == ("fire\nNegative prompt: smoke\nSteps: 3, Sampler: Euler a, CFG scale: 7.5, Seed: 5, Size: 64x64, "
                    f"Model hash: 0123456789, Model: tiny, Denoising strength: 0.5, Init image: {init}, RNG: CPU, "
                    f"Version: invoke-shell {__version__}; torch 2.13.0; diffusers 0.42.1; cpu float32 (noise cpu)")
    rebuilt = read_png(png(tmp_path, "p.png", {"parameters": text}))
    assert rebuilt.command == to_command(request)


HOSTILE = [
    ({"parameters": "x" * 100_000 + "\nSteps: 2, Sampler: Euler, CFG scale: 7, Seed: 1"}, "characters"),
    ({"sd-metadata": sd_meta(dict(INVOKE2_IMAGE, steps=[1]))}, r"sd-metadata steps should be an integer, got \[1\]"),
    ({"sd-metadata": sd_meta(dict(INVOKE2_IMAGE, prompt=5))}, "sd-metadata prompt should be text, got 5"),
    ({"sd-metadata": sd_meta(dict(INVOKE2_IMAGE, cfg_scale="1e999"))}, "finite"),
    ({"sd-metadata": '{"image": ' * 100_000}, "not JSON|nested too deeply"),
    ({"sd-metadata": '{"image": {"seed": ' + "9" * 5000 + "}}"}, "not JSON"),
    ({"invokeai_metadata": "[1, 2]"}, "should be a JSON object, got list"),
    ({"invokeai_metadata": json.dumps({"positive_prompt": {"a": 1}})}, "positive_prompt should be text"),
    ({"prompt": json.dumps({"1": {"class_type": "KSampler", "inputs": {"steps": {"x": 1}}}})},
     "steps should be an integer"),
    ({"prompt": json.dumps({"1": {"class_type": "Nothing", "inputs": {}}})}, "no KSampler node"),
    ({"parameters": "a\x07b\nSteps: 2, Sampler: Euler, CFG scale: 7, Seed: 1"}, "control character"),
    ({"parameters": "a\nSteps: 2, Sampler: Euler, CFG scale: 7, Seed: 1, Size: huge"}, "Size should be WxH"),
    ({"Dream": '"x" -s 5; rm -rf / `touch pwned`'}, "does not parse"),
]


@pytest.mark.parametrize("chunks,message", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_metadata_is_one_line_parse_error(tmp_path, chunks, message):
    with pytest.raises(ParseError, match=message) as info:
        read_png(png(tmp_path, "x.png", chunks))
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


def test_shell_syntax_in_prompts_is_quoted_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = "x; rm -rf / `touch pwned` $(touch pwned2) \" '"
    cases = [{"parameters": f"{evil}\nNegative prompt: `id`\nSteps: 2, Sampler: Euler, CFG scale: 7, Seed: 1"},
             {"invokeai_metadata": json.dumps({"positive_prompt": evil, "negative_prompt": "`id`", "steps": 2})},
             {"prompt": json.dumps(dict(COMFY, **{"6": {"class_type": "CLIPTextEncode", "inputs": {"text": evil}},
                                                  "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "`id`"}}}))}]
    for chunks in cases:
        rebuilt = read_png(png(tmp_path, "x.png", chunks))
        assert parse(rebuilt.command).prompt == f"{evil} [`id`]"
    assert not os.path.exists("pwned") and not os.path.exists("pwned2")


def test_comfy_graph_cycles_end(tmp_path):
    graph = dict(COMFY, **{"6": {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["6", 0]}},
                           "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "l", "model": ["10", 0]}}})
    rebuilt = read_png(png(tmp_path, "x.png", {"prompt": json.dumps(graph)}))  # ends; no text on the loop
    assert rebuilt.command.startswith('"[text, watermark]" -s 20')
    assert "LoraLoader: l" in rebuilt.notes_line


def test_no_metadata(tmp_path):
    with pytest.raises(NoMetadata, match="carries no generation metadata"):
        read_png(png(tmp_path, "x.png", {"Software": "paint"}))


def test_fetch_foreign_png_says_what_was_left_out(shell, tmp_path):
    path = png(tmp_path, "a.png", {"parameters": "a cat\nSteps: 2, Sampler: Euler a, CFG scale: 7, Seed: 3, "
                                                 "Size: 64x64, Hires upscale: 2"})
    assert shell.execute(f"!fetch {path}") is True
    assert shell.said == ['fetched (AUTOMATIC1111): "a cat" -s 2 -S 3 -W 64 -H 64 -C 7.0 -A k_euler_a',
                          "not carried over: Hires upscale: 2"]
    assert shell.prefill == '"a cat" -s 2 -S 3 -W 64 -H 64 -C 7.0 -A k_euler_a'
    assert shell.execute(f"!fetch {tmp_path}/*.png") is True  # a glob naming one file is that file
    png(tmp_path, "b.png", {})
    assert shell.execute(f"!fetch {tmp_path}/*.png") is False
    assert shell.said[-1] == f"error: {tmp_path}/*.png matches 2 files; to write their commands to a file: " \
                             f"!fetch GLOB OUTFILE"


def test_fetch_glob_outfile_then_replay(shell, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    out = shell.outdir
    assert shell.execute('"fire" -s 2 -S 5 -W 64 -H 64')
    assert shell.execute('"ice [smoke]" -s 2 -S 6 -W 64 -H 64 -A k_euler_a')
    ours = sorted(p for p in os.listdir(out) if p.endswith(".png"))
    assert len(ours) == 2
    png(out, "zz-a1111.png", {"parameters": "a cat\nNegative prompt: dog\nSteps: 2, Sampler: Euler, CFG scale: 7, "
                                            "Seed: 9, Size: 64x64, Model: v1-5"})
    png(out, "zz-bare.png", {})
    png(out, "zz-bad.png", {"sd-metadata": "{not json"})
    shell.said.clear()
    assert shell.execute(f"!fetch {out}/*.png cmds.txt") is True
    assert shell.said == [f"wrote 3 command(s) for 5 image(s) to cmds.txt; 2 without usable metadata (see the # lines)"]
    lines = (work / "cmds.txt").read_text().splitlines()
    assert lines == [
        f"# {out}/{ours[0]}", '"fire" -s 2 -S 5 -W 64 -H 64 -C 7.5 -A k_lms',
        f"# {out}/{ours[1]}", '"ice [smoke]" -s 2 -S 6 -W 64 -H 64 -C 7.5 -A k_euler_a',
        f"# {out}/zz-a1111.png", "# not carried over: Model: v1-5", '"a cat [dog]" -s 2 -S 9 -W 64 -H 64 -C 7.0 -A k_euler',
        f"# {out}/zz-bad.png",
        f"# not rebuilt: {out}/zz-bad.png: its sd-metadata does not parse: sd-metadata is not JSON "
        "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
        f"# {out}/zz-bare.png", "# no generation metadata in this file",
    ]
    shell.said.clear()
    assert shell.execute("!replay cmds.txt") is True
    assert shell.said[-1] == "replayed cmds.txt: 3 ran, 0 failed"
    for name in ours:  # the replayed commands made the same pixels again
        seed = name.split(".")[1]
        again = sorted(p for p in os.listdir(out) if p.endswith(f".{seed}.png") and p != name)
        assert len(again) == 1
        a, b = (np.asarray(Image.open(os.path.join(out, n))) for n in (name, again[0]))
        assert np.array_equal(a, b)


def test_fetch_glob_outfile_refuses_to_overwrite_an_image(shell, tmp_path):
    a = png(tmp_path, "a.png", {"Dream": '"x" -s 2'})
    assert shell.execute(f"!fetch {tmp_path}/*.png {a}") is False
    assert "is one of the images" in shell.said[-1]
    assert read_text_chunks(a) == {"Dream": '"x" -s 2'}
    assert shell.execute(f"!fetch {tmp_path}/*.nothing out.txt") is False
    assert shell.said[-1] == f"error: no file matches {tmp_path}/*.nothing"


def test_fetch_glob_outfile_keeps_odd_names_on_one_line(shell, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    png(tmp_path, "odd\nname\u2028.png", {"Dream": '"x" -s 2 -S 1'})
    assert shell.execute(f"!fetch {tmp_path}/odd* list.txt") is True
    assert (tmp_path / "list.txt").read_text().splitlines() == [f"# {tmp_path}/odd?name?.png",
                                                                '"x" -s 2 -S 1 -C 7.5 -A k_lms']


def test_negative_only_prompt_reads_back(tmp_path):
    request = parse('"[smoke]" -s 2 -S 1 -W 64 -H 64')
    chunks = png_chunks(request, model_name="tiny", model_hash="00", steps_run=2, made=MADE)
    assert read_png(png(tmp_path, "p.png", {"parameters": chunks["parameters"]})).command == to_command(request)


def test_a_number_past_float_range_is_one_line():
    """JSON allows integers of any size; float() of one past 1e308 overflows (found by tools/fuzz.py)."""
    import json

    from invoke_shell.errors import ParseError
    from invoke_shell.outputs.readers.invokeai import from_sd_metadata

    with pytest.raises(ParseError, match="sd-metadata cfg_scale should be a finite number"):
        from_sd_metadata(json.dumps({"image": {"prompt": "a cat", "cfg_scale": 10 ** 400}}))
