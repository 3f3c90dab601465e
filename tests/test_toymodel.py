"""The built-in demonstration model: smoke training, the scorer, and the shipped weights."""
from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from invoke_shell.toymodel import data as D
from invoke_shell.toymodel import scorer

BUILTIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "invoke_shell", "data", "builtin")


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _load(folder):
    from diffusers import StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_tokenizer_makes_each_vocabulary_word_one_token():
    from invoke_shell.toymodel.tokenizer import build_tokenizer
    tok = build_tokenizer()
    for w in D.VOCABULARY:
        assert len(tok(w, add_special_tokens=False).input_ids) == 1, w
    assert tok("a dragon").input_ids[0] == tok.bos_token_id   # unknown words still tokenize


def test_dataset_is_deterministic_and_holds_out_prompts():
    a1, c1, _ = D.make_dataset(50, seed=3)
    a2, c2, _ = D.make_dataset(50, seed=3)
    assert (a1 == a2).all() and c1 == c2
    held = {D.shape_prompt(*t) for t in D.HELD_OUT}
    _, caps, _ = D.make_dataset(3000, seed=0)
    assert not held & set(caps)
    assert not any(w in " ".join(caps).split() for w in ("left", "right", "top", "bottom"))


def test_scorer_is_right_on_ground_truth():
    assert scorer.ground_truth_accuracy(150, seed=777) >= 0.99


def test_smoke_training_writes_a_loadable_folder(tmp_path):
    from invoke_shell.toymodel import train
    out = tmp_path / "toy"
    assert train.main(["--out", str(out), "--smoke"]) == 0
    cfg = json.loads((out / "scheduler" / "scheduler_config.json").read_text())
    assert cfg["use_karras_sigmas"] is True and cfg["clip_sample"] is False and cfg["steps_offset"] == 1
    pipe = _load(str(out))
    img = pipe("a red star on a blue background", num_inference_steps=3, height=64, width=64,
               generator=torch.Generator().manual_seed(0)).images[0]
    assert img.size == (64, 64)


def test_shipped_model_loads_offline_in_float32_and_is_small():
    pipe = _load(BUILTIN)
    for name in ("unet", "vae", "text_encoder"):
        assert next(getattr(pipe, name).parameters()).dtype == torch.float32, name
    assert pipe.vae_scale_factor == 4
    assert type(pipe.scheduler).__name__ == "LMSDiscreteScheduler"
    c = pipe.scheduler.config
    assert c.use_karras_sigmas and not c.clip_sample and not c.set_alpha_to_one and c.skip_prk_steps and c.steps_offset == 1
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(BUILTIN) for f in fs)
    assert size <= 12_500_000


def test_shipped_model_draws_a_red_star_on_a_blue_background():
    pipe = _load(BUILTIN)
    seeds = [0, 1, 2]
    imgs = pipe(["a red star on a blue background"] * 3, num_inference_steps=20, guidance_scale=7.5,
                height=64, width=64, generator=[torch.Generator().manual_seed(s) for s in seeds]).images
    seen = scorer.judge_many(imgs)
    right = sum(scorer.correct(s, {"shape": "star", "color": "red", "bg": "blue"}) for s in seen)
    assert right >= 2, seen
