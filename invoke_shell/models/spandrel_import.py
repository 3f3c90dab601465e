"""Importing spandrel (the loader that recognises upscaler and face-restorer architectures from their weights)
where torchvision cannot be imported.

spandrel declares torchvision as a requirement, but two of its architectures only touch it: LaMa (an
inpainter we never load: `rotate` and `InterpolationMode`) and RestoreFormer (`normalize`). The only
torchvision wheels a CPU-only machine's registry may offer are CUDA builds, which fail to import beside the
CPU torch (and a failed torchvision breaks transformers' image processors for the rest of the process). So the
Makefile installs spandrel with `--no-deps`, and here, when `import torchvision` fails, spandrel is imported
with a stand-in for those three names, which is removed from `sys.modules` right after so that nothing else
mistakes it for torchvision. Where torchvision works (a CUDA install), it is used as it is.
"""

from __future__ import annotations

import enum
import importlib
import sys
import types

from ..errors import ModelError

INSTALL = "pip install --no-deps spandrel==0.4.2 spandrel_extra_arches==0.2.0 einops"
_loaded: dict[str, object] = {}


class InterpolationMode(enum.Enum):
    """torchvision's names for the resampling modes (LaMa's arch names them at import)."""

    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


def _rotate(*args, **kwargs):
    raise ModelError("this architecture rotates pictures with torchvision, which is not installed here")


def _normalize(tensor, mean, std, inplace=False):
    """torchvision's normalize: (tensor - mean) / std per channel (RestoreFormer's input)."""
    import torch

    mean = torch.as_tensor(mean, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
    std = torch.as_tensor(std, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
    return (tensor - mean) / std


def _stand_in() -> dict[str, types.ModuleType]:
    root = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.InterpolationMode, functional.rotate, functional.normalize = InterpolationMode, _rotate, _normalize
    transforms.functional, transforms.InterpolationMode = functional, InterpolationMode
    root.transforms = transforms
    return {"torchvision": root, "torchvision.transforms": transforms,
            "torchvision.transforms.functional": functional}


def _torchvision_works() -> bool:
    try:
        importlib.import_module("torchvision")
        return True
    except Exception:  # noqa: BLE001 - a CUDA build beside a CPU torch raises RuntimeError, others ImportError
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        return False


def spandrel():
    """The spandrel module, with spandrel_extra_arches' architectures (CodeFormer) added when installed;
    a one-line ModelError saying how to install it when it is not."""
    if "spandrel" in _loaded:
        return _loaded["spandrel"]
    stand_in = {} if _torchvision_works() else _stand_in()
    sys.modules.update(stand_in)
    try:
        module = importlib.import_module("spandrel")
        try:
            importlib.import_module("spandrel_extra_arches").install()
        except ImportError:
            pass  # CodeFormer and the other extra architectures are not installed: their files are not recognised
    except ImportError as exc:
        raise ModelError(f"upscalers and face restorers need spandrel ({exc}); install it with: {INSTALL}") from None
    finally:
        for name in stand_in:
            if sys.modules.get(name) is stand_in[name]:
                del sys.modules[name]
    _loaded["spandrel"] = module
    return module
