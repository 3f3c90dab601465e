"""The one model-family table (invoke_shell/models/families.py): the shipped config folders agree with it,
a diffusers folder is recognised from it, and a family it names but does not run is refused in one line."""

from __future__ import annotations

import json

import pytest

from invoke_shell.errors import ModelError
from invoke_shell.models import families, singlefile
from invoke_shell.models.manager import ModelManager
from invoke_shell.models.registry import ModelEntry, Registry

RUNNABLE = [f for f in families.FAMILY_TABLE if f.runs]


@pytest.mark.parametrize("family", RUNNABLE, ids=lambda f: f.key)
def test_each_shipped_config_folder_is_its_entry(family):
    unet = json.loads((family.folder / "unet" / "config.json").read_text())
    scheduler = json.loads(next((family.folder / "scheduler").glob("*.json")).read_text())
    assert unet["in_channels"] == family.in_channels and unet["cross_attention_dim"] == family.context_dim
    assert unet["sample_size"] * 8 == family.native_size
    assert scheduler.get("prediction_type", "epsilon") == family.prediction
    assert families.of_folder(family.folder) is family  # a diffusers folder is recognised by the table


def test_the_single_file_loader_reads_the_table():
    assert singlefile.FAMILIES == {f.key: f.description for f in RUNNABLE}
    assert singlefile.family_folder("sdxl-refiner") == families.CONFIGS / "sdxl-refiner"
    with pytest.raises(ModelError, match="unknown model family 'sd3'"):
        singlefile.family_folder("sd3")


def test_a_family_the_table_names_but_does_not_run_is_refused_in_one_line(tmp_path, monkeypatch):
    from dataclasses import replace

    folder = tmp_path / "refiner"
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionXLImg2ImgPipeline", "text_encoder": [None, None],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"]}))
    (folder / "unet" / "config.json").write_text(json.dumps({"in_channels": 4, "cross_attention_dim": 1280}))
    monkeypatch.setitem(families.BY_KEY, "sdxl-refiner", replace(families.BY_KEY["sdxl-refiner"], runs=False))
    manager = ModelManager(Registry((ModelEntry("ref", "", "diffusers", path=str(folder), default=True),), None),
                           device="cpu", precision="float32")
    with pytest.raises(ModelError) as caught:
        manager.activate("ref")
    assert str(caught.value) == (f"model 'ref': {folder} is Stable Diffusion XL refiner, which this version of "
                                 "invoke-shell does not run yet (Stable Diffusion 1.x, 2.x and XL base it does)")
    assert manager.active is None


def test_the_loaded_model_knows_its_family(model, demo_model):
    assert model.family.key == "sd1" and demo_model.family.key == "sd1"
    assert type(model.img2img).__name__ == model.family.pipelines[1]
    assert type(model.inpaint).__name__ == model.family.pipelines[2]
