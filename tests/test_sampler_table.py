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

    scheduler = make_scheduler(entry.name, model.txt2img.scheduler.config)
    assert type(scheduler).__name__ == entry.scheduler and scheduler.order == entry.order
    for key, value in entry.overrides:
        assert scheduler.config[key] == value


@pytest.mark.parametrize("entry", TABLE, ids=lambda s: s.name)
def test_every_sampler_through_every_family(entry, tmp_path):
    request = parse(f'"a red star" -s 12 -S 5 -W 64 -H 64 -A {entry.name}')
    chunks = png_chunks(request, model_name="demo", model_hash="0" * 64, steps_run=12, made=MADE)
    for key in ("Dream", "sd-metadata", "parameters"):  # the writers this shell has, read back one by one
        assert parse(_read(tmp_path, f"{key}.png", {key: chunks[key]}).command).sampler == entry.name, key
    assert f"Sampler: {entry.a1111 or entry.name}," in chunks["parameters"]
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
