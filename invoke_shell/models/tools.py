"""The post-processing models models.yaml names beside the diffusion models: upscalers (`format: upscaler`)
and face restorers (`format: facetool`), recognised from their weights by spandrel, and CLIPSeg folders
(`format: text_mask`) for transformers. Found by name (or the default of their kind), loaded on first use,
weights only, and kept in a small least-recently-used cache on the execution device. What they do to a
picture is engine/upscale.py's, engine/faces.py's and engine/textmask.py's job."""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelError
from .files import content_hash, file_sha256
from .registry import ModelEntry, Registry
from .weights import first_line, read_weights

log = logging.getLogger(__name__)

WORDS = {"upscaler": "upscaler", "facetool": "face restorer", "text_mask": "text-mask (CLIPSeg) model"}
SWITCH = {"upscaler": "-U/--upscale", "facetool": "-G/--facetool_strength", "text_mask": "-tm/--text_mask"}
EXAMPLE = {"upscaler": ("realesrgan-x4", "weights/RealESRGAN_x4plus.pth"),
           "facetool": ("gfpgan", "weights/GFPGANv1.4.pth"),
           "text_mask": ("clipseg", "weights/clipseg-rd64-refined")}
# spandrel's purposes each format accepts: an upscaler enlarges (SR) or cleans at its size (Restoration)
PURPOSES = {"upscaler": ("SR", "Restoration"), "facetool": ("FaceSR",)}
CLIPSEG_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
MOST_CACHED = 3


# where InvokeAI 2.3's installer put these models in its root folder (invokeai_configure.py)
ROOT_FILES = {"upscaler": ("models/realesrgan/realesr-general-x4v3.pth",),
              "gfpgan": ("models/gfpgan/GFPGANv1.4.pth",), "codeformer": ("models/codeformer/codeformer.pth",),
              "text_mask": ("models/clipseg/clipseg-rd64-refined",
                            "models/hub/models--CIDAS--clipseg-rd64-refined/snapshots/*",
                            "models/clipseg/models--CIDAS--clipseg-rd64-refined/snapshots/*")}


def in_old_root(registry: Registry, fmt: str, name: str | None = None) -> str | None:
    """A model of `fmt` where a 2.3 root keeps it, beside this models.yaml (the root's configs/ folder, or the
    root itself), as a path relative to the yaml's folder; None when there is none."""
    if registry.source is None:
        return None
    home = Path(registry.source).resolve().parent
    root = home.parent if home.name == "configs" else home
    key = fmt if fmt != "facetool" else ("codeformer" if name == "codeformer" else "gfpgan")
    for pattern in ROOT_FILES[key]:
        for found in sorted(root.glob(pattern)):
            if found.exists():
                return os.path.relpath(found, home)
    return None


def a(word: str) -> str:
    """`an upscaler`, `a face restorer`."""
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def stanza_example(fmt: str, name: str | None = None, path: str | None = None) -> str:
    """The models.yaml stanza to add, on one line."""
    default_name, example = EXAMPLE[fmt]
    if fmt == "facetool" and name == "codeformer":
        example = "weights/codeformer.pth"
    return f"{name or default_name}: {{format: {fmt}, path: {path or example}}}"


def find(registry: Registry, fmt: str, name: str | None = None) -> ModelEntry:
    """The stanza `name` names (checked to be of `fmt`), or the default of that format: the one marked
    `default: true`, else the first. One line naming the stanza to add when there is none."""
    where = registry.source or "models.yaml (start the shell with --conf FILE)"
    old = in_old_root(registry, fmt, name)
    found = "; InvokeAI 2.3 left one in its root" if old else ""
    if name is not None:
        if name not in registry.names():
            raise ModelError(f"{SWITCH[fmt]}: no model named {name!r} in {where}{found}; add the {WORDS[fmt]} "
                             f"there: {stanza_example(fmt, name, old)} (see docs/postprocessing.md)")
        entry = registry.get(name)
        if entry.format != fmt:
            raise ModelError(f"{SWITCH[fmt]}: {name!r} is {a(entry.format)} model, not {a(WORDS[fmt])} "
                             f"(format: {fmt})")
        return entry
    entries = registry.of_format(fmt)
    if not entries:
        raise ModelError(f"{SWITCH[fmt]} needs {a(WORDS[fmt])}, and {where} has none{found}; add: "
                         f"{stanza_example(fmt, None, old)} (see docs/postprocessing.md)")
    return next((e for e in entries if e.default), entries[0])


def entry_sha256(entry: ModelEntry) -> str:
    """A stanza's weights file's sha256 (a CLIPSeg folder: over its files, as a diffusers folder's)."""
    location = entry.location()
    return file_sha256(location) if location.is_file() else content_hash(location)


@dataclass
class Tool:
    """A loaded post-processing model."""

    entry: ModelEntry
    architecture: str          # spandrel's name for it (RealESRGAN, GFPGAN, CodeFormer...), or CLIPSeg
    model: object              # a spandrel ImageModelDescriptor, or transformers' CLIPSegForImageSegmentation
    scale: int = 1             # how many times an upscaler enlarges
    processor: object = None   # CLIPSeg's processor (tokenizer and image preprocessing)
    device: str = "cpu"
    _hash: str | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.entry.name

    def sha256(self) -> str:
        if self._hash is None:
            self._hash = entry_sha256(self.entry)
        return self._hash

    def describe(self) -> str:
        return f"{self.name} ({self.architecture}{f' x{self.scale}' if self.entry.format == 'upscaler' else ''})"


def load(entry: ModelEntry, device: str = "cpu") -> Tool:
    """Read a post-processing model's weights (as data only) and build its architecture; one-line errors."""
    path = entry.location()
    if not path.exists():
        raise ModelError(f"model {entry.name!r} ({WORDS[entry.format]}): no such "
                         f"{'folder' if entry.format == 'text_mask' else 'file'}: {path}")
    tool = _clipseg(entry, path) if entry.format == "text_mask" else _spandrel(entry, path)
    tool.model.to(device)
    tool.model.eval()
    tool.device = device
    return tool


def _spandrel(entry: ModelEntry, path: Path) -> Tool:
    from .spandrel_import import spandrel

    if not path.is_file():
        raise ModelError(f"model {entry.name!r}: {path} is a folder; {a(WORDS[entry.format])} is one weights file")
    state = read_weights(path, WORDS[entry.format])
    module = spandrel()
    try:
        descriptor = module.ModelLoader().load_from_state_dict(state)
    except module.UnsupportedModelError:
        raise ModelError(f"model {entry.name!r}: spandrel does not recognise the architecture in {path.name} "
                         "(supported: ESRGAN, Real-ESRGAN, SwinIR, HAT, ... and GFPGAN, CodeFormer, RestoreFormer)"
                         ) from None
    except Exception as exc:  # noqa: BLE001 - a state dict that matches an architecture's keys but not its shapes
        raise ModelError(f"model {entry.name!r}: {path.name} does not load as "
                         f"{WORDS[entry.format]} weights ({first_line(exc)})") from None
    name = descriptor.architecture.name
    if descriptor.purpose not in PURPOSES[entry.format]:
        right = format_of(descriptor.purpose)
        hint = f"; its stanza should say format: {right}" if right else ""
        raise ModelError(f"model {entry.name!r}: {path.name} holds a {name} model ({descriptor.purpose}), not "
                         f"{a(WORDS[entry.format])}{hint}")
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise ModelError(f"model {entry.name!r}: {path.name} is a {name} for {descriptor.input_channels}-channel "
                         "pictures; only colour (3-channel) models are supported")
    return Tool(entry, name, descriptor, scale=int(descriptor.scale))


def format_of(purpose: str) -> str | None:
    """The stanza format of a spandrel purpose (SR: upscaler, FaceSR: facetool), or None."""
    return next((fmt for fmt, purposes in PURPOSES.items() if purpose in purposes), None)


def _config(folder: Path):
    """A model folder's config.json, parsed (OSError or ValueError when it cannot be)."""
    return json.loads((folder / "config.json").read_text(encoding="utf-8"))


def _clipseg(entry: ModelEntry, path: Path) -> Tool:
    if not path.is_dir():
        raise ModelError(f"model {entry.name!r}: a text-mask model is a CLIPSeg folder (config.json and "
                         f"weights), and {path} is a file")
    try:
        config = _config(path)
    except (OSError, ValueError) as exc:
        raise ModelError(f"model {entry.name!r}: cannot read {path / 'config.json'} ({first_line(exc)})") from None
    if not isinstance(config, dict) or config.get("model_type") != "clipseg":
        kind = config.get("model_type") if isinstance(config, dict) else None
        raise ModelError(f"model {entry.name!r}: {path} holds a {kind!r} model, not CLIPSeg")
    weights = next((path / name for name in CLIPSEG_WEIGHTS if (path / name).is_file()), None)
    if weights is None:
        raise ModelError(f"model {entry.name!r}: {path} has no {' or '.join(CLIPSEG_WEIGHTS)}")
    state = read_weights(weights, "CLIPSeg model")
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation, CLIPSegProcessor
    from transformers.utils import logging as transformers_logging

    level = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()  # without torchvision it says it uses the PIL image processor
    try:
        model = CLIPSegForImageSegmentation(CLIPSegConfig.from_pretrained(str(path)))
        missing, _ = model.load_state_dict(state, strict=False)
        processor = CLIPSegProcessor.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - transformers' errors for a damaged folder are many
        raise ModelError(f"model {entry.name!r}: {path} does not load as CLIPSeg ({first_line(exc)})") from None
    finally:
        transformers_logging.set_verbosity(level)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing:
        raise ModelError(f"model {entry.name!r}: {weights.name} lacks {len(missing)} of CLIPSeg's weights "
                         f"({missing[0]}, ...)")
    return Tool(entry, "CLIPSeg", model, processor=processor)


# keys only a Stable Diffusion checkpoint (LDM or diffusers-in-one-file layout) begins with
DIFFUSION_KEYS = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.", "conditioner.",
                  "unet.", "vae.", "text_encoder.")


def recognise(path: Path) -> str | None:
    """The post-processing format of a file or folder (upscaler, facetool, text_mask), or None for anything
    else (a diffusion model: !import_model's other cases). A checkpoint is told by its keys, read without its
    tensors where the file allows; only a file that could be an upscaler is read whole, as data."""
    path = Path(path)
    if not path.exists():
        return None
    if path.is_dir():
        try:
            config = _config(path)
        except (OSError, ValueError):
            return None
        return "text_mask" if isinstance(config, dict) and config.get("model_type") == "clipseg" else None
    if _keys_look_like_diffusion(path):
        return None
    from .spandrel_import import spandrel

    module = spandrel()
    try:
        descriptor = module.ModelLoader().load_from_state_dict(read_weights(path, "model"))
    except Exception:  # noqa: BLE001 - not an architecture spandrel knows (or not loadable): not a tool
        return None
    return format_of(descriptor.purpose)


def _keys_look_like_diffusion(path: Path) -> bool:
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                keys = list(f.keys())
        except Exception:  # noqa: BLE001 - a damaged file: the diffusion loader says what is wrong with it
            return True
        return any(k.startswith(DIFFUSION_KEYS) for k in keys)
    return path.stat().st_size > 1_500_000_000  # an upscaler or face restorer is well under 1 GB


class ToolCache:
    """The post-processing models in use: loaded on first use, the least recently used freed past a few."""

    def __init__(self, manager, most: int = MOST_CACHED):
        self.manager = manager
        self.most = most
        self._cache: OrderedDict[str, tuple[ModelEntry, Tool]] = OrderedDict()
        self.loads = 0

    def get(self, fmt: str, name: str | None = None) -> Tool:
        """The tool `name` names (or the default of `fmt`), loaded if it is not cached as its stanza is now."""
        entry = find(self.manager.registry, fmt, name)
        cached = self._cache.get(entry.name)
        if cached is not None and cached[0] == entry:
            self._cache.move_to_end(entry.name)
            return cached[1]
        self._cache.pop(entry.name, None)
        tool = load(entry, self._device())
        self.loads += 1
        self._cache[entry.name] = (entry, tool)
        while len(self._cache) > self.most:
            victim, _ = self._cache.popitem(last=False)
            log.info("freed post-processing model %s", victim)
        return tool

    def cached_names(self) -> list[str]:
        return list(self._cache)

    def forget(self, name: str) -> None:
        self._cache.pop(name, None)

    def _device(self) -> str:
        from .devices import pick_device

        return self.manager.device or pick_device(self.manager.device_request)
