"""Single-file Stable Diffusion checkpoints (.safetensors, .ckpt) loaded offline through diffusers.

diffusers' `from_single_file` needs a diffusers config folder; without one it fetches configs and the
CLIP tokenizer from the hub. We ship one folder per family under invoke_shell/data/configs/ and one CLIP
tokenizer (clip-tokenizer/, shared: the loader passes `tokenizer=` so it is never stored twice):

    sd1     SD 1.x: CLIP ViT-L text encoder, 768-wide context, 512 px, epsilon
    sd2     SD 2.x base: OpenCLIP ViT-H text encoder, 1024-wide context, 512 px, epsilon
    sd2-v   SD 2.x 768: as sd2, 768 px, v-prediction (and attention upcast, as SD 2.1 ships)

Pickled checkpoints (.ckpt/.pt/.pth/.bin) are only ever read by torch's weights-only unpickler; a file
whose pickle would import anything beyond tensors, containers and the few harmless globals in
`weights.safe_globals` is refused before anything in it runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelError
from . import families
from .families import CONFIGS
from .weights import PICKLES, SAFETENSORS, first_line, load_pickle, safe_globals

log = logging.getLogger(__name__)

TOKENIZER = CONFIGS / "clip-tokenizer"
FAMILIES = families.RUNNABLE  # key -> description, from the family table
SDXL = "conditioner.embedders."  # SDXL: .0.transformer (CLIP ViT-L), .1.model (OpenCLIP bigG)
SD2_EPSILON_STEPS = {875000, 220000}  # global_step of the SD 2.0-base and 2.1-base .ckpt releases

UNET = "model.diffusion_model."
CLIP = "cond_stage_model.transformer."  # SD 1.x: transformers' CLIPTextModel
OPEN_CLIP = "cond_stage_model.model."   # SD 2.x: OpenCLIP
VAE = "first_stage_model."


@dataclass(frozen=True)
class Checkpoint:
    """What a single file says about itself without building any model: tensor names and shapes."""

    path: Path
    shapes: dict[str, tuple[int, ...]] = field(repr=False)
    global_step: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)  # safetensors header metadata

    def first(self, suffix: str, prefix: str = "") -> tuple[int, ...] | None:
        """Shape of the first tensor (sorted by name) under `prefix` whose name ends with `suffix`."""
        for name in sorted(self.shapes):
            if name.startswith(prefix) and name.endswith(suffix):
                return self.shapes[name]
        return None

    def has(self, prefix: str) -> bool:
        return any(name.startswith(prefix) for name in self.shapes)


# ---------------------------------------------------------------- reading


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Tensor names and shapes of a single-file checkpoint (safetensors: the header alone)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"no such checkpoint file: {path}")
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS:
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                shapes = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}
                metadata = dict(f.metadata() or {})
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own SafetensorError and OSError
            raise ModelError(f"{path.name} is not a valid safetensors file "
                             f"(truncated or damaged? {first_line(exc)})") from None
        return Checkpoint(path, shapes, None, metadata)
    if suffix in PICKLES:
        data = load_pickle(path, "checkpoint")
        step = data.get("global_step")
        while isinstance(data.get("state_dict"), dict):
            data = data["state_dict"]
        shapes = {k: tuple(v.shape) for k, v in data.items() if isinstance(k, str) and hasattr(v, "shape")}
        return Checkpoint(path, shapes, step if isinstance(step, int) else None)
    raise ModelError(f"{path.name}: unsupported weights file type {path.suffix!r}; "
                     f"expected one of {', '.join(sorted(SAFETENSORS | PICKLES))}")


# ---------------------------------------------------------------- detection


def family_of(ckpt: Checkpoint) -> str:
    """A key of FAMILIES from the tensor layout, or a one-line ModelError saying what it is not.

    The text encoder's layout decides the family (CLIP -> sd1, OpenCLIP -> sd2); the UNet's cross-attention
    width must agree with the text encoder's. v-prediction is not visible in weights: an SD 2.x file is
    'sd2-v' (the 768 px releases and most 2.x fine-tunes) unless its safetensors metadata says epsilon or
    its .ckpt global_step is that of the 512 px base releases.
    """
    name = ckpt.path.name
    if not ckpt.has(UNET):
        if ckpt.has("down_blocks.") or ckpt.has("unet."):
            raise ModelError(f"{name} holds diffusers-format weights, not a single-file SD checkpoint; "
                             "point the model at its diffusers folder instead")
        raise ModelError(f"{name} is not a Stable Diffusion checkpoint (no {UNET}* tensors)")
    conv_in = ckpt.shapes.get(UNET + "input_blocks.0.0.weight")
    if conv_in is None or len(conv_in) != 4:
        raise ModelError(f"{name}: unrecognised UNet layout (no 4-d {UNET}input_blocks.0.0.weight)")
    if conv_in[1] not in (4, 9):
        raise ModelError(f"{name} is a UNet with {conv_in[1]} input channels; only 4 (txt2img/img2img) and 9 "
                         "(inpainting) load")
    to_k = ckpt.first("attn2.to_k.weight", UNET)
    if to_k is None:
        raise ModelError(f"{name}: unrecognised UNet layout (no cross-attention layers)")
    context = to_k[-1]
    if ckpt.has(SDXL):  # the refiner has the OpenCLIP encoder alone, as embedder 0
        return "sdxl" if ckpt.has(SDXL + "1.model.") else "sdxl-refiner"
    if ckpt.has(CLIP):
        family, width = "sd1", ckpt.first("token_embedding.weight", CLIP)
    elif ckpt.has(OPEN_CLIP):
        family, width = "sd2", ckpt.shapes.get(OPEN_CLIP + "token_embedding.weight")
    elif (by_context := families.base_of_context(context)) is not None:  # no text encoder: its width alone
        family, width = by_context, None
    else:
        raise ModelError(f"{name}: unknown model family (no text encoder, {context}-wide cross-attention)")
    if width is not None and width[-1] != context:
        raise ModelError(f"{name}: unknown model family (text encoder is {width[-1]} wide, "
                         f"the UNet expects {context})")
    return families.matching(family, conv_in[1], family == "sd2" and _is_v_prediction(ckpt)).key


def _is_v_prediction(ckpt: Checkpoint) -> bool:
    predicted = ckpt.metadata.get("modelspec.prediction_type", "").lower()  # SAI model-spec metadata
    if predicted:
        return predicted.startswith("v")
    return ckpt.global_step not in SD2_EPSILON_STEPS


def detect_family(path: str | Path) -> str:
    """The family (a key of FAMILIES) of a single-file checkpoint, reading only tensor names and shapes."""
    return family_of(read_checkpoint(path))


# ---------------------------------------------------------------- configs


def family_folder(family: str) -> Path:
    """The shipped config folder of a family whose single files load."""
    if family not in FAMILIES:
        raise ModelError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    return families.get(family).folder


def ldm_yaml_family(path: Path) -> str:
    """Map an original (LDM) inference yaml, like v1-inference.yaml, to a shipped family by its contents."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        params = data["model"]["params"]
        unet = params["unet_config"]["params"]
        context = int(unet["context_dim"])
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path.name} is not an LDM inference config (model.params.unet_config.params."
                         f"context_dim unreadable: {first_line(exc)})") from None
    channels = int(unet.get("in_channels", 4))
    if channels not in (4, 9):
        raise ModelError(f"{path.name} describes a model with {channels} input channels; only 4 and 9 "
                         "(inpainting) load")
    family = families.base_of_context(context)
    if family is None:
        raise ModelError(f"{path.name}: unknown model family (context_dim {context}; known: 768, 1024)")
    v_prediction = params.get("parameterization") == "v"
    if v_prediction and family != "sd2" and channels == 4:
        raise ModelError(f"{path.name}: v-prediction is only supported for SD 2.x")
    return families.matching(family, channels, v_prediction).key


def resolve_config(config: str | Path | None, family: str) -> tuple[Path, str]:
    """(diffusers config folder, family) for a stanza's `config:` and the detected family.

    `config` may be None (the shipped folder for `family`), a family name, a diffusers folder (used as it
    is; its own tokenizer/ if it has one) or an LDM yaml (mapped to a shipped folder by its contents).
    """
    if config is None:
        return family_folder(family), family
    if str(config) in FAMILIES:
        return family_folder(str(config)), str(config)
    path = Path(config).expanduser()
    if not path.exists() and path.name in FAMILIES:  # a family name the caller joined to the yaml's folder
        return family_folder(path.name), path.name
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelError(f"config {path} is a folder without model_index.json, not a diffusers config")
        return path, family
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        mapped = ldm_yaml_family(path)
        if mapped.split("-")[0] != family.split("-")[0] or mapped.endswith("-inpainting") != family.endswith("-inpainting"):
            raise ModelError(f"config {path.name} describes {FAMILIES[mapped]} but the weights are "
                             f"{FAMILIES[family]}")
        return family_folder(mapped), mapped
    if not path.exists():
        raise ModelError(f"config: no such file or folder: {path} (nor a family: {', '.join(FAMILIES)})")
    raise ModelError(f"config {path.name}: expected a diffusers folder, an LDM .yaml or one of "
                     f"{', '.join(FAMILIES)}")


def check_fits(ckpt: Checkpoint, folder: Path) -> None:
    """The checkpoint's UNet must match the folder's UNet config in the widths a mismatch would break."""
    import json

    try:
        unet = json.loads((folder / "unet" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"config {folder}: unreadable unet/config.json ({first_line(exc)})") from None
    have = {"cross_attention_dim": ckpt.first("attn2.to_k.weight", UNET)[-1],
            "block_out_channels[0]": ckpt.shapes[UNET + "input_blocks.0.0.weight"][0]}
    want = {"cross_attention_dim": unet.get("cross_attention_dim"),
            "block_out_channels[0]": (unet.get("block_out_channels") or [None])[0]}
    for key, value in have.items():
        if want[key] is not None and value != want[key]:
            raise ModelError(f"{ckpt.path.name} does not fit config {folder.name}: UNet {key} is {value}, "
                             f"the config says {want[key]}")


def load_tokenizer(family: str):
    """The shipped CLIP tokenizer with the family's pad token (SD 2.x pads with '!', id 0)."""
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(TOKENIZER, local_files_only=True, pad_token=families.get(family).pad_token)


# ---------------------------------------------------------------- loading


def load_vae(vae: str | Path, folder: Path, dtype=None):
    """An AutoencoderKL from a diffusers VAE folder (or a pipeline folder's vae/), or from a single VAE
    file (.safetensors, or a pickle read weights-only) shaped like `folder`'s vae/config.json."""
    from .stack import import_stack

    path = Path(vae).expanduser()
    diffusers = import_stack()
    try:
        if path.is_dir():
            sub = "vae" if (path / "vae" / "config.json").is_file() else None
            if sub is None and not (path / "config.json").is_file():
                raise ModelError(f"vae: {path} is a folder without config.json, not a diffusers VAE")
            return diffusers.AutoencoderKL.from_pretrained(path, subfolder=sub, local_files_only=True,
                                                           torch_dtype=dtype)
        ckpt = read_checkpoint(path)
        if not (ckpt.has(VAE) or ckpt.has("encoder.") and ckpt.has("decoder.")):
            raise ModelError(f"vae: {path.name} holds no VAE weights (encoder.*/decoder.*)")
        with safe_globals():
            return diffusers.AutoencoderKL.from_single_file(str(path), config=str(folder), subfolder="vae",
                                                            local_files_only=True, torch_dtype=dtype)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - diffusers/safetensors raise many types
        log.debug("loading VAE %s failed", path, exc_info=True)
        raise ModelError(f"cannot load VAE {path.name}: {first_line(exc)}") from exc


def load_single_file(weights: str | Path, config: str | Path | None = None, dtype=None,
                     family: str | None = None, *, vae: str | Path | None = None):
    """A StableDiffusionPipeline from one checkpoint file, offline; a one-line ModelError on failure.

    weights: a .safetensors, or a .ckpt/.pt/.pth/.bin read with torch's weights-only unpickler.
    config:  None, a family name ('sd1', 'sd2', 'sd2-v'), a diffusers config folder or an LDM yaml.
    dtype:   torch dtype for the weights (None: as stored, float32 for diffusers' conversion).
    family:  overrides detection (when config is None or a diffusers folder).
    vae:     replaces the checkpoint's VAE: a diffusers VAE folder or a single VAE file.
    """
    from .stack import import_stack

    weights = Path(weights).expanduser()
    ckpt = read_checkpoint(weights)
    detected = family_of(ckpt)
    if family is not None and family not in FAMILIES:
        raise ModelError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    folder, family = resolve_config(config, family or detected)
    check_fits(ckpt, folder)
    if not (ckpt.has(CLIP) or ckpt.has(OPEN_CLIP) or ckpt.has(SDXL)):
        raise ModelError(f"{weights.name} has no text encoder weights (cond_stage_model.*)")
    if vae is None and not ckpt.has(VAE):
        raise ModelError(f"{weights.name} has no VAE weights ({VAE}*); give the model a vae:")

    diffusers = import_stack()
    xl, refiner = families.get(family).base == "sdxl", family == "sdxl-refiner"
    extra = {} if xl else dict(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    if not refiner and not (folder / "tokenizer").is_dir():
        extra["tokenizer"] = load_tokenizer("sd1" if xl else family)  # SDXL's first: CLIP ViT-L's
    if xl and not (folder / "tokenizer_2").is_dir():
        extra["tokenizer_2"] = load_tokenizer(family)  # OpenCLIP's, padded with "!"
    if vae is not None:
        extra["vae"] = load_vae(vae, folder, dtype)
    pipeline = getattr(diffusers, families.get(family).pipelines[0])
    try:
        with safe_globals():
            pipe = pipeline.from_single_file(str(weights), config=str(folder), local_files_only=True,
                                             torch_dtype=dtype, **extra)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - diffusers/transformers/safetensors raise many types
        log.debug("from_single_file(%s, config=%s) failed", weights, folder, exc_info=True)
        raise ModelError(f"cannot load {weights.name} as {FAMILIES.get(family, family)}: "
                         f"{first_line(exc)}") from exc
    log.info("loaded %s as %s (config %s)", weights, family, folder)
    return pipe
