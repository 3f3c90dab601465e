"""-G/--facetool_strength: faces found in a picture (OpenCV's frontal-face detector, the Haar cascade its
package ships), each cut out square with room around it, restored at 512 x 512 by the face restorer
(GFPGAN, CodeFormer with -cf's fidelity, RestoreFormer: models/tools.py), pasted back through a feathered
oval, and the whole blended with the original by the strength, as InvokeAI 2.3 blended."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .upscale import to_image, to_tensor

FACE_SIZE = 512       # what GFPGAN, CodeFormer and RestoreFormer take and give
ROOM = 2.0            # the square cut out is this many times the detector's box (the aligned crops they learnt from)
RAISE = 0.1           # and centred this much of the box above it (the box sits low on the head)
FIDELITY = 0.75       # 2.3's default -cf
MIN_FACE = 24         # pixels: smaller boxes are noise


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    size: int

    def crop(self) -> tuple[int, int, int, int]:
        return self.left, self.top, self.left + self.size, self.top + self.size


@lru_cache(maxsize=1)
def _cascade():
    """OpenCV's frontal-face cascade, read from its package once."""
    import cv2

    return cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def detect(image: Image.Image) -> list[tuple[int, int, int, int]]:
    """(x, y, width, height) of each face found, largest first."""
    import cv2

    cascade = _cascade()
    gray = cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2GRAY)
    found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=4, minSize=(MIN_FACE, MIN_FACE))
    return sorted((tuple(int(v) for v in box) for box in found), key=lambda b: -b[2] * b[3])


def crop_box(face: tuple[int, int, int, int], width: int, height: int) -> Box:
    """The square around a face, inside the picture (shrunk and moved in where it would leave it)."""
    x, y, w, h = face
    size = min(int(round(max(w, h) * ROOM)), width, height)
    cx, cy = x + w / 2, y + h / 2 - RAISE * h
    left = int(round(min(max(cx - size / 2, 0), width - size)))
    top = int(round(min(max(cy - size / 2, 0), height - size)))
    return Box(left, top, size)


def feather(size: int) -> Image.Image:
    """The paste mask: an oval filling most of the square, its edge blurred."""
    mask = Image.new("L", (size, size), 0)
    inset = size // 10
    ImageDraw.Draw(mask).ellipse((inset, inset, size - inset, size - inset), fill=255)
    return mask.filter(ImageFilter.GaussianBlur(max(1, size // 20)))


def restore_face(face: Image.Image, tool, fidelity: float | None) -> Image.Image:
    """One face (a square picture) through the restorer, at FACE_SIZE, back at its own size. The models
    work on [-1, 1]; CodeFormer also takes the fidelity (0: quality, 1: faithful to the input). GFPGAN's
    StyleGAN decoder injects noise: the noise stored in its weights file, not fresh noise on each call (which
    GFPGAN's own inference draws, so that the same command would not give the same picture)."""
    import torch

    extra = {"weight": FIDELITY if fidelity is None else fidelity} if tool.architecture == "CodeFormer" else \
        {"randomize_noise": False} if tool.architecture == "GFPGAN" else {}
    x = to_tensor(face.resize((FACE_SIZE, FACE_SIZE), Image.Resampling.LANCZOS), tool.device)
    with torch.inference_mode():
        y = tool.model.model(x * 2 - 1, **extra)[0]
    return to_image((y + 1) / 2).resize(face.size, Image.Resampling.LANCZOS)


def restore(image: Image.Image, tool, strength: float, fidelity: float | None = None) -> tuple[Image.Image, int]:
    """(the picture with its faces restored and blended in by `strength`, how many faces were found)."""
    image = image.convert("RGB")
    faces = detect(image)
    if not faces:
        return image, 0
    restored = image.copy()
    for face in faces:
        box = crop_box(face, image.width, image.height)
        new = restore_face(restored.crop(box.crop()), tool, fidelity)
        restored.paste(new, box.crop()[:2], feather(box.size))
    return Image.blend(image, restored, strength), len(faces)
