"""Single-file checkpoints: detection, the shipped configs and tokenizer, offline loading, safety.

Tiny SD1- and SD2-topology models are built here from configs, written in the original (LDM) single-file
key layout as .safetensors and .ckpt, and loaded back through `load_single_file` with a tiny diffusers
config folder. Detection for the real families runs on real-size shapes without building any model.
"""

from __future__ import annotations

import json
import pickle
import shutil

import pytest

from invoke_shell.errors import ModelError
from invoke_shell.models import singlefile
from invoke_shell.models.singlefile import (CONFIGS, Checkpoint, detect_family, family_of, load_single_file,
                                            load_tokenizer, read_checkpoint, resolve_config)

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- diffusers -> LDM key layout


def _unet_to_ldm(sd: dict, blocks: int, layers: int) -> dict:
    """A diffusers UNet state dict in LDM names (an up block's upsampler comes after its attention, if it has
    one; SDXL's added embedding is `label_emb`)."""
    resnet = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
              ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection")]
    prefixes = [("time_embedding.linear_1.", "time_embed.0."), ("time_embedding.linear_2.", "time_embed.2."),
                ("conv_in.", "input_blocks.0.0."), ("conv_norm_out.", "out.0."), ("conv_out.", "out.2."),
                ("mid_block.attentions.0.", "middle_block.1."), ("add_embedding.linear_1.", "label_emb.0.0."),
                ("add_embedding.linear_2.", "label_emb.0.2.")]
    for j in range(2):
        prefixes.append((f"mid_block.resnets.{j}.", f"middle_block.{2 * j}."))
    for i in range(blocks):
        for j in range(layers):
            prefixes.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{(layers + 1) * i + j + 1}.0."))
            prefixes.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{(layers + 1) * i + j + 1}.1."))
        prefixes.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{(layers + 1) * (i + 1)}.0.op."))
        for j in range(layers + 1):
            prefixes.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{(layers + 1) * i + j}.0."))
            prefixes.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{(layers + 1) * i + j}.1."))
        attention = any(key.startswith(f"up_blocks.{i}.attentions.") for key in sd)
        prefixes.append((f"up_blocks.{i}.upsamplers.0.",
                         f"output_blocks.{(layers + 1) * i + layers}.{2 if attention else 1}."))
    out = {}
    for key, value in sd.items():
        for hf, ldm in sorted(prefixes, key=lambda p: -len(p[0])):
            if key.startswith(hf):
                rest = key[len(hf):]
                if ".resnets." in hf or hf.startswith("mid_block.resnets"):
                    for a, b in resnet:
                        rest = rest.replace(a, b) if rest.startswith(a) else rest
                out["model.diffusion_model." + ldm + rest] = value
                break
        else:
            raise AssertionError(f"unmapped UNet key {key}")
    return out


def _vae_to_ldm(sd: dict, blocks: int, layers: int) -> dict:
    pairs = [("conv_norm_out.", "norm_out."), ("mid_block.attentions.0.", "mid.attn_1."),
             ("mid_block.resnets.0.", "mid.block_1."), ("mid_block.resnets.1.", "mid.block_2.")]
    for i in range(blocks):
        for j in range(layers):
            pairs.append((f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}."))
        pairs.append((f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample."))
        for j in range(layers + 1):
            pairs.append((f"decoder.up_blocks.{i}.resnets.{j}.", f"decoder.up.{blocks - 1 - i}.block.{j}."))
        pairs.append((f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{blocks - 1 - i}.upsample."))
    attn = [("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."), ("to_out.0.", "proj_out.")]
    out = {}
    for key, value in sd.items():
        new = key
        for hf, ldm in pairs:
            new = new.replace(hf, ldm)
        new = new.replace("conv_shortcut", "nin_shortcut")
        if ".attn_1." in new:
            for hf, ldm in attn:
                new = new.replace(".attn_1." + hf, ".attn_1." + ldm)
            if new.endswith("weight") and value.ndim == 2:
                value = value[:, :, None, None]  # LDM's VAE attention uses 1x1 convs
        out["first_stage_model." + new] = value
    return out


def _clip_to_ldm(sd: dict) -> dict:
    return {"cond_stage_model.transformer.text_model." + k: v for k, v in sd.items()}


def _open_clip_to_ldm(sd: dict, layers: int, p: str = "cond_stage_model.model.") -> dict:
    """A CLIP text encoder in OpenCLIP's names under prefix `p` (SD 2.x; SDXL's second encoder with its
    projection, `conditioner.embedders.1.model.`)."""
    sd = {k.removeprefix("text_model."): v for k, v in sd.items()}
    out = {p + "token_embedding.weight": sd["embeddings.token_embedding.weight"],
           p + "positional_embedding": sd["embeddings.position_embedding.weight"],
           p + "ln_final.weight": sd["final_layer_norm.weight"], p + "ln_final.bias": sd["final_layer_norm.bias"]}
    width = sd["final_layer_norm.weight"].shape[0]
    projection = sd.get("text_projection.weight")
    out[p + "text_projection"] = projection.T.contiguous() if projection is not None else torch.eye(width)
    for i in range(layers):
        hf, ldm = f"encoder.layers.{i}.", f"{p}transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[ldm + f"attn.in_proj_{kind}"] = torch.cat(
                [sd[hf + f"self_attn.{x}_proj.{kind}"] for x in "qkv"])
            out[ldm + f"attn.out_proj.{kind}"] = sd[hf + f"self_attn.out_proj.{kind}"]
            out[ldm + f"ln_1.{kind}"] = sd[hf + f"layer_norm1.{kind}"]
            out[ldm + f"ln_2.{kind}"] = sd[hf + f"layer_norm2.{kind}"]
            out[ldm + f"mlp.c_fc.{kind}"] = sd[hf + f"mlp.fc1.{kind}"]
            out[ldm + f"mlp.c_proj.{kind}"] = sd[hf + f"mlp.fc2.{kind}"]
    return out


# ---------------------------------------------------------------- tiny models


def _build_tiny(family: str, folder, seed: int = 0, in_channels: int = 4):
    """Tiny components of `family`'s topology; their diffusers config folder (no weights) goes in `folder`."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    sd2 = not family.startswith("sd1")
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=in_channels, layers_per_block=1, block_out_channels=(32, 64), norm_num_groups=32,
        cross_attention_dim=32, attention_head_dim=(2, 4) if sd2 else 4, use_linear_projection=sd2,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
    vae = AutoencoderKL(
        latent_channels=4, sample_size=64, layers_per_block=1, norm_num_groups=32,
        block_out_channels=(32, 32, 32, 32),  # 4 levels: vae_scale_factor 8; GroupNorm(32) as in LDM
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, hidden_act="gelu" if sd2 else "quick_gelu"))
    for module in (unet, vae, text_encoder):  # random init leaves some zeros; make every tensor distinct
        for p in module.parameters():
            p.data.normal_(0, 0.02)
    folder.mkdir(parents=True)
    shutil.copy(CONFIGS / family / "model_index.json", folder / "model_index.json")
    shutil.copytree(CONFIGS / family / "scheduler", folder / "scheduler")
    unet.save_config(folder / "unet")
    vae.save_config(folder / "vae")
    text_encoder.config.save_pretrained(folder / "text_encoder")
    ldm = {**_unet_to_ldm(unet.state_dict(), 2, 1), **_vae_to_ldm(vae.state_dict(), 4, 1)}
    te = text_encoder.state_dict()
    ldm.update(_open_clip_to_ldm(te, 2) if sd2 else _clip_to_ldm(te))
    return (unet, vae, text_encoder), {k: v.contiguous() for k, v in ldm.items()}


@pytest.fixture(scope="module", params=["sd1", "sd2"])
def tiny(request, tmp_path_factory):
    """(family, components, config folder, {'safetensors': path, 'ckpt': path})."""
    import numpy as np
    from safetensors.torch import save_file

    family = request.param
    root = tmp_path_factory.mktemp(f"tiny-{family}")
    components, ldm = _build_tiny(family, root / "config")
    files = {"safetensors": root / "model.safetensors", "ckpt": root / "model.ckpt"}
    save_file(ldm, files["safetensors"])
    # as old training runs wrote them: the state dict, a step count, a numpy scalar and a
    # pytorch-lightning class used as a dict key (stubbed: lightning is not installed)
    stub = type("ModelCheckpoint", (), {"__module__": "pytorch_lightning.callbacks.model_checkpoint"})
    import sys
    import types

    for name in ("pytorch_lightning", "pytorch_lightning.callbacks", "pytorch_lightning.callbacks.model_checkpoint"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["pytorch_lightning.callbacks.model_checkpoint"].ModelCheckpoint = stub
    try:
        torch.save({"state_dict": ldm, "global_step": 123, "epoch": np.int64(7),
                    "callbacks": {stub: {"best_model_score": np.float64(0.5)}}}, files["ckpt"])
    finally:
        for name in ("pytorch_lightning.callbacks.model_checkpoint", "pytorch_lightning.callbacks",
                     "pytorch_lightning"):
            sys.modules.pop(name, None)
    return family, components, root / "config", files


# ---------------------------------------------------------------- shipped data


def test_tokenizer_matches_clip():
    tok = load_tokenizer("sd1")
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert tok("Hello, world!").input_ids == [49406, 3306, 267, 1002, 256, 49407]
    assert (len(tok), tok.model_max_length, tok.pad_token_id) == (49408, 77, 49407)
    padded = tok("a cat", padding="max_length", max_length=77).input_ids
    assert padded[-1] == 49407
    sd2 = load_tokenizer("sd2")
    assert sd2.pad_token_id == 0 and sd2("a cat", padding="max_length", max_length=77).input_ids[-1] == 0


@pytest.mark.parametrize("family, context, size, prediction", [
    ("sd1", 768, 64, "epsilon"), ("sd2", 1024, 64, "epsilon"), ("sd2-v", 1024, 96, "v_prediction"),
    ("sd1-inpainting", 768, 64, "epsilon"), ("sd2-inpainting", 1024, 64, "epsilon")])
def test_shipped_config_folders(family, context, size, prediction):
    folder = CONFIGS / family
    index = json.loads((folder / "model_index.json").read_text())
    assert index["safety_checker"] == [None, None] and index["requires_safety_checker"] is False
    unet = json.loads((folder / "unet" / "config.json").read_text())
    assert (unet["cross_attention_dim"], unet["sample_size"]) == (context, size)
    assert unet["in_channels"] == (9 if family.endswith("-inpainting") else 4)
    text = json.loads((folder / "text_encoder" / "config.json").read_text())
    assert text["hidden_size"] == context
    sched = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert sched["prediction_type"] == prediction
    assert (sched["steps_offset"], sched["skip_prk_steps"], sched["clip_sample"]) == (1, True, False)


def _real_shapes(family: str, **extra) -> dict:
    """The tensors detection reads, at the real SD 1.x / 2.x sizes (shapes only, nothing allocated)."""
    context = 768 if family == "sd1" else 1024
    shapes = {"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3),
              "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, context),
              "first_stage_model.decoder.conv_out.weight": (3, 128, 3, 3)}
    if family == "sd1":
        shapes["cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"] = (49408, 768)
    else:
        shapes["cond_stage_model.model.token_embedding.weight"] = (49408, 1024)
    return {**shapes, **extra}


@pytest.mark.parametrize("shapes, step, metadata, family", [
    (_real_shapes("sd1"), None, {}, "sd1"),
    (_real_shapes("sd1"), 840000, {}, "sd1"),
    (_real_shapes("sd2"), None, {}, "sd2-v"),       # no evidence: the 768 v-prediction default
    (_real_shapes("sd2"), 110000, {}, "sd2-v"),     # SD 2.1 768
    (_real_shapes("sd2"), 875000, {}, "sd2"),       # SD 2.0 base
    (_real_shapes("sd2"), 220000, {}, "sd2"),       # SD 2.1 base
    (_real_shapes("sd2"), None, {"modelspec.prediction_type": "epsilon"}, "sd2"),
    (_real_shapes("sd2"), None, {"modelspec.prediction_type": "v"}, "sd2-v"),
    (_real_shapes("sd1", **{"model.diffusion_model.input_blocks.0.0.weight": (320, 9, 3, 3)}), None, {},
     "sd1-inpainting"),
    (_real_shapes("sd2", **{"model.diffusion_model.input_blocks.0.0.weight": (320, 9, 3, 3)}), None, {},
     "sd2-inpainting"),                             # 512-inpainting-ema: epsilon
])
def test_detection_at_real_sizes_picks_shipped_folder(tmp_path, shapes, step, metadata, family):
    ckpt = Checkpoint(tmp_path / "real.safetensors", shapes, step, metadata)
    assert family_of(ckpt) == family
    folder, chosen = resolve_config(None, family)
    assert (folder, chosen) == (CONFIGS / family, family)
    singlefile.check_fits(ckpt, folder)  # the real widths fit the shipped config


@pytest.mark.parametrize("family, unet_params, text_params", [
    ("sd1", 859_520_964, 123_060_480), ("sd2-v", 865_910_724, 340_387_840)])
def test_real_size_layout_fits_shipped_config(tmp_path, family, unet_params, text_params):
    """Real-size models from the shipped configs on the meta device (nothing allocated), written in LDM
    names: detection picks the family, and diffusers' own conversion maps every name and shape back."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders import single_file_utils as sfu
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = CONFIGS / family
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder, subfolder="unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder, subfolder="vae"))
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(folder, subfolder="text_encoder"))
    assert sum(p.numel() for p in unet.parameters()) == unet_params
    assert sum(p.numel() for p in text.parameters()) == text_params
    te = text.state_dict()
    ldm = {**_unet_to_ldm(unet.state_dict(), 4, 2), **_vae_to_ldm(vae.state_dict(), 4, 2),
           **(_clip_to_ldm(te) if family == "sd1" else _open_clip_to_ldm(te, text.config.num_hidden_layers))}
    ckpt = Checkpoint(tmp_path / "real.safetensors", {k: tuple(v.shape) for k, v in ldm.items()})
    assert family_of(ckpt) == family
    singlefile.check_fits(ckpt, folder)
    converted = [(unet, sfu.convert_ldm_unet_checkpoint(ldm, unet.config)),
                 (vae, sfu.convert_ldm_vae_checkpoint(ldm, vae.config))]
    for model, state in converted:
        want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        assert {k: tuple(v.shape) for k, v in state.items()} == want


@pytest.mark.parametrize("shapes, message", [
    ({"conditioner.embedders.1.model.positional_embedding": (77, 1280),
      "model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3)}, "no cross-attention layers"),
    ({"down_blocks.0.resnets.0.conv1.weight": (320, 320, 3, 3)}, "diffusers-format"),
    ({"layer.0.weight": (8, 8)}, "not a Stable Diffusion checkpoint"),
    (_real_shapes("sd1", **{"model.diffusion_model.input_blocks.0.0.weight": (320, 8, 3, 3)}),
     "8 input channels; only 4 \\(txt2img/img2img\\) and 9 \\(inpainting\\) load"),
    (_real_shapes("sd1", **{"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight":
                            (320, 1024)}), "unknown model family"),
])
def test_detection_refuses_other_architectures(tmp_path, shapes, message):
    with pytest.raises(ModelError, match=message) as info:
        family_of(Checkpoint(tmp_path / "x.safetensors", shapes))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("context, parameterization, family", [(768, None, "sd1"), (1024, None, "sd2"),
                                                               (1024, "v", "sd2-v"), (768, None, "sd1-inpainting")])
def test_ldm_yaml_maps_to_shipped_folder(tmp_path, context, parameterization, family):
    channels = 9 if family.endswith("-inpainting") else 4
    params = {"unet_config": {"params": {"context_dim": context, "in_channels": channels}}}
    if parameterization:
        params["parameterization"] = parameterization
    yaml_file = tmp_path / "inference.yaml"
    yaml_file.write_text(json.dumps({"model": {"target": "ldm.models.diffusion.ddpm.LatentDiffusion",
                                               "params": params}}))  # JSON is YAML
    detected = ("sd1" if context == 768 else "sd2-v") + ("-inpainting" if channels == 9 else "")
    assert resolve_config(str(yaml_file), detected) == (CONFIGS / family, family)
    other = {"sd1": "sd2", "sd1-inpainting": "sd1"}.get(family, "sd1")
    with pytest.raises(ModelError, match="describes"):
        resolve_config(str(yaml_file), other)


# ---------------------------------------------------------------- loading tiny models


@pytest.mark.parametrize("fmt", ["safetensors", "ckpt"])
def test_tiny_single_file_loads_offline(tiny, fmt):
    family, (unet, vae, text_encoder), config, files = tiny
    assert detect_family(files[fmt]) == ("sd1" if family == "sd1" else "sd2-v")  # no 512 evidence
    pipe = load_single_file(files[fmt], str(config), torch.float32, family=family)
    for original, loaded in ((unet, pipe.unet), (vae, pipe.vae), (text_encoder, pipe.text_encoder)):
        want, got = original.state_dict(), loaded.state_dict()
        assert set(want) == set(got)
        for key in want:
            assert torch.equal(want[key], got[key]), key
    assert pipe.tokenizer.pad_token_id == (49407 if family == "sd1" else 0)
    if fmt == "ckpt":
        return  # one generation per family is enough
    image = pipe("a photo of a cat", num_inference_steps=2, height=64, width=64, output_type="np",
                 generator=torch.Generator().manual_seed(0)).images[0]
    assert image.shape == (64, 64, 3) and float(image.min()) >= 0.0 and float(image.max()) <= 1.0


def test_tiny_inpainting_single_file_loads(tmp_path):
    """A 9-channel checkpoint is detected as an inpainting family and loads with its 9-channel UNet."""
    from safetensors.torch import save_file

    (unet, _, _), ldm = _build_tiny("sd1-inpainting", tmp_path / "config", in_channels=9)
    save_file(ldm, tmp_path / "inpainting.safetensors")
    assert detect_family(tmp_path / "inpainting.safetensors") == "sd1-inpainting"
    pipe = load_single_file(tmp_path / "inpainting.safetensors", str(tmp_path / "config"), torch.float32)
    assert pipe.unet.config.in_channels == 9
    assert torch.equal(pipe.unet.conv_in.weight, unet.conv_in.weight)


@pytest.mark.parametrize("tiny", ["sd1"], indirect=True)
def test_vae_override_from_file_and_folder(tiny, tmp_path):
    from safetensors.torch import save_file

    family, (unet, vae, _), config, files = tiny
    torch.manual_seed(1)
    other = {k: torch.randn_like(v) for k, v in vae.state_dict().items()}
    standalone = {k[len("first_stage_model."):]: v for k, v in _vae_to_ldm(other, 4, 1).items()}
    save_file({k: v.contiguous() for k, v in standalone.items()}, tmp_path / "vae.safetensors")
    pipe = load_single_file(files["safetensors"], str(config), torch.float32, vae=tmp_path / "vae.safetensors")
    got = pipe.vae.state_dict()
    assert all(torch.equal(other[k], got[k]) for k in other)
    assert torch.equal(pipe.unet.conv_in.weight, unet.conv_in.weight)
    pipe.vae.save_pretrained(tmp_path / "vae-folder")
    again = load_single_file(files["ckpt"], str(config), torch.float32, vae=tmp_path / "vae-folder")
    assert all(torch.equal(other[k], again.vae.state_dict()[k]) for k in other)
    save_file({"a": torch.zeros(2)}, tmp_path / "random.safetensors")
    with pytest.raises(ModelError, match="holds no VAE weights"):
        load_single_file(files["safetensors"], str(config), torch.float32, vae=tmp_path / "random.safetensors")


def test_tiny_model_does_not_fit_shipped_folder(tiny):
    family, _, _, files = tiny
    with pytest.raises(ModelError, match="does not fit config") as info:
        load_single_file(files["safetensors"], None, torch.float32)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- refusals


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # unpickling this would create the marker file
        return (open, (str(self.marker), "w"))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"model.diffusion_model.x": torch.zeros(1)}, "payload": _Payload(marker)}, bad)
    assert not marker.exists()
    for call in (lambda: detect_family(bad), lambda: load_single_file(bad, None, torch.float32)):
        with pytest.raises(ModelError, match="refusing to load evil.ckpt") as info:
            call()
        assert "\n" not in str(info.value) and "open" in str(info.value)
    assert not marker.exists()
    legacy = tmp_path / "evil-legacy.ckpt"  # the pre-zip torch format goes through the same unpickler
    torch.save({"payload": _Payload(marker)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(ModelError, match="refusing to load"):
        read_checkpoint(legacy)
    raw = tmp_path / "evil-raw.pt"  # a bare pickle, no torch container at all
    raw.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    with pytest.raises(ModelError):
        read_checkpoint(raw)
    assert not marker.exists()


def test_numpy1_era_pickle_loads(tmp_path):
    """Checkpoints written under numpy 1.x name numpy.core.multiarray.scalar (numpy 2: numpy._core)."""
    import zipfile

    import numpy as np

    new = tmp_path / "np2.ckpt"
    torch.save({"state_dict": {"a": torch.ones(2)}, "epoch": np.int64(3), "loss": np.float64(0.5)}, new)
    old = tmp_path / "np1.ckpt"
    with zipfile.ZipFile(new) as src, zipfile.ZipFile(old, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("data.pkl"):  # protocol 2: GLOBAL names are plain text lines
                assert b"numpy._core.multiarray" in data
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            dst.writestr(item, data)
    assert read_checkpoint(old).shapes == {"a": (2,)}


def test_truncated_safetensors_is_one_line(tmp_path):
    from safetensors.torch import save_file

    good = tmp_path / "good.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(32, 4, 3, 3)}, good)
    data = good.read_bytes()
    for cut in (len(data) // 2, 20, 4):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelError, match="not a valid safetensors file") as info:
            load_single_file(bad, None, torch.float32)
        assert "\n" not in str(info.value)


def test_other_files_refused_in_one_line(tmp_path):
    from safetensors.torch import save_file

    cases = {tmp_path / "missing.safetensors": "no such checkpoint file",
             tmp_path / "notes.txt": "unsupported weights file type",
             tmp_path / "random.safetensors": "not a Stable Diffusion checkpoint",
             tmp_path / "truncated.ckpt": "not a readable PyTorch checkpoint"}
    (tmp_path / "notes.txt").write_text("hello")
    save_file({"a": torch.randn(4, 4), "b": torch.randn(3)}, tmp_path / "random.safetensors")
    torch.save({"state_dict": {"x": torch.zeros(64)}}, tmp_path / "full.ckpt")
    (tmp_path / "truncated.ckpt").write_bytes((tmp_path / "full.ckpt").read_bytes()[:300])
    for path, message in cases.items():
        with pytest.raises(ModelError, match=message) as info:
            load_single_file(path, None, torch.float32)
        assert "\n" not in str(info.value)
    with pytest.raises(ModelError, match="unknown model family 'sd3'"):
        singlefile.family_folder("sd3")
    assert resolve_config(str(tmp_path / "sd2-v"), "sd2") == (CONFIGS / "sd2-v", "sd2-v")
    with pytest.raises(ModelError, match="no such file or folder"):
        resolve_config(str(tmp_path / "nope.yaml"), "sd1")


@pytest.mark.parametrize("tiny", ["sd1"], indirect=True)
def test_checkpoint_stanza_through_the_shell(tiny, tmp_path):
    """A models.yaml checkpoint stanza (weights, config, width, height) loads and draws in the shell."""
    from invoke_shell.models.manager import ModelManager
    from invoke_shell.models.registry import load_registry
    from invoke_shell.shell import Shell

    family, _, config, files = tiny
    (tmp_path / "models.yaml").write_text(
        f"old:\n  description: an old checkpoint\n  weights: {files['ckpt']}\n  config: {config}\n"
        "  width: 64\n  height: 48\n")
    said = []
    shell = Shell(ModelManager(load_registry(tmp_path / "models.yaml"), device="cpu"),
                  outdir=str(tmp_path / "out"), say=said.append)
    assert shell.execute('"a cat" -s 2 -S 1'), said
    assert said[-1].endswith('"a cat" -s 2 -S 1 -W 64 -H 48 -C 7.5 -A k_lms')
    assert shell.execute("!models")
    assert said[-1].split()[:3] == ["old", "active", "ckpt"]


def test_convert_model_writes_a_folder_that_draws_the_same(tiny, tmp_path):
    """!convert_model (2.3's, and its alias !optimize_model): the single file becomes a diffusers folder, the
    stanza names it, and the folder draws what the file drew."""
    import numpy as np
    from PIL import Image

    from invoke_shell.models.manager import ModelManager
    from invoke_shell.models.registry import load_registry
    from invoke_shell.shell import Shell

    family, _, config, files = tiny
    yaml = tmp_path / "models.yaml"
    yaml.write_text(f"old:\n  description: an old checkpoint\n  weights: {files['safetensors']}\n  config: {config}\n"
                    "  width: 64\n  height: 48\n  default: true\n")

    def shell_on(registry_path):
        said = []
        sh = Shell(ModelManager(load_registry(registry_path), device="cpu", precision="float32"),
                   outdir=str(tmp_path / "out"), say=said.append)
        sh.said = said
        return sh

    shell = shell_on(yaml)
    assert shell.execute('"a cat" -s 2 -S 1'), shell.said
    from_file = np.asarray(Image.open(shell.previous[-1].path))
    assert shell.execute("!convert_model old"), shell.said
    folder = tmp_path / "converted" / "old"
    assert shell.said[-1].startswith(f"converted old: its stanza in {yaml} now names {folder}")
    assert (folder / "model_index.json").is_file() and not list(tmp_path.glob(".old.converting"))
    stanza = yaml.read_text()
    assert "format: diffusers" in stanza and str(folder) in stanza and "weights" not in stanza
    again = shell_on(yaml)
    assert again.execute('"a cat" -s 2 -S 1'), again.said
    assert np.array_equal(np.asarray(Image.open(again.previous[-1].path)), from_file)
    assert not again.execute("!optimize_model old")
    assert again.said[-1] == f"error: !convert_model: 'old' is a diffusers folder already ({folder})"
