"""Teach the built-in demo model two things it has never seen, as the two example files shipped with the package
(invoke_shell/data/examples/):

- `loras/ring.safetensors`, a LoRA (kohya format; UNet and text encoder attention, rank 8): the shape word
  `ring`, a shape the demo model was never shown (it knows circles, squares, triangles, stars and fire).
  Trained on rings in the palette's colours captioned as the demo's pictures are, mixed half and half with
  its ordinary pictures. (A new colour cannot be taught by a LoRA here: the demo's VAE was trained on its 8
  colours and decodes pink as yellow.)
- `embeddings/ember.safetensors`, a textual-inversion embedding (diffusers format, one vector): the new word
  `<ember>` for the colour the demo model calls orange; only that vector is trained.

Then the scorer counts, over held-out prompts (shape and background pairs never used in training), in how
many the new concept is drawn with the file and without it. About 8 minutes on 2 CPU cores:

    python -m invoke_shell.toymodel.teach [--out invoke_shell/data/examples] [--lora-steps 1500] [--ti-steps 400]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..models.library import EXAMPLES
from . import data as D
from .scorer import FG_THRESHOLD, _as_array, background_rgb, distance_map

# held out from the trainings: the prompts the scorer counts ((colour, background) for rings, (shape,
# background) for <ember>)
HELD_OUT_RINGS = [("red", "green"), ("yellow", "blue"), ("white", "purple"), ("blue", "yellow"),
                  ("green", "black"), ("orange", "white")]
HELD_OUT = [("star", "green"), ("circle", "blue"), ("triangle", "black"), ("square", "purple"), ("star", "white"),
            ("circle", "yellow")]
SEEDS = (0, 1, 2, 3)


def foreground_colour(img) -> np.ndarray | None:
    """The median colour of the pixels far from the picture's background (the scorer's rule)."""
    a = _as_array(img)
    fg = distance_map(a, background_rgb(a)) > FG_THRESHOLD
    return np.median(a[fg], axis=0) if fg.sum() >= 6 else None


def drawn_in(img, rgb) -> bool:
    """Whether the shape is drawn in `rgb`: within 60 levels of it (RGB distance) and nearer to it than to any
    other colour of the demo's palette."""
    colour = foreground_colour(img)
    if colour is None:
        return False
    target = float(((colour - np.asarray(rgb, np.float32)) ** 2).sum())
    others = [float(((colour - np.asarray(c, np.float32)) ** 2).sum()) for c in D.PALETTE.values()
              if tuple(c) != tuple(rgb)]
    return target < min(others) and target < 60 ** 2


def is_ring(img) -> bool:
    """Whether the picture holds a ring: a shape at least 12 pixels across whose middle is background and
    which covers between a quarter and 80% of the disc it spans (a filled circle covers all of it)."""
    a = _as_array(img)
    mask = distance_map(a, background_rgb(a)) > FG_THRESHOLD
    ys, xs = np.nonzero(mask)
    if len(xs) < 20:
        return False
    top, bottom, left, right = ys.min(), ys.max(), xs.min(), xs.max()
    width, height = right - left + 1, bottom - top + 1
    if min(width, height) < 12 or max(width, height) > 1.5 * min(width, height):
        return False
    cy, cx = (top + bottom) // 2, (left + right) // 2
    hole = not mask[cy - 1:cy + 2, cx - 1:cx + 2].any()
    cover = mask[top:bottom + 1, left:right + 1].sum() / (np.pi / 4 * width * height)
    return bool(hole and 0.25 <= cover <= 0.8)


def _ring(rng: random.Random, colour: str, bg: str) -> Image.Image:
    r = rng.uniform(12, 24)
    cx = cy = 32.0 if rng.random() < 0.5 else None
    if cx is None:
        cx, cy = rng.uniform(r + 2, 62 - r), rng.uniform(r + 2, 62 - r)
    img = Image.new("RGB", (D.SIZE, D.SIZE), D._jitter(D.PALETTE[bg], rng))
    ImageDraw.Draw(img).ellipse([cx - r, cy - r, cx + r, cy + r], outline=D._jitter(D.PALETTE[colour], rng),
                                width=max(3, round(r / 3)))
    return img


def rings(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """n pictures: half rings in the palette's colours (no held-out colour and background pair), captioned
    as the demo's shapes are; half the demo's own training pictures."""
    rng = random.Random(seed)
    pairs = [(c, b) for c in D.COLORS for b in D.COLORS if c != b and (c, b) not in HELD_OUT_RINGS]
    images, captions = [], []
    for _ in range(n):
        if rng.random() < 0.5:
            img, caption, _ = D.make_sample(rng)
        else:
            colour, bg = rng.choice(pairs)
            img = _ring(rng, colour, bg)
            caption = rng.choice([f"{D.article(colour)} {colour} ring on {D.article(bg)} {bg} background",
                                  f"{D.article(colour)} {colour} ring", f"a ring on {D.article(bg)} {bg} background"])
        images.append(np.asarray(img))
        captions.append(caption)
    return np.stack(images), captions


def embers(n: int, seed: int, token: str) -> tuple[np.ndarray, list[str]]:
    """n pictures of shapes in the palette's orange, captioned with `token` for the colour (no held-out shape
    and background pair)."""
    rng = random.Random(seed)
    pairs = [(s, b) for s in D.SHAPES for b in D.COLORS if b != "orange" and (s, b) not in HELD_OUT]
    images, captions = [], []
    for _ in range(n):
        shape, bg = rng.choice(pairs)
        images.append(np.asarray(D.render_shape(rng, "orange", shape, bg)[0]))
        captions.append(rng.choice([f"a {token} {shape} on {D.article(bg)} {bg} background", f"a {token} {shape}"]))
    return np.stack(images), captions


def _encode(pipe, images: np.ndarray, captions: list[str]):
    with torch.no_grad():
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        latents = torch.cat([pipe.vae.encode(x[i:i + 256]).latent_dist.mean for i in range(0, len(x), 256)])
        ids = pipe.tokenizer(captions, padding="max_length", max_length=77, truncation=True,
                             return_tensors="pt").input_ids
    return latents * pipe.vae.config.scaling_factor, ids


def _train(pipe, latents, ids, params, steps: int, lr: float, seed: int, after_step=None) -> float:
    from diffusers import DDPMScheduler

    ddpm = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    empty = pipe.tokenizer("", padding="max_length", max_length=77, return_tensors="pt").input_ids[0]
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    running = None
    for step in range(steps):
        index = torch.randint(0, len(latents), (32,), generator=generator)
        tokens = ids[index].clone()
        tokens[torch.rand(32, generator=generator) < 0.1] = empty
        x0 = latents[index]
        noise = torch.randn(x0.shape, generator=generator)
        t = torch.randint(0, 1000, (32,), generator=generator)
        pred = pipe.unet(ddpm.add_noise(x0, noise, t), t, encoder_hidden_states=pipe.text_encoder(tokens)[0]).sample
        loss = ((pred - noise) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if after_step is not None:
            after_step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
    return running


def teach_lora(pipe, out: Path, steps: int, seed: int) -> dict:
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict

    from .adapters import TEXT_TARGETS, UNET_TARGETS, write_lora

    latents, ids = _encode(pipe, *rings(3000, seed))
    torch.manual_seed(seed)
    inject_adapter_in_model(LoraConfig(r=8, lora_alpha=8, target_modules=UNET_TARGETS), pipe.unet)
    inject_adapter_in_model(LoraConfig(r=8, lora_alpha=8, target_modules=TEXT_TARGETS), pipe.text_encoder)
    params = [p for m in (pipe.unet, pipe.text_encoder) for n, p in m.named_parameters() if "lora_" in n]
    for m in (pipe.unet, pipe.text_encoder, pipe.vae):
        for n, p in m.named_parameters():
            p.requires_grad_("lora_" in n)
    start = time.time()
    loss = _train(pipe, latents, ids, params, steps, 1e-3, seed)
    layers = {f"unet.{k}": v.detach() for k, v in get_peft_model_state_dict(pipe.unet).items()}
    for key, value in get_peft_model_state_dict(pipe.text_encoder).items():
        layers[f"text_encoder.{key if key.startswith('text_model.') else 'text_model.' + key}"] = value.detach()
    (out / "loras").mkdir(parents=True, exist_ok=True)
    write_lora(layers, out / "loras" / "ring.safetensors", "kohya")
    return {"steps": steps, "seconds": round(time.time() - start), "loss": round(loss, 4), "rank": 8}


def teach_embedding(pipe, out: Path, steps: int, seed: int) -> dict:
    from .adapters import write_embedding

    token = "<ember>"
    pipe.tokenizer.add_tokens([token])
    pipe.text_encoder.resize_token_embeddings(len(pipe.tokenizer))
    token_id = pipe.tokenizer.convert_tokens_to_ids(token)
    table = pipe.text_encoder.get_input_embeddings().weight
    with torch.no_grad():  # start from a word the model knows that means nothing about colour
        table[token_id] = table[pipe.tokenizer.convert_tokens_to_ids("on</w>")]
    original = table.detach().clone()
    latents, ids = _encode(pipe, *embers(2000, seed + 1, token))
    for m in (pipe.unet, pipe.text_encoder, pipe.vae):
        for p in m.parameters():
            p.requires_grad_(False)
    table.requires_grad_(True)
    keep = torch.ones(len(table), dtype=torch.bool)
    keep[token_id] = False

    def restore_others():
        with torch.no_grad():
            table[keep] = original[keep]

    start = time.time()
    loss = _train(pipe, latents, ids, [table], steps, 5e-3, seed, after_step=restore_others)
    (out / "embeddings").mkdir(parents=True, exist_ok=True)
    write_embedding(table[token_id:token_id + 1], out / "embeddings" / "ember.safetensors", "diffusers", token)
    return {"steps": steps, "seconds": round(time.time() - start), "loss": round(loss, 4)}


def _demo_pipeline():
    from diffusers import StableDiffusionPipeline

    from ..models.builtin import SHIPPED

    pipe = StableDiffusionPipeline.from_pretrained(SHIPPED, dtype=torch.float32, local_files_only=True,
                                                   safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def count(cases: list[dict], judge, run) -> dict:
    """In how many held-out prompts x seeds `judge(image)` holds, with the file and without it; each case
    is {"with": prompt, "without": prompt}; `run(prompt, seed)` -> image."""
    found = {"with": 0, "without": 0}
    for case in cases:
        for seed in SEEDS:
            for key in ("with", "without"):
                found[key] += judge(run(case[key], seed))
    found["of"] = len(cases) * len(SEEDS)
    return found


def score(folder: Path) -> dict:
    """The scorer's figures for the two shipped files, through the shell's own engine on the demo model."""
    from ..engine import adapters
    from ..engine.generate import prepare, run
    from ..models.library import Library
    from ..models.manager import ModelManager
    from ..models.registry import ModelEntry, Registry
    from ..request import parse

    registry = Registry((ModelEntry("demo", "", "diffusers", path="builtin:demo", default=True),), None)
    model = ModelManager(registry, device="cpu", precision="float32").activate("demo")
    library = Library([folder / "loras"], [folder / "embeddings"])

    def generate(prompt: str, seed: int):
        request = parse(f'"{prompt}" -s 20 -S {seed} -W 64 -H 64')
        adapters.apply(model, request.extras, library)
        return run(prepare(request, model), model)

    ring_cases = [{"with": f"{D.article(c)} {c} ring on {D.article(b)} {b} background withLora(ring)",
                   "without": f"{D.article(c)} {c} ring on {D.article(b)} {b} background"} for c, b in HELD_OUT_RINGS]
    ember_cases = [{"with": f"a <ember> {s} on {D.article(b)} {b} background",
                    "without": f"a ember {s} on {D.article(b)} {b} background"} for s, b in HELD_OUT]
    return {"ring LoRA": count(ring_cases, is_ring, generate),
            "<ember> embedding": count(ember_cases, lambda image: drawn_in(image, D.PALETTE["orange"]), generate)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=EXAMPLES)
    p.add_argument("--lora-steps", type=int, default=1500)
    p.add_argument("--ti-steps", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--score-only", action="store_true")
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    record = {}
    if not args.score_only:
        record["lora"] = teach_lora(_demo_pipeline(), args.out, args.lora_steps, args.seed)
        print("lora", record["lora"], flush=True)
        record["embedding"] = teach_embedding(_demo_pipeline(), args.out, args.ti_steps, args.seed)
        print("embedding", record["embedding"], flush=True)
    record["score"] = score(args.out)
    print(json.dumps(record["score"]))
    if not args.score_only:
        record["command"] = " ".join(["python -m invoke_shell.toymodel.teach", *(argv if argv is not None else sys.argv[1:])])
        (args.out / "training.json").write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
