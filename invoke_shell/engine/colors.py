"""--init_color IMAGE: the result's colours matched to an image's, as InvokeAI 2.3 did: both pictures in CIE
LAB, each channel's histogram of the result mapped onto the reference's (the cumulative distributions
matched, as scikit-image's match_histograms does), back to RGB. Pillow's colour management does the LAB
conversion; numpy the matching."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageCms


def _transforms():
    srgb, lab = ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB")
    return (ImageCms.buildTransformFromOpenProfiles(srgb, lab, "RGB", "LAB"),
            ImageCms.buildTransformFromOpenProfiles(lab, srgb, "LAB", "RGB"))


def matched_channel(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`source`'s values moved so that their distribution is `reference`'s (quantile to quantile)."""
    values, index, counts = np.unique(source.ravel(), return_inverse=True, return_counts=True)
    ref_values, ref_counts = np.unique(reference.ravel(), return_counts=True)
    quantiles = np.cumsum(counts) / source.size
    ref_quantiles = np.cumsum(ref_counts) / reference.size
    return np.interp(quantiles, ref_quantiles, ref_values)[index].reshape(source.shape)


def match_colors(image: Image.Image, reference: Image.Image) -> Image.Image:
    """`image` (RGB) with each LAB channel's histogram matched to `reference`'s."""
    to_lab, to_rgb = _transforms()
    source, target = (_signed(ImageCms.applyTransform(im.convert("RGB"), to_lab)) for im in (image, reference))
    matched = np.stack([matched_channel(source[..., c], target[..., c]) for c in range(3)], axis=-1)
    lab = np.empty(matched.shape, np.uint8)
    lab[..., 0] = np.clip(np.rint(matched[..., 0]), 0, 255)
    lab[..., 1:] = np.clip(np.rint(matched[..., 1:]), -128, 127).astype(np.int8).view(np.uint8)
    return ImageCms.applyTransform(Image.fromarray(lab, "LAB"), to_rgb)


def _signed(lab: Image.Image) -> np.ndarray:
    """A Pillow LAB picture as numbers: L in 0..255, a and b signed (Pillow stores them as int8 in bytes)."""
    raw = np.asarray(lab)
    values = raw.astype(np.int16)
    values[..., 1:] = raw[..., 1:].view(np.int8)
    return values
