"""Make every picture in the README, docs/img2img.md, docs/inpainting.md, docs/loras.md and
docs/image-tools.md with the shell itself, on the built-in demo model: a crude sketch and an inpainting
picture with its masks (drawn here), what the model draws from a prompt and from the sketch, the img2img
strips, the inpainting results, the shipped example LoRA and embedding with and without them, a seamless
picture tiled 3 x 3 beside an ordinary one, hires fix beside a direct render at twice the model's size,
a picture before and after -c/--outcrop, and --embiggen with its numbered tiles. In float32 on any CPU
(`--precision auto` could pick bfloat16 on one with AMX). Deterministic: the shell runs single-threaded, so a
rerun on the same machine gives the same files byte for byte; another CPU family (AVX2 beside AVX-512) rounds
some float32 sums differently, and a few pixels may then differ by a level or two
(tests/test_doc_pictures.py allows for that).

    .venv/bin/python scripts/make_doc_pictures.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
SEED = 1592514025
SKETCH = "-I sketch.png"
# file name -> the command that makes it (the strips are written beside the image as .strip.png)
README = {
    "fire.png": f'"fire" -s 10 -S {SEED} -W 64 -H 64 -A k_lms',
    "fire-from-sketch.png": f'"fire" -s 10 -S {SEED} -W 64 -H 64 -A k_lms {SKETCH} -f 0.7',
    "red-star.png": '"a red star on a blue background" -s 20 -S 7 -W 64 -H 64 -A k_lms',
}
GUIDE = {
    "img2img/strip-10-0.7.png": f'"fire" -s 10 -S {SEED} {SKETCH} -f 0.7 --strip',
    "img2img/strip-10-0.4.png": f'"fire" -s 10 -S {SEED} {SKETCH} -f 0.4 --strip',
    "img2img/strip-20-0.7-compensated.png": f'"fire" -s 20 -S {SEED} {SKETCH} -f 0.7 --compensate_steps --strip',
    "img2img/strip-20-0.4-compensated.png": f'"fire" -s 20 -S {SEED} {SKETCH} -f 0.4 --compensate_steps --strip',
    "img2img/steps-29-0.7.png": f'"fire" -s 29 -S {SEED} {SKETCH} -f 0.7',
    "img2img/steps-30-0.7.png": f'"fire" -s 30 -S {SEED} {SKETCH} -f 0.7',
}
INPAINT = {
    "inpainting/star-from-mask.png": '"a yellow star on a green background" -s 20 -S 7 -I square.png -f 0.8 -M mask.png',
    "inpainting/star-from-alpha.png": '"a yellow star on a green background" -s 20 -S 7 -I square-holed.png -f 0.8',
    "inpainting/inverted.png": '"a red square on a blue background" -s 20 -S 7 -I square.png -f 0.8 -M mask.png --invert_mask',
    "inpainting/strip-star.png": '"a yellow star on a green background" -s 20 -S 7 -I square.png -f 0.8 -M mask.png --strip',
}
LORAS = {  # the shipped examples for the demo model (invoke_shell/data/examples; docs/loras.md)
    "loras/ring-without.png": '"a red ring on a green background" -s 20 -S 3 -W 64 -H 64',
    "loras/ring-half.png": '"a red ring on a green background withLora(ring,0.5)" -s 20 -S 3 -W 64 -H 64',
    "loras/ring-with.png": '"a red ring on a green background withLora(ring)" -s 20 -S 3 -W 64 -H 64',
    "loras/ember-without.png": '"a ember star on a blue background" -s 20 -S 3 -W 64 -H 64',
    "loras/ember-with.png": '"a <ember> star on a blue background" -s 20 -S 3 -W 64 -H 64',
}
TOOLS = {  # docs/image-tools.md: InvokeAI 2.3's image switches
    "tools/seamless-3x3.png": '"fire" -s 20 -S 5 -W 64 -H 64 --seamless',
    "tools/plain-3x3.png": '"fire" -s 20 -S 5 -W 64 -H 64',
    "tools/hires-fix-128.png": '"a red star on a blue background" -s 20 -S 7 -W 128 -H 128 --hires_fix',
    "tools/direct-128.png": '"a red star on a blue background" -s 20 -S 7 -W 128 -H 128',
    "tools/outcrop-before.png": '"a red star on a blue background" -s 20 -S 7',
    "tools/outcrop-after.png": '"a red star on a blue background" -s 20 -S 7 -I -1 -c left 32 right 32 top 16',
    # outputs/000003.7.png is README's red-star.png (the third command run)
    "tools/embiggen.png": '"a red star on a blue background" -s 20 -S 7 -I outputs/000003.7.png --embiggen 2.5',
}
EMBIGGEN_SOURCE = "outputs/000003.7.png"
TILED = 3  # the *-3x3.png pictures are shown tiled 3 x 3, so that their edges meet their opposite edges
INPUTS = ("sketch.png", "inpainting/square.png", "inpainting/mask.png", "inpainting/square-holed.png")
SCALE = 4  # the model draws 64 x 64; single images are shown 4x, pixel for pixel


def draw_sketch(path: Path) -> None:
    """A crude flame: an orange blob with a yellow core and a red tip, on black."""
    im = Image.new("RGB", (64, 64), (0, 0, 0))
    d = ImageDraw.Draw(im)
    d.polygon([(32, 6), (46, 40), (40, 58), (24, 58), (18, 40)], fill=(230, 90, 10))
    d.ellipse((25, 34, 39, 56), fill=(250, 210, 40))
    d.line([(32, 6), (30, 20)], fill=(200, 20, 10), width=3)
    im.save(path)


def draw_inpainting_inputs(folder: Path) -> None:
    """A red square on green; a mask that repaints the square (black = repaint, white = keep); and the same
    picture with the square made transparent, as an editor's eraser leaves it."""
    im = Image.new("RGB", (64, 64), (40, 160, 60))
    ImageDraw.Draw(im).rectangle((20, 20, 43, 43), fill=(210, 30, 30))
    im.save(folder / "square.png")
    mask = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(mask).rectangle((16, 16, 47, 47), fill=0)
    mask.save(folder / "mask.png")
    holed = im.convert("RGBA")
    holed.putalpha(mask)
    holed.save(folder / "square-holed.png")


def draw_embiggen_tiles(source: Path, dest: Path) -> None:
    """The tiles --embiggen 2.5 refines on a 64 px picture, numbered as 2.3 numbered them, drawn over the
    Lanczos enlargement they start from (shown 3x)."""
    from invoke_shell.engine.embiggen import OVERLAP, enlarged, tiles

    scale = 3
    with Image.open(source) as im:
        big = enlarged(im.convert("RGB"), 2.5, 8)
    big = big.resize((big.width * scale, big.height * scale), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(big)
    colours = [(255, 255, 255), (255, 230, 0), (0, 255, 120)]
    for tile in tiles((big.width // scale, big.height // scale), (64, 64), OVERLAP):
        left, top, right, bottom = (v * scale for v in tile.box)
        colour = colours[(tile.number - 1) % len(colours)]
        inset = 2 * ((tile.number - 1) % 3)
        draw.rectangle((left + inset, top + inset, right - 1 - inset, bottom - 1 - inset), outline=colour, width=2)
        draw.text((left + inset + 6, top + inset + 4), str(tile.number), fill=colour)
    dest.parent.mkdir(parents=True, exist_ok=True)
    big.save(dest)


def _save(src: Path, dest: Path, scale: int) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as im:
        im = im.convert("RGBA" if "A" in im.getbands() else "RGB")  # a transparent init stays transparent
        if dest.name.endswith("-3x3.png"):
            tiled = Image.new(im.mode, (im.width * TILED, im.height * TILED))
            for k in range(TILED * TILED):
                tiled.paste(im, ((k % TILED) * im.width, (k // TILED) * im.height))
            im, scale = tiled, 2
        im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST).save(dest)  # no metadata


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"))
    out = Path(parser.parse_args().out)
    commands = {**README, **GUIDE, **INPAINT, **LORAS, **TOOLS}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        draw_sketch(work / "sketch.png")
        draw_inpainting_inputs(work)
        env = dict(os.environ, OMP_NUM_THREADS="1", INVOKE_SHELL_CACHE=str(work / "cache"))
        result = subprocess.run([sys.executable, "-m", "invoke_shell", "--model", "demo", "--precision", "float32",
                                 "--from_file", "-"],
                                cwd=work, input="\n".join(commands.values()) + "\n", text=True,
                                capture_output=True, env=env)
        print(result.stdout, end="")
        if result.returncode != 0:
            sys.exit(f"the shell failed:\n{result.stderr}")
        made = sorted(p for p in (work / "outputs").glob("*.png") if not p.name.endswith(".strip.png"))
        for name in INPUTS:
            _save(work / Path(name).name, out / name, SCALE)
        for name, path in zip(commands, made):
            strip = path.with_name(path.name[: -len(".png")] + ".strip.png")
            if strip.exists():
                _save(strip, out / name, 2)
            else:
                _save(path, out / name, SCALE)
        draw_embiggen_tiles(work / EMBIGGEN_SOURCE, out / "tools" / "embiggen-tiles.png")
    print(f"wrote {len(INPUTS) + len(commands) + 1} pictures under {out}")


if __name__ == "__main__":
    main()
