"""Procedural 64x64 training pictures and their captions, deterministic by seed.

Shapes (circle, square, triangle, star) in one of 8 palette colours on one of the
other 7 colours, plus flame-like "fire". Captions are templated; position words are
never used (the model does not learn them, so they are not promised).
"""
from __future__ import annotations

import itertools
import math
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 64

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (245, 225, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "purple": (140, 50, 180),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
COLORS = list(PALETTE)
SHAPES = ["circle", "square", "triangle", "star"]
CLASSES = SHAPES + ["fire"]          # what the scorer's classifier predicts
SIZES = {"small": (9, 13), "medium": (14, 19), "large": (20, 26)}
FIRE_BACKGROUNDS = ["blue", "green", "purple", "white"]  # non-black fire backgrounds
JITTER = 12
FIRE_FRACTION = 0.1

#: every word a caption can contain (the tokenizer makes each one token)
VOCABULARY = sorted(set(COLORS + SHAPES + ["small", "large", "a", "an", "on", "background", "fire"]))


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _held_out(n: int = 24, seed: int = 1234) -> list[tuple[str, str, str]]:
    """(colour, shape, background) triples never shown in training.

    Chosen so that every pair (colour, shape), (colour, bg), (shape, bg) still occurs
    in at least 3 training triples: the held-out prompts test composition, not new words.
    """
    allt = [(c, s, b) for c in COLORS for s in SHAPES for b in COLORS if b != c]
    rng = random.Random(seed)
    rng.shuffle(allt)
    keep = set(allt)
    out: list[tuple[str, str, str]] = []

    def pairs(t):
        c, s, b = t
        return [("cs", c, s), ("cb", c, b), ("sb", s, b)]

    for t in allt:
        if len(out) == n:
            break
        if t == ("red", "star", "blue"):        # the documented example stays trained
            continue
        trial = keep - {t}
        ok = True
        for p in pairs(t):
            cnt = sum(1 for u in trial if p in pairs(u))
            if cnt < 3:
                ok = False
                break
        if ok:
            keep = trial
            out.append(t)
    return sorted(out)


HELD_OUT = _held_out()
TRAIN_TRIPLES = [(c, s, b) for c in COLORS for s in SHAPES for b in COLORS
                 if b != c and (c, s, b) not in set(HELD_OUT)]


def shape_prompt(color: str, shape: str, bg: str) -> str:
    return f"{article(color)} {color} {shape} on {article(bg)} {bg} background"


def _jitter(rgb, rng: random.Random):
    return tuple(max(0, min(255, v + rng.randint(-JITTER, JITTER))) for v in rgb)


def star_points(cx, cy, r, rot=0.0, inner=0.45):
    pts = []
    for k in range(10):
        rad = r if k % 2 == 0 else r * inner
        a = rot - math.pi / 2 + k * math.pi / 5
        pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
    return pts


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill) -> None:
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        h = r * 0.88
        draw.rectangle([cx - h, cy - h, cx + h, cy + h], fill=fill)
    elif shape == "triangle":
        pts = [(cx + r * math.cos(-math.pi / 2 + k * 2 * math.pi / 3),
                cy + r * 0.1 + r * math.sin(-math.pi / 2 + k * 2 * math.pi / 3)) for k in range(3)]
        draw.polygon(pts, fill=fill)
    elif shape == "star":
        draw.polygon(star_points(cx, cy, r * 1.05), fill=fill)
    else:
        raise ValueError(shape)


def _teardrop(draw, cx, by, w, h, fill):
    """A flame tongue: round bottom centred at (cx, by - w), pointed tip h above the bottom."""
    draw.ellipse([cx - w, by - 2 * w, cx + w, by], fill=fill)
    draw.polygon([(cx - w, by - w), (cx + w, by - w), (cx, by - h)], fill=fill)


def draw_fire(rng: random.Random, bg: str) -> Image.Image:
    img = Image.new("RGB", (SIZE, SIZE), _jitter(PALETTE[bg], rng))
    d = ImageDraw.Draw(img)
    cx = 32 + rng.uniform(-6, 6)
    by = 56 + rng.uniform(-4, 4)
    scale = rng.uniform(0.8, 1.15)
    layers = [((225, 40, 20), 1.0), ((250, 140, 20), 0.68), ((255, 225, 60), 0.38)]
    for colour, f in layers:
        for _ in range(rng.randint(3, 5)):
            w = rng.uniform(6, 10) * f * scale
            h = rng.uniform(28, 44) * f * scale
            dx = rng.uniform(-9, 9) * f * scale
            _teardrop(d, cx + dx, by - (1 - f) * 3, w, h, _jitter(colour, rng))
    return img.filter(ImageFilter.GaussianBlur(0.8))


def make_sample(rng: random.Random, triples=None) -> tuple[Image.Image, str, dict]:
    """One picture, its caption and its ground truth (shape, color, bg)."""
    triples = TRAIN_TRIPLES if triples is None else triples
    if rng.random() < FIRE_FRACTION:
        bg = "black" if rng.random() < 0.6 else rng.choice(FIRE_BACKGROUNDS)
        img = draw_fire(rng, bg)
        if bg == "black":
            cap = rng.choice(["fire", "a fire", "fire on a black background"])
        else:
            cap = rng.choice([f"fire on {article(bg)} {bg} background", f"a fire on {article(bg)} {bg} background"])
        return img, cap, {"shape": "fire", "color": None, "bg": bg}
    color, shape, bg = rng.choice(triples)
    img, truth = render_shape(rng, color, shape, bg)
    size = truth["size"]
    sw = (size + " ") if (size != "medium" and rng.random() < 0.5) else ""
    u = rng.random()
    if u < 0.7:
        first = sw + color
        cap = f"{article(first)} {first} {shape} on {article(bg)} {bg} background"
    elif u < 0.8:
        first = sw + color
        cap = f"{article(first)} {first} {shape}"
    elif u < 0.9:
        first = sw + shape
        cap = f"{article(first)} {first} on {article(bg)} {bg} background"
    else:
        cap = f"{color} {shape}, {bg} background"
    return img, cap, truth


def render_shape(rng: random.Random, color: str, shape: str, bg: str, size: str | None = None):
    size = size or rng.choice(list(SIZES))
    lo, hi = SIZES[size]
    r = rng.uniform(lo, hi)
    if rng.random() < 0.5:
        cx = cy = 32.0
    else:
        m = r + 2
        cx, cy = rng.uniform(m, SIZE - m), rng.uniform(m, SIZE - m)
    img = Image.new("RGB", (SIZE, SIZE), _jitter(PALETTE[bg], rng))
    draw_shape(ImageDraw.Draw(img), shape, cx, cy, r, _jitter(PALETTE[color], rng))
    return img, {"shape": shape, "color": color, "bg": bg, "size": size}


def make_dataset(n: int, seed: int = 0, triples=None):
    """n pictures as a uint8 array (n, 64, 64, 3), captions and ground truths."""
    rng = random.Random(seed)
    arr = np.empty((n, SIZE, SIZE, 3), dtype=np.uint8)
    caps, truths = [], []
    for i in range(n):
        img, cap, truth = make_sample(rng, triples)
        arr[i] = np.asarray(img)
        caps.append(cap)
        truths.append(truth)
    return arr, caps, truths


def all_triples():
    return list(itertools.product(COLORS, SHAPES, COLORS))
