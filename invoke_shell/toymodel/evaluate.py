"""Evaluate a built-in-model folder with the diffusers pipelines and the procedural scorer.

    python -m invoke_shell.toymodel.evaluate [--model DIR] [--save DIR]

1. checks the scorer on procedural ground truth (must be >= 99%);
2. txt2img on HELD-OUT (colour, shape, background) prompts never seen in training, fixed seeds,
   the scheduler as saved (LMS with Karras sigmas), guidance 7.5, 64x64, at 20 and 10 steps;
3. "fire", "a fire", "fire on a blue background";
4. DDIM, Euler, Heun and DPM++ built with Cls.from_config(pipe.scheduler.config), 20 steps;
5. img2img on script-drawn crude sketches that match their prompt: mean |out - init| (0-255)
   at strengths 0.2, 0.4, 0.7, 0.9, at 10 and 20 steps (must rise strictly);
and ends with one SUMMARY line.
"""
from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from PIL import Image, ImageDraw

from . import data as D
from . import scorer

DEFAULT_MODEL = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "builtin")
STRENGTHS = (0.2, 0.4, 0.7, 0.9)
FIRE_PROMPTS = [("fire", {"shape": "fire"}), ("a fire", {"shape": "fire"}),
                ("fire on a blue background", {"shape": "fire", "bg": "blue"})]


def load(model: str):
    from diffusers import StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained(model, local_files_only=True, safety_checker=None)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def module_dtypes(pipe) -> dict:
    return {n: str(next(getattr(pipe, n).parameters()).dtype) for n in ("unet", "vae", "text_encoder")}


def generate(pipe, prompts, seeds, steps: int, guidance: float = 7.5, size: int = 64, batch: int = 32):
    out = []
    for i in range(0, len(prompts), batch):
        ps, ss = prompts[i:i + batch], seeds[i:i + batch]
        gens = [torch.Generator().manual_seed(s) for s in ss]
        out += pipe(prompt=list(ps), generator=gens, num_inference_steps=steps, guidance_scale=guidance,
                    height=size, width=size).images
    return out


def held_out_set(seeds=(0, 1)):
    prompts, wants, sds = [], [], []
    for s in seeds:
        for c, sh, b in D.HELD_OUT:
            prompts.append(D.shape_prompt(c, sh, b))
            wants.append({"shape": sh, "color": c, "bg": b})
            sds.append(s)
    return prompts, wants, sds


def accuracy(imgs, wants) -> tuple[float, dict]:
    seen = scorer.judge_many(imgs)
    parts = {"shape": 0, "color": 0, "bg": 0}
    ok = 0
    for s, w in zip(seen, wants):
        ok += scorer.correct(s, w)
        for k in parts:
            parts[k] += (w.get(k) is None) or s[k] == w[k]
    n = max(1, len(wants))
    return ok / n, {k: v / n for k, v in parts.items()}


# ----------------------------------------------------------------------------- crude sketches
def _wobbly(cx, cy, r, rng, n=14, amp=0.18):
    return [(cx + r * (1 + rng.uniform(-amp, amp)) * math.cos(2 * math.pi * k / n),
             cy + r * (1 + rng.uniform(-amp, amp)) * math.sin(2 * math.pi * k / n)) for k in range(n)]


def _scribble(d, rng, colour, n, width=2):
    for _ in range(n):
        x, y = rng.uniform(0, 64), rng.uniform(0, 64)
        pts = [(x, y)]
        for _ in range(3):
            x, y = x + rng.uniform(-20, 20), y + rng.uniform(-8, 8)
            pts.append((x, y))
        d.line(pts, fill=colour, width=width)


def sketches():
    """(name, prompt, want, picture): crude hand-drawn-looking pictures that match their prompt."""
    rng = random.Random(7)
    out = []
    img = Image.new("RGB", (64, 64), (60, 90, 200))
    d = ImageDraw.Draw(img)
    _scribble(d, rng, (30, 60, 170), 10)
    d.polygon(_wobbly(30, 34, 15, rng), fill=(200, 50, 40))
    out.append(("red blob on scribbled blue", "a red circle on a blue background",
                {"shape": "circle", "color": "red", "bg": "blue"}, img))
    img = Image.new("RGB", (64, 64), (20, 20, 20))
    d = ImageDraw.Draw(img)
    for k in range(7):
        x = 22 + k * 3 + rng.uniform(-2, 2)
        d.line([(x, 56), (x + rng.uniform(-5, 5), 56 - rng.uniform(18, 36))], fill=(240, 130, 30), width=3)
    out.append(("orange scribble on black", "fire", {"shape": "fire"}, img))
    img = Image.new("RGB", (64, 64), (50, 160, 70))
    d = ImageDraw.Draw(img)
    _scribble(d, rng, (70, 185, 80), 8)
    d.polygon([(32 + rng.uniform(-3, 3), 12), (12 + rng.uniform(-3, 3), 52), (53 + rng.uniform(-3, 3), 50)],
              fill=(235, 215, 60), outline=(120, 110, 20))
    out.append(("yellow wonky triangle on green", "a yellow triangle on a green background",
                {"shape": "triangle", "color": "yellow", "bg": "green"}, img))
    return out


def img2img_distances(pipe, init: Image.Image, prompt: str, want: dict, steps: int, seeds=(0, 1, 2)):
    """{strength: (mean |out-init| on 0-255, number of seeds whose output matches the prompt)}."""
    from diffusers import StableDiffusionImg2ImgPipeline
    i2i = StableDiffusionImg2ImgPipeline(**pipe.components, requires_safety_checker=False)
    i2i.set_progress_bar_config(disable=True)
    a0 = np.asarray(init, dtype=np.float32)
    res = {}
    for st in STRENGTHS:
        if int(steps * st) == 0:           # diffusers crashes when no step would be taken
            res[st] = (0.0, 0, [init])
            continue
        outs = i2i(prompt=[prompt] * len(seeds), image=[init] * len(seeds), strength=st,
                   num_inference_steps=steps, guidance_scale=7.5,
                   generator=[torch.Generator().manual_seed(s) for s in seeds]).images
        dist = float(np.mean([np.abs(np.asarray(o, dtype=np.float32) - a0).mean() for o in outs]))
        match = sum(scorer.correct(s, want) for s in scorer.judge_many(outs))
        res[st] = (dist, match, outs)
    return res


def grid(imgs, cols):
    rows = math.ceil(len(imgs) / cols)
    w, h = imgs[0].size
    g = Image.new("RGB", (cols * w, rows * h), (128, 128, 128))
    for i, im in enumerate(imgs):
        g.paste(im, ((i % cols) * w, (i // cols) * h))
    return g


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--seeds", type=int, default=2, help="seeds per held-out prompt")
    ap.add_argument("--save", default=None, help="write sample grids (PNG) into this folder")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-samplers", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    say = lambda s: print(s, flush=True)  # noqa: E731

    gt = scorer.ground_truth_accuracy(500)
    say(f"scorer: {gt:.1%} right on 500 procedural ground-truth pictures (needs >= 99%): {'OK' if gt >= 0.99 else 'FAIL'}")

    t = time.time()
    pipe = load(args.model)
    size_mb = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(args.model) for f in fs) / 1e6
    dts = module_dtypes(pipe)
    say(f"model {args.model}: {size_mb:.2f} MB, loaded in {time.time() - t:.2f} s, modules {dts}, "
        f"scheduler {type(pipe.scheduler).__name__} use_karras_sigmas={pipe.scheduler.config.get('use_karras_sigmas')}")

    prompts, wants, sds = held_out_set(tuple(range(args.seeds)))
    say(f"held-out prompts: {len(D.HELD_OUT)} (colour, shape, background) triples never trained, "
        f"{args.seeds} seeds each, k_lms as saved, guidance 7.5, 64x64")
    acc = {}
    imgs_by_steps = {}
    for steps in (20, 10):
        t = time.time()
        imgs = generate(pipe, prompts, sds, steps)
        imgs_by_steps[steps] = imgs
        a, parts = accuracy(imgs, wants)
        acc[steps] = a
        say(f"  {steps} steps: all right {a:.1%} (shape {parts['shape']:.1%}, colour {parts['color']:.1%}, "
            f"background {parts['bg']:.1%}); {len(imgs)} images in {time.time() - t:.1f} s")

    fp = [p for p, _ in FIRE_PROMPTS for _ in range(4)]
    fw = [w for _, w in FIRE_PROMPTS for _ in range(4)]
    fs = [s for _ in FIRE_PROMPTS for s in range(4)]
    fire = {}
    fire_imgs = {}
    for steps in (20, 10):
        fire_imgs[steps] = generate(pipe, fp, fs, steps)
        fire[steps] = accuracy(fire_imgs[steps], fw)[0]
    say(f"fire ('fire', 'a fire', 'fire on a blue background' x 4 seeds): 20 steps {fire[20]:.0%}, 10 steps {fire[10]:.0%}")

    samplers = {}
    if not args.skip_samplers:
        from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler,
                               HeunDiscreteScheduler)
        orig = pipe.scheduler
        sp, sw, ss = held_out_set((0,))
        for name, cls in (("ddim", DDIMScheduler), ("k_euler", EulerDiscreteScheduler),
                          ("k_heun", HeunDiscreteScheduler), ("dpmpp_2m", DPMSolverMultistepScheduler)):
            pipe.scheduler = cls.from_config(orig.config)
            samplers[name] = accuracy(generate(pipe, sp, ss, 20), sw)[0]
        pipe.scheduler = orig
        say("other samplers from_config(pipe.scheduler.config), 20 steps, guidance 7.5, held-out prompts seed 0: "
            + ", ".join(f"{k} {v:.0%}" for k, v in samplers.items()))

    mono_all = True
    i2i_lines = []
    i2i_imgs = []
    for name, prompt, want, init in sketches():
        for steps in (10, 20):
            r = img2img_distances(pipe, init, prompt, want, steps)
            ds = [r[s][0] for s in STRENGTHS]
            mono = all(b > a for a, b in zip(ds, ds[1:]))
            mono_all &= mono
            line = (f"  {name!r} -> {prompt!r}, {steps} steps: mean |out-init| "
                    + " / ".join(f"{d:.1f}" for d in ds) + f" at strengths {'/'.join(map(str, STRENGTHS))}; "
                    f"prompt matched {'/'.join(str(r[s][1]) for s in STRENGTHS)} of 3 seeds; "
                    f"{'rises strictly' if mono else 'NOT monotonic'}")
            i2i_lines.append(line)
            if steps == 20:
                i2i_imgs += [init] + [r[s][2][0] for s in STRENGTHS]
    say("img2img on prompt-matching crude sketches (k_lms, guidance 7.5, seeds 0-2):")
    for ln in i2i_lines:
        say(ln)

    if args.save:
        os.makedirs(args.save, exist_ok=True)
        grid(imgs_by_steps[20], len(D.HELD_OUT)).resize((len(D.HELD_OUT) * 128, args.seeds * 128), Image.NEAREST).save(
            os.path.join(args.save, "held_out_20steps.png"))
        grid(fire_imgs[20], 4).save(os.path.join(args.save, "fire_20steps.png"))
        grid(i2i_imgs, 5).resize((5 * 128, 3 * 128), Image.NEAREST).save(os.path.join(args.save, "img2img_20steps.png"))
        big = generate(pipe, ["a red star on a blue background", "a yellow circle on a purple background",
                              "a green square on a white background", "fire"], [0, 0, 0, 0], 20, size=128)
        grid(big, 4).save(os.path.join(args.save, "at_128px.png"))
        say(f"sample grids written to {args.save}")

    ok = (gt >= 0.99 and acc[20] >= 0.90 and acc[10] >= 0.85 and fire[20] >= 0.90 and mono_all)
    say(f"SUMMARY {time.strftime('%Y-%m-%d')}: scorer {gt:.1%}; held-out all-right {acc[20]:.1%} @20 steps, "
        f"{acc[10]:.1%} @10 steps; fire {fire[20]:.0%}; "
        + (", ".join(f"{k} {v:.0%}" for k, v in samplers.items()) + "; " if samplers else "")
        + f"img2img distance rises strictly: {'yes' if mono_all else 'NO'}; "
        f"{size_mb:.1f} MB; {time.time() - t0:.0f} s -> {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
