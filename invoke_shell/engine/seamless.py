"""--seamless: pictures that tile. Every padded convolution of the UNet and the VAE pads circularly (wrapping
around to the opposite edge) along the axes asked for and with zeros along the others, as InvokeAI 2.3 did
for both axes with `padding_mode="circular"`. The convolutions are changed only inside `seamless(...)`:
their forward is an instance attribute while inside and is deleted on the way out, so the next plain
command runs the modules exactly as before."""

from __future__ import annotations

from contextlib import contextmanager

AXES = ("x", "y")


@contextmanager
def seamless(modules, axes: tuple[str, ...] | None):
    """Inside, the padded Conv2d layers of `modules` wrap around along `axes` ("x": left/right, "y":
    top/bottom); nothing happens for None or ()."""
    if not axes:
        yield
        return
    import torch

    changed = []
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, torch.nn.Conv2d) and _padded(layer) and "_conv_forward" not in vars(layer):
                layer._conv_forward = _wrapping(layer, axes)
                changed.append(layer)
    try:
        yield
    finally:
        for layer in changed:
            del layer._conv_forward


def _padded(layer) -> bool:
    return not isinstance(layer.padding, str) and any(layer.padding)


def _wrapping(layer, axes: tuple[str, ...]):
    """A `_conv_forward` for `layer` that pads each axis itself (circular along `axes`, zeros elsewhere) and
    convolves without padding."""
    import torch.nn.functional as F

    pad_y, pad_x = layer.padding
    x_mode = "circular" if "x" in axes else "constant"
    y_mode = "circular" if "y" in axes else "constant"

    def forward(input, weight, bias):
        padded = F.pad(input, (pad_x, pad_x, 0, 0), mode=x_mode)
        padded = F.pad(padded, (0, 0, pad_y, pad_y), mode=y_mode)
        return F.conv2d(padded, weight, bias, layer.stride, 0, layer.dilation, layer.groups)

    return forward

