"""LoRA and textual-inversion files in the formats users bring, made from a pipeline (random weights for the
tests, or trained ones for the shipped examples):

    LoRA       peft       `unet.<module>.lora_A.weight` (what diffusers' save_lora_weights writes today)
               diffusers  `unet.<module>.lora.down.weight` (diffusers' older LoRA format)
               kohya      `lora_unet_<module>.lora_down.weight` + `.alpha` (kohya-ss / A1111 / most files)
    embedding  diffusers  `{token: vector(s)}` (learned_embeds)
               a1111      `{"string_to_param": {"*": vectors}, "name": ...}` (.pt), `{"emb_params": vectors}`
"""

from __future__ import annotations

import copy
from pathlib import Path

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
LORA_FORMATS = ("peft", "diffusers", "kohya")


def lora_layers(unet, text_encoder=None, rank: int = 4, seed: int = 0, scale: float = 0.2) -> dict:
    """A peft-format LoRA state dict (`unet.` and `text_encoder.` keys) with random weights of size `scale`."""
    import torch
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict

    generator = torch.Generator().manual_seed(seed)
    layers = {}
    for prefix, module, targets in (("unet", unet, UNET_TARGETS), ("text_encoder", text_encoder, TEXT_TARGETS)):
        if module is None:
            continue
        module = copy.deepcopy(module).float()
        inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=rank, target_modules=targets), module)
        state = get_peft_model_state_dict(module)
        for key, tensor in sorted(state.items()):
            if prefix == "text_encoder" and not key.startswith("text_model."):
                key = "text_model." + key  # transformers 5 dropped this level; the files in the wild have it
            layers[f"{prefix}.{key}"] = torch.randn(tensor.shape, generator=generator) * scale
    return layers


def convert_lora(layers: dict, fmt: str) -> dict:
    """A peft-format state dict in `fmt` (LORA_FORMATS)."""
    from diffusers.utils.state_dict_utils import (StateDictType, convert_state_dict_to_diffusers,
                                                  convert_state_dict_to_kohya)

    if fmt == "peft":
        return dict(layers)
    if fmt == "diffusers":
        return convert_state_dict_to_diffusers(dict(layers), original_type=StateDictType.PEFT)
    if fmt == "kohya":  # SD 1.x files in the wild name the text encoder lora_te_, not lora_te1_
        return {key.replace("lora_te1_", "lora_te_"): value
                for key, value in convert_state_dict_to_kohya(dict(layers)).items()}
    raise ValueError(f"unknown LoRA format {fmt!r}")


def write_lora(layers: dict, path: str | Path, fmt: str = "peft") -> Path:
    """`layers` (peft format) written as `fmt` to a .safetensors, or with torch.save to .pt/.ckpt/.bin."""
    import torch
    from safetensors.torch import save_file

    path = Path(path)
    state = {key: value.contiguous() for key, value in convert_lora(layers, fmt).items()}
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


def write_embedding(vectors, path: str | Path, fmt: str = "diffusers", token: str | None = None) -> Path:
    """Vectors (N, width) as a textual-inversion file: diffusers' {token: vectors}, or A1111's (`.pt`:
    string_to_param; `.safetensors`: emb_params)."""
    import torch
    from safetensors.torch import save_file

    path = Path(path)
    vectors = vectors.detach().float().contiguous()
    if fmt == "diffusers":
        state = {token or f"<{path.stem}>": vectors[0] if vectors.shape[0] == 1 else vectors}
    elif path.suffix == ".safetensors":
        state = {"emb_params": vectors}
    else:
        state = {"string_to_token": {"*": torch.tensor(265)}, "string_to_param": {"*": vectors},
                 "name": token or path.stem, "step": 1000, "sd_checkpoint": None, "sd_checkpoint_name": None}
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path
