"""Inpainting masks: read from a mask file (-M) or from an init image's transparency, sized like the init
image, checked. A mask here is an "L" image in diffusers' convention: 255 = repaint, 0 = keep."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageOps

from ..errors import ImageError
from .images import open_image

MASK_SWITCH = "-M/--init_mask"


@dataclass(frozen=True)
class Mask:
    image: Image.Image   # "L", 255 = repaint, at the init image's size until `sized`
    source: str          # "file" (-M), "alpha" (the init image's transparency) or "text" (-tm)

    def sized(self, size: tuple[int, int]) -> "Mask":
        if self.image.size == size:
            return self
        resized = self.image.resize(size, Image.Resampling.BILINEAR)
        return Mask(binarize(resized), self.source)


def has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def binarize(mask: Image.Image) -> Image.Image:
    """Repaint where the mask is at least half on (diffusers binarizes the same way)."""
    return mask.point(lambda v: 255 if v >= 128 else 0)


def from_alpha(image: Image.Image) -> Image.Image | None:
    """The repaint mask of an image's transparent pixels, or None when it has none."""
    if not has_alpha(image):
        return None
    alpha = image.convert("RGBA").getchannel("A")
    if alpha.getextrema()[0] == 255:
        return None
    return binarize(ImageOps.invert(alpha))


def read_mask(path: str) -> Mask:
    """A mask file: with an alpha channel, transparent = repaint; otherwise black = repaint, white = keep."""
    image = open_image(path, MASK_SWITCH)
    mask = from_alpha(image)
    if mask is None:
        if has_alpha(image):  # an alpha channel, fully opaque: nothing is transparent, so nothing to repaint
            mask = Image.new("L", image.size, 0)
        else:
            mask = binarize(ImageOps.invert(image.convert("L")))
    return Mask(mask, "file")


def erased_under(image: Image.Image, mask: Image.Image) -> bool:
    """Whether the colours under the repaint area were erased: one flat colour there (many editors leave
    black or white under transparent pixels), so the repainted area starts from that colour."""
    import numpy as np

    under = np.asarray(image.convert("RGB"))[np.asarray(mask) > 0]  # (N, 3)
    return len(under) > 1 and bool((under == under[0]).all())


def check(mask: Mask, invert: bool) -> Mask:
    """Apply --invert_mask and refuse masks that leave nothing to keep or nothing to repaint."""
    image = ImageOps.invert(mask.image) if invert else mask.image
    low, high = image.getextrema()
    if mask.source == "text":
        if high == 0 or low == 255:
            what = "selects nothing" if high == 0 else "selects every pixel"
            lower = (high == 0) != invert
            raise ImageError(f"-tm/--text_mask: CLIPSeg's mask {what}{' once inverted' if invert else ''}; give a "
                             f"{'lower' if lower else 'higher'} threshold (-tm TEXT THRESHOLD) or other words "
                             "(!mask FILE -tm TEXT shows the mask)")
        return Mask(image, mask.source)
    what = "the mask" if mask.source == "file" else "the init image's transparency"
    if high == 0:
        raise ImageError(f"{MASK_SWITCH}: {what} keeps every pixel, so there is nothing to repaint "
                         "(transparent or black areas are repainted; --invert_mask flips that)")
    if low == 255:
        raise ImageError(f"{MASK_SWITCH}: {what} repaints every pixel; drop the mask for plain img2img "
                         "(or --invert_mask if the white areas were meant to be kept)")
    return Mask(image, mask.source)
