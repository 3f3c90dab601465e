"""`.swap()`: InvokeAI 2.3's prompt-to-prompt cross-attention control, on the trained demo model and judged by
the scorer: the swapped shape is drawn where the original prompt put its shape."""

from __future__ import annotations

import numpy as np
import pytest

from invoke_shell.toymodel.scorer import FG_THRESHOLD, _as_array, background_rgb, distance_map, judge

SEEDS = (0, 1, 2, 3)


@pytest.fixture
def demo_shell(demo_model, tmp_path):
    from invoke_shell.shell import Shell

    said: list[str] = []
    shell = Shell(demo_model_manager(demo_model), outdir=str(tmp_path / "out"), say=said.append, model="demo")
    shell.said = said
    return shell


def demo_model_manager(model):
    class Manager:  # the session fixture's model, as a manager that always has it active
        active = model
        registry = None
        tools = None  # no -U, -G or -tm here
        device = "cpu"
        precision = "float32"

        def serves(self, _model, _precision):
            return True

        def activate(self, *_):
            return model
    manager = Manager()
    from invoke_shell.models.registry import ModelEntry, Registry

    manager.registry = Registry((ModelEntry("demo", "", "diffusers", path="builtin:demo", default=True),), None)
    return manager


def picture(shell, prompt: str, seed: int):
    assert shell.execute(f'"{prompt}" -s 20 -S {seed} -W 64 -H 64'), shell.said[-3:]
    from PIL import Image

    return Image.open(shell.previous[-1].path).convert("RGB")


def shape_mask(image) -> np.ndarray:
    a = _as_array(image)
    return distance_map(a, background_rgb(a)) > FG_THRESHOLD


def overlap(a, b) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_swap_changes_the_shape_and_keeps_the_composition(demo_shell):
    kept, plain = [], []
    for seed in SEEDS:
        circle = picture(demo_shell, "a red circle on a blue background", seed)
        swapped = picture(demo_shell, "a red circle.swap(square) on a blue background", seed)
        square = picture(demo_shell, "a red square on a blue background", seed)
        assert judge(circle)["shape"] == "circle"
        assert judge(swapped) == {"shape": "square", "color": "red", "bg": "blue"}, seed
        assert not np.array_equal(np.asarray(swapped), np.asarray(square)), "not the plain square prompt"
        kept.append(overlap(shape_mask(circle), shape_mask(swapped)))
        plain.append(overlap(shape_mask(circle), shape_mask(square)))
    # the swapped square covers more of the circle's place than the square its own prompt draws
    assert np.mean(kept) > np.mean(plain), (kept, plain)
    assert sum(k >= p for k, p in zip(kept, plain)) >= len(SEEDS) - 1, (kept, plain)


def test_swap_leaves_nothing_behind(demo_shell, demo_model):
    processors = [m.processor for n, m in demo_model.txt2img.unet.named_modules() if n.endswith("attn2")]
    before = np.asarray(picture(demo_shell, "a red circle on a blue background", 5))
    picture(demo_shell, "a red circle.swap(star, t_start=0.1) on a blue background", 5)
    after = np.asarray(picture(demo_shell, "a red circle on a blue background", 5))
    assert np.array_equal(before, after)
    assert [m.processor for n, m in demo_model.txt2img.unet.named_modules() if n.endswith("attn2")] == processors


@pytest.mark.parametrize("prompt,message", [
    ("a red circle [a blue.swap(green) thing]", ".swap() works in the prompt, not in the [negative prompt]"),
    ('(\\"a red circle.swap(square)\\", \\"fire\\").and()', ".swap() cannot be combined with .and()"),
])
def test_swap_refusals(demo_shell, prompt, message):
    before = len(demo_shell.said)
    assert not demo_shell.execute(f'"{prompt}" -s 5 -S 1 -W 64 -H 64')
    assert any(message in line for line in demo_shell.said[before:]), demo_shell.said[before:]
