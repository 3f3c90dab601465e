"""The model manager: loads models by name and keeps up to N resident, least recently used freed first.

The active model sits on the execution device; other cached models wait in CPU RAM, so a switch back
to one reads nothing from disk. The active model is never evicted. Device moves happen in `_place`.
"""

from __future__ import annotations

import gc
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelError
from ..switches import PRECISIONS
from . import families
from . import precision as precisions
from .families import Family
from .files import content_hash, model_files
from .precision import Pick
from .registry import ModelEntry, Registry
from .devices import pick_device
from .stack import import_stack
from .tools import ToolCache

log = logging.getLogger(__name__)

OFFLOAD_MODES = ("model", "sequential")


def sibling(cls, pipe):
    """A `cls` pipeline on `pipe`'s components and with the settings of its config that `cls` takes (SDXL's
    requires_aesthetics_score, force_zeros_for_empty_prompt), which a pipeline made from components alone
    would reset to its defaults."""
    import inspect

    accepted = inspect.signature(cls.__init__).parameters
    settings = {key: value for key, value in pipe.config.items()
                if key in accepted and key not in pipe.components and not key.startswith("_")}
    return cls(**pipe.components, **settings)


def torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


@dataclass
class LoadedModel:
    """A resident model: the txt2img, img2img and inpainting pipelines share one set of components."""

    entry: ModelEntry
    folder: Path
    txt2img: object
    img2img: object
    family: Family = families.BY_KEY["sd1"]  # from the family table: which pipelines run it
    pick: Pick = Pick("float32", "asked")  # the precision it runs in, and why
    requested: str = "float32"             # the --precision it was loaded for (auto, or a dtype)
    device: str = "cpu"                    # where it runs while active
    scheduler_config: dict = field(default_factory=dict, repr=False)  # the model's own, as loaded
    _hash: str | None = field(default=None, repr=False)
    _inpaint: object = field(default=None, repr=False)

    @property
    def sampler_config(self) -> dict:
        """The scheduler config every sampler is built from: the model's own as loaded, never the config of
        the scheduler the previous command left in the pipeline (whose defaults would leak into the next:
        Karras sigmas, a DEIS algorithm type)."""
        return self.scheduler_config or dict(self.txt2img.scheduler.config)

    @property
    def is_inpainting(self) -> bool:
        """A 9-channel inpainting UNet (latents + mask + masked-image latents)."""
        return self.txt2img.unet.config.in_channels == 9

    @property
    def inpaint(self):
        """diffusers' inpainting pipeline on the same components, made on first use."""
        if self._inpaint is None:
            import diffusers

            self._inpaint = sibling(getattr(diffusers, self.family.pipelines[2]), self.txt2img)
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
        """sha256 over the model's files in sorted order, remembered (files.content_hash)."""
        if self._hash is None:
            self._hash = content_hash(self.folder)
        return self._hash


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
        self.disk_loads = 0  # how many times a model was read from disk
        self.measurements = 0  # how many times auto timed float32 against bfloat16
        self.tools = ToolCache(self)  # the upscalers, face restorers and CLIPSeg models, cached apart

    def is_cached(self, name: str) -> bool:
        return name in self._cache

    def cached(self, name: str) -> LoadedModel | None:
        return self._cache.get(name)

    def cached_names(self) -> list[str]:
        """Resident models, least recently used first."""
        return list(self._cache)

    def activate(self, name: str, precision: str | None = None) -> LoadedModel:
        """Make `name` the active model, in `precision` (None: the session's). On failure the previous model
        stays active. A cached copy in another precision is read again from disk (a cast back from bfloat16
        would not give float32's weights)."""
        entry = self._diffusion(name)
        requested = precision or self.precision
        model = self._cache.get(name)
        if model is not None and not self.serves(model, requested):
            model = None
        if model is None:
            self._preflight(entry)  # a missing file fails here, before anything cached is freed
            if name in self._cache and (self.active is None or self.active.name != name):
                del self._cache[name]  # the copy in another precision
            self._evict(room_for=0 if name in self._cache else 1)
            model = self._load(entry, requested)
        if self.active is not None and self.active is not model:
            self._place(self.active, active=False)
        self._place(model, active=True)
        self._cache[name] = model
        self._cache.move_to_end(name)
        self.active = model
        self._evict()
        return model

    def companion(self, name: str, precision: str | None = None) -> LoadedModel:
        """A model used beside the active one for part of a command (an SDXL refiner): loaded, or taken from
        the cache, and put on the execution device; the active model stays active and is never freed for it."""
        entry = self._diffusion(name)
        requested = precision or self.precision
        model = self._cache.get(name)
        if model is None or not self.serves(model, requested):
            self._preflight(entry)
            self._cache.pop(name, None)
            self._evict(room_for=1)
            model = self._load(entry, requested)
            self._cache[name] = model
            self._evict()
        self._place(model, active=True)
        return model

    def _diffusion(self, name: str) -> ModelEntry:
        entry = self.registry.get(name)
        if entry.is_tool:
            raise ModelError(f"{name!r} is a post-processing model (format: {entry.format}), not one that draws")
        return entry

    def forget(self, name: str) -> None:
        """Drop a cached model that is not active (after its stanza changed or was deleted)."""
        if self.active is not None and self.active.name == name:
            raise ModelError(f"{name!r} is the active model; !switch to another first")
        self.tools.forget(name)
        if self._cache.pop(name, None) is not None:
            self._free()

    def set_registry(self, registry: Registry) -> None:
        self.registry = registry

    def serves(self, model: LoadedModel, requested: str) -> bool:
        """Whether a loaded model serves a request for `requested` precision (auto, or a type)."""
        if model.requested == requested or model.pick.dtype == requested:
            return True
        planned = self.planned_pick(model.entry, requested) if requested == "auto" else None
        return planned is not None and planned.dtype == model.pick.dtype

    def preload(self, entry: ModelEntry) -> LoadedModel:
        """Load a model into the cache without activating it (a test load for !import_model)."""
        self._preflight(entry)
        self._evict(room_for=1)
        model = self._load(entry, self.precision)
        self._place(model, active=False)
        self._cache[entry.name] = model
        self._cache.move_to_end(entry.name, last=False)  # first in line to be freed
        self._evict()
        return model

    def load_apart(self, entry: ModelEntry, precision: str = "float32") -> LoadedModel:
        """A model loaded outside the cache, on the CPU, in `precision` (for !convert_model)."""
        self._preflight(entry)
        return self._load(entry, precision)

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
            if self.offload is not None and self.device != "cuda":
                log.warning("--free_gpu_mem has no effect on %s", self.device)

    def plain_precision(self) -> str | None:
        """The type a line without --precision runs in here, when known without loading or measuring a model
        (auto on a CPU with bfloat16 instructions depends on the model: None)."""
        device = self.device or (self.device_request if self.device_request != "auto" else None)
        if device is None and self.precision == "auto":
            return None
        pick = precisions.decide(self.precision, device)
        return pick.dtype if pick is not None else None

    def planned_pick(self, entry: ModelEntry, requested: str) -> Pick | None:
        """The precision `entry` would load in without measuring: decided by the rule, or measured and
        remembered before; None when it must be measured."""
        pick = precisions.decide(requested, self.device)
        record = self._precision_record(entry) if pick is None else None
        return precisions.remembered(record) if record is not None else pick

    @staticmethod
    def _precision_record(entry: ModelEntry) -> Path | None:
        from ..paths import cache_dir

        location = entry.location() if entry.path is not None or entry.weights is not None else None
        if location is None or not location.exists():
            return None  # a model from the Hugging Face cache: measured each time it loads
        return precisions.record_path(model_files(location), cache_dir())

    def _load(self, entry: ModelEntry, requested: str) -> LoadedModel:
        diffusers = import_stack()
        self._ensure_device()
        if requested not in PRECISIONS:
            raise ModelError(f"--precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
        pick = self.planned_pick(entry, requested)
        dtype = torch_dtype(pick.dtype if pick is not None else "float32")  # measured from float32
        try:
            if entry.format == "ckpt":
                pipe, where = self._load_checkpoint(entry, dtype), entry.location()
            else:
                pipe, where = self._load_diffusers(diffusers, entry, dtype)
        except ModelError:
            raise
        except Exception as exc:  # diffusers and transformers raise many types for a bad model
            log.exception("loading %s failed", entry.name)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"model {entry.name!r} failed to load: {first}") from None
        self.disk_loads += 1
        if pick is None:
            pick = self._measure(entry, pipe)
        pipe.set_progress_bar_config(disable=True)
        index = {"_class_name": type(pipe).__name__, "text_encoder": getattr(pipe, "text_encoder", None) is not None}
        family = families.of_configs(index, dict(pipe.unet.config), dict(pipe.scheduler.config)) or families.BY_KEY["sd1"]
        img2img = sibling(getattr(diffusers, family.pipelines[1]), pipe)
        img2img.set_progress_bar_config(disable=True)
        log.info("loaded model %s (%s) from %s (%s)", entry.name, family.key, where, pick.describe())
        return LoadedModel(entry, Path(where), pipe, img2img, family=family, pick=pick, requested=requested,
                           device=self.device, scheduler_config=dict(pipe.scheduler.config))

    def _measure(self, entry: ModelEntry, pipe) -> Pick:
        """auto on a CPU with bfloat16 instructions: time the float32 UNet beside a bfloat16 copy, remember
        the pick, and cast the pipeline when bfloat16 won (a cast from float32 gives the weights a bfloat16
        load gives)."""
        latent = max(pipe.unet.config.sample_size) if isinstance(pipe.unet.config.sample_size, (list, tuple)) \
            else pipe.unet.config.sample_size
        pick = precisions.measure(pipe.unet, latent)
        self.measurements += 1
        record = self._precision_record(entry)
        if record is not None:
            precisions.remember(record, pick)
        if pick.dtype != "float32":
            pipe.to(dtype=torch_dtype(pick.dtype))
        return pick

    def _load_diffusers(self, diffusers, entry: ModelEntry, dtype):
        kwargs = dict(dtype=dtype, local_files_only=True, safety_checker=None, requires_safety_checker=False)
        vae = entry.resolve(entry.vae)
        if vae is not None:
            if not (vae / "config.json").is_file():
                raise ModelError(f"model {entry.name!r}: vae {vae} is not a diffusers VAE folder (no config.json)")
            kwargs["vae"] = diffusers.AutoencoderKL.from_pretrained(vae, dtype=dtype, local_files_only=True)
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
        family = families.of_folder(folder) or families.BY_KEY["sd1"]
        if not family.runs:
            raise ModelError(f"model {entry.name!r}: {folder} is {family.description}, which this version of "
                             f"invoke-shell does not run yet (Stable Diffusion 1.x, 2.x and XL base it does)")
        return getattr(diffusers, family.pipelines[0]).from_pretrained(folder, **kwargs), folder

    @staticmethod
    def _cached_repo(repo_id: str) -> Path:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))

    def _load_checkpoint(self, entry: ModelEntry, dtype):
        from .singlefile import load_single_file

        weights = entry.location()
        if not weights.exists():
            raise ModelError(f"model {entry.name!r}: no such file: {weights}")
        config = entry.resolve(entry.config)
        return load_single_file(weights, str(config) if config is not None else None, dtype,
                                vae=entry.resolve(entry.vae))
