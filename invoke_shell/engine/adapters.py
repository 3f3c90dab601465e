"""A command's LoRAs and textual-inversion embeddings, applied to the resident model through diffusers'
loaders (`load_lora_weights` on the peft backend, `load_textual_inversion`), never by hand.

- Every file is found and read (weights only) and checked against the model before the model is touched:
  an unknown name, a damaged file or a LoRA for another family changes nothing.
- LoRAs stay loaded per model, the least recently used dropped beyond MAX_LORAS; a command runs with
  exactly the LoRAs it names at their weights, and a command naming none runs with all of them disabled,
  which is the model's own computation (peft's layers call the base layer alone).
- An embedding is loaded once per model under its trigger `<name>`; added tokens change nothing for a
  prompt that does not use them. A multi-vector embedding's extra tokens are expanded for compel.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field

from ..errors import ModelError
from ..models.files import stat_key
from ..models.library import Library, WeightsFile
from ..models.weights import SAFETENSORS, first_line, read_weights
from ..prompt_extras import Used

log = logging.getLogger(__name__)

MAX_LORAS = 4  # LoRAs kept loaded per model (a few MB each at SD 1.5 size)
WIDTHS = {768: "SD 1.x", 1024: "SD 2.x", 2048: "SDXL"}  # cross-attention / text encoder width -> family


@dataclass
class Adapters:
    """What is loaded into one resident model."""

    loras: OrderedDict = field(default_factory=OrderedDict)  # name -> (peft adapter name, file state key)
    embeddings: dict = field(default_factory=dict)           # trigger -> (file state key, its tokens)
    vectors: dict = field(default_factory=dict)              # first token id -> all its ids (multi-vector)
    count: int = 0                                           # adapters ever loaded (unique peft names)
    active: tuple = ()                                       # ((adapter, weight), ...) set now


def state(model) -> Adapters:
    if getattr(model, "adapters", None) is None:
        model.adapters = Adapters()
    return model.adapters


def family_of_width(width: int) -> str:
    return WIDTHS.get(width, f"a model {width} wide")


def apply(model, extras, library: Library) -> tuple[Used, ...]:
    """Make the model run with exactly the LoRAs and embeddings of `extras` (a PromptExtras)."""
    loras = [(use, library.find("lora", use.name)) for use in extras.loras]
    embeddings = [(trigger, find_embedding(library, trigger)) for trigger in extras.triggers]
    adapters = state(model)
    for trigger, file in embeddings:
        _ensure_embedding(model, adapters, f"<{trigger}>", file)
    for _, file in loras:
        _ensure_lora(model, adapters, file)
    _activate(model, adapters, [(adapters.loras[use.name][0], use.weight) for use, _ in loras])
    applied = [Used("lora", use.name, use.weight, *library.hashes(file)) for use, file in loras]
    applied += [Used("embedding", file.name, None, *library.hashes(file)) for _, file in embeddings]
    return tuple(applied)


def find_embedding(library: Library, trigger: str) -> WeightsFile:
    """The embedding file a `<trigger>` names: by file name, else by the token stored in a file."""
    files = library.files("embedding")
    if trigger in files:
        return files[trigger]
    for file in files.values():
        if stored_token(file) == f"<{trigger}>":
            return file
    try:
        return library.find("embedding", trigger)
    except ModelError as exc:
        raise ModelError(f"<{trigger}>: {exc} (for a LoRA, write <lora:{trigger}>)") from None


_STORED: dict[str, str | None] = {}


def stored_token(file: WeightsFile) -> str | None:
    """The trigger token an embedding file carries (diffusers' key, A1111's `name`), if any."""
    key = stat_key([file.path])
    if key not in _STORED:
        try:
            _STORED[key] = _vectors(read_weights(file.path, "embedding"), file)[0]
        except ModelError:
            _STORED[key] = None
    return _STORED[key]


# ---------------------------------------------------------------- LoRAs


def lora_width(shapes: dict[str, tuple[int, ...]]) -> int | None:
    """The cross-attention width a LoRA was trained for, from its tensor shapes: the input width of its
    attn2.to_k down matrix (kohya `lora_down`, peft `lora_A`, old diffusers `to_k_lora.down`)."""
    for key in sorted(shapes):
        low = key.lower()
        if "attn2" in low and "to_k" in low and any(m in low for m in ("lora_down", "lora_a.", "lora.down")):
            if len(shapes[key]) == 2:
                return int(shapes[key][1])
    return None


def for_sdxl(keys) -> bool:
    """A LoRA with layers for SDXL's second text encoder."""
    return any(key.startswith(("lora_te2_", "text_encoder_2.")) for key in keys)


def check_lora(state_dict: dict, model, file: WeightsFile) -> None:
    """A one-line ModelError when the LoRA was made for another model family."""
    ours = model.txt2img.unet.config.cross_attention_dim
    sdxl = for_sdxl(state_dict)
    width = lora_width({key: tuple(value.shape) for key, value in state_dict.items() if hasattr(value, "shape")})
    if (sdxl and model.family.base != "sdxl") or (width is not None and width != ours):
        theirs = "SDXL" if sdxl else family_of_width(width)
        raise ModelError(f"LoRA {file.name!r} ({file.path}) is for {theirs} (cross-attention {width or 2048} wide); "
                         f"model {model.name!r} is {model.family.description} ({ours} wide)")
    if not any("lora" in key.lower() for key in state_dict):
        raise ModelError(f"LoRA {file.name!r} ({file.path}) holds no LoRA weights (no lora_* keys)")


def _ensure_lora(model, adapters: Adapters, file: WeightsFile) -> None:
    key = stat_key([file.path])
    loaded = adapters.loras.get(file.name)
    if loaded is not None and loaded[1] == key:
        adapters.loras.move_to_end(file.name)
        return
    state_dict = read_weights(file.path, "LoRA")
    check_lora(state_dict, model, file)
    if loaded is not None:  # the file changed on disk since it was loaded
        _drop(model, adapters, file.name)
    adapters.count += 1
    adapter = f"lora{adapters.count}"
    pipe = model.txt2img
    try:
        pipe.load_lora_weights(dict(state_dict), adapter_name=adapter)
    except Exception as exc:  # noqa: BLE001 - peft and diffusers raise many types for a bad state dict
        log.info("loading LoRA %s failed", file.path, exc_info=True)
        _delete(pipe, adapter)
        raise ModelError(f"LoRA {file.name!r} ({file.path}) does not fit model {model.name!r}: "
                         f"{first_line(exc)}") from None
    if adapter not in {a for names in pipe.get_list_adapters().values() for a in names}:
        _delete(pipe, adapter)
        raise ModelError(f"LoRA {file.name!r} ({file.path}) matched no layer of model {model.name!r}")
    adapters.loras[file.name] = (adapter, key)
    while len(adapters.loras) > MAX_LORAS:
        _drop(model, adapters, next(iter(adapters.loras)))


def _drop(model, adapters: Adapters, name: str) -> None:
    adapter, _ = adapters.loras.pop(name)
    _delete(model.txt2img, adapter)
    adapters.active = tuple(pair for pair in adapters.active if pair[0] != adapter)


def _delete(pipe, adapter: str) -> None:
    try:
        pipe.delete_adapters(adapter)
    except Exception:  # noqa: BLE001 - a half-made adapter may not be listed anywhere
        log.info("deleting adapter %s", adapter, exc_info=True)


def _activate(model, adapters: Adapters, wanted: list[tuple[str, float]]) -> None:
    """Exactly `wanted` ((adapter, weight), ...) active; none: every LoRA layer disabled."""
    wanted = tuple(wanted)
    if wanted == adapters.active:
        return
    pipe = model.txt2img
    if wanted:
        pipe.enable_lora()
        pipe.set_adapters([a for a, _ in wanted], [w for _, w in wanted])
    elif adapters.loras:
        pipe.disable_lora()
    adapters.active = wanted


# ---------------------------------------------------------------- embeddings


def _vectors(state_dict: dict, file: WeightsFile):
    """(the token stored in the file or None, the vectors (N, width)) of A1111's and diffusers' formats."""
    import torch

    if "string_to_param" in state_dict and isinstance(state_dict["string_to_param"], dict):  # A1111 .pt
        params = list(state_dict["string_to_param"].values())
        name = state_dict.get("name")
        token, tensor = (name if isinstance(name, str) else None), (params[0] if params else None)
    elif "emb_params" in state_dict:  # A1111 .safetensors
        token, tensor = None, state_dict["emb_params"]
    elif {"clip_l", "clip_g"} & set(state_dict):
        raise ModelError(f"embedding {file.name!r} ({file.path}) is an SDXL embedding (clip_l/clip_g)")
    elif len(state_dict) == 1:  # diffusers learned_embeds: {token: vector(s)}
        token, tensor = next(iter(state_dict.items()))
    else:
        raise ModelError(f"embedding {file.name!r} ({file.path}) is not a textual-inversion embedding "
                         "(expected A1111's string_to_param or emb_params, or diffusers' one token)")
    if not isinstance(tensor, torch.Tensor) or tensor.ndim not in (1, 2) or not tensor.is_floating_point():
        raise ModelError(f"embedding {file.name!r} ({file.path}) holds no vectors")
    return token, tensor.reshape(-1, tensor.shape[-1])


def _ensure_embedding(model, adapters: Adapters, trigger: str, file: WeightsFile) -> None:
    key = stat_key([file.path])
    loaded = adapters.embeddings.get(trigger)
    if loaded is not None and loaded[0] == key:
        return
    if model.family.base == "sdxl":
        raise ModelError(f"embedding {file.name!r}: embeddings run on Stable Diffusion 1.x and 2.x models, not yet on "
                         f"SDXL ({model.name!r})")
    _token, vectors = _vectors(read_weights(file.path, "embedding"), file)
    pipe = model.txt2img
    width = pipe.text_encoder.get_input_embeddings().weight.shape[1]
    if vectors.shape[1] != width:
        raise ModelError(f"embedding {file.name!r} ({file.path}) is for {family_of_width(vectors.shape[1])} "
                         f"({vectors.shape[1]} wide); model {model.name!r}'s text encoder is {width} wide")
    if loaded is not None:
        pipe.unload_textual_inversion(list(loaded[1]))
        adapters.vectors.pop(pipe.tokenizer.convert_tokens_to_ids(trigger), None)
    tokens = [trigger] + [f"{trigger}_{i}" for i in range(1, vectors.shape[0])]
    vocabulary = pipe.tokenizer.get_vocab()
    clash = next((t for t in tokens if t in vocabulary), None)
    if clash is not None:
        raise ModelError(f"embedding {file.name!r}: its trigger {clash} is a token the model's tokenizer already "
                         f"knows; rename the file")
    try:
        pipe.load_textual_inversion({trigger: vectors}, token=trigger)
    except Exception as exc:  # noqa: BLE001
        log.info("loading embedding %s failed", file.path, exc_info=True)
        raise ModelError(f"embedding {file.name!r} ({file.path}) could not be loaded: {first_line(exc)}") from None
    ids = pipe.tokenizer.convert_tokens_to_ids(tokens)
    if len(ids) > 1:
        adapters.vectors[ids[0]] = list(ids)
    adapters.embeddings[trigger] = (key, tuple(tokens))


class Expander:
    """compel's textual-inversion manager: a multi-vector trigger's first token id becomes all its ids.
    Other ids pass through untouched (diffusers' own manager re-tokenizes the whole prompt)."""

    def __init__(self, model):
        self.model = model

    def expand_textual_inversion_token_ids_if_necessary(self, token_ids: list[int]) -> list[int]:
        vectors = state(self.model).vectors
        if not vectors:
            return token_ids
        out: list[int] = []
        for token in token_ids:
            out.extend(vectors.get(token, (token,)))
        return out


# ---------------------------------------------------------------- what a file is for (!triggers)


def describe(file: WeightsFile, model) -> str:
    """What a LoRA or embedding file is for, in a few words, beside the active model (or None): its width and
    family, whether it fits, and an embedding's vectors and stored token."""
    try:
        if file.kind == "lora":
            shapes = _shapes(file)
            sdxl = for_sdxl(shapes)
            width = lora_width(shapes)
            family = "SDXL" if sdxl else family_of_width(width) if width else "width unknown"
            ours = model.txt2img.unet.config.cross_attention_dim if model is not None else None
        else:
            token, vectors = _vectors(read_weights(file.path, "embedding"), file)
            width = vectors.shape[1]
            family = f"{vectors.shape[0]} vector{'s' if vectors.shape[0] > 1 else ''}, {family_of_width(width)}"
            if token and token != f"<{file.name}>":
                family += f"; its own token {token}" + ("" if token.startswith("<") else " (type <" + file.name + ">)")
            ours = model.txt2img.text_encoder.get_input_embeddings().weight.shape[1] if model is not None else None
    except ModelError as exc:
        return f"unreadable: {exc}"
    if ours is None or width is None:
        return family
    return f"{family}; {'fits' if width == ours else 'does not fit'} {model.name}"


def _shapes(file: WeightsFile) -> dict[str, tuple[int, ...]]:
    """A LoRA file's tensor names -> shapes: a safetensors header alone (the checkpoint reader's), else the
    file read weights-only."""
    if file.path.suffix.lower() in SAFETENSORS:
        from ..models.singlefile import read_checkpoint

        return read_checkpoint(file.path).shapes
    return {key: tuple(value.shape) for key, value in read_weights(file.path, "LoRA").items() if hasattr(value, "shape")}
