"""ComfyUI's `prompt` chunk: the API graph `{node_id: {"class_type", "inputs"}}`, where an input that
comes from another node is `[node_id, output_index]`. We read the KSampler and what feeds it."""

from __future__ import annotations

from ...errors import ParseError
from ...samplers import FROM_COMFYUI, from_comfyui
from .common import Found, as_float, as_int, as_text, command_of, load_json_object, map_sampler, plain_brackets

SAMPLER_NODES = ("KSampler", "KSamplerAdvanced")
PLAIN = {sampler: ours for (sampler, scheduler), ours in FROM_COMFYUI.items() if scheduler == "normal"}
# node types whose effect the rebuilt command already has, or that only load, decode or save
_ACCOUNTED = {"KSampler", "KSamplerAdvanced", "CLIPTextEncode", "EmptyLatentImage", "CheckpointLoaderSimple",
              "VAEDecode", "VAEEncode", "LoadImage", "SaveImage", "PreviewImage", "LoraLoader",
              "LoraLoaderModelOnly", "CLIPSetLastLayer", "PrimitiveNode", "PrimitiveString"}
MAX_HOPS = 32


def from_prompt(text: str) -> tuple[str, list[str], bool]:
    """(command, notes, True) from a ComfyUI API graph."""
    graph = load_json_object(text, "the ComfyUI prompt graph")
    nodes = {str(k): v for k, v in graph.items() if isinstance(v, dict) and isinstance(v.get("inputs"), dict)}
    samplers = sorted((k for k, v in nodes.items() if v.get("class_type") in SAMPLER_NODES),
                      key=lambda k: (len(k), k))
    if not samplers:
        raise ParseError("the ComfyUI prompt graph has no KSampler node")
    found = Found()
    # the first pass of a multi-pass graph is the one that starts from an empty latent
    first = next((k for k in samplers if _class(nodes, _link(nodes[k]["inputs"].get("latent_image")))
                  == "EmptyLatentImage"), samplers[0])
    if len(samplers) > 1:
        found.note(f"{len(samplers) - 1} more sampler node(s)")
    node = nodes[first]
    inputs = node["inputs"]
    advanced = node["class_type"] == "KSamplerAdvanced"
    seed = inputs.get("noise_seed" if advanced else "seed")
    if seed is not None:
        found.set_seed(seed, "seed")
    if inputs.get("steps") is not None:
        found.steps = as_int(inputs["steps"], "steps")
    if inputs.get("cfg") is not None:
        found.cfg_scale = as_float(inputs["cfg"], "cfg")
    if inputs.get("sampler_name") is not None:
        _sampler(inputs["sampler_name"], inputs.get("scheduler"), found)
    if advanced:
        for key, default in (("start_at_step", 0), ("end_at_step", 10000)):
            if inputs.get(key, default) != default:
                found.note(key, inputs[key])
    found.prompt = plain_brackets(_text(nodes, inputs.get("positive"), found), found, "prompt")
    found.negative = plain_brackets(_text(nodes, inputs.get("negative"), found), found, "negative prompt")
    _latent(nodes, inputs, found, denoise=None if advanced else inputs.get("denoise"))
    _model(nodes, inputs.get("model"), found)
    for other in nodes.values():
        if other.get("class_type") == "CLIPSetLastLayer":  # -2 is A1111's Clip skip 2
            found.clip_skip = -as_int(other["inputs"].get("stop_at_clip_layer"), "stop_at_clip_layer")
    others = sorted({str(v.get("class_type"))[:40] for v in nodes.values()} - _ACCOUNTED)
    if others:
        found.note("other nodes", " ".join(others[:12]))
    return command_of(found), found.notes, True


def _sampler(name: object, scheduler: object, found: Found) -> None:
    """The table's (sampler_name, scheduler) pair -> ours; a pair it lacks maps by sampler_name alone (with
    the `normal` schedule) and the scheduler is noted."""
    text = as_text(name, "sampler_name")
    schedule = as_text(scheduler, "scheduler") if scheduler is not None else None
    ours = from_comfyui(text, schedule)
    if ours is not None:
        found.sampler = ours
        return
    map_sampler(text, PLAIN, found, "sampler_name")
    if schedule not in (None, "normal"):
        found.note("scheduler", schedule)


def _link(value: object) -> str | None:
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int)):
        return str(value[0])
    return None


def _class(nodes: dict, node_id: str | None) -> str | None:
    return nodes[node_id].get("class_type") if node_id in nodes else None


def _text(nodes: dict, source: object, found: Found) -> str:
    """Follow a conditioning input back to the text that made it (through combine/ControlNet nodes)."""
    node_id, seen = _link(source), set()
    while node_id in nodes and node_id not in seen and len(seen) < MAX_HOPS:
        seen.add(node_id)
        inputs = nodes[node_id]["inputs"]
        for key in ("text", "text_g", "string", "value"):
            value = inputs.get(key)
            if isinstance(value, str):
                return as_text(value, f"node {node_id} {key}")
            if _link(value) is not None:  # text from a primitive node
                node_id = _link(value)
                break
        else:
            node_id = next((_link(inputs[k]) for k in ("conditioning", "conditioning_1", "conditioning_to")
                            if _link(inputs.get(k)) is not None), None)
    return ""


def _latent(nodes: dict, inputs: dict, found: Found, denoise: object) -> None:
    latent = _link(inputs.get("latent_image"))
    kind = _class(nodes, latent)
    strength = as_float(denoise, "denoise") if denoise is not None else 1.0
    if kind == "EmptyLatentImage":
        empty = nodes[latent]["inputs"]
        found.width = as_int(empty.get("width"), "EmptyLatentImage width")
        found.height = as_int(empty.get("height"), "EmptyLatentImage height")
        if empty.get("batch_size", 1) != 1:
            found.note("batch_size", empty.get("batch_size"))
        if strength != 1.0:
            found.note("denoise", f"{strength:g} (on an empty latent)")
    elif kind == "VAEEncode":
        pixels = _link(nodes[latent]["inputs"].get("pixels"))
        if _class(nodes, pixels) == "LoadImage":
            found.init_img = as_text(nodes[pixels]["inputs"].get("image"), "LoadImage image")
            found.strength = strength
        else:
            found.note("init image", f"from a {_class(nodes, pixels)} node")
    elif kind is not None:
        found.note("latent_image", f"from a {kind} node")


def _model(nodes: dict, source: object, found: Found) -> None:
    node_id, seen = _link(source), set()
    while node_id in nodes and node_id not in seen and len(seen) < MAX_HOPS:
        seen.add(node_id)
        inputs = nodes[node_id]["inputs"]
        if isinstance(inputs.get("lora_name"), str):
            found.note(str(nodes[node_id].get("class_type", "LoraLoader"))[:40],
                       f"{inputs['lora_name']} {inputs.get('strength_model', '')}".strip())
        if isinstance(inputs.get("ckpt_name"), str):
            found.note("model", inputs["ckpt_name"])
            return
        node_id = _link(inputs.get("model"))
