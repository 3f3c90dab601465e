"""Judges a 64x64 picture: background colour, shape colour and shape class.

- background: nearest palette colour to the median of a 3-pixel border ring;
- shape colour: nearest palette colour to the median of the pixels far from that background;
- shape class (circle, square, triangle, star, fire): a small CNN trained on procedural pictures,
  fed the picture's distance-from-background map (so it is colour-blind). Its weights are cached
  in shape_classifier.safetensors next to this file; `python -m invoke_shell.toymodel.scorer`
  trains them again (about 2 minutes on one core) and checks them on fresh ground truth.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image, ImageFilter

from . import data as D

WEIGHTS = os.path.join(os.path.dirname(__file__), "shape_classifier.safetensors")
_PAL = np.array([D.PALETTE[c] for c in D.COLORS], dtype=np.float32)
FG_THRESHOLD = 45.0


def nearest_colour(rgb) -> str:
    d = ((_PAL - np.asarray(rgb, dtype=np.float32)) ** 2).sum(1)
    return D.COLORS[int(d.argmin())]


def _as_array(img) -> np.ndarray:
    if isinstance(img, Image.Image):
        img = img.convert("RGB")
        if img.size != (D.SIZE, D.SIZE):
            img = img.resize((D.SIZE, D.SIZE), Image.BILINEAR)
        return np.asarray(img, dtype=np.float32)
    return np.asarray(img, dtype=np.float32)


def background_rgb(a: np.ndarray) -> np.ndarray:
    ring = np.concatenate([a[:3].reshape(-1, 3), a[-3:].reshape(-1, 3), a[3:-3, :3].reshape(-1, 3), a[3:-3, -3:].reshape(-1, 3)])
    return np.median(ring, axis=0)


def distance_map(a: np.ndarray, bg: np.ndarray) -> np.ndarray:
    return np.sqrt(((a - bg) ** 2).sum(-1))


class ShapeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1),
                                    nn.Conv2d(32, 48, 3, padding=1), nn.Conv2d(48, 64, 3, padding=1)])
        self.head = nn.Linear(64 * 4 * 4, len(D.CLASSES))

    def forward(self, x):
        for c in self.convs:
            x = F.max_pool2d(F.relu(c(x)), 2)
        return self.head(x.flatten(1))


def features(a: np.ndarray) -> np.ndarray:
    """The classifier's input: distance from the background colour, scaled to about 0..1."""
    return np.clip(distance_map(a, background_rgb(a)) / 150.0, 0, 1.5)[None].astype(np.float32)


_MODEL: ShapeNet | None = None


def classifier() -> ShapeNet:
    global _MODEL
    if _MODEL is None:
        from safetensors.torch import load_file
        m = ShapeNet()
        m.load_state_dict(load_file(WEIGHTS))
        _MODEL = m.eval()
    return _MODEL


def judge(img) -> dict:
    """{'shape', 'color', 'bg'} as seen in the picture (color None when no foreground is found)."""
    return judge_many([img])[0]


def judge_many(imgs) -> list[dict]:
    arrs = [_as_array(i) for i in imgs]
    out = []
    for a in arrs:
        bg = background_rgb(a)
        fg = distance_map(a, bg) > FG_THRESHOLD
        color = nearest_colour(np.median(a[fg], axis=0)) if fg.sum() >= 6 else None
        out.append({"bg": nearest_colour(bg), "color": color})
    if arrs:
        with torch.no_grad():
            x = torch.from_numpy(np.stack([features(a) for a in arrs]))
            pred = classifier()(x).argmax(1).tolist()
        for o, p in zip(out, pred):
            o["shape"] = D.CLASSES[p]
    return out


def correct(seen: dict, want: dict) -> bool:
    """All named attributes right. want: shape (or 'fire'), and optionally color and bg."""
    if seen["shape"] != want["shape"]:
        return False
    if want.get("color") and seen["color"] != want["color"]:
        return False
    if want.get("bg") and seen["bg"] != want["bg"]:
        return False
    return True


# ----------------------------------------------------------------------------- ground truth and training
def ground_truth(n: int, seed: int):
    """n class-balanced procedural pictures over all colour/shape/background triples."""
    rng = random.Random(seed)
    all_triples = [(c, s, b) for c in D.COLORS for s in D.SHAPES for b in D.COLORS if b != c]
    imgs, truths = [], []
    for i in range(n):
        if i % 5 == 4:
            bg = "black" if rng.random() < 0.6 else rng.choice(D.FIRE_BACKGROUNDS)
            imgs.append(D.draw_fire(rng, bg))
            truths.append({"shape": "fire", "color": None, "bg": bg})
        else:
            c, s, b = rng.choice([t for t in all_triples if t[1] == D.SHAPES[i % 5]])
            img, t = D.render_shape(rng, c, s, b)
            imgs.append(img)
            truths.append(t)
    return imgs, truths


def _augment(img: Image.Image, rng: random.Random) -> np.ndarray:
    if rng.random() < 0.6:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.3)))
    a = np.asarray(img, dtype=np.float32)
    if rng.random() < 0.6:
        a = a + np.random.default_rng(rng.randrange(1 << 30)).normal(0, rng.uniform(2, 12), a.shape)
    return np.clip(a, 0, 255)


def train(n: int = 15000, epochs: int = 4, seed: int = 0) -> ShapeNet:
    torch.manual_seed(seed)
    rng = random.Random(seed)
    imgs, truths = ground_truth(n, seed + 100)
    x = torch.from_numpy(np.stack([features(_augment(i, rng)) for i in imgs]))
    y = torch.tensor([D.CLASSES.index(t["shape"]) for t in truths])
    m = ShapeNet()
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * (n // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    k = 0
    for ep in range(epochs):
        perm = torch.randperm(n, generator=g)
        tot = 0.0
        for i in range(0, n - 63, 64):
            idx = perm[i:i + 64]
            loss = F.cross_entropy(m(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item()
            k += 1
        print(f"epoch {ep + 1}: loss {tot / (n // 64):.4f}", file=sys.stderr, flush=True)
    return m.eval()


def ground_truth_accuracy(n: int = 500, seed: int = 12345) -> float:
    """Share of fresh procedural pictures whose shape, colour and background the scorer gets right."""
    imgs, truths = ground_truth(n, seed)
    seen = judge_many(imgs)
    return sum(correct(s, t) for s, t in zip(seen, truths)) / n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="train the scorer's shape classifier and check it")
    ap.add_argument("--check-only", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if not args.check_only:
        t = time.time()
        m = train()
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, WEIGHTS)
        print(f"trained in {time.time() - t:.0f} s -> {WEIGHTS}", file=sys.stderr)
        global _MODEL
        _MODEL = None
    print(f"scorer accuracy on 1000 ground-truth pictures: {ground_truth_accuracy(1000):.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
