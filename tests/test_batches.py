"""-n batches, -g grids and -v/-V variations: every image replays alone from the command it records."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from invoke_shell.outputs.pngio import read_text_chunks


def pixels(path):
    return np.asarray(Image.open(path)).astype(int)


def replay_matches(shell, path, command, tolerance=2):
    """Run `command` alone in the shell; its image must match `path` within `tolerance`/255."""
    assert shell.execute(command), shell.said[-1]
    again = shell.previous[0].path
    assert np.abs(pixels(again) - pixels(path)).max() <= tolerance
    return again


@pytest.fixture
def sketch(tmp_path):
    im = Image.new("RGB", (64, 64), (30, 30, 160))
    im.paste((230, 120, 20), (20, 12, 44, 52))
    im.save(tmp_path / "sketch.png")
    return str(tmp_path / "sketch.png")


@pytest.mark.parametrize("extra", ["", "-A k_euler_a", "-I {sketch} -f 0.6"])
def test_each_image_of_a_batch_replays_alone(shell, sketch, extra):
    extra = extra.format(sketch=sketch)
    assert shell.execute(f'"fire" -s 6 -S 5 -n 3 {extra}'), shell.said
    batch = list(shell.previous)
    assert len(batch) == 3 and batch[0].seed == 5 and len({o.seed for o in batch}) == 3
    prefixes = {os.path.basename(o.path).split(".")[0] for o in batch}
    assert prefixes == {"000001"}
    for output in batch:
        command = read_text_chunks(output.path)["Dream"]
        assert f"-S {output.seed}" in command and "-n" not in command
        replay_matches(shell, output.path, command)


def test_grid(shell):
    assert shell.execute('"fire" -s 3 -S 9 -n 3 -g')
    lines = [l for l in shell.said if ": " in l]
    assert len(lines) == 4
    grid_path = lines[-1].split(": ")[0]
    assert grid_path.endswith("000001.9.grid.png")
    assert Image.open(grid_path).size == (192, 64)   # floor(sqrt(3)) = 1 row of 3 columns
    chunks = read_text_chunks(grid_path)
    assert chunks["Dream"].endswith("-n 3 --grid")
    assert [m["seed"] for m in json.loads(chunks["sd-metadata"])["images"]] == [o.seed for o in shell.previous]


def test_grid_layout():
    from invoke_shell.outputs.save import make_grid

    tiles = [Image.new("RGB", (8, 4), (i * 40, 0, 0)) for i in range(5)]
    grid = make_grid(tiles)
    assert grid.size == (24, 8)  # 2 rows, 3 columns
    assert grid.getpixel((12, 5)) == (160, 0, 0)  # image 5: row 2, column 2
    assert grid.getpixel((20, 5)) == (0, 0, 0)    # no sixth image


@pytest.mark.parametrize("extra", ["", "-I {sketch} -f 0.7"])
def test_variations_replay_and_chain(shell, sketch, extra):
    extra = extra.format(sketch=sketch)
    shell.execute(f'"fire" -s 5 -S 21 {extra}')
    base = shell.previous[0].path
    assert shell.execute(f'"fire" -s 5 -S 21 -v 0.3 -n 2 {extra}'), shell.said
    variations = list(shell.previous)
    commands = [read_text_chunks(o.path)["Dream"] for o in variations]
    for output, command in zip(variations, commands):
        assert output.seed == 21 and "-S 21 " in command and command.endswith(":0.3")
        sub_seed = int(command.split("-V ")[1].split(":")[0])
        assert os.path.basename(output.path) == f"000002.{sub_seed}.png"   # named by the sub-seed
        assert not np.array_equal(pixels(output.path), pixels(base))
        replay_matches(shell, output.path, command)
    assert not np.array_equal(pixels(variations[0].path), pixels(variations[1].path))
    # a variation of a variation: the chain grows, and replays too
    assert shell.execute(commands[0] + " -v 0.2")
    chained = shell.previous[0]
    command = read_text_chunks(chained.path)["Dream"]
    chain = command.split("-V ")[1].split()[0].split(",")
    assert len(chain) == 2 and chain[0] == commands[0].split("-V ")[1].split()[0]
    replay_matches(shell, chained.path, command)


def test_old_comma_chain_spelling_gives_the_same_image(shell):
    shell.execute('"fire" -s 4 -S 3 -V 99:0.5')
    a = shell.previous[0].path
    shell.execute('"fire" -s 4 -S 3 -V 99,0.5')
    assert np.array_equal(pixels(a), pixels(shell.previous[0].path))


def test_back_references_reach_into_the_batch(shell):
    shell.execute('"fire" -s 2 -S 40 -n 2')
    first, second = shell.previous
    shell.execute('"fire" -s 2 -S -2')
    assert shell.previous[0].seed == first.seed


def test_prompt_weighting_goes_through_compel(shell, model):
    """Plain prompts encode exactly as diffusers does; weighted ones change the conditioning and the image."""
    from invoke_shell.engine.prompts import conditioning

    plain, _ = conditioning(model, "a red car", "")
    with torch.inference_mode():
        reference, _ = model.txt2img.encode_prompt("a red car", "cpu", 1, True, "")
    assert float((plain - reference).abs().max()) == 0.0
    for line in ['"a red car" -s 3 -S 4', '"a (red)1.5 car" -s 3 -S 4', '"a red++ car" -s 3 -S 4',
                 '"(\\"a red car\\", \\"a blue car\\").blend(1, 1)" -s 3 -S 4']:
        assert shell.execute(line), shell.said[-1]
    images = [pixels(p) for p in sorted(os.path.join(shell.outdir, f) for f in os.listdir(shell.outdir)
                                        if f.endswith(".png"))]
    assert all(not np.array_equal(images[0], other) for other in images[1:])


def test_log_tokenization(shell):
    long_prompt = "fire " + " ".join(["x"] * 80)
    assert shell.execute(f'"{long_prompt} [smoke]" -s 2 -S 1 -t')
    kept, dropped, negative = shell.said[:3]
    assert kept.startswith("prompt tokens (75 of 75): f i r e</w> x</w> x</w>")
    assert dropped == "prompt tokens dropped past 75 (9): " + " ".join(["x</w>"] * 9)  # 4 + 80 tokens
    assert negative == "negative tokens (5 of 75): s m o k e</w>"
