"""THE model-family table: one entry per Stable Diffusion family, read by the single-file loader (how a
file is recognised, which shipped config folder and tokenizer padding it gets) and by the model manager (how
a diffusers folder is recognised, which pipelines run it). Adding a family is adding an entry (and its
config folder under invoke_shell/data/configs/). Pure data and JSON reading: no torch."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError

CONFIGS = Path(__file__).resolve().parent.parent / "data" / "configs"
SD_PIPELINES = ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline", "StableDiffusionInpaintPipeline")
SDXL_PIPELINES = ("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline",
                  "StableDiffusionXLInpaintPipeline")


@dataclass(frozen=True)
class Family:
    key: str                  # sd1, sd2, sd2-v, ...: also the shipped config folder's name
    description: str
    text_encoder: str         # what a single file's text encoder is: clip (SD 1), openclip (SD 2), ...
    context_dim: int          # the UNet's cross-attention width
    in_channels: int          # 4; 9 for inpainting (latents + mask + masked image)
    prediction: str           # the scheduler's prediction_type: epsilon or v_prediction
    native_size: int          # pixels a side it was trained at
    pad_token: str            # the tokenizer's padding (OpenCLIP pads with id 0, "!")
    pipelines: tuple[str, str, str] = SD_PIPELINES  # diffusers' txt2img, img2img, inpainting pipelines
    runs: bool = True         # False: recognised, so that it is named, but not run by this version

    @property
    def folder(self) -> Path:
        """The shipped diffusers config folder (configs and no weights) for single files of this family."""
        return CONFIGS / self.key

    @property
    def base(self) -> str:
        """The family without its variant: sd1, sd2, sdxl."""
        return self.key.split("-")[0]


FAMILY_TABLE: tuple[Family, ...] = (
    Family("sd1", "Stable Diffusion 1.x", "clip", 768, 4, "epsilon", 512, "<|endoftext|>"),
    Family("sd2", "Stable Diffusion 2.x base (512 px, epsilon)", "openclip", 1024, 4, "epsilon", 512, "!"),
    Family("sd2-v", "Stable Diffusion 2.x (768 px, v-prediction)", "openclip", 1024, 4, "v_prediction", 768, "!"),
    Family("sd1-inpainting", "Stable Diffusion 1.x inpainting (9 input channels)", "clip", 768, 9, "epsilon",
           512, "<|endoftext|>"),
    Family("sd2-inpainting", "Stable Diffusion 2.x inpainting (512 px, epsilon, 9 input channels)", "openclip",
           1024, 9, "epsilon", 512, "!"),
    Family("sdxl", "Stable Diffusion XL base", "clip+openclip", 2048, 4, "epsilon", 1024, "!", SDXL_PIPELINES),
    Family("sdxl-refiner", "Stable Diffusion XL refiner", "openclip", 1280, 4, "epsilon", 1024, "!",
           ("StableDiffusionXLImg2ImgPipeline", "StableDiffusionXLImg2ImgPipeline", "StableDiffusionXLInpaintPipeline")),
)
BY_KEY: dict[str, Family] = {f.key: f for f in FAMILY_TABLE}
RUNNABLE: dict[str, str] = {f.key: f.description for f in FAMILY_TABLE if f.runs}  # key -> description


def get(key: str) -> Family:
    if key not in RUNNABLE:
        raise ModelError(f"unknown model family {key!r}; known: {', '.join(RUNNABLE)}")
    return BY_KEY[key]


def matching(base: str, in_channels: int, v_prediction: bool) -> Family:
    """The family of a model whose text encoder belongs to `base` (sd1, sd2), by its UNet's input channels
    and its prediction type (the inpainting releases are all epsilon)."""
    for family in FAMILY_TABLE:
        if (family.base == base and family.in_channels == in_channels
                and (family.prediction == "v_prediction") == (v_prediction and in_channels == 4)):
            return family
    raise ModelError(f"no {base} family has a UNet with {in_channels} input channels")


def base_of_context(context_dim: int) -> str | None:
    """sd1 or sd2 from the UNet's cross-attention width alone (a file without its text encoder)."""
    return next((f.base for f in FAMILY_TABLE if f.runs and f.base != "sdxl" and f.context_dim == context_dim), None)


def of_folder(folder: Path) -> Family | None:
    """The family of a diffusers folder from its model_index.json and its UNet and scheduler configs; None
    when they do not say (then it is loaded as Stable Diffusion, as before)."""
    index, unet = _json(folder / "model_index.json"), _json(folder / "unet" / "config.json")
    scheduler = next((_json(p) for p in sorted((folder / "scheduler").glob("*.json"))), {})
    return of_configs(index, unet, scheduler)


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def of_configs(index: dict, unet: dict, scheduler: dict) -> Family | None:
    """The family from a pipeline's model_index (may be empty), UNet config and scheduler config."""
    if index.get("_class_name") in SDXL_PIPELINES or "text_encoder_2" in index:
        text_encoder = index.get("text_encoder")  # the refiner's model_index says [null, null]
        return BY_KEY["sdxl" if text_encoder and text_encoder != [None, None] else "sdxl-refiner"]
    context, channels = unet.get("cross_attention_dim"), unet.get("in_channels")
    base = base_of_context(context) if isinstance(context, int) else None
    if base is None or channels not in (4, 9):
        return None
    return matching(base, channels, scheduler.get("prediction_type") == "v_prediction")
