"""The one sampler table (invoke_shell/samplers.py): every consumer reads it, and every sampler survives every
metadata family's writer and reader."""

from __future__ import annotations

import json

import pytest

from invoke_shell import samplers, switches
from invoke_shell.outputs.fetch import read_png
from invoke_shell.outputs.metadata import png_chunks
from invoke_shell.outputs.pngio import write_png
from invoke_shell.outputs.provenance import Provenance
from invoke_shell.request import parse

MADE = Provenance("float32", "cpu", "cpu", "2.13.0", "0.42.1")
TABLE = samplers.SAMPLER_TABLE


def _read(tmp_path, name: str, chunks: dict[str, str]):
    from PIL import Image

    path = str(tmp_path / name)
    write_png(path, Image.new("RGB", (8, 8)), chunks)
    return read_png(path)


def test_every_consumer_reads_the_table():
    assert switches.SAMPLERS == switches.BY_DEST["sampler"].choices == tuple(s.name for s in TABLE)
    assert set(samplers.FROM_A1111.values()) == {s.name for s in TABLE if s.a1111}
    assert set(samplers.FROM_COMFYUI.values()) == {s.name for s in TABLE if s.comfyui}
    assert set(samplers.FROM_INVOKEAI3.values()) == {s.name for s in TABLE if s.invokeai3}


@pytest.mark.parametrize("entry", TABLE, ids=lambda s: s.name)
def test_the_engine_builds_the_tables_scheduler(entry, model):
    from invoke_shell.engine.samplers import make_scheduler

    scheduler = make_scheduler(entry.name, model.sampler_config)
    assert type(scheduler).__name__ == entry.scheduler and scheduler.order == entry.order
    for key, value in entry.overrides:
        assert scheduler.config[key] == value


@pytest.mark.parametrize("entry", TABLE, ids=lambda s: s.name)
def test_every_sampler_through_every_family(entry, tmp_path):
    request = parse(f'"a red star" -s 12 -S 5 -W 64 -H 64 -A {entry.name}')
    chunks = png_chunks(request, model_name="demo", model_hash="0" * 64, steps_run=12, made=MADE)
    for key in ("Dream", "sd-metadata", "parameters"):  # the writers this shell has, read back one by one
        assert parse(_read(tmp_path, f"{key}.png", {key: chunks[key]}).command).sampler == entry.name, key
    assert f"Sampler: {entry.a1111_text or entry.name}," in chunks["parameters"]
    if entry.invokeai3:  # InvokeAI 3's invokeai_metadata, as it writes it
        meta = {"positive_prompt": "a red star", "seed": 5, "steps": 12, "scheduler": entry.invokeai3}
        rebuilt = _read(tmp_path, "invoke3.png", {"invokeai_metadata": json.dumps(meta)})
        assert parse(rebuilt.command).sampler == entry.name
    if entry.comfyui:  # ComfyUI's API graph with the table's sampler and scheduler: nothing left over
        sampler_name, scheduler = entry.comfyui
        graph = {"3": {"class_type": "KSampler", "inputs": {
                     "seed": 5, "steps": 12, "cfg": 7.5, "sampler_name": sampler_name, "scheduler": scheduler,
                     "denoise": 1.0, "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
                 "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
                 "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red star"}},
                 "7": {"class_type": "CLIPTextEncode", "inputs": {"text": ""}}}
        rebuilt = _read(tmp_path, "comfy.png", {"prompt": json.dumps(graph)})
        assert parse(rebuilt.command).sampler == entry.name
        assert not [n for n in rebuilt.notes if n.startswith(("scheduler", "sampler_name"))], rebuilt.notes


def test_invokeai3_names_are_accepted_and_2_3_names_keep_their_meaning():
    assert parse('"x" -A euler').sampler == "k_euler" and parse('"x" -A dpmpp_2m').sampler == "k_dpmpp_2"
    assert parse('"x" -A dpmpp_2m_k').sampler == "dpmpp_2m_k" and parse('"x" -A k_dpmpp_2m').sampler == "k_dpmpp_2"
    assert parse('"x" -A PNDM').sampler == "plms"
    inv3 = ("ddim ddpm deis lms lms_k pndm heun heun_k euler euler_k euler_a kdpm_2 kdpm_2_a dpmpp_2s dpmpp_2s_k "
            "dpmpp_2m dpmpp_2m_k dpmpp_2m_sde dpmpp_2m_sde_k dpmpp_sde dpmpp_sde_k unipc unipc_k lcm tcd").split()
    for name in inv3:
        assert samplers.BY_NAME[parse(f'"x" -A {name}').sampler].invokeai3 == name


@pytest.mark.parametrize("text, schedule, ours", [
    ("DPM++ 2M Karras", None, "dpmpp_2m_k"), ("DPM++ 2M", "Karras", "dpmpp_2m_k"), ("DPM++ 2M", None, "k_dpmpp_2"),
    ("Euler a", None, "k_euler_a"), ("DPM++ SDE Karras", None, "dpmpp_sde_k"), ("UniPC", "Automatic", "unipc"),
    ("LMS Karras", None, "lms_k"), ("DPM++ 2M SDE", "Karras", "dpmpp_2m_sde_k")])
def test_a1111_sampler_and_schedule_type_fetch_as_ours(tmp_path, text, schedule, ours):
    params = f"Steps: 20, Sampler: {text}, " + (f"Schedule type: {schedule}, " if schedule else "") + \
        "CFG scale: 7, Seed: 5, Size: 64x64"
    rebuilt = _read(tmp_path, "a.png", {"parameters": f"a red star\n{params}"})
    assert parse(rebuilt.command).sampler == ours and f"-A {ours}" in rebuilt.command
    assert not [n for n in rebuilt.notes if "Schedule" in n or "Sampler" in n], rebuilt.notes


def test_comfyui_karras_scheduler_fetches_the_k_sampler(tmp_path):
    graph = {"3": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 12, "cfg": 7.5, "sampler_name": "dpmpp_2m",
                                                        "scheduler": "karras", "positive": ["6", 0]}},
             "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red star"}}}
    assert parse(_read(tmp_path, "c.png", {"prompt": json.dumps(graph)}).command).sampler == "dpmpp_2m_k"
    graph["3"]["inputs"]["scheduler"] = "exponential"  # no entry for that pair: the plain sampler, noted
    rebuilt = _read(tmp_path, "c.png", {"prompt": json.dumps(graph)})
    assert parse(rebuilt.command).sampler == "k_dpmpp_2" and "scheduler: exponential" in rebuilt.notes


def test_every_sampler_draws_its_own_picture_on_the_demo_model(demo_model):
    """Each sampler on the trained model gives a picture, and another than k_lms's. lms_k is k_lms there:
    the demo model's own scheduler config already asks for Karras sigmas."""
    import numpy as np

    from invoke_shell.engine.generate import prepare, run

    def draw(name):
        return np.asarray(run(prepare(parse(f'"a red star on a blue background" -s 8 -S 7 -A {name}'), demo_model),
                              demo_model), dtype=np.int16)

    reference = draw("k_lms")
    assert demo_model.sampler_config.get("use_karras_sigmas") is True
    for entry in TABLE:
        if entry.name in ("k_lms", "lms_k"):
            continue
        image = draw(entry.name)
        assert image.std() > 5, entry.name
        assert np.abs(image - reference).mean() > 0.5, entry.name
    assert np.array_equal(draw("lms_k"), reference)


def test_a_sampler_leaves_nothing_behind_for_the_next(model):
    """Every sampler is built from the model's own scheduler config, not from the one the last command
    left in the pipeline: euler_k's Karras sigmas or deis' algorithm type do not leak into the next."""
    import numpy as np

    from invoke_shell.engine.generate import prepare, run

    def draw(name):
        return np.asarray(run(prepare(parse(f'"fire" -s 4 -S 3 -A {name}'), model), model))

    before = {name: draw(name) for name in ("k_euler", "dpmpp_2s", "dpmpp_sde", "dpmpp_2m_sde")}
    draw("euler_k")
    draw("deis")
    assert all(np.array_equal(draw(name), image) for name, image in before.items())


def test_the_usage_page_lists_every_sampler():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "usage.md").read_text()
    for entry in TABLE:
        assert f"| `{entry.name}` | {entry.scheduler}" in text, entry.name


def test_clip_skip_reads_an_earlier_layer_and_leaves_the_encoder_whole(model):
    """--clip_skip 2 is A1111's Clip skip 2: the prompt read from the last layer but one, through the final
    layer norm (what diffusers' encode_prompt(clip_skip=1) computes); the encoder keeps its layers."""
    import numpy as np
    import torch

    from invoke_shell.engine.generate import prepare, run
    from invoke_shell.engine.prompts import conditioning

    encoder = model.txt2img.text_encoder
    text_model = getattr(encoder, "text_model", encoder)  # transformers 4 nests it; 5 does not
    layers = list(text_model.encoder.layers)
    skipped, _ = conditioning(model, "fire", None, 2)
    ids = model.txt2img.tokenizer("fire", padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.inference_mode():
        hidden = encoder(ids, output_hidden_states=True).hidden_states[-2]
        expected = text_model.final_layer_norm(hidden)
    assert torch.allclose(skipped, expected, atol=1e-5)
    assert list(text_model.encoder.layers) == layers
    plain = np.asarray(run(prepare(parse('"fire" -s 3 -S 2'), model), model))
    skip = np.asarray(run(prepare(parse('"fire" -s 3 -S 2 --clip_skip 2'), model), model))
    assert not np.array_equal(plain, skip)
    assert np.array_equal(plain, np.asarray(run(prepare(parse('"fire" -s 3 -S 2 --clip_skip 1'), model), model)))
    with pytest.raises(Exception, match=r"--clip_skip 3: this model's text encoder has 2 layers"):
        conditioning(model, "fire", None, 3)
    assert list(text_model.encoder.layers) == layers


@pytest.mark.parametrize("chunks", [
    {"parameters": "a red star\nSteps: 12, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 64x64, Clip skip: 2"},
    {"invokeai_metadata": json.dumps({"positive_prompt": "a red star", "seed": 5, "steps": 12, "clip_skip": 1})},
    {"prompt": json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 12, "cfg": 7,
                                                                        "sampler_name": "euler", "positive": ["6", 0]}},
                           "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red star"}},
                           "9": {"class_type": "CLIPSetLastLayer", "inputs": {"stop_at_clip_layer": -2}}})},
], ids=["a1111", "invokeai3", "comfyui"])
def test_clip_skip_fetches_from_each_family(tmp_path, chunks):
    rebuilt = _read(tmp_path, "x.png", chunks)
    assert parse(rebuilt.command).clip_skip == 2 and not [n for n in rebuilt.notes if "lip" in n.lower()]


def test_clip_skip_round_trips_through_our_writers(tmp_path):
    request = parse('"a red star" -s 12 -S 5 -W 64 -H 64 --clip_skip 3')
    chunks = png_chunks(request, model_name="demo", model_hash="0" * 64, steps_run=12, made=MADE)
    assert "Clip skip: 3," in chunks["parameters"] and json.loads(chunks["sd-metadata"])["image"]["clip_skip"] == 3
    for key in chunks:
        assert parse(_read(tmp_path, f"{key}.png", {key: chunks[key]}).command).clip_skip == 3, key
