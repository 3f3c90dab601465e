"""Init images: reading them safely and choosing the size the model works at."""

from __future__ import annotations

import os
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError


def open_image(path: str, switch: str = "-I/--init_img") -> Image.Image:
    """Open an image fully read, with its EXIF rotation applied and its mode kept; one-line ImageError on
    any problem."""
    if os.path.isdir(path):
        raise ImageError(f"{switch}: {path} is a folder, not an image")
    if os.path.exists(path) and not os.path.isfile(path):  # a FIFO would block until written, a device never end
        raise ImageError(f"{switch}: {path} is not a regular file")
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):  # 16-bit grey: convert("RGB") would clip to white
                im = im.convert("I").point(lambda v: v / 257).convert("L")
            return im
    except FileNotFoundError:
        raise ImageError(f"{switch}: no such file: {path}") from None
    except UnidentifiedImageError:
        raise ImageError(f"{switch}: {path} is not an image Pillow can read") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{switch}: {path} is too large to open safely ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{switch}: cannot read {path}: {exc}") from None


def load_rgb(path: str, switch: str = "-I/--init_img") -> Image.Image:
    """Open an image as RGB; transparent areas are flattened onto white."""
    return flatten(open_image(path, switch))


def flatten(im: Image.Image) -> Image.Image:
    """RGB, with any transparent areas flattened onto white."""
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    return im.convert("RGB")


def floor_to(value: int, multiple: int) -> int:
    return max(multiple, value // multiple * multiple)


@dataclass(frozen=True)
class Sizing:
    width: int          # the size the model works at
    height: int
    record_width: int   # what the canonical command records as -W/-H (the box, with --fit)
    record_height: int
    warnings: tuple[str, ...]


def choose_size(width: int | None, height: int | None, fit: bool, native: tuple[int, int], multiple: int,
                image_size: tuple[int, int] | None) -> Sizing:
    """The working size. txt2img: -W/-H, else the model's native size. img2img: with --fit, the image
    fitted inside W x H keeping its aspect; with -W and/or -H, that size (a missing side follows the
    aspect); else the image's own size. Every size is floored to a multiple the model accepts."""
    if image_size is None or fit:
        box_w, box_h = width or native[0], height or native[1]
        if image_size is None:
            w, h = box_w, box_h
        else:
            scale = min(box_w / image_size[0], box_h / image_size[1])
            w, h = round(image_size[0] * scale), round(image_size[1] * scale)
    else:
        iw, ih = image_size
        if width and height:
            w, h = width, height
        elif width:
            w, h = width, round(ih * width / iw)
        elif height:
            w, h = round(iw * height / ih), height
        else:
            w, h = iw, ih
    fw, fh = floor_to(w, multiple), floor_to(h, multiple)
    warnings = ()
    if (fw, fh) != (w, h):
        warnings = (f"size {w}x{h} floored to {fw}x{fh} (this model needs multiples of {multiple})",)
    # with --fit the command records the box, so that a replay fits the image into the same box
    record = (box_w, box_h) if image_size is not None and fit else (fw, fh)
    return Sizing(fw, fh, record[0], record[1], warnings)
