"""The model manager: loads models by name and keeps up to N resident, least recently used freed first.

The active model sits on the execution device; other cached models wait in CPU RAM, so a switch back
to one reads nothing from disk. The active model is never evicted. Device moves happen in `_place`.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import write_atomic
from ..errors import ModelError
from .registry import ModelEntry, Registry

log = logging.getLogger(__name__)

OFFLOAD_MODES = ("model", "sequential")


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


def cpu_has_native_bf16() -> bool:
    """Whether the CPU computes bfloat16 in hardware (AVX512-BF16 or AMX); elsewhere torch emulates it."""
    import torch

    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # torch without these probes: read the flags
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
        except OSError:
            return False
        return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_dtype(requested: str, device: str):
    """`auto`: float16 on CUDA; on the CPU bfloat16 where the CPU computes it natively (AVX512-BF16 or AMX),
    else float32 (emulated bfloat16 ran ~9x slower than float32 on an AVX2 CPU: bench/precision.py);
    float32 on MPS."""
    import torch

    if requested == "auto":
        if device == "cuda":
            return torch.float16
        if device == "cpu" and cpu_has_native_bf16():
            return torch.bfloat16
        return torch.float32
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[requested]


@dataclass
class LoadedModel:
    """A resident model: the txt2img, img2img and inpainting pipelines share one set of components."""

    entry: ModelEntry
    folder: Path
    txt2img: object
    img2img: object
    _hash: str | None = field(default=None, repr=False)
    _inpaint: object = field(default=None, repr=False)

    @property
    def is_inpainting(self) -> bool:
        """A 9-channel inpainting UNet (latents + mask + masked-image latents)."""
        return self.txt2img.unet.config.in_channels == 9

    @property
    def inpaint(self):
        """diffusers' inpainting pipeline on the same components, made on first use."""
        if self._inpaint is None:
            from diffusers import StableDiffusionInpaintPipeline

            self._inpaint = StableDiffusionInpaintPipeline(**self.txt2img.components)
            self._inpaint.set_progress_bar_config(disable=True)
        return self._inpaint

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def vae_scale_factor(self) -> int:
        return self.txt2img.vae_scale_factor

    @property
    def native_size(self) -> tuple[int, int]:
        if self.entry.width and self.entry.height:
            return self.entry.width, self.entry.height
        size = self.txt2img.unet.config.sample_size
        h, w = (size, size) if isinstance(size, int) else size
        return w * self.vae_scale_factor, h * self.vae_scale_factor

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this: the latent grid, and diffusers' own check of 8."""
        return max(8, self.vae_scale_factor)

    def content_hash(self) -> str:
        """sha256 over the model's files in sorted order. Computed once for a given set of files and
        remembered in the cache directory under their paths, sizes and modification times (hashing a 4 GB
        model takes seconds, as InvokeAI 2.3 knew when it kept a .sha256 beside each checkpoint)."""
        if self._hash is None:
            files = [self.folder] if self.folder.is_file() else sorted(p for p in self.folder.rglob("*") if p.is_file())
            remembered = _hash_record(files)
            try:
                known = remembered.read_text(encoding="ascii").strip()
            except (OSError, UnicodeDecodeError):
                known = ""
            if len(known) == 64 and all(ch in "0123456789abcdef" for ch in known):
                self._hash = known
            else:
                digest = hashlib.sha256()
                for file in files:
                    digest.update(str(file.relative_to(self.folder) if file != self.folder else file.name).encode())
                    with open(file, "rb") as f:
                        for block in iter(lambda: f.read(1 << 20), b""):
                            digest.update(block)
                self._hash = digest.hexdigest()
                _remember(remembered, self._hash)
        return self._hash


def _hash_record(files: list[Path]) -> Path:
    """Where the hash of exactly these files, as they are now, is remembered."""
    from .builtin import cache_dir

    key = hashlib.sha256()
    for file in files:
        st = file.stat()
        key.update(f"{file.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return cache_dir() / "model-hashes" / key.hexdigest()


def _remember(path: Path, value: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, value + "\n")
    except OSError:  # a read-only cache only costs the next session the hashing again
        log.info("could not remember the model hash in %s", path.parent, exc_info=True)


class ModelManager:
    """Loads models by name; keeps up to `max_loaded` resident, the active one included."""

    def __init__(self, registry: Registry, device: str = "auto", precision: str = "auto", max_loaded: int = 2,
                 offload: str | None = None):
        if offload is not None and offload not in OFFLOAD_MODES:
            raise ModelError(f"--free_gpu_mem must be one of {', '.join(OFFLOAD_MODES)}, got {offload!r}")
        self.registry = registry
        self.device_request = device
        self.precision = precision
        self.max_loaded = max(1, max_loaded)
        self.offload = offload
        self._cache: OrderedDict[str, LoadedModel] = OrderedDict()
        self.active: LoadedModel | None = None
        self.device: str | None = None
        self.dtype = None
        self.disk_loads = 0  # how many times a model was read from disk

    def is_cached(self, name: str) -> bool:
        return name in self._cache

    def cached_names(self) -> list[str]:
        """Resident models, least recently used first."""
        return list(self._cache)

    def activate(self, name: str) -> LoadedModel:
        """Make `name` the active model. On failure the previous model stays active."""
        entry = self.registry.get(name)
        model = self._cache.get(name)
        if model is None:
            self._preflight(entry)  # a missing file fails here, before anything cached is freed
            self._evict(room_for=1)
            model = self._load(entry)
        if self.active is not None and self.active is not model:
            self._place(self.active, active=False)
        self._place(model, active=True)
        self._cache[name] = model
        self._cache.move_to_end(name)
        self.active = model
        self._evict()
        return model

    def forget(self, name: str) -> None:
        """Drop a cached model that is not active (after its stanza changed or was deleted)."""
        if self.active is not None and self.active.name == name:
            raise ModelError(f"{name!r} is the active model; !switch to another first")
        if self._cache.pop(name, None) is not None:
            self._free()

    def set_registry(self, registry: Registry) -> None:
        self.registry = registry

    def preload(self, entry: ModelEntry) -> LoadedModel:
        """Load a model into the cache without activating it (a test load for !import_model)."""
        self._preflight(entry)
        self._evict(room_for=1)
        model = self._load(entry)
        self._place(model, active=False)
        self._cache[entry.name] = model
        self._cache.move_to_end(entry.name, last=False)  # first in line to be freed
        self._evict()
        return model

    @staticmethod
    def _preflight(entry: ModelEntry) -> None:
        if entry.repo_id is not None and entry.path is None or entry.path and entry.path.startswith("builtin:"):
            return
        where = entry.location()
        if not where.exists():
            kind = "file" if entry.format == "ckpt" else "folder"
            raise ModelError(f"model {entry.name!r}: no such {kind}: {where}")

    def _evict(self, room_for: int = 0) -> None:
        """Free least recently used models beyond the limit (keeping `room_for` free); never the active."""
        evicted = False
        while len(self._cache) + room_for > self.max_loaded and any(
                self.active is None or n != self.active.name for n in self._cache):
            victim = next(n for n in self._cache if self.active is None or n != self.active.name)
            del self._cache[victim]
            log.info("freed model %s", victim)
            evicted = True
        if evicted:
            self._free()

    def _free(self) -> None:
        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _place(self, model: LoadedModel, active: bool) -> None:
        """Active: on the execution device (or offloaded through accelerate). Otherwise: CPU RAM."""
        if self.offload is not None and self.device == "cuda":
            if active:
                if self.offload == "sequential":
                    model.txt2img.enable_sequential_cpu_offload()
                else:
                    model.txt2img.enable_model_cpu_offload()
            else:
                model.txt2img.remove_all_hooks()
                model.txt2img.to("cpu")
            return
        model.txt2img.to(self.device if active else "cpu")

    def _ensure_device(self) -> None:
        if self.device is None:
            self.device = pick_device(self.device_request)
            self.dtype = pick_dtype(self.precision, self.device)
            if self.offload is not None and self.device != "cuda":
                log.warning("--free_gpu_mem has no effect on %s", self.device)

    def _load(self, entry: ModelEntry) -> LoadedModel:
        diffusers = import_stack()
        self._ensure_device()
        try:
            if entry.format == "ckpt":
                pipe, where = self._load_checkpoint(entry), entry.location()
            else:
                pipe, where = self._load_diffusers(diffusers, entry)
        except ModelError:
            raise
        except Exception as exc:  # diffusers and transformers raise many types for a bad model
            log.exception("loading %s failed", entry.name)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"model {entry.name!r} failed to load: {first}") from None
        self.disk_loads += 1
        pipe.set_progress_bar_config(disable=True)
        img2img = diffusers.StableDiffusionImg2ImgPipeline(**pipe.components)
        img2img.set_progress_bar_config(disable=True)
        log.info("loaded model %s from %s (%s)", entry.name, where, self.dtype)
        return LoadedModel(entry, Path(where), pipe, img2img)

    def _load_diffusers(self, diffusers, entry: ModelEntry):
        kwargs = dict(dtype=self.dtype, local_files_only=True, safety_checker=None, requires_safety_checker=False)
        vae = entry.resolve(entry.vae)
        if vae is not None:
            if not (vae / "config.json").is_file():
                raise ModelError(f"model {entry.name!r}: vae {vae} is not a diffusers VAE folder (no config.json)")
            kwargs["vae"] = diffusers.AutoencoderKL.from_pretrained(vae, dtype=self.dtype, local_files_only=True)
        if entry.path is None:
            try:
                folder = self._cached_repo(entry.repo_id)
            except Exception:
                raise ModelError(
                    f"model {entry.name!r}: {entry.repo_id} is not in the local Hugging Face cache and there is "
                    f"no network; download it on another machine and set path: to its folder") from None
        else:
            folder = entry.location()
        if not folder.exists():
            raise ModelError(f"model {entry.name!r}: no such folder: {folder}")
        if not (folder / "model_index.json").is_file():
            raise ModelError(f"model {entry.name!r}: {folder} is not a diffusers folder (no model_index.json)")
        return diffusers.StableDiffusionPipeline.from_pretrained(folder, **kwargs), folder

    @staticmethod
    def _cached_repo(repo_id: str) -> Path:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))

    def _load_checkpoint(self, entry: ModelEntry):
        from .singlefile import load_single_file

        weights = entry.location()
        if not weights.exists():
            raise ModelError(f"model {entry.name!r}: no such file: {weights}")
        config = entry.resolve(entry.config)
        return load_single_file(weights, str(config) if config is not None else None, self.dtype,
                                vae=entry.resolve(entry.vae))
