"""`!verify`: re-run each PNG's command and compare the pixels, saying what differs and why."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw

from invoke_shell.models.manager import ModelManager
from invoke_shell.models.registry import BUILTIN
from invoke_shell.outputs.pngio import read_text_chunks, write_png
from invoke_shell.shell import Shell


def _folder_of_images(shell, tmp_path):
    init = tmp_path / "sketch.png"
    im = Image.new("RGB", (64, 64), (0, 0, 0))
    ImageDraw.Draw(im).ellipse((16, 16, 48, 48), fill=(230, 90, 10))
    im.save(init)
    for line in ('"a red star" -s 3 -S 9 -W 64 -H 64 -n 3',
                 '"fire" -s 3 -S 9 -W 64 -H 64 -v 0.3 -n 2',
                 '"fire" -s 3 -S 5 -W 64 -H 64 -n 2 -g',
                 '"fire" -s 3 -S 21 -W 64 -H 64 -A ddim',
                 f'"fire" -s 4 -S 12 -W 64 -H 64 -I {init} -f 0.7'):
        assert shell.execute(line), shell.said
    return init


def _pngs(shell):
    from pathlib import Path

    return sorted(Path(shell.outdir).glob("*.png"))


def test_a_folder_of_this_shells_pngs_verifies_identical(shell, tmp_path):
    _folder_of_images(shell, tmp_path)
    made = _pngs(shell)
    assert len(made) == 10  # 3 + 2 + 2 and a grid + 1 + 1
    shell.said.clear()
    assert shell.execute(f"!verify {shell.outdir}/*.png")
    assert shell.said[-1] == "verify: 10 of 10 identical"
    assert all(line.endswith(": identical") for line in shell.said[:-1]) and len(shell.said) == 11
    assert _pngs(shell) == made  # nothing written


def test_an_edited_init_image_is_reported_with_the_reason(shell, tmp_path):
    init = _folder_of_images(shell, tmp_path)
    img2img = str(shell.previous[0].path)
    im = Image.open(init).convert("RGB")
    ImageDraw.Draw(im).rectangle((0, 0, 20, 20), fill=(0, 200, 0))
    im.save(init)
    shell.said.clear()
    shell.execute(f"!verify {img2img}")
    line, summary = shell.said
    assert line.startswith(f"{img2img}: differs: max ") and ", mean " in line
    assert f"-I/--init_img {init} has changed since the image was made" in line
    assert summary == "verify: 0 of 1 identical"
    init.unlink()
    shell.execute(f"!verify {img2img}")
    assert shell.said[-2] == f"{img2img}: not verified: -I/--init_img {init} is not there; the command needs it"


def test_a_bfloat16_png_verifies_in_a_default_shell_with_its_recorded_precision(tmp_path):
    said = []
    shell = Shell(ModelManager(BUILTIN, device="cpu"), outdir=str(tmp_path / "out"), say=said.append, model="tiny")
    assert shell.execute('"fire" -s 3 -S 8 -W 64 -H 64 --precision bfloat16')
    made = shell.previous[0].path
    meta = json.loads(read_text_chunks(made)["sd-metadata"])
    assert meta["image"]["precision"] == "bfloat16" and meta["image"]["device"] == "cpu"
    assert set(meta["versions"]) == {"invoke-shell", "torch", "diffusers"}
    assert shell.execute('"fire" -s 3 -S 8 -W 64 -H 64')  # back to the session's float32
    assert shell.manager.active.pick.dtype == "float32"
    plain = shell.previous[0].path
    assert not np.array_equal(np.asarray(Image.open(made)), np.asarray(Image.open(plain)))

    fresh = []
    other = Shell(ModelManager(BUILTIN, device="cpu"), outdir=str(tmp_path / "out"), say=fresh.append, model="tiny")
    other.execute(f"!verify {made}")
    assert fresh == [f"{made}: identical", "verify: 1 of 1 identical"]
    assert other.manager.active.pick.dtype == "float32"  # the session's model is back afterwards
    fresh.clear()
    other.execute(f"!verify {made} --precision float32")
    assert fresh[0].startswith(f"{made}: differs: max ")
    assert "precision float32 here, bfloat16 in the file" in fresh[0]


def test_keep_writes_the_rerun_beside_the_original(shell):
    assert shell.execute('"fire" -s 3 -S 30 -W 64 -H 64')
    path = shell.previous[0].path
    shell.execute(f"!verify {path} --keep")
    kept = path[:-len(".png")] + ".verify.png"
    assert np.array_equal(np.asarray(Image.open(kept)), np.asarray(Image.open(path)))
    shell.execute(f"!verify {shell.outdir}/*.png")  # re-runs and strips are not verified themselves
    assert shell.said[-1] == "verify: 1 of 1 identical"


def test_what_differs_is_named(shell, tmp_path):
    assert shell.execute('"fire" -s 3 -S 31 -W 64 -H 64')
    path = shell.previous[0].path
    chunks = read_text_chunks(path)
    meta = json.loads(chunks["sd-metadata"])
    meta["versions"]["torch"] = "1.13.1"
    meta["image"]["device"] = "cuda"
    meta["model_hash"] = "f" * 64
    pixels = np.asarray(Image.open(path)).copy()
    pixels[0, 0] = 255 - pixels[0, 0]
    changed = str(tmp_path / "changed.png")
    write_png(changed, Image.fromarray(pixels), {"sd-metadata": json.dumps(meta)})
    shell.execute(f"!verify {changed}")
    line = shell.said[-2]
    assert line.startswith(f"{changed}: differs: max ")
    for reason in ("device cpu here, cuda in the file", "torch ", " in the file", "1.13.1 in the file",
                   "model tiny's files differ from those the image was made with"):
        assert reason in line, line
    meta["model_id"] = "gone"
    write_png(changed, Image.fromarray(pixels), {"sd-metadata": json.dumps(meta)})
    shell.execute(f"!verify {changed}")
    assert shell.said[-2] == f"{changed}: not verified: model 'gone' is not in models.yaml"


@pytest.mark.parametrize("argument, message", [
    ("", "error: !verify needs PNG files: !verify FILE|GLOB [...] [--keep] [--precision TYPE]"),
    ("x.png --bogus", "error: !verify: unknown option '--bogus'; usage: !verify FILE|GLOB [...] [--keep] "
                      "[--precision TYPE]"),
    ("x.png --precision half", "error: --precision must be one of auto, float32, float16, bfloat16; got 'half'"),
    ("x.png --precision", "error: --precision needs a value (TYPE)"),
    ("nothing*.png", "error: !verify: no file matches nothing*.png"),
])
def test_bad_verify_arguments_say_one_line(shell, tmp_path, monkeypatch, argument, message):
    monkeypatch.chdir(tmp_path)
    assert shell.execute(f"!verify {argument}".strip()) is False
    assert shell.said == [message]


def test_a_png_without_metadata_is_not_verified(shell, tmp_path):
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    shutil.copy(plain, tmp_path / "plain2.png")
    shell.execute(f"!verify {tmp_path}/plain*.png")
    assert shell.said == [f"{plain}: not verified: no generation metadata",
                          f"{tmp_path}/plain2.png: not verified: no generation metadata", "verify: 0 of 2 identical"]
