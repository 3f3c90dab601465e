"""Reading weights from a file as data, never as code: safetensors, or a pickle (.ckpt/.pt/.pth/.bin) through
torch's weights-only unpickler with the few harmless globals real files carry allowed. A pickle that would
import anything else is refused, naming what it would run, before anything in it runs. Checkpoints, LoRAs and
embeddings are all read here."""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

from ..errors import ModelError

SAFETENSORS = {".safetensors"}
PICKLES = {".ckpt", ".pt", ".pth", ".bin"}


class _LightningCallbackStub:
    """Stands in for pytorch_lightning's ModelCheckpoint class, which old .ckpt files name as a dict key."""


def safe_globals():
    """The globals real SD checkpoints carry, allowed to torch's weights-only unpickler (data only)."""
    import numpy as np
    import torch

    core = getattr(np, "_core", None) or np.core
    scalar = core.multiarray.scalar
    dtypes = [type(np.dtype(t)) for t in ("float64", "float32", "float16", "int64", "int32", "int16",
                                            "int8", "uint8", "bool")]
    allowed = [scalar, (scalar, "numpy.core.multiarray.scalar"), np.dtype, *dtypes]
    for module in ("pytorch_lightning.callbacks.model_checkpoint", "lightning.pytorch.callbacks.model_checkpoint"):
        allowed.append((_LightningCallbackStub, f"{module}.ModelCheckpoint"))
    return torch.serialization.safe_globals(allowed)


def _unsafe_globals(path: Path, exc: Exception) -> str:
    """Names of the globals the pickle would import: read statically from a zip checkpoint (nothing
    runs), else the one torch's unpickler stopped at."""
    import torch

    try:
        with safe_globals():
            names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # noqa: BLE001 - only improves the message; a legacy (non-zip) file lands here
        names = re.findall(r"GLOBAL ([\w.]+)", str(exc))[:1]
    return ", ".join(names) or "code"


def load_pickle(path: Path, what: str = "checkpoint") -> dict:
    """torch.load, weights only, with the harmless extras allowed; a one-line ModelError otherwise."""
    import torch

    is_zip = zipfile.is_zipfile(path)
    try:
        with safe_globals():
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower():
            raise ModelError(f"refusing to load {path.name}: its pickle would run {_unsafe_globals(path, exc)}, "
                             "which a weights-only load does not allow; use a .safetensors copy") from None
        raise ModelError(f"{path.name} is not a readable PyTorch {what} ({first_line(exc)})") from None
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, ImportError) as exc:
        raise ModelError(f"{path.name} is not a readable PyTorch {what} "
                         f"(truncated or damaged? {first_line(exc)})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path.name} holds a {type(data).__name__}, not a {what} dictionary")
    return data


def read_weights(path: Path, what: str) -> dict:
    """Every tensor (and plain value) in a weights file, read as data; a one-line ModelError naming `what`
    (a LoRA, an embedding) for a file that is missing, damaged, of another type, or carries code."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"no such {what} file: {path}")
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS:
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path)))
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own SafetensorError and OSError
            raise ModelError(f"{path.name} is not a valid safetensors file "
                             f"(truncated or damaged? {first_line(exc)})") from None
    if suffix in PICKLES:
        return load_pickle(path, what)
    raise ModelError(f"{path.name}: unsupported {what} file type {path.suffix!r}; "
                     f"expected one of {', '.join(sorted(SAFETENSORS | PICKLES))}")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, cut to its first sentence when long."""
    lines = str(exc).strip().splitlines()
    line = lines[0] if lines else type(exc).__name__
    if len(line) > 120 and ". " in line:
        line = line[:line.index(". ")]
    return line
