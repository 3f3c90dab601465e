"""-tm/--text_mask TEXT [THRESHOLD] and !mask: where in a picture TEXT is, from CLIPSeg (transformers'
CLIPSegForImageSegmentation, a text_mask stanza: models/tools.py), as InvokeAI 2.3's txt2mask made it: the
picture scaled into a 352 x 352 square (top left, black around), the model's logits through a sigmoid, the
pixels at or above THRESHOLD selected, and that map scaled back over the picture."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

SIZE = 352          # CLIPSeg's input side
THRESHOLD = 0.5     # 2.3's default


def letterboxed(image: Image.Image) -> Image.Image:
    """The picture scaled to fit SIZE x SIZE, pasted at the top left of a black square (2.3's way)."""
    scale = SIZE / max(image.width, image.height)
    square = Image.new("RGB", (SIZE, SIZE))
    size = (max(1, int(scale * image.width)), max(1, int(scale * image.height)))
    square.paste(image.convert("RGB").resize(size, Image.Resampling.LANCZOS), (0, 0))
    return square


def heatmap(tool, image: Image.Image, text: str) -> np.ndarray:
    """CLIPSeg's probability of `text` at each of the SIZE x SIZE points of the letterboxed picture."""
    import torch

    inputs = tool.processor(text=[text], images=[letterboxed(image)], padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = tool.model(**{k: v.to(tool.device) for k, v in inputs.items()}).logits
    return torch.sigmoid(logits).reshape(logits.shape[-2:]).float().cpu().numpy()


@dataclass(frozen=True)
class Segmented:
    image: Image.Image
    heat: np.ndarray  # SIZE x SIZE, in [0, 1]

    def _over_image(self, values: np.ndarray, resample) -> Image.Image:
        """A SIZE x SIZE map of bytes scaled back over the picture (the inverse of `letterboxed`)."""
        side = max(self.image.width, self.image.height)
        square = Image.fromarray(values.astype(np.uint8), mode="L").resize((side, side), resample)
        return square.crop((0, 0, self.image.width, self.image.height))

    def selected(self, threshold: float) -> Image.Image:
        """"L" at the picture's size: 255 where the text is (repaint), 0 elsewhere."""
        chosen = np.where(self.heat >= threshold, 255, 0)
        return self._over_image(chosen, Image.Resampling.NEAREST)

    def share(self, threshold: float) -> float:
        """How much of the picture is selected at `threshold` (0 to 1)."""
        selected = self.selected(threshold)
        return sum(selected.histogram()[128:]) / (self.image.width * self.image.height)

    def mask_file(self, threshold: float) -> Image.Image:
        """The mask as -M reads it (2.3's .masked.png): black where the text is (repaint), white elsewhere."""
        return self.selected(threshold).point(lambda v: 255 - v)

    def transparent(self, selected: bool) -> Image.Image:
        """The picture with the text's area opaque and the rest see-through by CLIPSeg's confidence
        (`selected`), or the other way round (2.3's .selected.png and .deselected.png)."""
        heat = self.heat if selected else 1 - self.heat
        alpha = self._over_image(np.round(heat * 255), Image.Resampling.LANCZOS)
        picture = self.image.convert("RGBA")
        picture.putalpha(alpha)
        return picture


def said(tool, text: str, share: float, threshold: float, where: str = "the picture") -> str:
    """The line that says how much of a picture the mask selects."""
    return f"text mask: {tool.describe()} finds {text!r} in {share:.0%} of {where} at threshold {threshold:g}"


def segment(tool, image: Image.Image, text: str) -> Segmented:
    return Segmented(image, heatmap(tool, image, text))
