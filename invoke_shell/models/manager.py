"""The model manager: loads models by name and keeps them resident between commands."""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelError
from .registry import ModelEntry, Registry

log = logging.getLogger(__name__)


def import_stack():
    """Import diffusers quietly and offline; returns the module. Everything torch-side starts here."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.set_verbosity_error()
    return diffusers


def pick_device(requested: str) -> str:
    import torch

    if requested != "auto":
        if requested == "cuda" and not torch.cuda.is_available():
            raise ModelError("--device cuda: no CUDA device is available")
        if requested == "mps" and not torch.backends.mps.is_available():
            raise ModelError("--device mps: MPS is not available")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(requested: str, device: str):
    import torch

    if requested == "auto":
        return torch.float16 if device == "cuda" else torch.float32
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[requested]


@dataclass
class LoadedModel:
    """A resident model: the txt2img and img2img pipelines share one set of components."""

    entry: ModelEntry
    folder: Path
    txt2img: object
    img2img: object
    _hash: str | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def vae_scale_factor(self) -> int:
        return self.txt2img.vae_scale_factor

    @property
    def native_size(self) -> tuple[int, int]:
        size = self.txt2img.unet.config.sample_size
        h, w = (size, size) if isinstance(size, int) else size
        return w * self.vae_scale_factor, h * self.vae_scale_factor

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this: the latent grid, and diffusers' own check of 8."""
        return max(8, self.vae_scale_factor)

    def content_hash(self) -> str:
        """sha256 over the model folder's files in sorted order (computed once)."""
        if self._hash is None:
            digest = hashlib.sha256()
            for file in sorted(p for p in self.folder.rglob("*") if p.is_file()):
                digest.update(str(file.relative_to(self.folder)).encode())
                with open(file, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
            self._hash = digest.hexdigest()
        return self._hash


class ModelManager:
    """Loads models by name; keeps up to `max_loaded` resident (least recently used freed first)."""

    def __init__(self, registry: Registry, device: str = "auto", precision: str = "auto", max_loaded: int = 2):
        self.registry = registry
        self.device_request = device
        self.precision = precision
        self.max_loaded = max(1, max_loaded)
        self._cache: OrderedDict[str, LoadedModel] = OrderedDict()
        self.active: LoadedModel | None = None
        self.device: str | None = None
        self.dtype = None

    def is_cached(self, name: str) -> bool:
        return name in self._cache

    def activate(self, name: str) -> LoadedModel:
        """Make `name` the active model, loading it unless it is resident."""
        entry = self.registry.get(name)
        model = self._cache.pop(name, None) or self._load(entry)
        self._cache[name] = model
        while len(self._cache) > self.max_loaded:
            evicted, _ = self._cache.popitem(last=False)
            log.info("freed model %s", evicted)
        self.active = model
        return model

    def _load(self, entry: ModelEntry) -> LoadedModel:
        diffusers = import_stack()
        if self.device is None:
            self.device = pick_device(self.device_request)
            self.dtype = pick_dtype(self.precision, self.device)
        folder = entry.location()
        if not (folder / "model_index.json").is_file():
            raise ModelError(f"model {entry.name!r}: {folder} is not a diffusers folder (no model_index.json)")
        try:
            pipe = diffusers.StableDiffusionPipeline.from_pretrained(
                folder, dtype=self.dtype, local_files_only=True, safety_checker=None,
                requires_safety_checker=False)
        except Exception as exc:  # diffusers raises many types for a bad folder
            log.exception("loading %s failed", entry.name)
            raise ModelError(f"model {entry.name!r} failed to load from {folder}: {exc}".splitlines()[0]) from None
        pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        img2img = diffusers.StableDiffusionImg2ImgPipeline(**pipe.components)
        img2img.set_progress_bar_config(disable=True)
        log.info("loaded model %s from %s on %s (%s)", entry.name, folder, self.device, self.dtype)
        return LoadedModel(entry, folder, pipe, img2img)
